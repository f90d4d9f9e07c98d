//! SeaTunnel's JSON for a job: its DAG (two vertices, the Src and the Dest task), its metrics
//! and the job-info / finished-job objects. Every value is rendered from a [`JobView`], whose
//! job is already redacted: no password leaves through here.
//!
//! # Metrics
//! Values are strings, as SeaTunnel renders them; rates have two decimals.
//! | SeaTunnel | dtle |
//! |---|---|
//! | `SourceReceivedCount` | rows the Src read from the source (snapshot and binlog) |
//! | `SinkWriteCount` | rows the Dest applied to the target |
//! | `SinkCommittedCount` | rows the target acknowledged committing (the Src's count of the applier's acknowledgements; the Dest's own count when the Src has none) |
//! | `*Bytes` | the change stream's bytes: the Src sent (source), the Dest received (sink) |
//! | `*QPS`, `*BytesPerSeconds` | the count over the seconds the task has been counting (since it last started, until it ended) |
//! | `IntermediateQueueSize` | frames sent by the Src and not yet acknowledged by the applier |
//! | `Table<metric>` | per table (`db.table`, as the applier names them): objects keyed by table, and the same values flat under `Table<metric>#db.table` |
//!
//! Only the applier counts rows per table, so the per-table source and sink counts are both its
//! counts; per-table bytes are the task's bytes shared out by the table's rows. Counters start
//! from zero when a task restarts.

use super::view::{seatunnel_time, Counters, JobView};
use serde_json::{json, Map, Value};

/// The rate of `count` over `secs`, two decimals.
fn rate(count: u64, secs: f64) -> String {
    if secs > 0.0 {
        format!("{:.2}", count as f64 / secs)
    } else {
        "0.00".into()
    }
}

/// SeaTunnel's metrics object of a job.
pub fn metrics(view: &JobView, now_ms: u64) -> Map<String, Value> {
    let c = view.counters(now_ms);
    let committed_bytes = if c.written > 0 {
        (c.written_bytes as f64 * c.committed.min(c.written) as f64 / c.written as f64) as u64
    } else {
        0
    };
    let mut m = Map::new();
    let mut put = |key: &str, value: String| {
        m.insert(key.to_owned(), Value::String(value));
    };
    put("IntermediateQueueSize", c.queue.to_string());
    put("SourceReceivedCount", c.received.to_string());
    put("SourceReceivedQPS", rate(c.received, c.src_secs));
    put("SourceReceivedBytes", c.received_bytes.to_string());
    put(
        "SourceReceivedBytesPerSeconds",
        rate(c.received_bytes, c.src_secs),
    );
    put("SinkWriteCount", c.written.to_string());
    put("SinkWriteQPS", rate(c.written, c.dest_secs));
    put("SinkWriteBytes", c.written_bytes.to_string());
    put(
        "SinkWriteBytesPerSeconds",
        rate(c.written_bytes, c.dest_secs),
    );
    put("SinkCommittedCount", c.committed.to_string());
    put("SinkCommittedQPS", rate(c.committed, c.dest_secs));
    put("SinkCommittedBytes", committed_bytes.to_string());
    put(
        "SinkCommittedBytesPerSeconds",
        rate(committed_bytes, c.dest_secs),
    );
    table_metrics(&mut m, &c);
    m
}

/// The `Table*` metrics, from the applier's per-table rows.
fn table_metrics(m: &mut Map<String, Value>, c: &Counters) {
    let tables = &c.tables;
    let all_rows: u64 = tables.iter().map(|(_, rows)| rows).sum();
    let (received_bytes, written_bytes) = (c.received_bytes, c.written_bytes);
    let (src_secs, dest_secs) = (c.src_secs, c.dest_secs);
    let share = |bytes: u64, rows: u64| {
        if all_rows > 0 {
            (bytes as f64 * rows as f64 / all_rows as f64) as u64
        } else {
            0
        }
    };
    type Render<'a> = Box<dyn Fn(u64) -> String + 'a>;
    let families: Vec<(&str, Render)> = vec![
        (
            "TableSourceReceivedCount",
            Box::new(|rows| rows.to_string()),
        ),
        (
            "TableSourceReceivedBytes",
            Box::new(|rows| share(received_bytes, rows).to_string()),
        ),
        (
            "TableSourceReceivedBytesPerSeconds",
            Box::new(|rows| rate(share(received_bytes, rows), src_secs)),
        ),
        (
            "TableSourceReceivedQPS",
            Box::new(|rows| rate(rows, src_secs)),
        ),
        ("TableSinkWriteCount", Box::new(|rows| rows.to_string())),
        ("TableSinkWriteQPS", Box::new(|rows| rate(rows, dest_secs))),
        (
            "TableSinkWriteBytes",
            Box::new(|rows| share(written_bytes, rows).to_string()),
        ),
        (
            "TableSinkWriteBytesPerSeconds",
            Box::new(|rows| rate(share(written_bytes, rows), dest_secs)),
        ),
        ("TableSinkCommittedCount", Box::new(|rows| rows.to_string())),
        (
            "TableSinkCommittedQPS",
            Box::new(|rows| rate(rows, dest_secs)),
        ),
        (
            "TableSinkCommittedBytes",
            Box::new(|rows| share(written_bytes, rows).to_string()),
        ),
        (
            "TableSinkCommittedBytesPerSeconds",
            Box::new(|rows| rate(share(written_bytes, rows), dest_secs)),
        ),
    ];
    let mut flat = Vec::new();
    for (family, render) in &families {
        let mut per_table = Map::new();
        for (table, rows) in tables {
            let value = render(*rows);
            flat.push((format!("{family}#{table}"), value.clone()));
            per_table.insert(table.clone(), Value::String(value));
        }
        m.insert((*family).to_owned(), Value::Object(per_table));
    }
    for (key, value) in flat {
        m.insert(key, Value::String(value));
    }
}

/// The job's `env` options, as a SeaTunnel config would have set them.
pub fn env_options(view: &JobView) -> Value {
    let batch = view
        .spec
        .as_ref()
        .is_some_and(|s| s.src.extract.skip_incremental_copy);
    let mode = if batch { "BATCH" } else { "STREAMING" };
    json!({"job.mode": mode, "job.name": view.name, "parallelism": 1})
}

/// The job's DAG: vertex 1 the Src (`Source[0]-MySQL-CDC`), vertex 2 the Dest
/// (`Sink[0]-Jdbc`), one edge in pipeline 1.
pub fn job_dag(view: &JobView) -> Value {
    json!({
        "jobId": view.id,
        "envOptions": env_options(view),
        "vertexInfoMap": [
            {
                "vertexId": 1,
                "type": "source",
                "vertexName": "Source[0]-MySQL-CDC",
                "tablePaths": view.tables(false),
            },
            {
                "vertexId": 2,
                "type": "sink",
                "vertexName": "Sink[0]-Jdbc",
                "tablePaths": view.tables(true),
            },
        ],
        "pipelineEdges": {"1": [{"inputVertexId": "1", "targetVertexId": "2"}]},
    })
}

fn time_or_empty(ms: Option<u64>) -> String {
    ms.map(seatunnel_time).unwrap_or_default()
}

/// `/job-info/:jobId` (and `/running-job/:jobId`, `/running-jobs`): always jobId, jobName,
/// jobStatus, createTime, jobDag, metrics; envOptions, pluginJarsUrls, isStartWithSavePoint
/// while the job runs; finishedTime and errorMsg once it has ended.
pub fn job_info(view: &JobView, start_with_savepoint: bool, now_ms: u64) -> Map<String, Value> {
    let mut info = Map::new();
    info.insert("jobId".into(), json!(view.id));
    info.insert("jobName".into(), json!(view.name));
    info.insert("jobStatus".into(), json!(view.status.as_str()));
    info.insert("createTime".into(), json!(time_or_empty(view.created_ms)));
    info.insert("startTime".into(), json!(time_or_empty(view.started_ms)));
    info.insert("jobDag".into(), job_dag(view));
    info.insert("metrics".into(), Value::Object(metrics(view, now_ms)));
    if view.status.is_ended() {
        info.insert(
            "finishedTime".into(),
            json!(time_or_empty(view.finished_ms)),
        );
        info.insert("errorMsg".into(), json!(view.error));
    } else {
        info.insert("envOptions".into(), env_options(view));
        info.insert("pluginJarsUrls".into(), json!([]));
        info.insert("isStartWithSavePoint".into(), json!(start_with_savepoint));
    }
    info
}

/// The deprecated shape's metrics (`/running-job/:jobId`, `/running-jobs`): SeaTunnel's
/// `sourceReceivedCount` and `sinkWriteCount` beside the full set.
pub fn with_short_metrics(mut info: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(metrics)) = info.get_mut("metrics") {
        let received = metrics.get("SourceReceivedCount").cloned();
        let written = metrics.get("SinkWriteCount").cloned();
        metrics.insert("sourceReceivedCount".into(), received.unwrap_or(json!("0")));
        metrics.insert("sinkWriteCount".into(), written.unwrap_or(json!("0")));
    }
    info
}

/// One entry of `/finished-jobs`.
pub fn finished_job(view: &JobView, now_ms: u64) -> Value {
    json!({
        "jobId": view.id,
        "jobName": view.name,
        "jobStatus": view.status.as_str(),
        "errorMsg": view.error,
        "createTime": time_or_empty(view.created_ms),
        "startTime": time_or_empty(view.started_ms),
        "finishTime": time_or_empty(view.finished_ms),
        "jobDag": job_dag(view),
        "pluginJarsUrls": [],
        "metrics": metrics(view, now_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::view::{StStatus, TaskView};
    use crate::orchestrator::{Allocation, TaskState};
    use driver::stats::{RowCount, StatsSnapshot, TaskStats};
    use jobs::Role;
    use std::sync::atomic::Ordering::Relaxed;

    fn task(role: Role, stats: StatsSnapshot) -> TaskView {
        TaskView {
            alloc: Allocation {
                id: "a".into(),
                job_id: "1".into(),
                eval_id: String::new(),
                node_id: "n".into(),
                name: "x".into(),
                role,
                client_status: "running".into(),
                desired_status: "run".into(),
                create_time: 0,
                modify_time: 0,
                create_index: 0,
                modify_index: 0,
                task_state: TaskState {
                    started_at: Some("2023-11-14T22:13:20Z".into()),
                    ..TaskState::default()
                },
            },
            stats: Some(stats),
        }
    }

    fn view() -> JobView {
        let text = r#"{"Name": "st_r", "Tasks": [
          {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "a", "Tables": [{"TableName": "t"}]}],
            "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "secret"}}},
          {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "secret"}}}]}"#;
        let spec = jobs::parse_job(text).expect("valid").spec.redacted();
        let src = TaskStats::default();
        src.rows_read.store(100, Relaxed);
        src.rows_applied.store(80, Relaxed);
        src.record_out_msg(1000);
        src.set_backlog(3, 10);
        let dest = TaskStats::default();
        dest.rows_applied.store(90, Relaxed);
        dest.record_in_msg(900);
        dest.count_rows("a.t", RowCount::Insert, 90);
        let (src, dest) = (src.snapshot(), dest.snapshot());
        JobView {
            id: "733584788375666689".into(),
            name: "st_r".into(),
            status: StStatus::Running,
            created_ms: Some(1_700_000_000_000),
            started_ms: Some(1_700_000_000_000),
            finished_ms: None,
            error: None,
            pending_reason: None,
            pending_since_ms: None,
            restoring: false,
            spec: Some(spec),
            src: Some(task(Role::Src, src)),
            dest: Some(task(Role::Dest, dest)),
            totals: Default::default(),
            history_tables: Vec::new(),
            restored_from_savepoint: false,
            purged: false,
        }
    }

    #[test]
    fn metrics_have_seatunnel_names_and_string_values() {
        let m = metrics(&view(), 1_700_000_010_000);
        assert_eq!(m["SourceReceivedCount"], "100");
        assert_eq!(m["SourceReceivedQPS"], "10.00");
        assert_eq!(m["SourceReceivedBytes"], "1000");
        assert_eq!(m["SinkWriteCount"], "90");
        assert_eq!(m["SinkWriteBytesPerSeconds"], "90.00");
        assert_eq!(m["SinkCommittedCount"], "80");
        assert_eq!(m["IntermediateQueueSize"], "3");
        assert_eq!(m["TableSinkWriteCount"]["a.t"], "90");
        assert_eq!(m["TableSourceReceivedCount#a.t"], "90");
        assert_eq!(m["TableSinkWriteBytes#a.t"], "900");
        assert!(m.values().all(|v| v.is_string() || v.is_object()));
    }

    #[test]
    fn the_dag_is_two_vertices_and_one_edge() {
        let v = view();
        let dag = job_dag(&v);
        assert_eq!(dag["vertexInfoMap"][0]["vertexName"], "Source[0]-MySQL-CDC");
        assert_eq!(dag["vertexInfoMap"][1]["type"], "sink");
        assert_eq!(dag["vertexInfoMap"][0]["tablePaths"], json!(["a.t"]));
        assert_eq!(dag["pipelineEdges"]["1"][0]["targetVertexId"], "2");
        let info = job_info(&v, true, 1_700_000_010_000);
        assert_eq!(info["isStartWithSavePoint"], true);
        assert_eq!(info["createTime"], "2023-11-14 22:13:20");
        assert!(info.get("finishedTime").is_none());
        let short = with_short_metrics(info);
        assert_eq!(short["metrics"]["sourceReceivedCount"], "100");
        let text = serde_json::to_string(&finished_job(&v, 0)).expect("json");
        assert!(!text.contains("secret"));
    }
}
