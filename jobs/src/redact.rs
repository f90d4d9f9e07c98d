//! The view of a job that may be shown: every password replaced by `*`.
//!
//! Besides the two connection passwords, fields kept as written (unknown fields, orchestrator
//! settings) are masked wherever a key looks like a secret, at any depth: a misspelt `Pasword` or a
//! Kafka `Password` must not leak either.

use crate::spec::{JobSpec, KeptField, Password};
use serde_json::Value;

/// Key fragments that mark a value as secret (compared lower-case).
const SECRET_KEY_PARTS: &[&str] = &["password", "passwd", "pwd", "secret", "token", "pasword"];

impl JobSpec {
    /// Every password of the job (to seal them at rest, or open sealed ones).
    pub fn passwords_mut(&mut self) -> [&mut Password; 2] {
        [
            &mut self.src.connection.password,
            &mut self.dest.connection.password,
        ]
    }

    /// This job with every password and secret-looking kept field replaced by `*`: the only form in
    /// which a job may be returned by an API, printed or logged.
    pub fn redacted(&self) -> JobSpec {
        let mut job = self.clone();
        job.src.connection.password = Password::new(Password::MASK);
        job.dest.connection.password = Password::new(Password::MASK);
        for field in job
            .unrecognised
            .iter_mut()
            .chain(job.orchestrator_settings.iter_mut())
        {
            redact_kept(field);
        }
        job
    }
}

fn redact_kept(field: &mut KeptField) {
    let last_key = field
        .path
        .rsplit(['.', '['])
        .next()
        .unwrap_or_default()
        .trim_end_matches([']', '"'])
        .trim_start_matches('"');
    if is_secret_key(last_key) {
        field.value = Value::String(Password::MASK.to_owned());
    } else {
        redact_value(&mut field.value);
    }
}

/// Masks, in place, every value under a secret-looking key.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    *v = Value::String(Password::MASK.to_owned());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let mut value = json!({"a": {"Password": "x", "list": [{"api_token": "y"}]}, "Host": "h"});
        redact_value(&mut value);
        assert_eq!(
            value,
            json!({"a": {"Password": "*", "list": [{"api_token": "*"}]}, "Host": "h"})
        );
    }
}
