//! The two tasks' `Config` objects as the user wrote them, and the job's tasks shown in that form.
//!
//! dtle 2.x kept each task's config as the map it was posted as and printed that map back:
//! `"ChunkSize": "2000"` came back a string, `"Port": "3306"` too, and fields it did not use
//! (`ApproveHeterogeneous`, `TrafficAgainstLimits`) came back as well. A [`JobSpec`] holds parsed
//! values (a `u64` chunk size, a `u16` port), so the form lives beside it in [`Posted`]: the
//! configs as written, every secret-looking value masked (the real passwords are on the spec, and
//! nothing shown or stored beside it needs them).
//!
//! [`tasks_as_posted`] shows a job's tasks: each rendered field ([`crate::render`], the effective
//! value, defaults filled in) with the value the user posted for it when they posted one (matched
//! case-insensitively, as the parser reads keys), the fields the user posted that the render does
//! not have (unused, unknown, or the other task's, which dtle 2.x echoed on both) as posted, in
//! the user's order, then the rendered fields the user left out. Posting the result back reads as
//! the same job. The form is not part of the job's identity: two posts of one job in different
//! forms are equal [`JobSpec`]s.

use crate::redact::redact_value;
use crate::render::dtle_tasks;
use crate::spec::{JobSpec, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Keys that say where a connection was written in the later shape; its values are shown as the
/// task's own `ConnectionConfig`, as the render shows every job.
const SHAPE_KEYS: &[&str] = &["SrcConnectionConfig", "DestConnectionConfig"];

/// The tasks' configs as posted, secrets masked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The Src task's `Config`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Map<String, Value>>,
    /// The Dest task's `Config`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<Map<String, Value>>,
}

impl Posted {
    /// The configs as written, with every secret-looking value masked.
    pub fn new(src: Option<&Map<String, Value>>, dest: Option<&Map<String, Value>>) -> Self {
        let masked = |config: Option<&Map<String, Value>>| {
            config.map(|c| {
                let mut value = Value::Object(c.clone());
                redact_value(&mut value);
                match value {
                    Value::Object(map) => map,
                    _ => Map::new(),
                }
            })
        };
        Self {
            src: masked(src),
            dest: masked(dest),
        }
    }

    fn of(&self, role: Role) -> Option<&Map<String, Value>> {
        match role {
            Role::Src => self.src.as_ref(),
            Role::Dest => self.dest.as_ref(),
        }
    }
}

/// A field of `map` by key, compared case-insensitively (an exact match first).
fn field<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn has(map: &Map<String, Value>, key: &str) -> bool {
    field(map, key).is_some()
}

/// The connection object the user wrote for `role`, wherever the shape put it.
fn posted_connection(posted: &Posted, role: Role) -> Option<&Map<String, Value>> {
    let places: &[(Role, &str)] = match role {
        Role::Src => &[
            (Role::Src, "ConnectionConfig"),
            (Role::Src, "SrcConnectionConfig"),
        ],
        Role::Dest => &[
            (Role::Dest, "ConnectionConfig"),
            (Role::Src, "DestConnectionConfig"),
            (Role::Dest, "DestConnectionConfig"),
        ],
    };
    places.iter().find_map(|(task, key)| {
        match posted.of(*task).and_then(|config| field(config, key)) {
            Some(Value::Object(connection)) => Some(connection),
            // HCL blocks arrive as a list of one object.
            Some(Value::Array(items)) if items.len() == 1 => items[0].as_object(),
            _ => None,
        }
    })
}

/// `rendered` with the user's values over it: posted keys first, in the user's order (rendered
/// ones under the rendered key's spelling), then the rendered keys the user left out.
fn overlay(rendered: &Map<String, Value>, posted: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in posted {
        match rendered.keys().find(|k| k.eq_ignore_ascii_case(key)) {
            Some(canonical) => out.insert(canonical.clone(), value.clone()),
            None => out.insert(key.clone(), value.clone()),
        };
    }
    for (key, value) in rendered {
        if !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// One task's `Config` in the user's form.
fn config_as_posted(rendered: &Map<String, Value>, posted: &Posted, role: Role) -> Value {
    let other = match role {
        Role::Src => Role::Dest,
        Role::Dest => Role::Src,
    };
    let own = posted.of(role);
    let theirs = posted.of(other);
    let mut out = Map::new();
    for (key, value) in own.into_iter().flatten() {
        if SHAPE_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            continue;
        }
        match rendered.keys().find(|k| k.eq_ignore_ascii_case(key)) {
            Some(canonical) if canonical == "ConnectionConfig" => {}
            Some(canonical) => {
                out.insert(canonical.clone(), value.clone());
            }
            None => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in rendered {
        if out.contains_key(key) {
            continue;
        }
        let shown = if key == "ConnectionConfig" {
            match (value, posted_connection(posted, role)) {
                (Value::Object(rendered), Some(written)) => {
                    Value::Object(overlay(rendered, written))
                }
                _ => value.clone(),
            }
        } else {
            // A field of this task the user wrote on the other task (the parser reads it there).
            theirs
                .filter(|_| !own.is_some_and(|o| has(o, key)))
                .and_then(|t| field(t, key))
                .cloned()
                .unwrap_or_else(|| value.clone())
        };
        out.insert(key.clone(), shown);
    }
    Value::Object(out)
}

/// The job's tasks as [`dtle_tasks`] renders them, with the values in the form `posted` has them.
/// Render a [`JobSpec::redacted`] job: passwords are copied from it.
pub fn tasks_as_posted(spec: &JobSpec, posted: &Posted) -> Vec<Value> {
    dtle_tasks(spec)
        .into_iter()
        .zip([Role::Src, Role::Dest])
        .map(|(mut task, role)| {
            if let Value::Object(task) = &mut task {
                if let Some(Value::Object(rendered)) = task.get("Config") {
                    let shown = config_as_posted(rendered, posted, role);
                    task.insert("Config".to_owned(), shown);
                }
            }
            task
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_keep_their_form_and_unused_fields_come_back() {
        let text = r#"{"Name": "p", "Tasks": [
          {"Type": "Src", "Config": {"chunksize": "2000", "ApproveHeterogeneous": true,
            "ReplChanBufferSize": "60", "NatsAddr": "n:1",
            "ConnectionConfig": {"Host": "h", "Port": "3306", "User": "u", "Password": "secret"}}},
          {"Type": "Dest", "Config": {"ReplChanBufferSize": "60", "ParallelWorkers": "2",
            "ConnectionConfig": {"Host": "h", "Port": 3307, "User": "u", "Password": "secret"}}}]}"#;
        let parsed = crate::parse_job(text).expect("valid");
        assert!(!serde_json::to_string(&parsed.posted)
            .expect("json")
            .contains("secret"));
        let tasks = tasks_as_posted(&parsed.spec.redacted(), &parsed.posted);
        let (src, dest) = (&tasks[0]["Config"], &tasks[1]["Config"]);
        assert_eq!(src["ChunkSize"], "2000");
        assert!(src.get("chunksize").is_none());
        assert_eq!(src["ApproveHeterogeneous"], true);
        assert_eq!(src["ConnectionConfig"]["Port"], "3306");
        assert_eq!(src["ConnectionConfig"]["Password"], "*");
        assert_eq!(src["GroupTimeout"], 100, "defaults are shown as rendered");
        assert_eq!(
            dest["ReplChanBufferSize"], "60",
            "the other task's field, as posted"
        );
        assert_eq!(dest["ParallelWorkers"], "2");
        assert_eq!(dest["ConnectionConfig"]["Port"], 3307);
        let keys: Vec<&String> = src.as_object().expect("object").keys().collect();
        assert_eq!(
            keys[..4],
            [
                "ChunkSize",
                "ApproveHeterogeneous",
                "ReplChanBufferSize",
                "NatsAddr"
            ]
        );
        // Shown, then posted back: the same job.
        let again = crate::from_json_value(&json!({"Name": "p", "Tasks": tasks}))
            .expect("parses")
            .spec;
        assert_eq!(again.redacted(), parsed.spec.redacted());
    }

    #[test]
    fn the_later_shape_shows_each_connection_on_its_task() {
        let text = r#"{"Name": "p", "Tasks": [
          {"Type": "Src", "Config": {
            "SrcConnectionConfig": {"Host": "s", "Port": "1", "User": "u", "Password": "x"},
            "DestConnectionConfig": {"Host": "d", "Port": "2", "User": "u", "Password": "y"}}},
          {"Type": "Dest", "Config": {"DestType": "mysql"}}]}"#;
        let parsed = crate::parse_job(text).expect("valid");
        let tasks = tasks_as_posted(&parsed.spec.redacted(), &parsed.posted);
        assert!(tasks[0]["Config"].get("DestConnectionConfig").is_none());
        assert_eq!(tasks[0]["Config"]["ConnectionConfig"]["Port"], "1");
        assert_eq!(tasks[1]["Config"]["ConnectionConfig"]["Port"], "2");
        assert_eq!(tasks[1]["Config"]["ConnectionConfig"]["Password"], "*");
        let again = crate::from_json_value(&json!({"Name": "p", "Tasks": tasks}));
        assert!(again.is_ok(), "{again:?}");
    }
}
