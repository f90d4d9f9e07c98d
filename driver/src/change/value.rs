//! Column values as they travel from the extractor to the applier: exact, and independent of
//! mysql_async's types.
//!
//! Strings of every character set travel as their raw bytes in the column's own character set:
//! the binlog carries them that way, the snapshot reads them with `character_set_results = binary`,
//! and the applier writes them with `SET NAMES binary`, so no conversion can alter a byte. ENUM and
//! SET travel as their text (the binlog's index or bitmask is resolved against the table's
//! definition), TIMESTAMP as seconds since the epoch (0 being the zero timestamp), BIT as a number.

/// One column value (serialized compactly, see `wire`).
#[derive(Debug, Clone)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A signed integer column (TINYINT .. BIGINT).
    Int(i64),
    /// An unsigned integer column, a BIT column or YEAR.
    UInt(u64),
    /// FLOAT, bit for bit.
    Float(f32),
    /// DOUBLE, bit for bit.
    Double(f64),
    /// DECIMAL as its exact text, e.g. `-12.340`.
    Decimal(String),
    /// CHAR/VARCHAR/TEXT (in the column's character set), BINARY/VARBINARY/BLOB, JSON text,
    /// ENUM/SET text, GEOMETRY, UUID and INET types as the server's binary form.
    Bytes(Vec<u8>),
    /// DATE (zero parts allowed: `0000-00-00`).
    Date {
        /// Year, 0-9999.
        year: u16,
        /// Month, 0-12.
        month: u8,
        /// Day, 0-31.
        day: u8,
    },
    /// TIME, which may be negative and exceed 24 hours (-838:59:59 .. 838:59:59).
    Time {
        /// Whether the time is negative.
        negative: bool,
        /// Hours, 0-838.
        hours: u32,
        /// Minutes.
        minutes: u8,
        /// Seconds.
        seconds: u8,
        /// Microseconds.
        micros: u32,
    },
    /// DATETIME (zero parts allowed).
    DateTime {
        /// Year.
        year: u16,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
        /// Hour.
        hour: u8,
        /// Minute.
        minute: u8,
        /// Second.
        second: u8,
        /// Microseconds.
        micros: u32,
    },
    /// TIMESTAMP as UTC seconds since the epoch; `secs == 0 && micros == 0` is the zero timestamp.
    Timestamp {
        /// Seconds since 1970-01-01 00:00:00 UTC.
        secs: u64,
        /// Microseconds.
        micros: u32,
    },
}

impl PartialEq for Value {
    /// Floats compare by bits, so a value always equals itself after a round trip (NaN included).
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (Null, Null) => true,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Decimal(a), Decimal(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (
                Date { year, month, day },
                Date {
                    year: y,
                    month: m,
                    day: d,
                },
            ) => (year, month, day) == (y, m, d),
            (
                Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros,
                },
                Time {
                    negative: n,
                    hours: h,
                    minutes: mi,
                    seconds: s,
                    micros: us,
                },
            ) => (negative, hours, minutes, seconds, micros) == (n, h, mi, s, us),
            (
                DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                },
                DateTime {
                    year: y,
                    month: mo,
                    day: d,
                    hour: h,
                    minute: mi,
                    second: s,
                    micros: us,
                },
            ) => (year, month, day, hour, minute, second, micros) == (y, mo, d, h, mi, s, us),
            (
                Timestamp { secs, micros },
                Timestamp {
                    secs: s,
                    micros: us,
                },
            ) => (secs, micros) == (s, us),
            _ => false,
        }
    }
}

impl Value {
    /// An approximate size in bytes, for batching and memory accounting.
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len() + 4,
            Value::Decimal(d) => d.len() + 2,
            _ => 9,
        }
    }
}
