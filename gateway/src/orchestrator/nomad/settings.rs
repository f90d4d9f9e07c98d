//! Nomad's own stanzas of a job, as the job model kept them (`JobSpec::orchestrator_settings`,
//! written in Nomad JSON or HCL), carried into the Nomad job the gateway registers; dtle's
//! defaults where the user gave none.
//!
//! # What is carried, and where
//! Each kept field has a level (job, group or task, read from its path) and, inside a group or
//! task, the task it was written for (`KeptField::role`); a group-level field whose task is
//! unknown applies to both groups. Keys are matched without regard to case or `_`, so HCL's
//! `delay_function = "exponential"` and JSON's `"DelayFunction"` are one field; HCL durations
//! (`"30m"`) become nanoseconds as Nomad's JSON API wants them.
//! - `restart` / `RestartPolicy` (group or task) → the group's `RestartPolicy`;
//! - `reschedule` / `Reschedule` (job) → the job's `Reschedule`, and `reschedule` /
//!   `ReschedulePolicy` (group) → the group's `ReschedulePolicy`.
//!
//!   A policy is carried with the fields the user wrote and no others: Nomad fills the rest with
//!   its own defaults and merges a job's reschedule into its groups', as it would for the same job
//!   submitted to it. dtle's policies ([`default_restart`], [`default_reschedule`]) go only to a
//!   group no policy of that kind applies to (a merge into them could make what the user wrote
//!   invalid: Nomad refuses `attempts` and `interval` beside `unlimited = true`);
//! - `constraint` / `Constraints` and `affinity` / `Affinities` → the same level's list, except a
//!   task's own `${node.unique.name}`/`${node.unique.id}` constraints, which the job model turned
//!   into the task's placement and [`super::job`] writes back itself;
//! - `resources` (cpu, cores, memory, memory_max) and `kill_timeout` → the task's;
//! - `meta` → the same level's `Meta` (dtle's own keys win at the job's level).
//!
//! Anything else (update, migrate, spread, vault, templates, ...) is left out and named in
//! [`Carried::left_out`], which the orchestrator logs. A carried stanza that cannot be read (an
//! unknown key, a bad duration) refuses the job with its path: Nomad would refuse it too.

use super::duration::parse_duration;
use jobs::{KeptField, Role};
use serde_json::{json, Map, Value};

/// A task's `kill_timeout` unless the job gives one: as the embedded orchestrator waits, since
/// an applier finishes the group it is committing before it stops (Nomad's own default is 5 s).
pub const DEFAULT_KILL_TIMEOUT_NS: u64 = 10_000_000_000;

const SECOND: u64 = 1_000_000_000;

/// dtle's restart policy: up to 10 restarts within 30 minutes (the embedded orchestrator's
/// count), 15 s apart, then the allocation fails and is rescheduled.
pub fn default_restart() -> Map<String, Value> {
    object(json!({"Attempts": 10, "Interval": 1800 * SECOND, "Delay": 15 * SECOND, "Mode": "fail"}))
}

/// dtle's reschedule policy (as dtle 3.x registered it): without limit, after a delay growing
/// exponentially from 5 s to 1 min.
pub fn default_reschedule() -> Map<String, Value> {
    object(json!({
        "Attempts": 0, "Interval": 0, "Unlimited": true,
        "DelayFunction": "exponential", "Delay": 5 * SECOND, "MaxDelay": 60 * SECOND,
    }))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A stanza that cannot be carried into the Nomad job.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    /// The stanza's path in the submitted job.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// The fields to add to the Nomad job, by level. Groups and tasks are indexed by
/// [`role_index`].
#[derive(Debug, Default)]
pub struct Carried {
    /// Job-level fields (`Constraints`, `Affinities`, `Meta`).
    pub job: Map<String, Value>,
    /// Each group's fields (`RestartPolicy`, `ReschedulePolicy`, `Constraints`, ...).
    pub groups: [Map<String, Value>; 2],
    /// Each task's fields (`Constraints`, `Affinities`, `Resources`, `KillTimeout`, `Meta`).
    pub tasks: [Map<String, Value>; 2],
    /// Paths of the stanzas left out.
    pub left_out: Vec<String>,
}

/// 0 for the Src, 1 for the Dest.
pub fn role_index(role: Role) -> usize {
    match role {
        Role::Src => 0,
        Role::Dest => 1,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Job,
    Group,
    Task,
}

/// A field of a Nomad object: its JSON API name, other spellings, and its type.
struct Field(&'static str, &'static [&'static str], Kind);

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Duration,
    Bool,
    Str,
}

const RESTART: &[Field] = &[
    Field("Attempts", &[], Kind::Int),
    Field("Interval", &[], Kind::Duration),
    Field("Delay", &[], Kind::Duration),
    Field("Mode", &[], Kind::Str),
    Field("RenderTemplates", &[], Kind::Bool),
];
const RESCHEDULE: &[Field] = &[
    Field("Attempts", &[], Kind::Int),
    Field("Interval", &[], Kind::Duration),
    Field("Delay", &[], Kind::Duration),
    Field("DelayFunction", &[], Kind::Str),
    Field("MaxDelay", &[], Kind::Duration),
    Field("Unlimited", &[], Kind::Bool),
];
const RESOURCES: &[Field] = &[
    Field("CPU", &[], Kind::Int),
    Field("Cores", &[], Kind::Int),
    Field("MemoryMB", &["memory"], Kind::Int),
    Field("MemoryMaxMB", &["memorymax"], Kind::Int),
];
/// Constraint operators HCL also accepts as a key of their own (`distinct_hosts = true`).
const OPERATOR_KEYS: &[&str] = &[
    "distinct_hosts",
    "distinct_property",
    "regexp",
    "version",
    "semver",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "is_set",
    "is_not_set",
];

/// Compared without case or underscores.
fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The level a kept field was written at, and its key, from its path.
fn locate(path: &str) -> (Level, String) {
    let level = if path.contains(".Tasks[") || path.contains(".task[") {
        Level::Task
    } else if path.contains("TaskGroups[") || path.contains(".group[") {
        Level::Group
    } else {
        Level::Job
    };
    let last = path.rsplit('.').next().unwrap_or(path);
    let key = last.split('[').next().unwrap_or(last);
    (level, norm(key))
}

/// Carries `settings` (see the module doc).
///
/// # Errors
/// The first stanza that cannot be read.
pub fn carry(settings: &[KeptField]) -> Result<Carried, SettingsError> {
    let mut out = Carried::default();
    for task in &mut out.tasks {
        task.insert("KillTimeout".into(), json!(DEFAULT_KILL_TIMEOUT_NS));
    }
    let mut ordered: Vec<(Level, String, &KeptField)> = settings
        .iter()
        .map(|k| {
            let (level, key) = locate(&k.path);
            (level, key, k)
        })
        .collect();
    // The job's first, then the groups', then the tasks'.
    ordered.sort_by_key(|(level, _, _)| *level);
    for (level, key, kept) in ordered {
        let roles: Vec<usize> = match kept.role {
            Some(role) => vec![role_index(role)],
            None => vec![0, 1],
        };
        let fail = |message: String| SettingsError {
            path: kept.path.clone(),
            message,
        };
        match (level, key.as_str()) {
            (Level::Group | Level::Task, "restart" | "restartpolicy") => {
                let fields = policy(&kept.value, RESTART, "restart").map_err(fail)?;
                for i in roles {
                    merge(&mut out.groups[i], "RestartPolicy", fields.clone());
                }
            }
            (Level::Job, "reschedule") => {
                let fields = policy(&kept.value, RESCHEDULE, "reschedule").map_err(fail)?;
                merge(&mut out.job, "Reschedule", fields);
            }
            (Level::Group, "reschedule" | "reschedulepolicy") => {
                let fields = policy(&kept.value, RESCHEDULE, "reschedule").map_err(fail)?;
                for i in roles {
                    merge(&mut out.groups[i], "ReschedulePolicy", fields.clone());
                }
            }
            (_, "constraint" | "constraints" | "affinity" | "affinities") => {
                let affinity = key.starts_with("affinit");
                // The job model reads a task's own node pins into its placement.
                let skip_pins = level == Level::Task && !affinity;
                let items = placements(&kept.value, affinity, skip_pins).map_err(fail)?;
                let list = if affinity {
                    "Affinities"
                } else {
                    "Constraints"
                };
                for target in targets(&mut out, level, &roles) {
                    append(target, list, &items);
                }
            }
            (Level::Task, "resources") => {
                let fields = policy(&kept.value, RESOURCES, "resources").map_err(fail)?;
                for i in roles {
                    merge(&mut out.tasks[i], "Resources", fields.clone());
                }
            }
            (Level::Task, "killtimeout") => {
                let ns = convert(&kept.value, Kind::Duration).map_err(fail)?;
                for i in roles {
                    out.tasks[i].insert("KillTimeout".into(), ns.clone());
                }
            }
            (_, "meta") => {
                let meta = meta(&kept.value).map_err(fail)?;
                for target in targets(&mut out, level, &roles) {
                    merge(target, "Meta", meta.clone());
                }
            }
            _ => out.left_out.push(kept.path.clone()),
        }
    }
    let job_reschedule = out.job.contains_key("Reschedule");
    for group in &mut out.groups {
        if !group.contains_key("RestartPolicy") {
            group.insert("RestartPolicy".into(), Value::Object(default_restart()));
        }
        if !group.contains_key("ReschedulePolicy") && !job_reschedule {
            let policy = Value::Object(default_reschedule());
            group.insert("ReschedulePolicy".into(), policy);
        }
    }
    Ok(out)
}

/// The objects a field of `level` goes into.
fn targets<'a>(
    out: &'a mut Carried,
    level: Level,
    roles: &[usize],
) -> Vec<&'a mut Map<String, Value>> {
    match level {
        Level::Job => vec![&mut out.job],
        Level::Group => out
            .groups
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| roles.contains(i))
            .map(|(_, m)| m)
            .collect(),
        Level::Task => out
            .tasks
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| roles.contains(i))
            .map(|(_, m)| m)
            .collect(),
    }
}

/// Sets each of `fields` in the object under `key` (created if absent).
fn merge(target: &mut Map<String, Value>, key: &str, fields: Map<String, Value>) {
    let entry = target
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(existing) = entry {
        existing.extend(fields);
    } else {
        *entry = Value::Object(fields);
    }
}

fn append(target: &mut Map<String, Value>, key: &str, items: &[Value]) {
    if items.is_empty() {
        return;
    }
    let entry = target
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.extend_from_slice(items);
    }
}

/// The objects of a stanza: an object (JSON), or a list of objects (HCL blocks; JSON lists).
fn objects(value: &Value) -> Result<Vec<&Map<String, Value>>, String> {
    match value {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_object()
                    .ok_or_else(|| format!("expected an object, got {item}"))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!("expected an object, got {other}")),
    }
}

/// One policy-like stanza as Nomad API fields.
fn policy(value: &Value, fields: &[Field], what: &str) -> Result<Map<String, Value>, String> {
    let blocks = objects(value)?;
    if blocks.len() > 1 {
        return Err(format!("more than one {what} block"));
    }
    let mut out = Map::new();
    for (key, v) in blocks.into_iter().flatten() {
        let k = norm(key);
        let Some(Field(api, _, kind)) = fields
            .iter()
            .find(|Field(api, also, _)| norm(api) == k || also.contains(&k.as_str()))
        else {
            let known: Vec<&str> = fields.iter().map(|f| f.0).collect();
            return Err(format!(
                "unknown {what} setting {key:?} (known: {})",
                known.join(", ")
            ));
        };
        if v.is_null() {
            continue;
        }
        out.insert(
            (*api).to_owned(),
            convert(v, *kind).map_err(|e| format!("{key}: {e}"))?,
        );
    }
    Ok(out)
}

fn convert(value: &Value, kind: Kind) -> Result<Value, String> {
    match (kind, value) {
        (Kind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        (Kind::Int, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected a whole number, got {s:?}")),
        (Kind::Duration, Value::Number(n)) if n.is_u64() => Ok(value.clone()),
        (Kind::Duration, Value::String(s)) => parse_duration(s).map(Value::from),
        (Kind::Bool, Value::Bool(_)) | (Kind::Str, Value::String(_)) => Ok(value.clone()),
        (Kind::Bool, Value::String(s)) if matches!(s.as_str(), "true" | "false") => {
            Ok(Value::Bool(s == "true"))
        }
        (Kind::Int, _) => Err(format!("expected a whole number, got {value}")),
        (Kind::Duration, _) => Err(format!(
            "expected a duration (\"30s\", \"1h30m\") or nanoseconds, got {value}"
        )),
        (Kind::Bool, _) => Err(format!("expected true or false, got {value}")),
        (Kind::Str, _) => Err(format!("expected a string, got {value}")),
    }
}

/// Constraints or affinities as Nomad API objects; without the node pins if `skip_pins`.
fn placements(value: &Value, affinity: bool, skip_pins: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for item in objects(value)? {
        let field = |json: &str, hcl: &str| {
            item.iter()
                .find(|(k, _)| k.as_str() == json || norm(k) == hcl)
                .map(|(_, v)| v)
        };
        let text = |v: Option<&Value>| match v {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let l = text(field("LTarget", "attribute"));
        let mut r = text(field("RTarget", "value"));
        let mut op = text(field("Operand", "operator"));
        if let Some((key, v)) = item
            .iter()
            .find(|(k, _)| OPERATOR_KEYS.iter().any(|o| norm(o) == norm(k)))
        {
            op = key.to_ascii_lowercase();
            r = text(Some(v));
        }
        if op.is_empty() {
            op = "=".into();
        }
        let pin = matches!(l.trim(), "${node.unique.name}" | "${node.unique.id}");
        if skip_pins && pin && matches!(op.as_str(), "=" | "==") {
            continue;
        }
        if l.is_empty() && !op.starts_with("distinct") {
            return Err(format!(
                "a constraint without an attribute: {}",
                json!(item)
            ));
        }
        let mut out_item = json!({"LTarget": l, "RTarget": r, "Operand": op});
        if affinity {
            let weight = match field("Weight", "weight") {
                Some(w) => convert(w, Kind::Int)?,
                None => json!(50),
            };
            out_item["Weight"] = weight;
        }
        out.push(out_item);
    }
    Ok(out)
}

/// A `meta` stanza as string pairs.
fn meta(value: &Value) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for block in objects(value)? {
        for (k, v) in block {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            out.insert(k.clone(), Value::String(text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(path: &str, role: Option<Role>, value: Value) -> KeptField {
        KeptField {
            path: path.into(),
            value,
            role,
        }
    }

    #[test]
    fn defaults_without_settings() {
        let carried = carry(&[]).expect("nothing to read");
        for group in &carried.groups {
            assert_eq!(group["RestartPolicy"], Value::Object(default_restart()));
            assert_eq!(group["ReschedulePolicy"]["Unlimited"], true);
        }
        assert_eq!(carried.tasks[1]["KillTimeout"], DEFAULT_KILL_TIMEOUT_NS);
        assert!(carried.job.is_empty() && carried.left_out.is_empty());
    }

    #[test]
    fn hcl_and_json_stanzas_land_on_their_groups_and_tasks() {
        let settings = [
            kept(
                r#"job["j"].group["src"].restart"#,
                Some(Role::Src),
                json!([{"attempts": 3, "interval": "10m", "mode": "delay"}]),
            ),
            kept(
                r#"job["j"].reschedule"#,
                None,
                json!([{"attempts": 1, "interval": "30m", "unlimited": false}]),
            ),
            kept(
                "Job.TaskGroups[1].ReschedulePolicy",
                Some(Role::Dest),
                json!({"Unlimited": true, "DelayFunction": "constant"}),
            ),
            kept(
                r#"job["j"].group["dest"].task["dest"].constraint"#,
                Some(Role::Dest),
                json!([
                    {"attribute": "${node.unique.name}", "value": "node-b"},
                    {"attribute": "${attr.kernel.name}", "value": "linux"},
                    {"distinct_hosts": true}
                ]),
            ),
            kept(
                "Job.TaskGroups[0].Tasks[0].Resources",
                Some(Role::Src),
                json!({"CPU": 500, "MemoryMB": 512}),
            ),
            kept(
                r#"job["j"].group["src"].task["src"].kill_timeout"#,
                Some(Role::Src),
                json!("20s"),
            ),
            kept(
                r#"job["j"].group["src"].constraint"#,
                Some(Role::Src),
                json!([{"attribute": "${node.unique.name}", "value": "node-a"}]),
            ),
            kept(r#"job["j"].meta"#, None, json!([{"team": "dba"}])),
            kept(r#"job["j"].update"#, None, json!([{"max_parallel": 1}])),
        ];
        let c = carry(&settings).expect("readable");
        // As written: Nomad fills in the rest.
        assert_eq!(
            c.groups[0]["RestartPolicy"],
            json!({"Attempts": 3, "Interval": 600 * SECOND, "Mode": "delay"})
        );
        assert_eq!(
            c.groups[1]["RestartPolicy"],
            Value::Object(default_restart())
        );
        // The job's reschedule on the job (Nomad merges it into the groups), the Dest group's
        // own on that group; no dtle default where the job's applies.
        assert_eq!(
            c.job["Reschedule"],
            json!({"Attempts": 1, "Interval": 1800 * SECOND, "Unlimited": false})
        );
        assert!(c.groups[0].get("ReschedulePolicy").is_none());
        assert_eq!(
            c.groups[1]["ReschedulePolicy"],
            json!({"Unlimited": true, "DelayFunction": "constant"})
        );
        // The node pin is the placement's business; the rest is carried.
        assert_eq!(
            c.tasks[1]["Constraints"],
            json!([
                {"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="},
                {"LTarget": "", "RTarget": "true", "Operand": "distinct_hosts"}
            ])
        );
        assert!(c.tasks[0].get("Constraints").is_none());
        // A group's pin is no task's placement: carried as written.
        assert_eq!(
            c.groups[0]["Constraints"],
            json!([{"LTarget": "${node.unique.name}", "RTarget": "node-a", "Operand": "="}])
        );
        assert_eq!(
            c.tasks[0]["Resources"],
            json!({"CPU": 500, "MemoryMB": 512})
        );
        assert_eq!(c.tasks[0]["KillTimeout"], 20 * SECOND);
        assert_eq!(c.job["Meta"], json!({"team": "dba"}));
        assert_eq!(c.left_out, vec![r#"job["j"].update"#]);
    }

    #[test]
    fn unreadable_stanzas_name_their_path() {
        let bad = [kept(
            r#"job["j"].group["src"].restart"#,
            Some(Role::Src),
            json!([{"atempts": 3}]),
        )];
        let err = carry(&bad).expect_err("unknown key");
        assert!(
            err.to_string()
                .starts_with(r#"job["j"].group["src"].restart: unknown restart setting "atempts""#),
            "{err}"
        );
        let bad = [kept("Job.Reschedule", None, json!({"Delay": "soon"}))];
        assert!(carry(&bad)
            .expect_err("bad duration")
            .to_string()
            .contains("not a duration"));
    }
}
