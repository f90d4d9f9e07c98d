//! Reading go-cty msgpack: the bytes of `SetConfigRequest.msgpack_config` and
//! `TaskConfig.msgpack_driver_config`.
//!
//! The Nomad client decodes a config block with the plugin's hclspec and marshals the result with
//! go-cty's `msgpack.Marshal(value, value.Type())` (not with go-msgpack), so the shape follows cty
//! types, not Go structs:
//! - an object is a map holding **every** attribute of the schema, `nil` when unset (defaults are
//!   already filled in); a missing key means the bytes were not made from this plugin's schema;
//! - a string is a msgpack str, a bool a bool, a list, set or tuple an array, a map a map;
//! - a number is an integer when whole, else a float64 when that is exact, else its decimal text as
//!   a str (`0.1` arrives as the string "0.1").
//!
//! [`CtyObject`] takes attributes out one by one with the expected type, and [`CtyObject::finish`]
//! refuses any attribute the reader did not ask for, so schema and reader cannot drift apart
//! silently.

use rmpv::Value;
use std::collections::BTreeMap;

/// Why go-cty msgpack bytes could not be read; each names the config (`what`) and the attribute.
#[derive(Debug, thiserror::Error)]
pub enum CtyError {
    #[error("the {what} is not valid msgpack ({source}); a Nomad client sends it as go-cty msgpack of the block decoded with this plugin's schema")]
    Msgpack {
        what: &'static str,
        source: rmpv::decode::Error,
    },
    #[error("the {what} has {extra} bytes after its msgpack value; send exactly one value")]
    Trailing { what: &'static str, extra: usize },
    #[error("the {what} is a msgpack {found}, not a map of attributes; send the block decoded with this plugin's schema (an object)")]
    NotObject {
        what: &'static str,
        found: &'static str,
    },
    #[error("the {what} has a key that is a msgpack {found}, not a string")]
    KeyNotString {
        what: &'static str,
        found: &'static str,
    },
    #[error("the {what} lacks attribute `{name}`: the Nomad client sends every attribute of the schema (nil when unset), so these bytes were not made with this plugin's schema")]
    Missing { what: &'static str, name: String },
    #[error("the {what} has attribute `{name}`, which this plugin's schema does not have; upgrade the plugin or remove `{name}`")]
    Unexpected { what: &'static str, name: String },
    #[error("`{name}` in the {what} is a msgpack {found}; expected {expected}")]
    WrongType {
        what: &'static str,
        name: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("`{name}` in the {what} is {value}; expected {expected}")]
    BadNumber {
        what: &'static str,
        name: String,
        value: String,
        expected: &'static str,
    },
}

/// A decoded cty object: attribute name to msgpack value, taken out by the typed readers.
#[derive(Debug)]
pub struct CtyObject {
    what: &'static str,
    attrs: BTreeMap<String, Value>,
}

/// Decodes one msgpack value that must be a cty object. `what` names the config in errors.
pub fn decode_object(bytes: &[u8], what: &'static str) -> Result<CtyObject, CtyError> {
    let mut rest = bytes;
    let value =
        rmpv::decode::read_value(&mut rest).map_err(|source| CtyError::Msgpack { what, source })?;
    if !rest.is_empty() {
        return Err(CtyError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    object_of(value, what)
}

fn object_of(value: Value, what: &'static str) -> Result<CtyObject, CtyError> {
    let Value::Map(pairs) = value else {
        return Err(CtyError::NotObject {
            what,
            found: kind(&value),
        });
    };
    let mut attrs = BTreeMap::new();
    for (key, value) in pairs {
        let found = kind(&key);
        let Value::String(key) = key else {
            return Err(CtyError::KeyNotString { what, found });
        };
        let Some(key) = key.into_str() else {
            return Err(CtyError::KeyNotString {
                what,
                found: "str that is not UTF-8",
            });
        };
        attrs.insert(key, value);
    }
    Ok(CtyObject { what, attrs })
}

/// A cty number as go-cty encodes it.
#[derive(Debug, Clone, PartialEq)]
pub enum CtyNumber {
    /// A whole number (msgpack int).
    Int(i128),
    /// A number a float64 holds exactly.
    Float(f64),
    /// Any other number, as its decimal text.
    Decimal(String),
}

impl CtyObject {
    fn take(&mut self, name: &str) -> Result<Value, CtyError> {
        self.attrs.remove(name).ok_or_else(|| CtyError::Missing {
            what: self.what,
            name: name.to_owned(),
        })
    }

    fn wrong(&self, name: &str, value: &Value, expected: &'static str) -> CtyError {
        CtyError::WrongType {
            what: self.what,
            name: name.to_owned(),
            found: kind(value),
            expected,
        }
    }

    /// A `string` attribute; `None` when unset (nil).
    pub fn string(&mut self, name: &str) -> Result<Option<String>, CtyError> {
        match self.take(name)? {
            Value::Nil => Ok(None),
            Value::String(s) if s.is_str() => Ok(s.into_str()),
            other => Err(self.wrong(name, &other, "a string")),
        }
    }

    /// A `bool` attribute; `None` when unset.
    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, CtyError> {
        match self.take(name)? {
            Value::Nil => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(self.wrong(name, &other, "a bool")),
        }
    }

    /// A `number` attribute as go-cty wrote it; `None` when unset.
    pub fn number(&mut self, name: &str) -> Result<Option<CtyNumber>, CtyError> {
        match self.take(name)? {
            Value::Nil => Ok(None),
            Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
                (Some(v), _) => Ok(Some(CtyNumber::Int(i128::from(v)))),
                (None, Some(v)) => Ok(Some(CtyNumber::Int(i128::from(v)))),
                (None, None) => Err(self.wrong(name, &Value::Integer(i), "a number")),
            },
            Value::F64(f) => Ok(Some(CtyNumber::Float(f))),
            Value::F32(f) => Ok(Some(CtyNumber::Float(f64::from(f)))),
            Value::String(s) if s.is_str() => Ok(s.into_str().map(CtyNumber::Decimal)),
            other => Err(self.wrong(name, &other, "a number")),
        }
    }

    /// A `number` attribute that must be a whole number within `u64`; `None` when unset.
    pub fn unsigned(&mut self, name: &str) -> Result<Option<u64>, CtyError> {
        let what = self.what;
        let bad = |value: String| CtyError::BadNumber {
            what,
            name: name.to_owned(),
            value,
            expected: "a whole number from 0 to 18446744073709551615",
        };
        match self.number(name)? {
            None => Ok(None),
            Some(CtyNumber::Int(v)) => u64::try_from(v).map(Some).map_err(|_| bad(v.to_string())),
            // go-cty writes whole numbers as ints; a float here is never whole, a decimal
            // string only when it has a fraction or exceeds float64 precision.
            Some(CtyNumber::Float(f)) => Err(bad(f.to_string())),
            Some(CtyNumber::Decimal(text)) => text.parse::<u64>().map(Some).map_err(|_| bad(text)),
        }
    }

    /// Refuses the attributes no reader took: they are not in the schema this reader follows.
    pub fn finish(self) -> Result<(), CtyError> {
        match self.attrs.into_keys().next() {
            None => Ok(()),
            Some(name) => Err(CtyError::Unexpected {
                what: self.what,
                name,
            }),
        }
    }
}

/// The msgpack kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "int",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "str",
        Value::Binary(_) => "bin",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext (a cty unknown value?)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> Vec<u8> {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, value).expect("encoding to a Vec");
        buf
    }

    fn object(pairs: Vec<(&str, Value)>) -> Vec<u8> {
        encode(&Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        ))
    }

    #[test]
    fn reads_every_kind_and_nil() {
        let bytes = object(vec![
            ("s", Value::from("text")),
            ("unset", Value::Nil),
            ("b", Value::from(true)),
            ("int", Value::from(15)),
            ("big", Value::from(u64::MAX)),
            ("half", Value::F64(0.5)),
            ("tenth", Value::from("0.1")),
        ]);
        let mut o = decode_object(&bytes, "test config").expect("an object");
        assert_eq!(o.string("s").unwrap().as_deref(), Some("text"));
        assert_eq!(o.string("unset").unwrap(), None);
        assert_eq!(o.bool("b").unwrap(), Some(true));
        assert_eq!(o.unsigned("int").unwrap(), Some(15));
        assert_eq!(o.unsigned("big").unwrap(), Some(u64::MAX));
        assert_eq!(o.number("half").unwrap(), Some(CtyNumber::Float(0.5)));
        assert_eq!(
            o.number("tenth").unwrap(),
            Some(CtyNumber::Decimal("0.1".into()))
        );
        o.finish().unwrap();
    }

    #[test]
    fn missing_extra_and_mistyped_attributes_are_named() {
        let bytes = object(vec![("a", Value::from(1)), ("b", Value::from("x"))]);
        let mut o = decode_object(&bytes, "plugin config").unwrap();
        let err = o.string("a").unwrap_err().to_string();
        assert!(
            err.contains("`a`") && err.contains("int") && err.contains("a string"),
            "{err}"
        );
        let err = o.string("c").unwrap_err().to_string();
        assert!(err.contains("lacks attribute `c`"), "{err}");
        let err = o.finish().unwrap_err().to_string();
        assert!(err.contains("attribute `b`"), "{err}");
    }

    #[test]
    fn numbers_out_of_range_or_with_fractions_are_refused() {
        let bytes = object(vec![
            ("neg", Value::from(-1)),
            ("frac", Value::F64(1.5)),
            ("dec", Value::from("0.1")),
        ]);
        let mut o = decode_object(&bytes, "c").unwrap();
        for name in ["neg", "frac", "dec"] {
            let err = o.unsigned(name).unwrap_err().to_string();
            assert!(err.contains("whole number"), "{name}: {err}");
        }
    }

    #[test]
    fn non_objects_garbage_and_trailing_bytes_are_refused() {
        assert!(matches!(
            decode_object(&encode(&Value::from("x")), "c"),
            Err(CtyError::NotObject { found: "str", .. })
        ));
        assert!(matches!(
            decode_object(&[0x92, 0xa1], "c"),
            Err(CtyError::Msgpack { .. })
        ));
        let mut bytes = object(vec![]);
        bytes.push(0xc0);
        assert!(matches!(
            decode_object(&bytes, "c"),
            Err(CtyError::Trailing { extra: 1, .. })
        ));
        let key_int = encode(&Value::Map(vec![(Value::from(1), Value::Nil)]));
        assert!(matches!(
            decode_object(&key_int, "c"),
            Err(CtyError::KeyNotString { found: "int", .. })
        ));
        assert!(matches!(
            decode_object(&[], "c"),
            Err(CtyError::Msgpack { .. })
        ));
    }
}
