//! Change-model values as statement parameters.
//!
//! Sessions that bind these run with `SET NAMES binary` (strings are the column's raw bytes) and
//! `time_zone = '+00:00'` (a TIMESTAMP is bound as its UTC date and time).

use crate::change::civil::civil_from_epoch;
use crate::change::Value;
use mysql_async::Value as My;

/// `value` as a parameter, moving its bytes (a large value is never copied to be bound).
pub fn into_param(value: Value) -> My {
    match value {
        Value::Decimal(text) => My::Bytes(text.into_bytes()),
        Value::Bytes(bytes) => My::Bytes(bytes),
        other => to_param(&other),
    }
}

/// `value` as a parameter.
pub fn to_param(value: &Value) -> My {
    match value {
        Value::Null => My::NULL,
        Value::Int(n) => My::Int(*n),
        Value::UInt(n) => My::UInt(*n),
        Value::Float(f) => My::Float(*f),
        Value::Double(d) => My::Double(*d),
        Value::Decimal(text) => My::Bytes(text.as_bytes().to_vec()),
        Value::Bytes(bytes) => My::Bytes(bytes.clone()),
        Value::Date { year, month, day } => My::Date(*year, *month, *day, 0, 0, 0, 0),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
        } => My::Time(
            *negative,
            hours / 24,
            (hours % 24) as u8,
            *minutes,
            *seconds,
            *micros,
        ),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => My::Date(*year, *month, *day, *hour, *minute, *second, *micros),
        Value::Timestamp { secs: 0, micros: 0 } => My::Date(0, 0, 0, 0, 0, 0, 0),
        Value::Timestamp { secs, micros } => {
            let (year, month, day, hour, minute, second) = civil_from_epoch(*secs);
            My::Date(year, month, day, hour, minute, second, *micros)
        }
    }
}
