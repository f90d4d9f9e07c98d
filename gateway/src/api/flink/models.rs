//! Flink's response shapes for jobs, their vertices, plan, configuration, metrics and the
//! cluster, built from [`JobView`]s. Key names and types follow Flink's REST API (its
//! `JobDetails`, `JobDetailsInfo`, `JobConfigInfo`, `ClusterOverviewWithVersion`,
//! `DashboardConfiguration` and metric collections): times in ms since the epoch, -1 for "not
//! yet".

use super::ids;
use super::view::{JobView, JOB_STATES, TASK_STATES};
use crate::orchestrator::history::{JobState, SAMPLE_EVERY};
use jobs::Role;
use serde_json::{json, Map, Value};

/// The Flink REST API version whose shapes are served.
pub const FLINK_VERSION: &str = "1.18.0";

/// What `flink-commit` and `flink-revision` say: the dtle-rs build that answers.
pub fn flink_commit() -> String {
    format!("dtle-rs-{}", env!("CARGO_PKG_VERSION"))
}

/// One entry of `GET /jobs`.
pub fn job_id_with_status(view: &JobView) -> Value {
    json!({ "id": view.flink_id, "status": view.state() })
}

fn duration(start: i64, end: i64, now: i64) -> i64 {
    if start < 0 {
        return -1;
    }
    if end >= 0 {
        end - start
    } else {
        now - start
    }
}

/// One entry of `GET /jobs/overview` (Flink's `JobDetails`).
pub fn job_details(view: &JobView, now: i64) -> Value {
    let (start, end) = (view.start_ms(), view.end_ms());
    let mut tasks = Map::new();
    tasks.insert("total".into(), json!(2));
    for (state, n) in view.task_counts() {
        tasks.insert(state.to_ascii_lowercase(), json!(n));
    }
    json!({
        "jid": view.flink_id,
        "name": view.name(),
        "start-time": start,
        "end-time": end,
        "duration": duration(start, end, now),
        "state": view.state(),
        "last-modification": view.last_modification_ms(),
        "tasks": tasks,
    })
}

/// A vertex's Flink `IOMetricsInfo`.
fn io_metrics(view: &JobView, role: Role, start: i64, end: i64, now: i64) -> Value {
    let totals = view.vertex_totals(role);
    let (idle, backpressured) = view.vertex_waits(role);
    let ran = u64::try_from(duration(start, end, now).max(0)).unwrap_or(0);
    json!({
        "read-bytes": totals.read_bytes,
        "read-bytes-complete": true,
        "write-bytes": totals.write_bytes,
        "write-bytes-complete": true,
        "read-records": totals.read_records,
        "read-records-complete": true,
        "write-records": totals.write_records,
        "write-records-complete": true,
        "accumulated-backpressured-time": backpressured,
        "accumulated-idle-time": idle,
        "accumulated-busy-time": ran.saturating_sub(idle + backpressured) as f64,
    })
}

fn counts_by_state(state: &str) -> Map<String, Value> {
    TASK_STATES
        .iter()
        .map(|s| ((*s).to_owned(), json!(u32::from(*s == state))))
        .collect()
}

/// One vertex of `GET /jobs/:jobid` (Flink's `JobVertexDetailsInfo`).
pub fn vertex(view: &JobView, role: Role, now: i64) -> Value {
    let (start, end) = view.vertex_times(role);
    let state = view.vertex_state(role);
    json!({
        "id": ids::vertex_id(&view.id, role),
        "slotSharingGroupId": ids::vertex_id(&view.id, role),
        "name": vertex_name(view, role),
        "maxParallelism": 1,
        "parallelism": 1,
        "status": state,
        "start-time": start,
        "end-time": end,
        "duration": duration(start, end, now),
        "tasks": counts_by_state(state),
        "metrics": io_metrics(view, role, start, end, now),
    })
}

/// A vertex's name: the task and the server it works on.
fn vertex_name(view: &JobView, role: Role) -> String {
    let spec = view
        .record
        .as_ref()
        .map(|r| &r.spec)
        .or_else(|| view.history.as_ref().and_then(|h| h.spec.as_ref()));
    let Some(spec) = spec else {
        return role.as_str().to_owned();
    };
    match role {
        Role::Src => format!(
            "Src: read {}:{}",
            spec.src.connection.host, spec.src.connection.port
        ),
        Role::Dest => format!(
            "Dest: apply to {}:{}",
            spec.dest.connection.host, spec.dest.connection.port
        ),
    }
}

/// The dataflow plan: the Src feeds the Dest.
pub fn plan(view: &JobView) -> Value {
    let (src, dest) = (
        ids::vertex_id(&view.id, Role::Src),
        ids::vertex_id(&view.id, Role::Dest),
    );
    let tables = view
        .history
        .as_ref()
        .map(|h| h.tables().join(", "))
        .unwrap_or_default();
    json!({
        "jid": view.flink_id,
        "name": view.name(),
        "type": "STREAMING",
        "nodes": [
            {
                "id": dest,
                "parallelism": 1,
                "operator": "",
                "operator_strategy": "",
                "description": vertex_name(view, Role::Dest),
                "inputs": [{"num": 0, "id": src, "ship_strategy": "FORWARD", "exchange": "pipelined_bounded"}],
                "optimizer_properties": {},
            },
            {
                "id": src,
                "parallelism": 1,
                "operator": "",
                "operator_strategy": "",
                "description": format!("{} ({tables})", vertex_name(view, Role::Src)),
                "optimizer_properties": {},
            },
        ],
    })
}

/// `GET /jobs/:jobid` (Flink's `JobDetailsInfo`).
pub fn job_details_info(view: &JobView, now: i64) -> Value {
    let (start, end) = (view.start_ms(), view.end_ms());
    let mut timestamps: Map<String, Value> = JOB_STATES
        .iter()
        .map(|s| ((*s).to_owned(), json!(0)))
        .collect();
    if let Some(h) = &view.history {
        timestamps.insert("INITIALIZING".into(), json!(h.created_ms));
        timestamps.insert("CREATED".into(), json!(h.created_ms));
        for (state, at) in h.state_times() {
            let key = match state {
                JobState::Running => "RUNNING",
                JobState::Paused => "SUSPENDED",
                JobState::Finished | JobState::SavepointDone => "FINISHED",
                JobState::Canceled => "CANCELED",
                JobState::Failed => "FAILED",
            };
            timestamps.insert(key.into(), json!(at));
        }
        if let Some(restart) = h.exceptions.iter().rev().find(|e| e.restarted) {
            timestamps.insert("RESTARTING".into(), json!(restart.time_ms));
        }
    } else if start >= 0 {
        timestamps.insert("CREATED".into(), json!(start));
        timestamps.insert("RUNNING".into(), json!(start));
    }
    let mut status_counts = counts_by_state("");
    for role in [Role::Src, Role::Dest] {
        let state = view.vertex_state(role);
        let n = status_counts
            .get(state)
            .and_then(Value::as_u64)
            .unwrap_or(0);
        status_counts.insert(state.to_owned(), json!(n + 1));
    }
    json!({
        "jid": view.flink_id,
        "name": view.name(),
        "isStoppable": view.is_active(),
        "state": view.state(),
        "job-type": "STREAMING",
        "start-time": start,
        "end-time": end,
        "duration": duration(start, end, now),
        "maxParallelism": -1,
        "now": now,
        "timestamps": timestamps,
        "vertices": [vertex(view, Role::Src, now), vertex(view, Role::Dest, now)],
        "status-counts": status_counts,
        "plan": plan(view),
        "dtle-job-id": view.id,
    })
}

/// Turns a JSON document into `path → text` pairs (`Tasks[0].Config.ChunkSize`).
fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), json!(s));
        }
        other => {
            out.insert(prefix.to_owned(), json!(other.to_string()));
        }
    }
}

/// `GET /jobs/:jobid/config` (Flink's `JobConfigInfo`): the dtle job, passwords masked, as
/// the user config.
pub fn job_config(view: &JobView) -> Value {
    let spec = view
        .record
        .as_ref()
        .map(|r| r.spec.redacted())
        .or_else(|| view.history.as_ref().and_then(|h| h.spec.clone()));
    let mut user = Map::new();
    if let Some(spec) = spec {
        let mut tasks = json!({ "Tasks": jobs::render::dtle_tasks(&spec.redacted()) });
        jobs::redact_value(&mut tasks);
        user.insert("ID".into(), json!(spec.id));
        user.insert("Name".into(), json!(spec.name));
        flatten("", &tasks, &mut user);
    }
    json!({
        "jid": view.flink_id,
        "name": view.name(),
        "execution-config": {
            "execution-mode": "PIPELINED",
            "restart-strategy": "Failed tasks are restarted with a growing delay, up to the agent's restart policy; definite errors (bad credentials, a purged binlog) are not restarted.",
            "job-parallelism": 1,
            "object-reuse-mode": false,
            "user-config": user,
        },
    })
}

/// The job metrics served, and their values.
pub fn metric_values(view: &JobView, now: i64) -> Vec<(&'static str, String)> {
    let h = view.history.as_ref();
    let latest = h.and_then(|h| h.latest_checkpoint());
    let (start, end) = (view.start_ms(), view.end_ms());
    let running = view.state() == "RUNNING";
    let src = view.vertex_totals(Role::Src);
    let dest = view.vertex_totals(Role::Dest);
    let lag = view
        .task(Role::Src)
        .and_then(|t| t.stats.as_ref())
        .and_then(|s| s.lag_seconds);
    vec![
        (
            "uptime",
            if running {
                duration(start, end, now)
            } else {
                0
            }
            .to_string(),
        ),
        ("downtime", "0".into()),
        ("numRestarts", view.restarts().to_string()),
        ("fullRestarts", view.restarts().to_string()),
        (
            "totalNumberOfCheckpoints",
            h.map_or(0, |h| h.checkpoints_total).to_string(),
        ),
        (
            "numberOfCompletedCheckpoints",
            h.map_or(0, |h| h.checkpoints_total).to_string(),
        ),
        ("numberOfFailedCheckpoints", "0".into()),
        ("numberOfInProgressCheckpoints", "0".into()),
        (
            "lastCheckpointDuration",
            latest.map_or(0, |c| c.duration_ms).to_string(),
        ),
        ("lastCheckpointSize", "0".into()),
        (
            "lastCheckpointExternalPath",
            latest.map(|c| c.position_text()).unwrap_or_default(),
        ),
        (
            "lastCheckpointRestoreTimestamp",
            h.and_then(|h| h.last_restore.as_ref())
                .map_or(-1, |r| i64::try_from(r.time_ms).unwrap_or(-1))
                .to_string(),
        ),
        ("numRecordsIn", src.read_records.to_string()),
        ("numRecordsOut", dest.write_records.to_string()),
        ("numBytesOut", src.write_bytes.to_string()),
        ("numBytesIn", dest.read_bytes.to_string()),
        (
            "currentEmitEventTimeLag",
            lag.map_or(-1, |s| i64::try_from(s.saturating_mul(1000)).unwrap_or(-1))
                .to_string(),
        ),
        (
            "executedGtidSet",
            view.record
                .as_ref()
                .and_then(|r| r.executed_gtid.clone())
                .or_else(|| latest.and_then(|c| c.gtid_set.clone()))
                .unwrap_or_default(),
        ),
    ]
}

/// `GET /jobs/:jobid/metrics[?get=a,b]`: without `get`, the metrics there are; with it, the
/// values of those named (unknown names are left out, as Flink does).
pub fn metrics(view: &JobView, get: Option<&str>, now: i64) -> Value {
    let values = metric_values(view, now);
    let Some(get) = get.filter(|g| !g.trim().is_empty()) else {
        return Value::Array(values.iter().map(|(id, _)| json!({"id": id})).collect());
    };
    let wanted: Vec<&str> = get.split(',').map(str::trim).collect();
    Value::Array(
        values
            .into_iter()
            .filter(|(id, _)| wanted.contains(id))
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect(),
    )
}

/// Flink's keys of `GET /overview`, as a map other APIs' keys can be added to.
pub fn overview_fields(views: &[JobView], taskmanagers: usize) -> Map<String, Value> {
    let count = |state: &str| views.iter().filter(|v| v.state() == state).count();
    let running = views.iter().filter(|v| v.is_active()).count();
    let slots: usize = views
        .iter()
        .filter(|v| v.is_active())
        .map(|v| {
            v.tasks
                .iter()
                .filter(|t| t.alloc.client_status == "running")
                .count()
        })
        .sum();
    let mut map = Map::new();
    map.insert("taskmanagers".into(), json!(taskmanagers));
    map.insert("slots-total".into(), json!(slots));
    map.insert("slots-available".into(), json!(0));
    map.insert("jobs-running".into(), json!(running));
    map.insert("jobs-finished".into(), json!(count("FINISHED")));
    map.insert("jobs-cancelled".into(), json!(count("CANCELED")));
    map.insert("jobs-failed".into(), json!(count("FAILED")));
    map.insert("flink-version".into(), json!(FLINK_VERSION));
    map.insert("flink-commit".into(), json!(flink_commit()));
    map
}

/// `GET /config` (Flink's `DashboardConfiguration`).
pub fn dashboard_config() -> Value {
    json!({
        "refresh-interval": SAMPLE_EVERY.as_millis() as u64,
        "timezone-name": "Coordinated Universal Time",
        "timezone-offset": 0,
        "flink-version": FLINK_VERSION,
        "flink-revision": flink_commit(),
        "features": {
            "web-submit": false,
            "web-cancel": true,
            "web-rescale": false,
            "web-history": false,
        },
    })
}
