//! Lenient, path-aware reading of a JSON-shaped document.
//!
//! Jobs arrive as dtle JSON, Nomad JSON or Nomad HCL; all three front-ends turn what they hold into
//! [`serde_json::Value`]s and read fields through an [`ObjectReader`]. The reader never stops at the
//! first problem: a field of the wrong type is reported with its path and its default is used, so one
//! pass finds everything. Keys match case-insensitively, as dtle's Go decoder did, with an exact match
//! preferred. Fields nobody asked for are returned by [`ObjectReader::finish`] so the caller can keep
//! them and warn about them: nothing the user wrote is dropped silently.

use crate::diagnostic::{Diagnostics, Path};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Reads the fields of one JSON object, recording problems and remembering which keys were used.
pub(crate) struct ObjectReader<'a> {
    map: &'a Map<String, Value>,
    path: Path,
    used: BTreeSet<&'a str>,
}

/// A field that no reader asked for, kept with its full path.
#[derive(Debug, Clone)]
pub(crate) struct Leftover {
    pub path: Path,
    pub key: String,
    pub value: Value,
}

impl<'a> ObjectReader<'a> {
    pub fn new(map: &'a Map<String, Value>, path: Path) -> Self {
        Self {
            map,
            path,
            used: BTreeSet::new(),
        }
    }

    /// Reads `value` as an object, or reports that it is not one.
    pub fn of(value: &'a Value, path: Path, diags: &mut Diagnostics) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self::new(map, path)),
            other => {
                diags.error(
                    &path,
                    format!("expected an object, got {}", describe(other)),
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The object as written, every field (read or not).
    pub fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// The path of a field of this object.
    pub fn field_path(&self, key: &str) -> Path {
        self.path.key(self.key_as_written(key).unwrap_or(key))
    }

    fn key_as_written(&self, key: &str) -> Option<&'a str> {
        if let Some((k, _)) = self.map.get_key_value(key) {
            return Some(k.as_str());
        }
        self.map
            .keys()
            .find(|k| k.eq_ignore_ascii_case(key))
            .map(String::as_str)
    }

    /// Whether the field is present (and not null), without marking it used.
    pub fn has(&self, key: &str) -> bool {
        self.peek(key).is_some()
    }

    /// The raw value of a field without marking it used. `null` counts as absent.
    pub fn peek(&self, key: &str) -> Option<&'a Value> {
        self.key_as_written(key)
            .and_then(|k| self.map.get(k))
            .filter(|v| !v.is_null())
    }

    /// The raw value of a field; marks it used. `null` counts as absent.
    pub fn raw(&mut self, key: &str) -> Option<(&'a Value, Path)> {
        let k = self.key_as_written(key)?;
        self.used.insert(k);
        let value = self.map.get(k)?;
        if value.is_null() {
            None
        } else {
            Some((value, self.path.key(k)))
        }
    }

    /// A string field; numbers and booleans are accepted as their text.
    pub fn string(&mut self, key: &str, diags: &mut Diagnostics) -> Option<String> {
        let (value, path) = self.raw(key)?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                diags.error(&path, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }

    /// A boolean field: `true`/`false`, or the strings "true"/"false" (any case).
    pub fn bool(&mut self, key: &str, default: bool, diags: &mut Diagnostics) -> bool {
        let Some((value, path)) = self.raw(key) else {
            return default;
        };
        match value {
            Value::Bool(b) => *b,
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.eq_ignore_ascii_case("false") => false,
            other => {
                diags.error(
                    &path,
                    format!("expected true or false, got {}", describe(other)),
                );
                default
            }
        }
    }

    /// A whole number in `min..=max`, given as a number or a numeric string.
    pub fn integer(
        &mut self,
        key: &str,
        min: u64,
        max: u64,
        default: u64,
        diags: &mut Diagnostics,
    ) -> u64 {
        let Some((value, path)) = self.raw(key) else {
            return default;
        };
        match integer_in(value, min, max) {
            Some(n) => n,
            None => {
                diags.error(
                    &path,
                    format!("expected {min}-{max}, got {}", describe(value)),
                );
                default
            }
        }
    }

    /// A list of strings (a single string is taken as a list of one).
    pub fn strings(&mut self, key: &str, diags: &mut Diagnostics) -> Vec<String> {
        let Some((value, path)) = self.raw(key) else {
            return Vec::new();
        };
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        diags.error(
                            &path.index(i),
                            format!("expected a string, got {}", describe(other)),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                diags.error(
                    &path,
                    format!("expected a list of strings, got {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    /// A list of objects, each with its path.
    pub fn objects(&mut self, key: &str, diags: &mut Diagnostics) -> Vec<ObjectReader<'a>> {
        let Some((value, path)) = self.raw(key) else {
            return Vec::new();
        };
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| ObjectReader::of(item, path.index(i), diags))
                .collect(),
            // HCL writes a single block or object where JSON has a list of one.
            Value::Object(map) => vec![ObjectReader::new(map, path)],
            other => {
                diags.error(
                    &path,
                    format!("expected a list of objects, got {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    /// A nested object.
    pub fn object(&mut self, key: &str, diags: &mut Diagnostics) -> Option<ObjectReader<'a>> {
        let (value, path) = self.raw(key)?;
        match value {
            // HCL blocks and some hand-written JSON wrap a single object in a list.
            Value::Array(items) if items.len() == 1 => ObjectReader::of(&items[0], path, diags),
            _ => ObjectReader::of(value, path, diags),
        }
    }

    /// The fields nobody read, in the order they were written.
    pub fn finish(self) -> Vec<Leftover> {
        self.map
            .iter()
            .filter(|(k, _)| !self.used.contains(k.as_str()))
            .map(|(k, v)| Leftover {
                path: self.path.key(k),
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
}

fn integer_in(value: &Value, min: u64, max: u64) -> Option<u64> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    (min..=max).contains(&n).then_some(n)
}

/// A short description of a value's kind, for "expected X, got Y".
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_accept_numbers_and_numeric_strings_and_report_the_rest() {
        let doc = json!({"A": 3306, "B": "3306", "C": "abc", "D": 0, "E": -1, "F": 1.5});
        let Value::Object(map) = &doc else {
            unreachable!()
        };
        let mut diags = Diagnostics::default();
        let mut r = ObjectReader::new(map, Path::root().key("X"));
        assert_eq!(r.integer("A", 1, 65535, 7, &mut diags), 3306);
        assert_eq!(r.integer("b", 1, 65535, 7, &mut diags), 3306);
        assert_eq!(r.integer("C", 1, 65535, 7, &mut diags), 7);
        assert_eq!(r.integer("D", 1, 65535, 7, &mut diags), 7);
        assert_eq!(r.integer("E", 1, 65535, 7, &mut diags), 7);
        assert_eq!(r.integer("F", 1, 65535, 7, &mut diags), 7);
        let messages: Vec<String> = diags.errors.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            messages,
            vec![
                r#"X.C: expected 1-65535, got "abc""#,
                "X.D: expected 1-65535, got 0",
                "X.E: expected 1-65535, got -1",
                "X.F: expected 1-65535, got 1.5",
            ]
        );
        assert!(r.finish().is_empty());
    }

    #[test]
    fn unread_fields_are_returned_with_their_paths() {
        let doc = json!({"Host": "h", "Hots": "typo"});
        let Value::Object(map) = &doc else {
            unreachable!()
        };
        let mut diags = Diagnostics::default();
        let mut r = ObjectReader::new(map, Path::root().key("C"));
        assert_eq!(r.string("host", &mut diags).as_deref(), Some("h"));
        let left = r.finish();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].path.to_string(), "C.Hots");
    }
}
