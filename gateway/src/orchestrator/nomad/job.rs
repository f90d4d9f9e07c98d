//! A dtle job as a Nomad job ([`to_nomad`]), and a Nomad job read back as a [`JobRecord`]
//! ([`from_nomad`]).
//!
//! # The Nomad job
//! `ID`, `Name`, `Region` and `Datacenters` are the dtle job's; `Type` is `service` (tasks run
//! until stopped). Two groups, `Src` and `Dest`, each `Count` 1 with one task of the same name
//! and `Driver` `dtle`: the plugin tells a task's role by its name and builds the job a task
//! runs from that task's `Config` alone (driver/src/plugin/task_spec.rs). So each `Config` is
//! that task's dtle 2.x config as `jobs::render` writes it, with its own `ConnectionConfig`:
//! every field with its effective value, blocks as objects and lists of objects, which is what
//! the plugin's TaskConfigSchema decodes; each task receives only its own server's password.
//! Nomad's client reads every string of a task config as an HCL template, so `${` and `%{` are
//! written `$${` and `%%{` (a password or a rename template `${1}` arrives intact).
//!
//! `NodeName`/`NodeID` pin a task with a constraint on `${node.unique.name}`/`${node.unique.id}`,
//! or, when the job allows failover, with an affinity of weight 100 (as dtle 3.x did): Nomad
//! prefers the node but may place the task elsewhere when it is gone. Restart, reschedule and
//! other Nomad stanzas come from [`super::settings`].
//!
//! # What Nomad keeps for the gateway
//! The job in Nomad is the only record: the gateway keeps no state. Besides what the job says
//! itself, `Meta` holds `dtle_failover`, `dtle_settings` (the kept Nomad stanzas as written, with
//! secret-looking values masked), `dtle_posted` (the task configs in the form the user posted
//! them, secrets masked, so the job views show `"ChunkSize": "2000"` as written) and, while the
//! job is paused, `dtle_paused = "true"`.
//! [`from_nomad`] reads the job's tasks back through the job model (the same Nomad JSON front-end
//! users' jobs go through), so a dtle job written for Nomad by hand reads back too.

use super::settings::{self, role_index, SettingsError};
use crate::orchestrator::JobRecord;
use jobs::{JobSpec, Placement, Role};
use serde_json::{json, Map, Value};

/// `Meta` key: `"true"` while the job is paused (its `Stop` is then true too).
pub const META_PAUSED: &str = "dtle_paused";
/// `Meta` key: the dtle job's `Failover`.
pub const META_FAILOVER: &str = "dtle_failover";
/// `Meta` key: the dtle job's kept Nomad stanzas (JSON), secrets masked.
pub const META_SETTINGS: &str = "dtle_settings";
/// `Meta` key: the task configs as posted ([`jobs::Posted`], JSON), secrets masked.
pub const META_POSTED: &str = "dtle_posted";

/// Keeps the form the job was posted in with the Nomad job (`Meta.dtle_posted`).
pub fn keep_posted(job: &mut Value, posted: &jobs::Posted) {
    if *posted == jobs::Posted::default() {
        return;
    }
    let Ok(text) = serde_json::to_string(posted) else {
        return;
    };
    if !job.get("Meta").is_some_and(Value::is_object) {
        job["Meta"] = json!({});
    }
    if let Some(meta) = job["Meta"].as_object_mut() {
        meta.insert(META_POSTED.into(), json!(text));
    }
}

/// The job to register, and the stanzas it leaves out.
#[derive(Debug)]
pub struct NomadJob {
    /// The job JSON (the value of `"Job"` in a register request). Holds passwords: never log it.
    pub body: Value,
    /// Paths of the user's Nomad stanzas not carried into it.
    pub left_out: Vec<String>,
}

/// The Nomad job for `spec`, in `namespace` when one is configured.
///
/// # Errors
/// A Nomad stanza of the job that cannot be carried over.
pub fn to_nomad(spec: &JobSpec, namespace: Option<&str>) -> Result<NomadJob, SettingsError> {
    let mut carried = settings::carry(&spec.orchestrator_settings)?;
    let tasks = jobs::render::dtle_tasks(spec);
    let mut meta = match carried.job.remove("Meta") {
        Some(Value::Object(user)) => user,
        _ => Map::new(),
    };
    // Only a pause sets the mark.
    meta.remove(META_PAUSED);
    meta.remove(META_POSTED);
    meta.insert(META_FAILOVER.into(), json!(spec.failover.to_string()));
    let kept = serde_json::to_string(&spec.redacted().orchestrator_settings).unwrap_or_default();
    meta.insert(META_SETTINGS.into(), json!(kept));

    let groups: Vec<Value> = [Role::Src, Role::Dest]
        .into_iter()
        .map(|role| {
            let i = role_index(role);
            let placement = match role {
                Role::Src => &spec.src.placement,
                Role::Dest => &spec.dest.placement,
            };
            let config = tasks
                .get(i)
                .and_then(|t| t.get("Config"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            let mut task = Map::new();
            task.insert("Name".into(), json!(role.as_str()));
            task.insert("Driver".into(), json!("dtle"));
            task.insert("Config".into(), escape_templates(config));
            task.extend(std::mem::take(&mut carried.tasks[i]));
            pin(&mut task, placement, spec.failover);
            let mut group = Map::new();
            group.insert("Name".into(), json!(role.as_str()));
            group.insert("Count".into(), json!(1));
            group.extend(std::mem::take(&mut carried.groups[i]));
            group.insert("Tasks".into(), json!([task]));
            Value::Object(group)
        })
        .collect();

    let mut job = Map::new();
    job.insert("ID".into(), json!(spec.id));
    job.insert("Name".into(), json!(spec.name));
    job.insert("Type".into(), json!("service"));
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        job.insert("Namespace".into(), json!(ns));
    }
    job.insert("Region".into(), json!(spec.region));
    job.insert("Datacenters".into(), json!(spec.datacenters));
    job.extend(carried.job);
    job.insert("Meta".into(), Value::Object(meta));
    job.insert("TaskGroups".into(), Value::Array(groups));
    Ok(NomadJob {
        body: Value::Object(job),
        left_out: carried.left_out,
    })
}

/// Pins a task to its node: a constraint, or with failover an affinity.
fn pin(task: &mut Map<String, Value>, placement: &Placement, failover: bool) {
    let pins = [
        ("${node.unique.name}", &placement.node_name),
        ("${node.unique.id}", &placement.node_id),
    ];
    for (target, value) in pins {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let (list, item) = if failover {
            (
                "Affinities",
                json!({"LTarget": target, "RTarget": value, "Operand": "=", "Weight": 100}),
            )
        } else {
            (
                "Constraints",
                json!({"LTarget": target, "RTarget": value, "Operand": "="}),
            )
        };
        let entry = task
            .entry(list.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(item);
        }
    }
}

/// Every string escaped for HCL's template syntax: `${` → `$${`, `%{` → `%%{`.
pub fn escape_templates(value: Value) -> Value {
    map_strings(value, &|s| s.replace("${", "$${").replace("%{", "%%{"))
}

/// The reverse of [`escape_templates`], as the Nomad client's HCL decoding does.
pub fn unescape_templates(value: Value) -> Value {
    map_strings(value, &|s| s.replace("$${", "${").replace("%%{", "%{"))
}

fn map_strings(value: Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
}

/// Why a Nomad job is not a dtle job the gateway can show.
#[derive(Debug, thiserror::Error)]
#[error("Nomad job {id} is not a dtle job: {reason}")]
pub struct NotDtle {
    /// The job's ID.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// The `dtle` tasks of a Nomad job, with their roles (by task name, else group name).
fn dtle_tasks(job: &Value) -> Vec<(Role, &Map<String, Value>)> {
    let groups = job.get("TaskGroups").and_then(Value::as_array);
    let mut out = Vec::new();
    for group in groups.into_iter().flatten() {
        let group_name = group
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tasks = group.get("Tasks").and_then(Value::as_array);
        for task in tasks.into_iter().flatten().filter_map(Value::as_object) {
            if task.get("Driver").and_then(Value::as_str) != Some("dtle") {
                continue;
            }
            let name = task.get("Name").and_then(Value::as_str).unwrap_or_default();
            if let Some(role) =
                jobs::role_from_name(name).or_else(|| jobs::role_from_name(group_name))
            {
                out.push((role, task));
            }
        }
    }
    out
}

/// A Nomad job's `Meta` value.
pub fn meta<'a>(job: &'a Value, key: &str) -> Option<&'a str> {
    job.get("Meta")?.get(key)?.as_str()
}

/// Whether the Nomad job is marked stopped (`nomad job stop`, a stop, a pause).
pub fn stopped(job: &Value) -> bool {
    job.get("Stop").and_then(Value::as_bool).unwrap_or(false)
}

/// A Nomad job (as `GET /v1/job/:id` answers) as the gateway's record: the dtle job read back
/// through the job model, Nomad's status and indexes, and the pause mark.
///
/// # Errors
/// [`NotDtle`] when the job runs no dtle task, or its tasks do not make a valid dtle job.
pub fn from_nomad(job: &Value) -> Result<JobRecord, NotDtle> {
    let id = job
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let not_dtle = |reason: String| NotDtle {
        id: id.clone(),
        reason,
    };
    if dtle_tasks(job).is_empty() {
        return Err(not_dtle("it has no task with driver \"dtle\"".into()));
    }
    let mut doc = job.clone();
    if let Some(groups) = doc.get_mut("TaskGroups").and_then(Value::as_array_mut) {
        for group in groups {
            if let Some(tasks) = group.get_mut("Tasks").and_then(Value::as_array_mut) {
                for task in tasks {
                    if let Some(config) = task.get_mut("Config") {
                        *config = unescape_templates(config.take());
                    }
                }
            }
        }
    }
    let parsed =
        jobs::from_json_value(&json!({ "Job": doc })).map_err(|e| not_dtle(e.to_string()))?;
    let mut spec = parsed.spec;
    // Nomad's own fields the job model does not know are Nomad's, not the user's.
    spec.unrecognised.clear();
    if let Some(failover) = meta(job, META_FAILOVER) {
        spec.failover = failover == "true";
    }
    if let Some(kept) = meta(job, META_SETTINGS) {
        match serde_json::from_str(kept) {
            Ok(settings) => spec.orchestrator_settings = settings,
            Err(err) => tracing::warn!(job = %id, %err, "the job's dtle_settings cannot be read"),
        }
    }
    for (role, task) in dtle_tasks(job) {
        let placement = match role {
            Role::Src => &mut spec.src.placement,
            Role::Dest => &mut spec.dest.placement,
        };
        affinity_pins(task, placement);
    }
    let paused = meta(job, META_PAUSED) == Some("true");
    let nomad_status = job
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or("pending");
    let (status, status_description) = if paused {
        (
            "paused".to_owned(),
            "paused: its tasks are stopped; resume continues from the target's position".to_owned(),
        )
    } else if stopped(job) && nomad_status != "dead" {
        (
            nomad_status.to_owned(),
            "stopping: Nomad is stopping its allocations".to_owned(),
        )
    } else {
        let description = job.get("StatusDescription").and_then(Value::as_str);
        (
            nomad_status.to_owned(),
            description.unwrap_or_default().to_owned(),
        )
    };
    let index = |key: &str| job.get(key).and_then(Value::as_u64).unwrap_or(0);
    let posted = meta(job, META_POSTED)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let mut record = JobRecord::new(spec, posted, index("CreateIndex"));
    record.status = status;
    record.status_description = status_description;
    record.modify_index = index("ModifyIndex");
    record.job_modify_index = index("JobModifyIndex");
    record.paused = paused;
    Ok(record)
}

/// Node pins written as affinities (a failover job's), which the job model does not read.
fn affinity_pins(task: &Map<String, Value>, placement: &mut Placement) {
    let affinities = task.get("Affinities").and_then(Value::as_array);
    for affinity in affinities.into_iter().flatten() {
        let text = |key: &str| {
            affinity
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if !matches!(text("Operand"), "=" | "==") || text("RTarget").is_empty() {
            continue;
        }
        let slot = match text("LTarget").trim() {
            "${node.unique.name}" => &mut placement.node_name,
            "${node.unique.id}" => &mut placement.node_id,
            _ => continue,
        };
        slot.get_or_insert_with(|| text("RTarget").to_owned());
    }
}

/// Whether a job read back from Nomad is the job posted: everything but the fields the job model
/// kept unused, with kept Nomad stanzas compared as Nomad keeps them (secrets masked).
pub fn same_definition(registered: &JobSpec, posted: &JobSpec) -> bool {
    let comparable = |spec: &JobSpec| {
        let mut spec = spec.clone();
        spec.unrecognised.clear();
        spec.orchestrator_settings = spec.redacted().orchestrator_settings;
        spec
    };
    comparable(registered) == comparable(posted)
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
