//! From the server's representation of a column value to the change model's exact [`Value`].
//!
//! Two paths, one result: [`from_binlog`] for row events and [`from_snapshot`] for rows read with
//! the binary protocol during the snapshot. mysql_common's binlog decoder is worked around here
//! (facts measured against MariaDB 10.11, see ../shared/notes/mariadb-binlog.md):
//! signed MEDIUMINT is not sign-extended; YEAR 0 arrives as "1900"; fixed binary strings lose their
//! trailing zero bytes; TIMESTAMP arrives as an epoch string; SET as little-endian bitmask bytes;
//! BIT as big-endian bytes; a negative TIME(1) or TIME(2) with a fraction arrives 625 hours off
//! (repaired by `binlog_time`).

use crate::change::civil::days_from_civil;
use crate::change::Value;
use crate::extractor::schema::{ColumnKind, ColumnSchema};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as My;

/// A value the decoder cannot make sense of: the stream is not what the schema says.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: cannot decode {found} as {kind:?}")]
pub struct DecodeError {
    /// The column.
    pub column: String,
    /// What the column is.
    pub kind: ColumnKind,
    /// What arrived.
    pub found: String,
}

fn bad(column: &ColumnSchema, found: impl std::fmt::Debug) -> DecodeError {
    let mut found = format!("{found:?}");
    found.truncate(80);
    DecodeError {
        column: column.name.clone(),
        kind: column.kind,
        found,
    }
}

/// Decodes one binlog value of `column`.
///
/// # Errors
/// [`DecodeError`] when the value does not fit the column.
pub fn from_binlog(column: &ColumnSchema, value: BinlogValue<'_>) -> Result<Value, DecodeError> {
    let value = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(jsonb) => {
            // MySQL's binary JSON; MariaDB's JSON is text and arrives as bytes.
            let json = serde_json::Value::try_from(jsonb).map_err(|e| bad(column, e))?;
            return Ok(Value::Bytes(json.to_string().into_bytes()));
        }
        BinlogValue::JsonDiff(_) => {
            return Err(bad(
                column,
                "a partial JSON update (set binlog_row_value_options='' on the source)",
            ))
        }
    };
    if matches!(value, My::NULL) {
        return Ok(Value::Null);
    }
    match (column.kind, value) {
        (ColumnKind::Int(bits), My::Int(n)) => Ok(integer(column, bits, n)),
        (ColumnKind::Int(_), My::UInt(n)) => Ok(Value::UInt(n)),
        (ColumnKind::Year, My::Bytes(text)) => {
            let year: u64 = parse_ascii(&text).ok_or_else(|| bad(column, &text))?;
            Ok(Value::UInt(if year == 1900 { 0 } else { year }))
        }
        (ColumnKind::Timestamp, My::Bytes(text)) => epoch_text(column, &text),
        (ColumnKind::Timestamp, My::Int(secs)) => Ok(Value::Timestamp {
            secs: u64::try_from(secs).map_err(|_| bad(column, secs))?,
            micros: 0,
        }),
        (ColumnKind::Enum, My::Int(index)) => Ok(Value::UInt(
            u64::try_from(index).map_err(|_| bad(column, index))?,
        )),
        (ColumnKind::Set, My::Bytes(bytes)) => Ok(Value::UInt(little_endian(&bytes))),
        (ColumnKind::Bit, My::Bytes(bytes)) => Ok(Value::UInt(big_endian(&bytes))),
        (ColumnKind::Time(fsp), My::Time(negative, days, hours, minutes, seconds, micros)) => {
            binlog_time(
                fsp,
                negative,
                days * 24 + u32::from(hours),
                minutes,
                seconds,
                micros,
            )
            .ok_or_else(|| {
                bad(
                    column,
                    My::Time(negative, days, hours, minutes, seconds, micros),
                )
            })
        }
        (ColumnKind::FixedBinary(len), My::Bytes(mut bytes)) => {
            if bytes.len() < len {
                bytes.resize(len, 0);
            }
            Ok(Value::Bytes(bytes))
        }
        (_, value) => common(column, value),
    }
}

/// Converts one snapshot value of `column` (binary protocol). ENUM and SET columns must be
/// selected as numbers (`col + 0`), TIMESTAMP in a UTC session.
///
/// # Errors
/// [`DecodeError`] when the value does not fit the column.
pub fn from_snapshot(column: &ColumnSchema, value: My) -> Result<Value, DecodeError> {
    if matches!(value, My::NULL) {
        return Ok(Value::Null);
    }
    match (column.kind, value) {
        (ColumnKind::Int(bits), My::Int(n)) => Ok(integer(column, bits, n)),
        (ColumnKind::Int(_), My::UInt(n)) => Ok(Value::UInt(n)),
        // `set + 0` is a signed BIGINT: a SET with a 64th member set reads as negative.
        (ColumnKind::Set, My::Int(n)) => Ok(Value::UInt(n as u64)),
        (ColumnKind::Year | ColumnKind::Enum, My::Int(n)) => {
            Ok(Value::UInt(u64::try_from(n).map_err(|_| bad(column, n))?))
        }
        (ColumnKind::Year | ColumnKind::Enum | ColumnKind::Set, My::UInt(n)) => Ok(Value::UInt(n)),
        (ColumnKind::Year | ColumnKind::Enum | ColumnKind::Set, My::Bytes(text)) => Ok(
            Value::UInt(parse_ascii(&text).ok_or_else(|| bad(column, &text))?),
        ),
        (ColumnKind::Bit, My::Bytes(bytes)) => Ok(Value::UInt(big_endian(&bytes))),
        (ColumnKind::Timestamp, My::Date(year, month, day, hour, minute, second, micros)) => Ok(
            timestamp_from_utc(year, month, day, hour, minute, second, micros),
        ),
        (_, value) => common(column, value),
    }
}

/// What both paths decode the same way.
fn common(column: &ColumnSchema, value: My) -> Result<Value, DecodeError> {
    match (column.kind, value) {
        (ColumnKind::Float, My::Float(f)) => Ok(Value::Float(f)),
        (ColumnKind::Float, My::Double(d)) => Ok(Value::Float(d as f32)),
        (ColumnKind::Double, My::Double(d)) => Ok(Value::Double(d)),
        (ColumnKind::Decimal, My::Bytes(text)) => String::from_utf8(text)
            .map(Value::Decimal)
            .map_err(|e| bad(column, e)),
        (ColumnKind::Date, My::Date(year, month, day, ..)) => Ok(Value::Date { year, month, day }),
        (ColumnKind::DateTime, My::Date(year, month, day, hour, minute, second, micros)) => {
            Ok(Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            })
        }
        (ColumnKind::Time(_), My::Time(negative, days, hours, minutes, seconds, micros)) => {
            Ok(Value::Time {
                negative,
                hours: days * 24 + u32::from(hours),
                minutes,
                seconds,
                micros,
            })
        }
        (ColumnKind::Bytes | ColumnKind::FixedBinary(_), My::Bytes(bytes)) => {
            Ok(Value::Bytes(bytes))
        }
        (_, value) => Err(bad(column, value)),
    }
}

/// What mysql_common 0.37 adds to the packed value of a negative TIME(1)/TIME(2) with a
/// fraction: it borrows 0x100 from the fraction byte in a `u32`, which wraps to 2^32, times
/// 10,000 µs = 625 << 36, i.e. 625 hours in the packed layout (hours << 36 | minutes << 30 |
/// seconds << 24 | microseconds).
const TIME2_WRAP: i64 = 625 << 36;

/// A binlog TIME of a column with `fsp` fractional digits, as mysql_common decoded it into
/// (sign, hours, minutes, seconds, microseconds), repaired where mysql_common is wrong.
///
/// MariaDB stores TIME2 as the packed value `±(hms << 24 | µs)` (hms = h << 12 | m << 6 | s)
/// offset by 0x800000 in 3 bytes, plus `fsp` digits in 0-3 bytes. With 1 or 2 digits a negative
/// value with a fraction is stored with a borrow: integer part minus one, fraction byte
/// `0x100 - centiseconds`. mysql_common undoes the borrow in an unsigned `u32`, which wraps, so
/// every such value arrives [`TIME2_WRAP`] too large (release builds; debug builds of
/// mysql_common panic on the overflow instead). What arrives is either
/// - still negative (the value was below -625 h): 625 hours short, with a valid fraction — and a
///   correctly decoded negative TIME(1|2) never has a fraction, so this cannot be a real value;
/// - or positive, `TIME2_WRAP - |value|`, whose microseconds are then `2^24 - µs` ≥ 1,000,000,
///   which no real value has.
///
/// Both are undone exactly. `None` when the value is impossible for the column.
fn binlog_time(
    fsp: u8,
    negative: bool,
    hours: u32,
    minutes: u8,
    seconds: u8,
    micros: u32,
) -> Option<Value> {
    let time = |negative, hours: u32, minutes, seconds, micros| {
        (hours <= 838 && minutes < 60 && seconds < 60 && micros < 1_000_000).then_some(
            Value::Time {
                negative,
                hours,
                minutes,
                seconds,
                micros,
            },
        )
    };
    if !matches!(fsp, 1 | 2) {
        return time(negative, hours, minutes, seconds, micros);
    }
    if micros >= 1_000_000 {
        if negative || micros >= 1 << 24 {
            return None;
        }
        let hms = i64::from(hours) << 12 | i64::from(minutes) << 6 | i64::from(seconds);
        let magnitude = TIME2_WRAP - (hms << 24 | i64::from(micros));
        if magnitude <= 0 {
            return None;
        }
        let hms = magnitude >> 24;
        return time(
            true,
            u32::try_from(hms >> 12).ok()?,
            (hms >> 6 & 63) as u8,
            (hms & 63) as u8,
            (magnitude & 0xff_ffff) as u32,
        );
    }
    if negative && micros != 0 {
        return time(true, hours + 625, minutes, seconds, micros);
    }
    time(negative, hours, minutes, seconds, micros)
}

/// An integer of a `bits`-wide column; fixes signed MEDIUMINT, which arrives unextended.
fn integer(column: &ColumnSchema, bits: u8, n: i64) -> Value {
    if column.unsigned {
        return Value::UInt(n as u64);
    }
    if bits == 24 && n >= 1 << 23 {
        return Value::Int(n - (1 << 24));
    }
    Value::Int(n)
}

fn parse_ascii<T: std::str::FromStr>(text: &[u8]) -> Option<T> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// `"1704110400"` or `"2147483647.999000"`.
fn epoch_text(column: &ColumnSchema, text: &[u8]) -> Result<Value, DecodeError> {
    let s = std::str::from_utf8(text).map_err(|_| bad(column, text))?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().map_err(|_| bad(column, s))?;
    let micros = if frac.is_empty() {
        0
    } else {
        let mut digits = frac.to_owned();
        digits.truncate(6);
        while digits.len() < 6 {
            digits.push('0');
        }
        digits.parse().map_err(|_| bad(column, s))?
    };
    Ok(Value::Timestamp { secs, micros })
}

fn big_endian(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn little_endian(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A TIMESTAMP read as a UTC date and time; `0000-00-00 00:00:00` is the zero timestamp.
fn timestamp_from_utc(
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
) -> Value {
    if year == 0 && month == 0 && day == 0 {
        return Value::Timestamp { secs: 0, micros };
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Value::Timestamp {
        secs: u64::try_from(secs).unwrap_or(0),
        micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn col(kind: ColumnKind, unsigned: bool) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            kind,
            unsigned,
            nullable: true,
            collation: None,
        }
    }

    #[test]
    fn binlog_workarounds() {
        let mediumint = col(ColumnKind::Int(24), false);
        assert_eq!(
            from_binlog(&mediumint, BinlogValue::Value(My::Int(16_777_215))).unwrap(),
            Value::Int(-1)
        );
        assert_eq!(
            from_binlog(&mediumint, BinlogValue::Value(My::Int(8_388_607))).unwrap(),
            Value::Int(8_388_607)
        );
        let year = col(ColumnKind::Year, false);
        assert_eq!(
            from_binlog(&year, BinlogValue::Value(My::Bytes(b"1900".to_vec()))).unwrap(),
            Value::UInt(0)
        );
        assert_eq!(
            from_binlog(&year, BinlogValue::Value(My::Bytes(b"2155".to_vec()))).unwrap(),
            Value::UInt(2155)
        );
        let binary = col(ColumnKind::FixedBinary(4), false);
        assert_eq!(
            from_binlog(&binary, BinlogValue::Value(My::Bytes(vec![1]))).unwrap(),
            Value::Bytes(vec![1, 0, 0, 0])
        );
        let ts = col(ColumnKind::Timestamp, false);
        assert_eq!(
            from_binlog(
                &ts,
                BinlogValue::Value(My::Bytes(b"2147483647.999".to_vec()))
            )
            .unwrap(),
            Value::Timestamp {
                secs: 2_147_483_647,
                micros: 999_000
            }
        );
        let set = col(ColumnKind::Set, false);
        assert_eq!(
            from_binlog(&set, BinlogValue::Value(My::Bytes(vec![0x05, 0x01]))).unwrap(),
            Value::UInt(0x0105)
        );
        let bit = col(ColumnKind::Bit, false);
        assert_eq!(
            from_binlog(&bit, BinlogValue::Value(My::Bytes(vec![0x01, 0x02]))).unwrap(),
            Value::UInt(0x0102)
        );
        let time = col(ColumnKind::Time(0), false);
        assert_eq!(
            from_binlog(&time, BinlogValue::Value(My::Time(true, 34, 22, 59, 59, 5))).unwrap(),
            Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 5
            }
        );
    }

    #[test]
    fn snapshot_sets_keep_their_64th_member() {
        let set = col(ColumnKind::Set, false);
        assert_eq!(
            from_snapshot(&set, My::Int(i64::MIN)).unwrap(),
            Value::UInt(1 << 63)
        );
        assert_eq!(
            from_snapshot(&set, My::Int(-1)).unwrap(),
            Value::UInt(u64::MAX)
        );
        assert_eq!(from_snapshot(&set, My::Int(5)).unwrap(), Value::UInt(5));
        let en = col(ColumnKind::Enum, false);
        assert!(from_snapshot(&en, My::Int(-1)).is_err());
    }

    #[test]
    fn snapshot_timestamps_are_utc_epochs() {
        let ts = col(ColumnKind::Timestamp, false);
        assert_eq!(
            from_snapshot(&ts, My::Date(2024, 1, 1, 12, 0, 0, 0)).unwrap(),
            Value::Timestamp {
                secs: 1_704_110_400,
                micros: 0
            }
        );
        assert_eq!(
            from_snapshot(&ts, My::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(),
            Value::Timestamp { secs: 0, micros: 0 }
        );
    }

    /// MariaDB's TIME2 bytes of a value (`my_time_packed_to_binary`): the packed value
    /// `±(hms << 24 | µs)`, its integer part offset by 0x800000 in 3 bytes, then the fraction.
    fn time2_bytes(
        fsp: u8,
        negative: bool,
        hours: u32,
        minutes: u8,
        seconds: u8,
        micros: u32,
    ) -> Vec<u8> {
        let hms = i64::from(hours) << 12 | i64::from(minutes) << 6 | i64::from(seconds);
        let packed = if negative {
            -(hms << 24 | i64::from(micros))
        } else {
            hms << 24 | i64::from(micros)
        };
        if fsp >= 5 {
            return ((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..].to_vec();
        }
        // The integer part rounds down and the fraction keeps the sign (C's `>>` and `%`):
        // a negative value with a fraction is stored with a borrow.
        let mut out = (((packed >> 24) + 0x80_0000) as u32).to_be_bytes()[1..].to_vec();
        let frac = packed % (1 << 24);
        match fsp {
            1 | 2 => out.push((frac / 10_000) as i8 as u8),
            3 | 4 => out.extend_from_slice(&((frac / 100) as i16).to_be_bytes()),
            _ => {}
        }
        out
    }

    /// A model of mysql_common 0.37.3's TIME2 decoding (`my_time_packed_from_binary` then
    /// `time_from_packed`) as a release build runs it: the borrow of TIME(1|2) wraps in a u32.
    fn mysql_common_time2(fsp: u8, bytes: &[u8]) -> My {
        let int_part = i64::from(u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]])) - 0x80_0000;
        let packed = match fsp {
            1 | 2 => {
                let (mut int_part, mut frac) = (int_part, u32::from(bytes[3]));
                if int_part < 0 && frac > 0 {
                    int_part += 1;
                    frac = frac.wrapping_sub(0x100);
                }
                (int_part << 24) + i64::from(frac) * 10_000
            }
            3 | 4 => {
                let (mut int_part, mut frac) = (
                    int_part,
                    i32::from(u16::from_be_bytes([bytes[3], bytes[4]])),
                );
                if int_part < 0 && frac > 0 {
                    int_part += 1;
                    frac -= 0x10000;
                }
                (int_part << 24) + i64::from(frac * 100)
            }
            5 | 6 => {
                let mut wide = [0u8; 8];
                wide[2..].copy_from_slice(&bytes[..6]);
                i64::from_be_bytes(wide) - 0x8000_0000_0000
            }
            _ => int_part << 24,
        };
        let magnitude = packed.abs();
        let hms = magnitude >> 24;
        let hours = ((hms >> 12) % 1024) as u32;
        My::Time(
            packed < 0,
            hours / 24,
            (hours % 24) as u8,
            (hms >> 6 & 63) as u8,
            (hms & 63) as u8,
            (magnitude % (1 << 24)) as u32,
        )
    }

    #[test]
    fn negative_short_fraction_times_are_repaired() {
        let time2 = col(ColumnKind::Time(2), false);
        // The reported case: -838:59:59.03 arrives as -213:59:59.03.
        let arrived = mysql_common_time2(2, &time2_bytes(2, true, 838, 59, 59, 30_000));
        assert_eq!(arrived, My::Time(true, 8, 21, 59, 59, 30_000));
        assert_eq!(
            from_binlog(&time2, BinlogValue::Value(arrived)).unwrap(),
            Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 30_000
            }
        );
        // Above -625 h the wrapped value turns positive, with impossible microseconds.
        let arrived = mysql_common_time2(2, &time2_bytes(2, true, 0, 0, 0, 10_000));
        assert_eq!(arrived, My::Time(false, 26, 0, 63, 63, 16_767_216));
        assert_eq!(
            from_binlog(&time2, BinlogValue::Value(arrived)).unwrap(),
            Value::Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 0,
                micros: 10_000
            }
        );
        // Negative values without a fraction, and other precisions, arrive right.
        let arrived = mysql_common_time2(2, &time2_bytes(2, true, 838, 59, 59, 0));
        assert_eq!(arrived, My::Time(true, 34, 22, 59, 59, 0));
        let time3 = col(ColumnKind::Time(3), false);
        let arrived = mysql_common_time2(3, &time2_bytes(3, true, 838, 59, 59, 999_000));
        assert_eq!(
            from_binlog(&time3, BinlogValue::Value(arrived)).unwrap(),
            Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 999_000
            }
        );
        // What no decoding can produce is refused, not guessed at.
        let impossible = My::Time(true, 0, 1, 0, 0, 2_000_000);
        assert!(from_binlog(&time2, BinlogValue::Value(impossible)).is_err());
        let too_long = My::Time(true, 10, 0, 0, 0, 10_000);
        assert!(from_binlog(&time2, BinlogValue::Value(too_long)).is_err());
    }

    proptest! {
        #[test]
        fn every_binlog_time_decodes_to_itself(
            fsp in 0u8..=6,
            negative: bool,
            hours in 0u32..=838,
            minutes in 0u8..60,
            seconds in 0u8..60,
            units in 0u32..1_000_000,
        ) {
            let micros = if fsp == 0 {
                0
            } else {
                let scale = 10u32.pow(6 - u32::from(fsp));
                units / scale * scale
            };
            // MariaDB has no negative zero.
            let negative = negative && (hours, minutes, seconds, micros) != (0, 0, 0, 0);
            let bytes = time2_bytes(fsp, negative, hours, minutes, seconds, micros);
            let arrived = mysql_common_time2(fsp, &bytes);
            let column = col(ColumnKind::Time(fsp), false);
            prop_assert_eq!(
                from_binlog(&column, BinlogValue::Value(arrived)).unwrap(),
                Value::Time { negative, hours, minutes, seconds, micros }
            );
        }
    }

    use crate::change::civil::civil_from_epoch;

    proptest! {
        #[test]
        fn civil_dates_round_trip(secs in 0u64..253_402_300_800) {
            let (y, mo, d, h, mi, s) = civil_from_epoch(secs);
            let back = days_from_civil(i64::from(y), i64::from(mo), i64::from(d)) * 86_400
                + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
            prop_assert_eq!(back as u64, secs);
        }
    }
}
