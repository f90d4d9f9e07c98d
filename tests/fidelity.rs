//! Randomized differential fidelity: every column type and attribute real schemas use, filled
//! with seeded random values (extremes and edge cases weighted in), replicated by `dtle task run`
//! through the snapshot **and** through the binlog, then compared byte for byte.
//!
//! # What it checks
//! One table per family (integers, decimals, floats, BIT, temporal types, strings in latin1,
//! utf8mb3, utf8mb4 and binary, strings in other character sets, binary strings, JSON/ENUM/SET,
//! spatial types, UUID/INET6/INET4, column attributes: NOT NULL, INVISIBLE, generated columns,
//! ON UPDATE CURRENT_TIMESTAMP, ZEROFILL), each keyed by `id INT PRIMARY KEY`.
//! 1. Snapshot phase: rows are inserted before the job starts; once the target has caught up,
//!    every column of every row is compared.
//! 2. Binlog phase: after the snapshot, new rows are inserted, existing rows (some copied by the
//!    snapshot, some inserted through the binlog) are updated to other random values (whole rows
//!    with `INSERT .. ON DUPLICATE KEY UPDATE`, a few columns with `UPDATE`, a few keys changed),
//!    rows are deleted; once the target has caught up, everything is compared again.
//!
//! Values are written as SQL literals that can express any value (hex literals with a charset
//! introducer for text, `ST_GeomFromWKB` for geometry, ...), many rows per statement, each
//! statement under a random session `time_zone` (fixed offsets; `America/New_York` as well when
//! the source has time zone tables), so TIMESTAMP literals are local times. Each column is
//! compared as `HEX(CAST(col AS BINARY))` (read with `time_zone = '+00:00'`), FLOAT and DOUBLE
//! also bit for bit; the first difference names the table, the row's id, the column and both
//! values. At the end a few edge cases are counted on the source, to show they were written.
//!
//! # Environment
//! - `DTLE_FIDELITY_SEED`: the RNG seed (a `u64`); random when unset. The seed is always printed
//!   (and repeated in any failure message): replay a failure with
//!   `DTLE_FIDELITY_SEED=<seed> cargo test --test fidelity -- --nocapture`.
//! - `DTLE_FIDELITY_ROWS`: rows written per table in each phase (default 2000); run it large with
//!   `DTLE_FIDELITY_ROWS=50000 cargo test --test fidelity -- --nocapture`.
//! - `DTLE_FIDELITY_KNOWN_GAPS=1`: also the tables of known differences that need a fix outside
//!   the value decoders (see `known_gap` in [`families`]); left out by default.
//!
//! Needs the test bed (`scripts/testbed.sh up`); uses the schema `fid_fidelity` and the job
//! `fid-fidelity` only.

mod support;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as My};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use support::*;

const SCHEMA: &str = "fid_fidelity";
const JOB: &str = "fid-fidelity";
const DEFAULT_ROWS: usize = 2000;
/// Rows per INSERT statement.
const BATCH: usize = 250;
/// Share of NULLs in nullable columns, in percent.
const NULL_PERCENT: u32 = 8;

// ---------------------------------------------------------------------------------------------
// The session time zones statements are written under.

#[derive(Clone)]
enum Zone {
    /// A fixed offset, e.g. `+05:30` (seconds east of UTC).
    Offset(&'static str, i64),
    /// A named zone from the server's time zone tables.
    Named(&'static str),
}

impl Zone {
    fn sql(&self) -> &'static str {
        match self {
            Zone::Offset(name, _) | Zone::Named(name) => name,
        }
    }
}

fn offset_zones() -> Vec<Zone> {
    vec![
        Zone::Offset("+00:00", 0),
        Zone::Offset("+05:30", 5 * 3600 + 1800),
        Zone::Offset("-08:00", -8 * 3600),
        Zone::Offset("+12:45", 12 * 3600 + 2700),
        Zone::Offset("-03:30", -(3 * 3600 + 1800)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Small value helpers.

type Generator = Box<dyn Fn(&mut StdRng, &Zone) -> String>;

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

fn percent(rng: &mut StdRng, p: u32) -> bool {
    rng.gen_range(0..100) < p
}

/// `n` random decimal digits (none when `n == 0`).
fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// A fraction of `fsp` digits with its dot, or nothing when `fsp == 0`; often all nines or
/// zeros.
fn fraction(rng: &mut StdRng, fsp: usize) -> String {
    if fsp == 0 {
        return String::new();
    }
    let digits = match rng.gen_range(0..6) {
        0 => "9".repeat(fsp),
        1 => "0".repeat(fsp),
        2 => format!("{}1", "0".repeat(fsp - 1)),
        _ => digits(rng, fsp),
    };
    format!(".{digits}")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD hh:mm:ss` of `secs` after the epoch.
fn civil_text(secs: i64) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn null_or(rng: &mut StdRng, value: impl FnOnce(&mut StdRng) -> String) -> String {
    if percent(rng, NULL_PERCENT) {
        "NULL".to_owned()
    } else {
        value(rng)
    }
}

// ---------------------------------------------------------------------------------------------
// Generators, one per column type.

fn integer(bits: u32, unsigned: bool) -> Generator {
    Box::new(move |rng, _| {
        let (min, max): (i128, i128) = if unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        };
        let n = match rng.gen_range(0..10) {
            0 => min,
            1 => max,
            2 => 0,
            3 => max.min(1),
            4 => min.max(-1),
            5 => rng.gen_range(-300i128..300).clamp(min, max),
            6 => max - rng.gen_range(0..5),
            7 => min + rng.gen_range(0..5),
            _ => rng.gen_range(min..=max),
        };
        n.to_string()
    })
}

/// A DECIMAL(precision, scale) literal, quoted so that every digit is kept exactly.
fn decimal(precision: usize, scale: usize, unsigned: bool) -> Generator {
    Box::new(move |rng, _| {
        let int_digits = precision - scale;
        let negative = !unsigned && rng.gen_bool(0.5);
        let (int_part, frac_part) = match rng.gen_range(0..8) {
            0 => ("9".repeat(int_digits), "9".repeat(scale)),
            1 => (String::new(), "0".repeat(scale)),
            2 => (
                String::new(),
                format!("{}1", "0".repeat(scale.saturating_sub(1))),
            ),
            3 => {
                let (i, f) = (
                    rng.gen_range(0..=int_digits.min(3)),
                    rng.gen_range(0..=scale),
                );
                (digits(rng, i), digits(rng, f))
            }
            _ => {
                let i = rng.gen_range(0..=int_digits);
                (digits(rng, i), digits(rng, scale))
            }
        };
        let int_part = int_part.trim_start_matches('0');
        let int_part = if int_part.is_empty() { "0" } else { int_part };
        let frac_part = if scale == 0 {
            String::new()
        } else {
            format!(".{}", &frac_part[..frac_part.len().min(scale)])
        };
        let sign = if negative { "-" } else { "" };
        format!("'{sign}{int_part}{frac_part}'")
    })
}

fn float_value(rng: &mut StdRng, unsigned: bool) -> f32 {
    let special = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        1.0,
        -1.0,
        0.1,
        16_777_217.0,
    ];
    let value = if rng.gen_bool(0.3) {
        special[rng.gen_range(0..special.len())]
    } else {
        loop {
            let f = f32::from_bits(rng.gen());
            if f.is_finite() {
                break f;
            }
        }
    };
    if unsigned {
        // Negative zero included: an UNSIGNED column stores its absolute value.
        value.abs()
    } else {
        value
    }
}

fn double_value(rng: &mut StdRng, unsigned: bool) -> f64 {
    let special = [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1.0,
        -1.0,
        0.1,
        9_007_199_254_740_993.0,
    ];
    let value = if rng.gen_bool(0.3) {
        special[rng.gen_range(0..special.len())]
    } else {
        loop {
            let f = f64::from_bits(rng.gen());
            if f.is_finite() {
                break f;
            }
        }
    };
    if unsigned {
        value.abs()
    } else {
        value
    }
}

/// A float literal the server parses to exactly this value (`-0e0` included).
fn float_literal(value: f64) -> String {
    format!("{value:e}")
}

fn float_column(unsigned: bool) -> Generator {
    Box::new(move |rng, _| float_literal(f64::from(float_value(rng, unsigned))))
}

fn double_column(unsigned: bool) -> Generator {
    Box::new(move |rng, _| float_literal(double_value(rng, unsigned)))
}

fn bit(width: u32) -> Generator {
    Box::new(move |rng, _| {
        let max: u64 = if width == 64 {
            u64::MAX
        } else {
            (1 << width) - 1
        };
        let n = match rng.gen_range(0..5) {
            0 => 0,
            1 => max,
            2 => 1 << rng.gen_range(0..width),
            _ => rng.gen::<u64>() & max,
        };
        format!("b'{n:b}'")
    })
}

fn year() -> Generator {
    Box::new(|rng, _| match rng.gen_range(0..6) {
        0 => "0".to_owned(),
        1 => "1901".to_owned(),
        2 => "2155".to_owned(),
        _ => rng.gen_range(1901..=2155).to_string(),
    })
}

/// `YYYY-MM-DD`, zero dates and zero parts included.
fn date_text(rng: &mut StdRng) -> String {
    match rng.gen_range(0..20) {
        0 => "0000-00-00".to_owned(),
        1 => "1000-01-01".to_owned(),
        2 => "9999-12-31".to_owned(),
        3 => format!("{:04}-00-00", rng.gen_range(1..=9999)),
        4 => format!(
            "{:04}-{:02}-00",
            rng.gen_range(1000..=9999),
            rng.gen_range(1..=12)
        ),
        5 => format!(
            "{:04}-{:02}-{:02}",
            rng.gen_range(1..1000),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28)
        ),
        _ => {
            let year = rng.gen_range(1000..=9999);
            let month = rng.gen_range(1..=12);
            let day = rng.gen_range(1..=days_in_month(year, month));
            format!("{year:04}-{month:02}-{day:02}")
        }
    }
}

fn date() -> Generator {
    Box::new(|rng, _| format!("'{}'", date_text(rng)))
}

/// TIME(fsp): negative values with and without a fraction, the limits, and values around 625
/// hours (where a mis-decoded borrow shows).
fn time(fsp: usize) -> Generator {
    Box::new(move |rng, _| {
        let negative = rng.gen_bool(0.5);
        let sign = if negative { "-" } else { "" };
        let (h, m, s) = match rng.gen_range(0..10) {
            0 => (838, 59, 59),
            1 => (0, 0, 0),
            2 => (
                rng.gen_range(620..630),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            ),
            3 => (
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            ),
            _ => (
                rng.gen_range(0..=838),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            ),
        };
        let frac = if rng.gen_bool(0.25) {
            String::new()
        } else {
            fraction(rng, fsp)
        };
        format!("'{sign}{h:02}:{m:02}:{s:02}{frac}'")
    })
}

fn datetime(fsp: usize) -> Generator {
    Box::new(move |rng, _| {
        let clock = match rng.gen_range(0..6) {
            0 => "00:00:00".to_owned(),
            1 => "23:59:59".to_owned(),
            _ => format!(
                "{:02}:{:02}:{:02}",
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60)
            ),
        };
        let date = date_text(rng);
        let frac = fraction(rng, fsp);
        if date == "0000-00-00" && rng.gen_bool(0.5) {
            return "'0000-00-00 00:00:00'".to_owned();
        }
        format!("'{date} {clock}{frac}'")
    })
}

/// TIMESTAMP(fsp) written as a local time of the statement's session zone.
fn timestamp(fsp: usize) -> Generator {
    Box::new(move |rng, zone| {
        let secs: i64 = match rng.gen_range(0..12) {
            0 => return "'0000-00-00 00:00:00'".to_owned(),
            1 => 1,
            2 => 2_147_483_647,
            3 => rng.gen_range(1..86_400 * 2),
            _ => rng.gen_range(1..=2_147_483_647),
        };
        let frac = fraction(rng, fsp);
        let utc = format!("{}{frac}", civil_text(secs));
        match zone {
            Zone::Offset(_, offset) => {
                let local = civil_text(secs + offset);
                // In the local calendar the limits move; the values themselves stay in range.
                format!("'{local}{frac}'")
            }
            Zone::Named(name) => format!("CONVERT_TZ('{utc}', '+00:00', '{name}')"),
        }
    })
}

#[derive(Clone, Copy)]
enum Charset {
    Latin1,
    Utf8mb3,
    Utf8mb4,
    Binary,
}

impl Charset {
    fn name(self) -> &'static str {
        match self {
            Charset::Latin1 => "latin1",
            Charset::Utf8mb3 => "utf8mb3",
            Charset::Utf8mb4 => "utf8mb4",
            Charset::Binary => "binary",
        }
    }

    /// One random character's bytes.
    /// One random character's bytes. (One `next_u32` per character: a debug build's
    /// `gen_range` is too slow for megabytes of text.)
    fn char_bytes(self, rng: &mut StdRng, out: &mut Vec<u8>) {
        let r = rng.next_u32();
        let pick = r & 15;
        let rest = r >> 4;
        match self {
            Charset::Latin1 | Charset::Binary => out.push(match pick {
                0 => 0,
                1 => b' ',
                2..=7 => 0x20 + (rest % 0x5f) as u8,
                _ => rest as u8,
            }),
            Charset::Utf8mb3 | Charset::Utf8mb4 => {
                let c = loop {
                    let r = rng.next_u32();
                    let rest = r >> 4;
                    let code = match r & 15 {
                        0 => 0,
                        1 => u32::from(b' '),
                        2..=6 => 0x20 + rest % 0x5f,
                        7 | 8 => 0x80 + rest % 0x780,
                        9..=11 => 0x800 + rest % 0xf800,
                        _ if matches!(self, Charset::Utf8mb4) => 0x1_0000 + rest % 0x10_0000,
                        _ => 0x800 + rest % 0xf800,
                    };
                    if let Some(c) = char::from_u32(code) {
                        break c;
                    }
                };
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// A string of at most `max_chars` characters and `max_bytes` bytes, written as a hex literal
/// with the charset's introducer, so that any byte or character can be expressed.
fn text(charset: Charset, max_chars: usize, max_bytes: usize) -> Generator {
    Box::new(move |rng, _| {
        // Mostly short; the longest and long random lengths now and then.
        let len = match rng.gen_range(0..16) {
            0 | 1 => 0,
            2 => max_chars,
            3 => rng.gen_range(0..=max_chars),
            _ => rng.gen_range(0..=max_chars.min(24)),
        };
        let mut bytes = Vec::new();
        for _ in 0..len {
            let before = bytes.len();
            charset.char_bytes(rng, &mut bytes);
            if bytes.len() > max_bytes {
                bytes.truncate(before);
                break;
            }
        }
        if rng.gen_bool(0.1) {
            // Trailing spaces (CHAR drops them, VARCHAR and TEXT keep them).
            while bytes.len() < max_bytes.min(len + 2) {
                bytes.push(b' ');
            }
        }
        format!("_{} X'{}'", charset.name(), hex(&bytes))
    })
}

/// Text in any character set: random characters (4-byte ones included) converted from utf8mb4
/// by the server, which writes `?` for what the set lacks (in a non-strict session).
fn converted(charset: &'static str, max_chars: usize) -> Generator {
    Box::new(move |rng, _| {
        let len = match rng.gen_range(0..4) {
            0 => 0,
            1 => max_chars,
            _ => rng.gen_range(0..=max_chars),
        };
        let mut bytes = Vec::new();
        for _ in 0..len {
            Charset::Utf8mb4.char_bytes(rng, &mut bytes);
        }
        format!("CONVERT(_utf8mb4 X'{}' USING {charset})", hex(&bytes))
    })
}

/// Bytes with NULs, trailing NULs included.
fn binary(max: usize) -> Generator {
    Box::new(move |rng, _| {
        let len = match rng.gen_range(0..16) {
            0 | 1 => 0,
            2 => max,
            3 => rng.gen_range(0..=max),
            _ => rng.gen_range(0..=max.min(32)),
        };
        // Random bytes, a quarter of them NUL and a quarter 0xff (chosen by a second random
        // byte; bulk fills keep a debug build quick).
        let mut bytes = vec![0u8; len];
        let mut kinds = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        rng.fill_bytes(&mut kinds);
        for (b, kind) in bytes.iter_mut().zip(&kinds) {
            match kind & 3 {
                0 => *b = 0,
                1 => *b = 0xff,
                _ => {}
            }
        }
        match rng.gen_range(0..5) {
            0 => {
                // Trailing NULs, which a fixed-length binary string's binlog image drops.
                let keep = rng.gen_range(0..=len);
                for b in &mut bytes[keep..] {
                    *b = 0;
                }
            }
            1 => bytes.iter_mut().for_each(|b| *b = 0),
            _ => {}
        }
        format!("X'{}'", hex(&bytes))
    })
}

fn json_string(rng: &mut StdRng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.gen_range(0..12) {
        match rng.gen_range(0..12) {
            0 => out.push_str("\\\""),
            1 => out.push_str("\\\\"),
            2 => out.push_str("\\n"),
            3 => {
                let _ = write!(out, "\\u{:04x}", rng.gen_range(1..0x20));
            }
            4 => out.push('é'),
            5 => out.push('😀'),
            6 => out.push('日'),
            7 => out.push('\''),
            _ => out.push(char::from(rng.gen_range(b'a'..=b'z'))),
        }
    }
    out.push('"');
}

fn json_value(rng: &mut StdRng, depth: u32, out: &mut String) {
    let space = |rng: &mut StdRng, out: &mut String| {
        if rng.gen_bool(0.3) {
            out.push_str([" ", "  ", "\n", "\t"][rng.gen_range(0..4)]);
        }
    };
    let kind = if depth >= 3 {
        rng.gen_range(0..6)
    } else {
        rng.gen_range(0..8)
    };
    match kind {
        0 => out.push_str("null"),
        1 => out.push_str(if rng.gen() { "true" } else { "false" }),
        2 => {
            let _ = write!(out, "{}", rng.gen::<i64>());
        }
        3 => {
            let _ = write!(out, "{:e}", double_value(rng, false));
        }
        4 => {
            let _ = write!(out, "{}.{}", rng.gen_range(-1000..1000), digits(rng, 3));
        }
        5 => json_string(rng, out),
        6 => {
            out.push('[');
            for i in 0..rng.gen_range(0..4) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                json_value(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.gen_range(0..4) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                json_string(rng, out);
                out.push(':');
                space(rng, out);
                json_value(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

fn json() -> Generator {
    Box::new(|rng, _| {
        let mut text = String::new();
        json_value(rng, 0, &mut text);
        format!("_utf8mb4 X'{}'", hex(text.as_bytes()))
    })
}

/// An ENUM value by its text; `''` (index 0, written in a non-strict session) included.
fn enumeration(members: Vec<String>) -> Generator {
    Box::new(move |rng, _| {
        let text = match rng.gen_range(0..8) {
            0 => String::new(),
            1 => members[members.len() - 1].clone(),
            _ => members[rng.gen_range(0..members.len())].clone(),
        };
        format!("_utf8mb4 X'{}'", hex(text.as_bytes()))
    })
}

/// A SET value: a random subset (empty and full included).
fn set(members: Vec<String>) -> Generator {
    Box::new(move |rng, _| {
        let chosen: Vec<&str> = match rng.gen_range(0..6) {
            0 => Vec::new(),
            1 => members.iter().map(String::as_str).collect(),
            _ => members
                .iter()
                .filter(|_| rng.gen_bool(0.3))
                .map(String::as_str)
                .collect(),
        };
        format!("_utf8mb4 X'{}'", hex(chosen.join(",").as_bytes()))
    })
}

// Spatial values as little-endian WKB (random finite doubles, bit for bit), sometimes as WKT.

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Point,
    LineString,
    Polygon,
    MultiPoint,
    Collection,
}

fn coordinate(rng: &mut StdRng) -> f64 {
    match rng.gen_range(0..3) {
        0 => double_value(rng, false),
        1 => f64::from(rng.gen_range(-180_000_000..180_000_000)) / 1e6,
        _ => f64::from(rng.gen_range(-1000..1000)),
    }
}

fn wkb_point_body(rng: &mut StdRng, out: &mut Vec<u8>) {
    out.extend_from_slice(&coordinate(rng).to_le_bytes());
    out.extend_from_slice(&coordinate(rng).to_le_bytes());
}

fn wkb(rng: &mut StdRng, shape: Shape, depth: u32, out: &mut Vec<u8>) {
    out.push(1);
    let code: u32 = match shape {
        Shape::Point => 1,
        Shape::LineString => 2,
        Shape::Polygon => 3,
        Shape::MultiPoint => 4,
        Shape::Collection => 7,
    };
    out.extend_from_slice(&code.to_le_bytes());
    match shape {
        Shape::Point => wkb_point_body(rng, out),
        Shape::LineString => {
            let n: u32 = rng.gen_range(2..6);
            out.extend_from_slice(&n.to_le_bytes());
            for _ in 0..n {
                wkb_point_body(rng, out);
            }
        }
        Shape::Polygon => {
            let rings: u32 = rng.gen_range(1..3);
            out.extend_from_slice(&rings.to_le_bytes());
            for _ in 0..rings {
                let n: u32 = rng.gen_range(4..7);
                out.extend_from_slice(&n.to_le_bytes());
                let start = out.len();
                for _ in 0..n - 1 {
                    wkb_point_body(rng, out);
                }
                let first: Vec<u8> = out[start..start + 16].to_vec();
                out.extend_from_slice(&first);
            }
        }
        Shape::MultiPoint => {
            let n: u32 = rng.gen_range(1..5);
            out.extend_from_slice(&n.to_le_bytes());
            for _ in 0..n {
                wkb(rng, Shape::Point, depth + 1, out);
            }
        }
        Shape::Collection => {
            let n: u32 = if depth > 0 { 0 } else { rng.gen_range(0..4) };
            out.extend_from_slice(&n.to_le_bytes());
            for _ in 0..n {
                let inner = [Shape::Point, Shape::LineString, Shape::Polygon][rng.gen_range(0..3)];
                wkb(rng, inner, depth + 1, out);
            }
        }
    }
}

fn geometry(shapes: &'static [Shape]) -> Generator {
    Box::new(move |rng, _| {
        let srid = [0, 4326, 3857][rng.gen_range(0..3)];
        let shape = shapes[rng.gen_range(0..shapes.len())];
        if shape == Shape::Point && rng.gen_bool(0.3) {
            let x = f64::from(rng.gen_range(-180_000..180_000)) / 1000.0;
            let y = f64::from(rng.gen_range(-90_000..90_000)) / 1000.0;
            return format!("ST_GeomFromText('POINT({x} {y})', {srid})");
        }
        let mut bytes = Vec::new();
        wkb(rng, shape, 0, &mut bytes);
        format!("ST_GeomFromWKB(X'{}', {srid})", hex(&bytes))
    })
}

/// 16 random bytes, often with trailing (or all) zero bytes.
fn sixteen(rng: &mut StdRng) -> [u8; 16] {
    let mut bytes: [u8; 16] = rng.gen();
    match rng.gen_range(0..6) {
        0 => bytes = [0; 16],
        1 => bytes = [0xff; 16],
        2 => {
            let keep = rng.gen_range(0..16);
            bytes[keep..].iter_mut().for_each(|b| *b = 0);
        }
        _ => {}
    }
    bytes
}

fn uuid() -> Generator {
    Box::new(|rng, _| {
        let mut bytes = sixteen(rng);
        if bytes != [0xff; 16] {
            // MariaDB refuses many values of versions 8-15 (the max UUID excepted).
            bytes[6] &= 0x7f;
        }
        let h = hex(&bytes).to_ascii_lowercase();
        format!(
            "'{}-{}-{}-{}-{}'",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    })
}

fn inet6() -> Generator {
    Box::new(|rng, _| {
        if rng.gen_bool(0.15) {
            let v4: [u8; 4] = rng.gen();
            return format!("'::ffff:{}.{}.{}.{}'", v4[0], v4[1], v4[2], v4[3]);
        }
        let bytes = sixteen(rng);
        let groups: Vec<String> = bytes
            .chunks(2)
            .map(|g| format!("{:x}", u16::from_be_bytes([g[0], g[1]])))
            .collect();
        format!("'{}'", groups.join(":"))
    })
}

fn inet4() -> Generator {
    Box::new(|rng, _| {
        let mut v4: [u8; 4] = rng.gen();
        match rng.gen_range(0..5) {
            0 => v4 = [0; 4],
            1 => v4 = [255; 4],
            2 => {
                let keep = rng.gen_range(0..4);
                v4[keep..].iter_mut().for_each(|b| *b = 0);
            }
            _ => {}
        }
        format!("'{}.{}.{}.{}'", v4[0], v4[1], v4[2], v4[3])
    })
}

// ---------------------------------------------------------------------------------------------
// Tables.

struct Column {
    name: String,
    /// The column's definition in CREATE TABLE, after its name.
    ddl: String,
    /// How values are made; `None` for a generated column, which is never written.
    generate: Option<Generator>,
    /// Written as NULL now and then.
    nullable: bool,
    /// Also compared bit for bit through the binary protocol (FLOAT, DOUBLE).
    exact: bool,
}

/// A nullable column.
fn col(name: impl Into<String>, ddl: impl Into<String>, generate: Generator) -> Column {
    Column {
        name: name.into(),
        ddl: format!("{} NULL", ddl.into()),
        generate: Some(generate),
        nullable: true,
        exact: false,
    }
}

/// A column never written NULL; `ddl` says NOT NULL itself.
fn not_null(name: impl Into<String>, ddl: impl Into<String>, generate: Generator) -> Column {
    Column {
        name: name.into(),
        ddl: ddl.into(),
        generate: Some(generate),
        nullable: false,
        exact: false,
    }
}

/// A generated column: computed by the server, compared but never written.
fn computed(name: impl Into<String>, ddl: impl Into<String>) -> Column {
    Column {
        name: name.into(),
        ddl: ddl.into(),
        generate: None,
        nullable: true,
        exact: false,
    }
}

impl Column {
    /// A value for this column: sometimes NULL if it is nullable; `None` if it is generated.
    fn value(&self, rng: &mut StdRng, zone: &Zone) -> Option<String> {
        let generate = self.generate.as_ref()?;
        Some(if self.nullable {
            null_or(rng, |rng| generate(rng, zone))
        } else {
            generate(rng, zone)
        })
    }
}

struct Family {
    table: &'static str,
    /// Table options after the column list.
    options: &'static str,
    /// The writing session's sql_mode.
    sql_mode: &'static str,
    columns: Vec<Column>,
    /// A known difference that needs a fix outside the value decoders: the table is left out
    /// unless `DTLE_FIDELITY_KNOWN_GAPS=1`.
    known_gap: Option<&'static str>,
}

const STRICT: &str = "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION";

fn families() -> Vec<Family> {
    let ints = [8u32, 16, 24, 32, 64]
        .iter()
        .zip(["tinyint", "smallint", "mediumint", "int", "bigint"])
        .flat_map(|(&bits, name)| {
            [
                col(format!("{name}_s"), name, integer(bits, false)),
                col(
                    format!("{name}_u"),
                    format!("{name} UNSIGNED"),
                    integer(bits, true),
                ),
            ]
        })
        .chain([
            col("int_zerofill", "INT(8) ZEROFILL", integer(32, true)),
            col("bool_flag", "BOOLEAN", integer(8, false)),
        ])
        .collect();
    let decimals = [
        (1, 0, false),
        (1, 1, false),
        (3, 1, true),
        (5, 2, false),
        (9, 0, false),
        (9, 4, false),
        (10, 0, true),
        (10, 10, false),
        (12, 3, false),
        (18, 9, false),
        (19, 0, false),
        (20, 10, true),
        (27, 13, false),
        (38, 0, false),
        (41, 17, false),
        (65, 0, false),
        (65, 30, false),
        (65, 38, true),
    ]
    .iter()
    .map(|&(p, s, unsigned)| {
        let u = if unsigned { " UNSIGNED" } else { "" };
        col(
            format!("d{p}_{s}{}", if unsigned { "u" } else { "" }),
            format!("DECIMAL({p},{s}){u}"),
            decimal(p, s, unsigned),
        )
    })
    .collect();
    let floats = vec![
        Column {
            exact: true,
            ..col("f", "FLOAT", float_column(false))
        },
        Column {
            exact: true,
            ..col("fu", "FLOAT UNSIGNED", float_column(true))
        },
        Column {
            exact: true,
            ..col("d", "DOUBLE", double_column(false))
        },
        Column {
            exact: true,
            ..col("du", "DOUBLE UNSIGNED", double_column(true))
        },
        // With (M,D) the server rounds what is written; what it keeps must replicate as is.
        Column {
            exact: true,
            ..col("f7_3", "FLOAT(7,3)", decimal(7, 3, false))
        },
        Column {
            exact: true,
            ..col("d20_6", "DOUBLE(20,6)", decimal(20, 6, false))
        },
    ];
    let bits = [1u32, 2, 7, 8, 9, 16, 17, 31, 32, 33, 48, 63, 64]
        .iter()
        .map(|&w| col(format!("b{w}"), format!("BIT({w})"), bit(w)))
        .collect();
    let mut temporal = vec![col("y", "YEAR", year()), col("dt", "DATE", date())];
    for fsp in 0..=6 {
        temporal.push(col(format!("t{fsp}"), format!("TIME({fsp})"), time(fsp)));
    }
    for fsp in 0..=6 {
        temporal.push(col(
            format!("dt{fsp}"),
            format!("DATETIME({fsp})"),
            datetime(fsp),
        ));
    }
    for fsp in 0..=6 {
        temporal.push(col(
            format!("ts{fsp}"),
            format!("TIMESTAMP({fsp}) NULL"),
            timestamp(fsp),
        ));
    }
    let strings = |charset: Charset| -> Vec<Column> {
        let mb = match charset {
            Charset::Latin1 | Charset::Binary => 1,
            Charset::Utf8mb3 => 3,
            Charset::Utf8mb4 => 4,
        };
        let mut columns = vec![
            col("c1", "CHAR(1)", text(charset, 1, mb)),
            col("c20", "CHAR(20)", text(charset, 20, 20 * mb)),
            col("c255", "CHAR(255)", text(charset, 255, 255 * mb)),
            col("vc40", "VARCHAR(40)", text(charset, 40, 40 * mb)),
            col("vc300", "VARCHAR(300)", text(charset, 300, 300 * mb)),
            col("tt", "TINYTEXT", text(charset, 255, 255)),
            col("tx", "TEXT", text(charset, 2000, 65_535)),
            col("mt", "MEDIUMTEXT", text(charset, 3000, 1 << 24)),
            col("lt", "LONGTEXT", text(charset, 3000, 1 << 24)),
        ];
        if let Charset::Utf8mb4 = charset {
            columns.push(col(
                "vc_bin",
                "VARCHAR(40) COLLATE utf8mb4_bin",
                text(charset, 40, 160),
            ));
            columns.push(col(
                "c_unicode",
                "CHAR(10) COLLATE utf8mb4_unicode_ci",
                text(charset, 10, 40),
            ));
        }
        columns
    };
    let binaries = vec![
        col("bn1", "BINARY(1)", binary(1)),
        col("bn16", "BINARY(16)", binary(16)),
        col("bn255", "BINARY(255)", binary(255)),
        col("vb", "VARBINARY(300)", binary(300)),
        col("tb", "TINYBLOB", binary(255)),
        col("bl", "BLOB", binary(2000)),
        col("mb", "MEDIUMBLOB", binary(3000)),
        col("lb", "LONGBLOB", binary(3000)),
    ];
    let words = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>()
    };
    let quoted = |members: &[String]| -> String {
        members
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let small: Vec<String> = ["a", "b", "é", "x y", "ü"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let misc = vec![
        col("js", "JSON", json()),
        col(
            "e5",
            format!("ENUM({})", quoted(&small)),
            enumeration(small.clone()),
        ),
        col(
            "e300",
            format!("ENUM({})", quoted(&words("v", 300))),
            enumeration(words("v", 300)),
        ),
        col("s5", format!("SET({})", quoted(&small)), set(small.clone())),
        col(
            "s9",
            format!("SET({})", quoted(&words("m", 9))),
            set(words("m", 9)),
        ),
        col(
            "s64",
            format!("SET({})", quoted(&words("m", 64))),
            set(words("m", 64)),
        ),
    ];
    let spatial = vec![
        col("p", "POINT", geometry(&[Shape::Point])),
        col("ls", "LINESTRING", geometry(&[Shape::LineString])),
        col("pg", "POLYGON", geometry(&[Shape::Polygon])),
        col("mp", "MULTIPOINT", geometry(&[Shape::MultiPoint])),
        col("gc", "GEOMETRYCOLLECTION", geometry(&[Shape::Collection])),
        col(
            "g",
            "GEOMETRY",
            geometry(&[
                Shape::Point,
                Shape::LineString,
                Shape::Polygon,
                Shape::MultiPoint,
                Shape::Collection,
            ]),
        ),
    ];
    let inet = vec![
        col("u", "UUID", uuid()),
        col("i6", "INET6", inet6()),
        col("i4", "INET4", inet4()),
    ];
    let other_charsets = [
        ("u16", "VARCHAR(40) CHARACTER SET utf16", "utf16", 40),
        ("u16le", "TEXT CHARACTER SET utf16le", "utf16le", 300),
        ("u32", "VARCHAR(40) CHARACTER SET utf32", "utf32", 40),
        ("ucs2", "CHAR(10) CHARACTER SET ucs2", "ucs2", 10),
        ("gbk", "VARCHAR(40) CHARACTER SET gbk", "gbk", 40),
        ("sjis", "VARCHAR(40) CHARACTER SET sjis", "sjis", 40),
        ("cp1251", "CHAR(20) CHARACTER SET cp1251", "cp1251", 20),
        ("ascii", "VARCHAR(40) CHARACTER SET ascii", "ascii", 40),
    ]
    .iter()
    .map(|&(name, ddl, charset, max)| col(name, ddl, converted(charset, max)))
    .collect();
    // Column attributes: NOT NULL with defaults, INVISIBLE, generated columns (VIRTUAL and
    // STORED), ON UPDATE CURRENT_TIMESTAMP, ZEROFILL.
    let attributes = vec![
        not_null("nn_int", "INT NOT NULL DEFAULT 0", integer(32, false)),
        not_null(
            "nn_vc",
            "VARCHAR(20) NOT NULL DEFAULT ''",
            text(Charset::Utf8mb4, 20, 80),
        ),
        not_null(
            "nn_dt",
            "DATETIME(6) NOT NULL DEFAULT '2000-01-01 00:00:00'",
            datetime(6),
        ),
        Column {
            ddl: "BIGINT NULL INVISIBLE".into(),
            ..col("inv", "", integer(64, false))
        },
        computed("gen_v", "BIGINT AS (nn_int * 2) VIRTUAL"),
        computed(
            "gen_s",
            "VARCHAR(100) AS (CONCAT(nn_vc, '|', nn_int, '|', nn_dt)) STORED",
        ),
        computed(
            "ts_upd",
            "TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)",
        ),
        col(
            "dec_zf",
            "DECIMAL(10,2) UNSIGNED ZEROFILL",
            decimal(10, 2, true),
        ),
    ];
    let mb4_members: Vec<String> = ["a", "😀", "𝄞 clef"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let enum_mb4 = vec![
        col(
            "e",
            format!("ENUM({})", quoted(&mb4_members)),
            enumeration(mb4_members.clone()),
        ),
        col(
            "s",
            format!("SET({})", quoted(&mb4_members)),
            set(mb4_members.clone()),
        ),
    ];
    let compressed = vec![
        col(
            "vc",
            "VARCHAR(300) COMPRESSED",
            text(Charset::Utf8mb4, 300, 1200),
        ),
        col("bl", "BLOB COMPRESSED", binary(2000)),
        col("tx", "TEXT COMPRESSED", text(Charset::Latin1, 2000, 65_535)),
    ];
    let family = |table, options, sql_mode, columns| Family {
        table,
        options,
        sql_mode,
        columns,
        known_gap: None,
    };
    vec![
        family("fid_ints", "", STRICT, ints),
        family("fid_decimals", "", STRICT, decimals),
        family("fid_floats", "", STRICT, floats),
        family("fid_bits", "", STRICT, bits),
        family("fid_temporal", "", STRICT, temporal),
        family(
            "fid_str_latin1",
            "DEFAULT CHARSET=latin1",
            STRICT,
            strings(Charset::Latin1),
        ),
        family(
            "fid_str_utf8mb3",
            "DEFAULT CHARSET=utf8mb3",
            STRICT,
            strings(Charset::Utf8mb3),
        ),
        family(
            "fid_str_utf8mb4",
            "DEFAULT CHARSET=utf8mb4",
            STRICT,
            strings(Charset::Utf8mb4),
        ),
        family(
            "fid_str_binary",
            "DEFAULT CHARSET=binary",
            STRICT,
            strings(Charset::Binary),
        ),
        family("fid_binary", "", STRICT, binaries),
        // Not strict: ENUM's empty value '' (index 0) can only be written that way.
        family("fid_misc", "DEFAULT CHARSET=utf8mb4", "", misc),
        family("fid_spatial", "", STRICT, spatial),
        family("fid_inet", "", STRICT, inet),
        // Not strict: what a character set lacks is written as '?'.
        family("fid_str_other", "", "", other_charsets),
        family(
            "fid_attributes",
            "DEFAULT CHARSET=utf8mb4",
            STRICT,
            attributes,
        ),
        // MariaDB prints these members as '?'; the snapshot reads the real ones.
        family("fid_enum_mb4", "DEFAULT CHARSET=utf8mb4", "", enum_mb4),
        Family {
            known_gap: Some(
                "COMPRESSED columns: mysql_common cannot parse their binlog types (140, 141); \
                 the job refuses such a table with a definite error naming the column",
            ),
            ..family("fid_compressed", "", STRICT, compressed)
        },
    ]
}

impl Family {
    fn create(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("`{}` {}", c.name, c.ddl))
            .collect();
        format!(
            "CREATE TABLE `{SCHEMA}`.`{}` (id INT NOT NULL PRIMARY KEY, {}) ENGINE=InnoDB {}",
            self.table,
            columns.join(", "),
            self.options
        )
    }

    /// The columns statements write (all but generated ones).
    fn written(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.generate.is_some())
    }

    fn column_list(&self) -> String {
        let names: Vec<String> = self.written().map(|c| format!("`{}`", c.name)).collect();
        format!("id, {}", names.join(", "))
    }

    fn row(&self, rng: &mut StdRng, zone: &Zone, id: i64) -> String {
        let values: Vec<String> = self
            .columns
            .iter()
            .filter_map(|c| c.value(rng, zone))
            .collect();
        format!("({id}, {})", values.join(", "))
    }

    /// A statement's session prefix: its zone and sql_mode.
    fn session(&self, zone: &Zone) -> String {
        format!(
            "SET SESSION time_zone = '{}', SESSION sql_mode = '{}';\n",
            zone.sql(),
            self.sql_mode
        )
    }

    /// `INSERT` of `ids` (or, with `upsert`, every column of those rows replaced).
    fn insert(&self, rng: &mut StdRng, zone: &Zone, ids: &[i64], upsert: bool) -> String {
        let rows: Vec<String> = ids.iter().map(|&id| self.row(rng, zone, id)).collect();
        let mut sql = format!(
            "{}INSERT INTO `{SCHEMA}`.`{}` ({}) VALUES {}",
            self.session(zone),
            self.table,
            self.column_list(),
            rows.join(",\n")
        );
        if upsert {
            let sets: Vec<String> = self
                .written()
                .map(|c| format!("`{0}` = VALUES(`{0}`)", c.name))
                .collect();
            let _ = write!(sql, " ON DUPLICATE KEY UPDATE {}", sets.join(", "));
        }
        sql
    }

    /// One transaction of `UPDATE`s, each setting a few random columns of one row.
    fn partial_updates(&self, rng: &mut StdRng, zone: &Zone, ids: &[i64]) -> String {
        let mut sql = format!("{}START TRANSACTION;\n", self.session(zone));
        let written: Vec<&Column> = self.written().collect();
        for &id in ids {
            let n = rng.gen_range(1..=3.min(written.len()));
            let mut sets = Vec::new();
            for _ in 0..n {
                let c = written[rng.gen_range(0..written.len())];
                if let Some(value) = c.value(rng, zone) {
                    sets.push(format!("`{}` = {value}", c.name));
                }
            }
            let _ = writeln!(
                sql,
                "UPDATE `{SCHEMA}`.`{}` SET {} WHERE id = {id};",
                self.table,
                sets.join(", ")
            );
        }
        sql.push_str("COMMIT");
        sql
    }

    /// `(label, expression)` of everything compared, after the id.
    fn compared(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in &self.columns {
            out.push((c.name.clone(), format!("HEX(CAST(`{}` AS BINARY))", c.name)));
            if c.exact {
                out.push((format!("{} (bits)", c.name), format!("`{}`", c.name)));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

struct Writer {
    conn: Conn,
    rng: StdRng,
    zones: Vec<Zone>,
    seed: u64,
}

impl Writer {
    fn zone(&mut self) -> Zone {
        self.zones[self.rng.gen_range(0..self.zones.len())].clone()
    }

    async fn run(&mut self, sql: &str) {
        if let Err(e) = self.conn.query_drop(sql).await {
            let mut shown = sql.to_owned();
            shown.truncate(2000);
            panic!(
                "seed {}: the source refused a write: {e}\n{shown}",
                self.seed
            );
        }
    }

    async fn insert(&mut self, family: &Family, ids: &[i64], upsert: bool) {
        for chunk in ids.chunks(BATCH) {
            let zone = self.zone();
            let sql = family.insert(&mut self.rng, &zone, chunk, upsert);
            self.run(&sql).await;
        }
    }
}

/// Picks `n` distinct ids from `from` at random.
fn sample(rng: &mut StdRng, from: &BTreeSet<i64>, n: usize) -> Vec<i64> {
    let all: Vec<i64> = from.iter().copied().collect();
    let mut chosen = BTreeSet::new();
    while chosen.len() < n.min(all.len()) {
        chosen.insert(all[rng.gen_range(0..all.len())]);
    }
    chosen.into_iter().collect()
}

/// The binlog phase for one table: rounds of inserts, whole-row updates of snapshot rows and
/// of binlog rows, partial updates, key changes and deletes.
async fn binlog_writes(w: &mut Writer, family: &Family, rows: usize) {
    let snapshot_ids: BTreeSet<i64> = (1..=rows as i64).collect();
    let mut live = snapshot_ids.clone();
    let mut binlog_ids = BTreeSet::new();
    let mut next = rows as i64 + 1;
    let mut inserted = 0;
    while inserted < rows {
        let n = BATCH.min(rows - inserted);
        let ids: Vec<i64> = (next..next + n as i64).collect();
        next += n as i64;
        inserted += n;
        w.insert(family, &ids, false).await;
        live.extend(&ids);
        binlog_ids.extend(&ids);

        let old: BTreeSet<i64> = live.intersection(&snapshot_ids).copied().collect();
        let new: BTreeSet<i64> = live.intersection(&binlog_ids).copied().collect();
        let mut update = sample(&mut w.rng, &old, n / 4);
        update.extend(sample(&mut w.rng, &new, n / 4));
        w.insert(family, &update, true).await;

        let partial = sample(&mut w.rng, &live, n / 5);
        let zone = w.zone();
        let sql = family.partial_updates(&mut w.rng, &zone, &partial);
        w.run(&sql).await;

        // A few keys change (the row moves to a new id).
        for id in sample(&mut w.rng, &live, 2) {
            let moved = next;
            next += 1;
            w.run(&format!(
                "UPDATE `{SCHEMA}`.`{}` SET id = {moved} WHERE id = {id}",
                family.table
            ))
            .await;
            live.remove(&id);
            live.insert(moved);
            binlog_ids.remove(&id);
            binlog_ids.insert(moved);
        }

        let gone = sample(&mut w.rng, &live, n / 10);
        if !gone.is_empty() {
            let list: Vec<String> = gone.iter().map(i64::to_string).collect();
            w.run(&format!(
                "DELETE FROM `{SCHEMA}`.`{}` WHERE id IN ({})",
                family.table,
                list.join(", ")
            ))
            .await;
            for id in gone {
                live.remove(&id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// A value read for comparison, printable.
fn shown(value: My) -> String {
    match value {
        My::NULL => "NULL".to_owned(),
        My::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        My::Float(f) => format!("float {:08x} ({f:e})", f.to_bits()),
        My::Double(d) => format!("double {:016x} ({d:e})", d.to_bits()),
        other => format!("{other:?}"),
    }
}

/// Every compared value of every row, in id order (binary protocol, so floats arrive exactly).
async fn read_rows(conn: &mut Conn, family: &Family) -> Result<Vec<(i64, Vec<String>)>, String> {
    let exprs: Vec<String> = family.compared().into_iter().map(|(_, e)| e).collect();
    let sql = format!(
        "SELECT id, {} FROM `{SCHEMA}`.`{}` ORDER BY id",
        exprs.join(", "),
        family.table
    );
    let rows: Vec<Row> = conn.exec(sql, ()).await.map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|row| {
            let mut values = row.unwrap().into_iter();
            match values.next() {
                Some(My::Int(id)) => Ok((id, values.map(shown).collect())),
                other => Err(format!("unexpected id {other:?}")),
            }
        })
        .collect()
}

/// A cheap digest of a table (row count and a sum of row checksums), to wait on.
async fn digest(conn: &mut Conn, family: &Family) -> Option<(u64, String)> {
    let exprs: Vec<String> = family
        .compared()
        .into_iter()
        .filter(|(label, _)| !label.ends_with("(bits)"))
        .map(|(_, e)| format!("IFNULL({e}, '~')"))
        .collect();
    let sql = format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, {}))), 0) AS CHAR) FROM `{SCHEMA}`.`{}`",
        exprs.join(", "),
        family.table
    );
    conn.query_first(sql).await.ok().flatten()
}

/// The first difference between source and target in `family`'s table, described.
async fn first_difference(src: &mut Conn, dst: &mut Conn, family: &Family) -> Option<String> {
    let labels: Vec<String> = family.compared().into_iter().map(|(l, _)| l).collect();
    let a = match read_rows(src, family).await {
        Ok(rows) => rows,
        Err(e) => return Some(format!("reading the source: {e}")),
    };
    let b = match read_rows(dst, family).await {
        Ok(rows) => rows,
        Err(e) => return Some(format!("reading the target: {e}")),
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some((ida, _)), Some((idb, _))) if ida < idb => {
                return Some(format!("row id={ida} is on the source only"));
            }
            (Some((ida, _)), Some((idb, _))) if ida > idb => {
                return Some(format!("row id={idb} is on the target only"));
            }
            (Some((id, va)), Some((_, vb))) => {
                for (k, (x, y)) in va.iter().zip(vb).enumerate() {
                    if x != y {
                        return Some(format!(
                            "row id={id}, column `{}`: source {x}, target {y}",
                            labels[k]
                        ));
                    }
                }
            }
            (Some((id, _)), None) => return Some(format!("row id={id} is on the source only")),
            (None, Some((id, _))) => return Some(format!("row id={id} is on the target only")),
            (None, None) => break,
        }
        i += 1;
        j += 1;
    }
    None
}

fn log_tail(task: &Task) -> String {
    let log = task.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// How long the target may stay unchanged, yet different, before the wait gives up.
const STUCK: Duration = Duration::from_secs(60);

/// Waits until every table's digest agrees on both sides (or `timeout` passes, or the target
/// stops changing), then compares every row; panics naming the first difference.
async fn compare_all(
    phase: &str,
    families: &[Family],
    timeout: Duration,
    seed: u64,
    mut tasks: [&mut Task; 2],
) {
    let started = Instant::now();
    let mut src = connect(SRC_PORT).await;
    let mut dst = connect(DST_PORT).await;
    let mut stopped = None;
    let mut waited = String::new();
    // The source no longer changes.
    let mut expected = Vec::new();
    for family in families {
        expected.push(digest(&mut src, family).await);
    }
    let mut last: Option<Vec<_>> = None;
    let mut last_change = Instant::now();
    loop {
        for task in tasks.iter_mut() {
            if stopped.is_none() && !task.is_running() {
                stopped = Some(format!("a task exited early: {}", task.log.display()));
            }
        }
        if stopped.is_some() {
            break;
        }
        let mut target = Vec::new();
        for family in families {
            target.push(digest(&mut dst, family).await);
        }
        if target == expected {
            break;
        }
        if last.as_ref() != Some(&target) {
            last = Some(target);
            last_change = Instant::now();
        }
        if started.elapsed() > timeout {
            waited = format!("still different after {timeout:?}");
            break;
        }
        if last_change.elapsed() > STUCK {
            waited = format!("the target stopped changing for {STUCK:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let caught_up = started.elapsed();
    let fail = |what: String| -> ! {
        panic!(
            "seed {seed} ({phase} phase): {what}\n{waited}\n\
             replay: DTLE_FIDELITY_SEED={seed} cargo test --test fidelity -- --nocapture\n\
             src log:\n{}\ndest log:\n{}",
            log_tail(&*tasks[0]),
            log_tail(&*tasks[1])
        )
    };
    if let Some(why) = stopped {
        fail(why);
    }
    for family in families {
        if let Some(diff) = first_difference(&mut src, &mut dst, family).await {
            fail(format!("{SCHEMA}.{}: {diff}", family.table));
        }
    }
    println!("{phase} phase: target equal after {caught_up:.1?}");
}

/// Edge cases the generators must have written (so that a change to them cannot quietly make
/// the test weaker): table, condition, what it is.
fn coverage(rows: usize) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "fid_temporal",
            format!("id > {rows} AND t2 < 0 AND MICROSECOND(t2) > 0"),
            "negative TIME(2) values with a fraction inserted through the binlog",
        ),
        (
            "fid_temporal",
            "t1 < '-625:00:00' AND MICROSECOND(t1) > 0".to_owned(),
            "TIME(1) values below -625 h with a fraction",
        ),
        (
            "fid_temporal",
            "ts3 = '0000-00-00 00:00:00'".to_owned(),
            "zero TIMESTAMPs",
        ),
        (
            "fid_temporal",
            "MONTH(dt) = 0 AND YEAR(dt) > 0".to_owned(),
            "DATEs with a zero month",
        ),
        ("fid_misc", "e5 = ''".to_owned(), "the empty ENUM value"),
        (
            "fid_misc",
            "FIND_IN_SET('m63', s64) > 0".to_owned(),
            "SETs with their 64th member",
        ),
        (
            "fid_binary",
            "RIGHT(bn16, 1) = X'00' AND LEFT(bn16, 1) <> X'00'".to_owned(),
            "BINARY(16) values with trailing NULs",
        ),
        (
            "fid_floats",
            "d <> 0 AND ABS(d) < 2.2250738585072014e-308".to_owned(),
            "subnormal DOUBLEs",
        ),
        (
            "fid_decimals",
            "d65_30 < 0".to_owned(),
            "negative DECIMAL(65,30) values",
        ),
    ]
}

async fn row_count(family: &Family) -> u64 {
    first_value(
        SRC_PORT,
        &format!("SELECT COUNT(*) FROM `{SCHEMA}`.`{}`", family.table),
    )
    .await
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn random_values_of_every_type_survive_snapshot_and_binlog() {
    let seed: u64 = match std::env::var("DTLE_FIDELITY_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DTLE_FIDELITY_SEED={s:?} is not a u64")),
        Err(_) => rand::random(),
    };
    let rows: usize = match std::env::var("DTLE_FIDELITY_ROWS") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DTLE_FIDELITY_ROWS={s:?} is not a number")),
        Err(_) => DEFAULT_ROWS,
    };
    println!(
        "fidelity seed {seed}, {rows} rows per table and phase (replay: DTLE_FIDELITY_SEED={seed})"
    );
    let started = Instant::now();

    let with_gaps = std::env::var("DTLE_FIDELITY_KNOWN_GAPS").is_ok_and(|v| v == "1");
    let families: Vec<Family> = families()
        .into_iter()
        .filter(|f| match f.known_gap {
            Some(gap) if !with_gaps => {
                println!(
                    "left out (known gap; DTLE_FIDELITY_KNOWN_GAPS=1 includes it): {}: {gap}",
                    f.table
                );
                false
            }
            _ => true,
        })
        .collect();
    reset(SCHEMA, JOB).await;
    let mut zones = offset_zones();
    let named: Option<u64> = first_value(
        SRC_PORT,
        "SELECT COUNT(*) FROM mysql.time_zone_name WHERE Name = 'America/New_York'",
    )
    .await;
    if named.unwrap_or(0) > 0 {
        zones.push(Zone::Named("America/New_York"));
    }
    println!(
        "session time zones: {}",
        zones.iter().map(Zone::sql).collect::<Vec<_>>().join(", ")
    );
    let mut w = Writer {
        conn: connect(SRC_PORT).await,
        rng: StdRng::seed_from_u64(seed),
        zones,
        seed,
    };
    for family in &families {
        w.run(&family.create()).await;
    }

    // Snapshot phase.
    for family in &families {
        let ids: Vec<i64> = (1..=rows as i64).collect();
        w.insert(family, &ids, false).await;
    }
    println!("snapshot rows written after {:.1?}", started.elapsed());
    let file = write_job(JOB, &job_json(JOB, SCHEMA, ""));
    let mut dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    let timeout = Duration::from_secs(120 + rows as u64 / 10);
    compare_all("snapshot", &families, timeout, seed, [&mut src, &mut dest]).await;
    println!("snapshot phase compared after {:.1?}", started.elapsed());

    // Binlog phase.
    for family in &families {
        binlog_writes(&mut w, family, rows).await;
    }
    println!("binlog rows written after {:.1?}", started.elapsed());
    compare_all("binlog", &families, timeout, seed, [&mut src, &mut dest]).await;
    let mut total = 0;
    for family in &families {
        total += row_count(family).await;
    }
    let mut covered = Vec::new();
    for (table, condition, what) in coverage(rows) {
        let sql = format!("SELECT COUNT(*) FROM `{SCHEMA}`.`{table}` WHERE {condition}");
        let n: u64 = first_value(SRC_PORT, &sql).await.unwrap_or(0);
        // Small runs may miss one by chance; the default size never does.
        assert!(
            n > 0 || rows < 500,
            "seed {seed}: the generators wrote no {what} ({sql})"
        );
        covered.push(format!("{n} {what}"));
    }
    println!("among them: {}", covered.join(", "));
    println!(
        "seed {seed}: {} tables, {total} rows equal on both sides after {:.1?}",
        families.len(),
        started.elapsed()
    );
}
