//! The compact serialized form of a [`Value`] (wire format version 2), the most frequent thing on
//! the wire: a row is a sequence of them.
//!
//! Serde's derived form of an enum names its variant as a string, `{"Int": 5}`, which MessagePack
//! spells with a map header and the name's bytes, and which the reader must compare as UTF-8 for
//! every value. Here:
//! - NULL is a nil, bytes (every string column) are a bin: the two most common values carry no
//!   tag at all, as nothing else serializes as nil or bin;
//! - every other value is an array whose first element is a small integer tag (the constants
//!   below), followed by its fields: `[1, -5]` for `Int(-5)`, `[7, 2024, 2, 29]` for a DATE.
//!
//! The reader also accepts the derived form (a one-entry map from variant name to fields), which
//! snapshot progress rows written by earlier versions hold in `dtle.snapshot_progress.last_key`.

use super::Value;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

const INT: u8 = 1;
const UINT: u8 = 2;
const FLOAT: u8 = 3;
const DOUBLE: u8 = 4;
const DECIMAL: u8 = 5;
const DATE: u8 = 7;
const TIME: u8 = 8;
const DATETIME: u8 = 9;
const TIMESTAMP: u8 = 10;

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Int(n) => (INT, n).serialize(s),
            Value::UInt(n) => (UINT, n).serialize(s),
            Value::Float(f) => (FLOAT, f).serialize(s),
            Value::Double(d) => (DOUBLE, d).serialize(s),
            Value::Decimal(text) => (DECIMAL, text).serialize(s),
            Value::Date { year, month, day } => (DATE, year, month, day).serialize(s),
            Value::Time {
                negative,
                hours,
                minutes,
                seconds,
                micros,
            } => (TIME, negative, hours, minutes, seconds, micros).serialize(s),
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            } => (DATETIME, year, month, day, hour, minute, second, micros).serialize(s),
            Value::Timestamp { secs, micros } => (TIMESTAMP, secs, micros).serialize(s),
        }
    }
}

struct ValueVisitor;

/// The next field of a tagged array, or an error naming what is missing.
fn field<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    what: &str,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom(format!("a value's {what} is missing")))
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column value (nil, bin, or a tagged array)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let tag: u8 = field(&mut seq, "tag")?;
        Ok(match tag {
            INT => Value::Int(field(&mut seq, "integer")?),
            UINT => Value::UInt(field(&mut seq, "integer")?),
            FLOAT => Value::Float(field(&mut seq, "float")?),
            DOUBLE => Value::Double(field(&mut seq, "double")?),
            DECIMAL => Value::Decimal(field(&mut seq, "decimal")?),
            DATE => Value::Date {
                year: field(&mut seq, "year")?,
                month: field(&mut seq, "month")?,
                day: field(&mut seq, "day")?,
            },
            TIME => Value::Time {
                negative: field(&mut seq, "sign")?,
                hours: field(&mut seq, "hours")?,
                minutes: field(&mut seq, "minutes")?,
                seconds: field(&mut seq, "seconds")?,
                micros: field(&mut seq, "microseconds")?,
            },
            DATETIME => Value::DateTime {
                year: field(&mut seq, "year")?,
                month: field(&mut seq, "month")?,
                day: field(&mut seq, "day")?,
                hour: field(&mut seq, "hour")?,
                minute: field(&mut seq, "minute")?,
                second: field(&mut seq, "second")?,
                micros: field(&mut seq, "microseconds")?,
            },
            TIMESTAMP => Value::Timestamp {
                secs: field(&mut seq, "seconds")?,
                micros: field(&mut seq, "microseconds")?,
            },
            other => return Err(de::Error::custom(format!("unknown value tag {other}"))),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(variant) = map.next_key::<String>()? else {
            return Err(de::Error::custom("an empty map is not a value"));
        };
        Ok(match variant.as_str() {
            "Null" => {
                map.next_value::<()>()?;
                Value::Null
            }
            "Int" => Value::Int(map.next_value()?),
            "UInt" => Value::UInt(map.next_value()?),
            "Float" => Value::Float(map.next_value()?),
            "Double" => Value::Double(map.next_value()?),
            "Decimal" => Value::Decimal(map.next_value()?),
            "Bytes" => Value::Bytes(map.next_value::<serde_bytes::ByteBuf>()?.into_vec()),
            "Date" => {
                let (year, month, day) = map.next_value()?;
                Value::Date { year, month, day }
            }
            "Time" => {
                let (negative, hours, minutes, seconds, micros) = map.next_value()?;
                Value::Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros,
                }
            }
            "DateTime" => {
                let (year, month, day, hour, minute, second, micros) = map.next_value()?;
                Value::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                }
            }
            "Timestamp" => {
                let (secs, micros) = map.next_value()?;
                Value::Timestamp { secs, micros }
            }
            other => return Err(de::Error::custom(format!("unknown value kind {other}"))),
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The derived form earlier versions wrote, to check it is still read.
    #[derive(Serialize)]
    enum Derived {
        Int(i64),
        Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
        DateTime {
            year: u16,
            month: u8,
            day: u8,
            hour: u8,
            minute: u8,
            second: u8,
            micros: u32,
        },
    }

    #[test]
    fn common_values_are_small() {
        let size = |v: &Value| rmp_serde::to_vec(v).expect("encodes").len();
        assert_eq!(size(&Value::Null), 1);
        assert_eq!(size(&Value::Int(5)), 3);
        assert_eq!(size(&Value::Bytes(b"abc".to_vec())), 5);
    }

    #[test]
    fn the_derived_form_of_earlier_versions_is_read() {
        let old = [
            Derived::Int(-7),
            Derived::Bytes(b"k".to_vec()),
            Derived::DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 58,
                micros: 7,
            },
        ];
        let bytes = rmp_serde::to_vec(&old).expect("encodes");
        let read: Vec<Value> = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(
            read,
            vec![
                Value::Int(-7),
                Value::Bytes(b"k".to_vec()),
                Value::DateTime {
                    year: 2024,
                    month: 2,
                    day: 29,
                    hour: 23,
                    minute: 59,
                    second: 58,
                    micros: 7
                }
            ]
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<u32>().prop_map(|b| Value::Float(f32::from_bits(b))),
            any::<u64>().prop_map(|b| Value::Double(f64::from_bits(b))),
            "-?[0-9]{1,30}\\.[0-9]{0,30}".prop_map(Value::Decimal),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
            (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(year, month, day)| Value::Date {
                year,
                month,
                day
            }),
            (
                any::<bool>(),
                any::<u32>(),
                any::<u8>(),
                any::<u8>(),
                any::<u32>()
            )
                .prop_map(|(negative, hours, minutes, seconds, micros)| Value::Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros
                }),
            (any::<(u16, u8, u8, u8, u8, u8)>(), any::<u32>()).prop_map(
                |((year, month, day, hour, minute, second), micros)| Value::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros
                }
            ),
            (any::<u64>(), any::<u32>())
                .prop_map(|(secs, micros)| Value::Timestamp { secs, micros }),
        ]
    }

    proptest! {
        #[test]
        fn every_value_reads_back_equal(values in proptest::collection::vec(value(), 0..20)) {
            let compact = rmp_serde::to_vec(&values).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let named = rmp_serde::to_vec_named(&values).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for bytes in [compact, named] {
                let back: Vec<Value> = rmp_serde::from_slice(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&back, &values);
            }
        }
    }
}
