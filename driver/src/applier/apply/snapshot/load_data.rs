//! A chunk's rows as one `LOAD DATA LOCAL INFILE ... REPLACE INTO TABLE` and the text it reads.
//!
//! The server turns such text into rows with less work than the same rows bound to multi-row
//! REPLACE statements (no parameter items, no statement text rebuilt for the binlog's
//! annotations), so the snapshot's writer sessions ([`super::writers`]) use it when the target
//! allows local infiles. REPLACE keeps the statements' meaning: a row whose key is already there
//! is replaced.
//!
//! # Exactness
//! The text is read `CHARACTER SET binary`, so a string column is handed the value's bytes as
//! they are, the same store a binary parameter gets from a session with `SET NAMES binary`.
//! Fields end with a tab, rows with a newline, and backslash is the escape. Per value:
//! - NULL is `\N`;
//! - bytes and DECIMAL text are written with `\\`, `\t`, `\n` and `\0` escaped, so no value can
//!   end its field or row early or read as NULL;
//! - an integer is read into a user variable and stored as `CAST(@v AS SIGNED)` (or
//!   `UNSIGNED`): the column gets a number, so ENUM and SET take an index or bit set, BIT its
//!   bits, never a member name that happens to look like a number;
//! - DOUBLE is the shortest text that reads back as the same double; FLOAT is its value as a
//!   double in that form, so the server's parse is exactly the float widened and narrowing it
//!   back gives the same bits;
//! - DATE, TIME and DATETIME are their text with six fractional digits; TIMESTAMP is its UTC date
//!   and time (the session's time zone is `+00:00`), the zero TIMESTAMP all zeros.
//!
//! A column whose values are of different kinds (never from a snapshot, whose values follow the
//! column's type) makes [`encode`] give up: the chunk is then written with REPLACE statements.

use crate::change::{TableDef, Value};
use crate::mysql::{literal, quote};
use std::fmt::Write as _;

/// How a column's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Only NULLs so far.
    Unknown,
    /// Stored as the field's text.
    Text,
    /// Through a variable, as a signed integer.
    Signed,
    /// Through a variable, as an unsigned integer.
    Unsigned,
}

impl Read {
    fn of(value: &Value) -> Self {
        match value {
            Value::Null => Read::Unknown,
            Value::Int(_) => Read::Signed,
            Value::UInt(_) => Read::Unsigned,
            _ => Read::Text,
        }
    }
}

/// The `LOAD DATA` statement for `def` and the text of `rows` it reads; `None` when a column's
/// values are of different kinds.
pub(super) fn encode(def: &TableDef, rows: &[Vec<Value>]) -> Option<(String, Vec<u8>)> {
    let mut reads = vec![Read::Unknown; def.columns.len()];
    for row in rows {
        if row.len() != reads.len() {
            return None;
        }
        for (read, value) in reads.iter_mut().zip(row) {
            match (*read, Read::of(value)) {
                (_, Read::Unknown) => {}
                (Read::Unknown, kind) => *read = kind,
                (current, kind) if current == kind => {}
                _ => return None,
            }
        }
    }
    let mut text = Vec::with_capacity(rows.len() * 64);
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                text.push(b'\t');
            }
            field(&mut text, value);
        }
        text.push(b'\n');
    }
    Some((statement(def, &reads), text))
}

/// `LOAD DATA LOCAL INFILE 'chunk' REPLACE INTO TABLE ...` with integers read via variables.
fn statement(def: &TableDef, reads: &[Read]) -> String {
    let mut targets = Vec::with_capacity(reads.len());
    let mut sets = Vec::new();
    for (i, (column, read)) in def.columns.iter().zip(reads).enumerate() {
        let name = quote::ident(&column.name);
        let cast = match read {
            Read::Signed => "SIGNED",
            Read::Unsigned => "UNSIGNED",
            Read::Unknown | Read::Text => {
                targets.push(name);
                continue;
            }
        };
        targets.push(format!("@v{i}"));
        sets.push(format!("{name} = CAST(@v{i} AS {cast})"));
    }
    let mut sql = format!(
        "LOAD DATA LOCAL INFILE 'chunk' REPLACE INTO TABLE {} CHARACTER SET binary \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        quote::table(&def.schema, &def.name),
        targets.join(", ")
    );
    if !sets.is_empty() {
        let _ = write!(sql, " SET {}", sets.join(", "));
    }
    sql
}

/// Appends one value's field.
fn field(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Decimal(text) => escaped(out, text.as_bytes()),
        Value::Bytes(bytes) => escaped(out, bytes),
        other => {
            literal::push_plain(out, other);
        }
    }
}

/// Appends `bytes` with the field terminator, the line terminator, NUL and the escape escaped.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0 => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ColumnDef;

    fn def(names: &[&str]) -> TableDef {
        TableDef {
            id: 1,
            schema: "s".into(),
            name: "t`x".into(),
            columns: names
                .iter()
                .map(|n| ColumnDef {
                    name: (*n).into(),
                    nullable: true,
                    float: false,
                })
                .collect(),
            key: vec![0],
        }
    }

    #[test]
    fn integers_go_through_casts_and_text_is_escaped() {
        let rows = vec![
            vec![
                Value::Int(-5),
                Value::Bytes(b"a\tb\nc\\d\0\\N".to_vec()),
                Value::UInt(u64::MAX),
            ],
            vec![Value::Int(7), Value::Null, Value::Null],
        ];
        let (sql, text) = encode(&def(&["id", "v", "e"]), &rows).expect("one kind per column");
        assert_eq!(
            sql,
            "LOAD DATA LOCAL INFILE 'chunk' REPLACE INTO TABLE `s`.`t``x` CHARACTER SET binary \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
             (@v0, `v`, @v2) SET `id` = CAST(@v0 AS SIGNED), `e` = CAST(@v2 AS UNSIGNED)"
        );
        assert_eq!(
            text,
            b"-5\ta\\tb\\nc\\\\d\\0\\\\N\t18446744073709551615\n7\t\\N\t\\N\n".to_vec()
        );
    }

    #[test]
    fn floats_read_back_bit_for_bit() {
        for f in [
            0.1f32,
            f32::MAX,
            f32::MIN_POSITIVE,
            -3.4e-41,
            16_777_217.0,
            -0.0,
        ] {
            let mut out = Vec::new();
            field(&mut out, &Value::Float(f));
            let text = String::from_utf8(out).expect("ascii");
            let back = text.parse::<f64>().expect("a number") as f32;
            assert_eq!(back.to_bits(), f.to_bits(), "{f} as {text}");
        }
        for d in [0.1f64, f64::MAX, 5e-324, -1.0 / 3.0, 1e300] {
            let mut out = Vec::new();
            field(&mut out, &Value::Double(d));
            let text = String::from_utf8(out).expect("ascii");
            assert_eq!(text.parse::<f64>().map(f64::to_bits), Ok(d.to_bits()));
        }
    }

    #[test]
    fn temporal_values_and_zero_timestamp() {
        let mut out = Vec::new();
        for v in [
            Value::Date {
                year: 0,
                month: 0,
                day: 0,
            },
            Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 1,
            },
            Value::Timestamp { secs: 0, micros: 0 },
            Value::Timestamp {
                secs: 86_400,
                micros: 500_000,
            },
        ] {
            field(&mut out, &v);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "0000-00-00|-838:59:59.000001|0000-00-00 00:00:00|1970-01-02 00:00:00.500000|"
        );
    }

    #[test]
    fn mixed_kinds_in_a_column_fall_back() {
        let rows = vec![vec![Value::Int(1)], vec![Value::UInt(1)]];
        assert!(encode(&def(&["id"]), &rows).is_none());
    }
}
