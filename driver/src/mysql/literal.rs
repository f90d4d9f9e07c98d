//! Change-model values as SQL literals, for statements sent as text (the applier's pipelined
//! batches, see `applier::pipeline`).
//!
//! Every literal means exactly what the same value bound as a parameter means, in a session with
//! `SET NAMES binary`, `time_zone = '+00:00'` and an `sql_mode` without `NO_BACKSLASH_ESCAPES`
//! (the applier's session):
//! - bytes are a quoted string with `\0`, `'`, `\`, newline, carriage return and Ctrl-Z escaped;
//!   the connection character set is binary, so every other byte stands for itself;
//! - DECIMAL is its exact text, quoted, as a bound string would be;
//! - FLOAT and DOUBLE are written in exponent form, so the server reads them as doubles, with the
//!   shortest digits that read back to the same double. A FLOAT is written as the double it
//!   widens to exactly, which the column narrows back without rounding;
//! - temporal values are quoted `YYYY-MM-DD HH:MM:SS.ffffff` text (zero dates allowed), a
//!   TIMESTAMP as its UTC date and time.

use crate::change::civil::civil_from_epoch;
use crate::change::Value;
use std::io::Write;

/// Appends `value` as a literal.
pub fn push(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => buf.extend_from_slice(b"NULL"),
        Value::Decimal(text) => push_bytes(buf, text.as_bytes()),
        Value::Bytes(bytes) => push_bytes(buf, bytes),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Double(_) => {
            push_plain(buf, value);
        }
        _ => {
            buf.push(b'\'');
            push_plain(buf, value);
            buf.push(b'\'');
        }
    }
}

/// Appends a number or a temporal value as its plain text (what a literal quotes, and what a
/// `LOAD DATA` field holds); false, appending nothing, for NULL, bytes and DECIMAL, whose text
/// each form escapes its own way.
pub fn push_plain(buf: &mut Vec<u8>, value: &Value) -> bool {
    // Writing into a Vec cannot fail.
    let _ = match value {
        Value::Null | Value::Decimal(_) | Value::Bytes(_) => return false,
        Value::Int(n) => write!(buf, "{n}"),
        Value::UInt(n) => write!(buf, "{n}"),
        Value::Float(f) => push_double(buf, f64::from(*f)),
        Value::Double(d) => push_double(buf, *d),
        Value::Date { year, month, day } => write!(buf, "{year:04}-{month:02}-{day:02}"),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
        } => write!(
            buf,
            "{}{hours:02}:{minutes:02}:{seconds:02}.{micros:06}",
            if *negative { "-" } else { "" }
        ),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => write!(
            buf,
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}"
        ),
        Value::Timestamp { secs: 0, micros: 0 } => {
            buf.extend_from_slice(b"0000-00-00 00:00:00");
            Ok(())
        }
        Value::Timestamp { secs, micros } => {
            let (year, month, day, hour, minute, second) = civil_from_epoch(*secs);
            write!(
                buf,
                "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}"
            )
        }
    };
    true
}

/// What each byte is escaped as inside a quoted literal (0: itself).
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    table[0] = b'0';
    table[b'\'' as usize] = b'\'';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[0x1a] = b'Z';
    table
};

/// Appends `bytes` as a quoted string literal.
pub fn push_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len() + 2);
    buf.push(b'\'');
    let mut rest = bytes;
    // Runs without a byte to escape are copied whole.
    while let Some(at) = rest.iter().position(|&b| ESCAPES[b as usize] != 0) {
        buf.extend_from_slice(&rest[..at]);
        buf.extend_from_slice(&[b'\\', ESCAPES[rest[at] as usize]]);
        rest = &rest[at + 1..];
    }
    buf.extend_from_slice(rest);
    buf.push(b'\'');
}

fn push_double(buf: &mut Vec<u8>, d: f64) -> std::io::Result<()> {
    if d.is_finite() {
        // `{:e}` gives the shortest digits that parse back to `d`, in a form the server reads as
        // a double (never as an exact DECIMAL).
        write!(buf, "{d:e}")
    } else {
        // No column holds these; NULL is what the server would store for them.
        buf.extend_from_slice(b"NULL");
        Ok(())
    }
}

/// The size of the literals of `values` at most, separators left out.
pub fn row_max_len(values: &[Value]) -> usize {
    values.iter().map(max_len).sum()
}

/// The size of `value`'s literal at most (for sizing statements before writing them).
pub fn max_len(value: &Value) -> usize {
    match value {
        Value::Bytes(b) => 2 * b.len() + 2,
        Value::Decimal(d) => d.len() + 2,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(value: &Value) -> String {
        let mut buf = Vec::new();
        push(&mut buf, value);
        String::from_utf8(buf).expect("test values render as UTF-8")
    }

    /// Reads a quoted literal back as the server does (backslash escapes, no sql_mode).
    fn unquote(literal: &[u8]) -> Option<Vec<u8>> {
        let inner = literal.strip_prefix(b"'")?.strip_suffix(b"'")?;
        let mut out = Vec::new();
        let mut bytes = inner.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'\\' => out.push(match bytes.next()? {
                    b'0' => 0,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'Z' => 0x1a,
                    &other => other,
                }),
                // An unescaped quote inside would end the literal early.
                b'\'' => return None,
                other => out.push(other),
            }
        }
        Some(out)
    }

    #[test]
    fn literals_of_each_kind() {
        assert_eq!(text(&Value::Null), "NULL");
        assert_eq!(text(&Value::Int(-42)), "-42");
        assert_eq!(text(&Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(text(&Value::Double(0.1)), "1e-1");
        assert_eq!(text(&Value::Double(-0.0)), "-0e0");
        assert_eq!(text(&Value::Float(1.1)), "1.100000023841858e0");
        assert_eq!(text(&Value::Decimal("-12.340".into())), "'-12.340'");
        assert_eq!(
            text(&Value::Bytes(b"a'b\\c\0\n".to_vec())),
            "'a\\'b\\\\c\\0\\n'"
        );
        assert_eq!(
            text(&Value::Date {
                year: 0,
                month: 0,
                day: 0
            }),
            "'0000-00-00'"
        );
        assert_eq!(
            text(&Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 5
            }),
            "'-838:59:59.000005'"
        );
        assert_eq!(
            text(&Value::Timestamp { secs: 0, micros: 0 }),
            "'0000-00-00 00:00:00'"
        );
        assert_eq!(
            text(&Value::Timestamp {
                secs: 86_400 + 3_661,
                micros: 120_000
            }),
            "'1970-01-02 01:01:01.120000'"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_read_back_unchanged(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut buf = Vec::new();
            push_bytes(&mut buf, &bytes);
            prop_assert!(buf.len() <= max_len(&Value::Bytes(bytes.clone())));
            prop_assert_eq!(unquote(&buf), Some(bytes));
        }

        #[test]
        fn any_double_reads_back_to_its_bits(bits in any::<u64>()) {
            let d = f64::from_bits(bits);
            prop_assume!(d.is_finite());
            let t = text(&Value::Double(d));
            prop_assert!(t.contains('e'), "{} must be read as a double", t);
            let back: f64 = t.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(back.to_bits(), d.to_bits());
        }

        #[test]
        fn any_float_survives_the_double_it_widens_to(bits in any::<u32>()) {
            let f = f32::from_bits(bits);
            prop_assume!(f.is_finite());
            let back: f64 = text(&Value::Float(f)).parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!((back as f32).to_bits(), f.to_bits());
        }
    }
}
