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

use super::view::{seatunnel_time, Counters, JobView, StStatus};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The rate of `count` over `secs`, two decimals.
fn rate(count: u64, secs: f64) -> String {
    if secs > 0.0 {
        format!("{:.2}", count as f64 / secs)
    } else {
        "0.00".into()
    }
}

/// Per-table values keyed `Table<metric>#db.table`, in the order they were made (metric by
/// metric, then table by table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatTableMetrics(pub Vec<(String, String)>);

impl Serialize for FlatTableMetrics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// SeaTunnel's metrics of a job: every value a string (counts, bytes; rates with two decimals).
/// The `Table*` objects are keyed by table (`db.table`); the same values are flat under
/// `Table<metric>#db.table`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "IntermediateQueueSize": "0", "SourceReceivedCount": "12", "SourceReceivedQPS": "0.40",
    "SourceReceivedBytes": "2048", "SourceReceivedBytesPerSeconds": "68.27",
    "SinkWriteCount": "12", "SinkWriteQPS": "0.40", "SinkWriteBytes": "2048",
    "SinkWriteBytesPerSeconds": "68.27", "SinkCommittedCount": "12", "SinkCommittedQPS": "0.40",
    "SinkCommittedBytes": "2048", "SinkCommittedBytesPerSeconds": "68.27",
    "TableSourceReceivedCount": {"db.t": "12"}, "TableSourceReceivedBytes": {"db.t": "2048"},
    "TableSourceReceivedBytesPerSeconds": {"db.t": "68.27"}, "TableSourceReceivedQPS": {"db.t": "0.40"},
    "TableSinkWriteCount": {"db.t": "12"}, "TableSinkWriteQPS": {"db.t": "0.40"},
    "TableSinkWriteBytes": {"db.t": "2048"}, "TableSinkWriteBytesPerSeconds": {"db.t": "68.27"},
    "TableSinkCommittedCount": {"db.t": "12"}, "TableSinkCommittedQPS": {"db.t": "0.40"},
    "TableSinkCommittedBytes": {"db.t": "2048"}, "TableSinkCommittedBytesPerSeconds": {"db.t": "68.27"},
    "TableSourceReceivedCount#db.t": "12"
}))]
pub struct StMetrics {
    /// Frames sent by the Src and not yet acknowledged by the applier.
    #[serde(rename = "IntermediateQueueSize")]
    pub intermediate_queue_size: String,
    /// Rows the Src read from the source.
    #[serde(rename = "SourceReceivedCount")]
    pub source_received_count: String,
    /// Rows read per second.
    #[serde(rename = "SourceReceivedQPS")]
    pub source_received_qps: String,
    /// Bytes the Src sent.
    #[serde(rename = "SourceReceivedBytes")]
    pub source_received_bytes: String,
    /// Bytes sent per second.
    #[serde(rename = "SourceReceivedBytesPerSeconds")]
    pub source_received_bytes_per_seconds: String,
    /// Rows the Dest applied to the target.
    #[serde(rename = "SinkWriteCount")]
    pub sink_write_count: String,
    /// Rows applied per second.
    #[serde(rename = "SinkWriteQPS")]
    pub sink_write_qps: String,
    /// Bytes the Dest received.
    #[serde(rename = "SinkWriteBytes")]
    pub sink_write_bytes: String,
    /// Bytes received per second.
    #[serde(rename = "SinkWriteBytesPerSeconds")]
    pub sink_write_bytes_per_seconds: String,
    /// Rows the target acknowledged committing.
    #[serde(rename = "SinkCommittedCount")]
    pub sink_committed_count: String,
    /// Rows committed per second.
    #[serde(rename = "SinkCommittedQPS")]
    pub sink_committed_qps: String,
    /// Bytes of the committed rows.
    #[serde(rename = "SinkCommittedBytes")]
    pub sink_committed_bytes: String,
    /// Committed bytes per second.
    #[serde(rename = "SinkCommittedBytesPerSeconds")]
    pub sink_committed_bytes_per_seconds: String,
    /// Rows per table.
    #[serde(rename = "TableSourceReceivedCount")]
    pub table_source_received_count: BTreeMap<String, String>,
    /// Bytes per table (the Src's bytes shared out by rows).
    #[serde(rename = "TableSourceReceivedBytes")]
    pub table_source_received_bytes: BTreeMap<String, String>,
    /// Bytes per second per table.
    #[serde(rename = "TableSourceReceivedBytesPerSeconds")]
    pub table_source_received_bytes_per_seconds: BTreeMap<String, String>,
    /// Rows per second per table.
    #[serde(rename = "TableSourceReceivedQPS")]
    pub table_source_received_qps: BTreeMap<String, String>,
    /// Rows applied per table.
    #[serde(rename = "TableSinkWriteCount")]
    pub table_sink_write_count: BTreeMap<String, String>,
    /// Rows applied per second per table.
    #[serde(rename = "TableSinkWriteQPS")]
    pub table_sink_write_qps: BTreeMap<String, String>,
    /// Bytes per table (the Dest's bytes shared out by rows).
    #[serde(rename = "TableSinkWriteBytes")]
    pub table_sink_write_bytes: BTreeMap<String, String>,
    /// Bytes per second per table.
    #[serde(rename = "TableSinkWriteBytesPerSeconds")]
    pub table_sink_write_bytes_per_seconds: BTreeMap<String, String>,
    /// Rows committed per table.
    #[serde(rename = "TableSinkCommittedCount")]
    pub table_sink_committed_count: BTreeMap<String, String>,
    /// Rows committed per second per table.
    #[serde(rename = "TableSinkCommittedQPS")]
    pub table_sink_committed_qps: BTreeMap<String, String>,
    /// Committed bytes per table.
    #[serde(rename = "TableSinkCommittedBytes")]
    pub table_sink_committed_bytes: BTreeMap<String, String>,
    /// Committed bytes per second per table.
    #[serde(rename = "TableSinkCommittedBytesPerSeconds")]
    pub table_sink_committed_bytes_per_seconds: BTreeMap<String, String>,
    /// The `Table*` values again, flat: `Table<metric>#db.table`.
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub flat: FlatTableMetrics,
    /// `SourceReceivedCount` again, in the deprecated shape (`/running-jobs`,
    /// `/running-job/{jobId}`).
    #[serde(
        rename = "sourceReceivedCount",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = String)]
    pub short_source_received_count: Option<String>,
    /// `SinkWriteCount` again, in the deprecated shape.
    #[serde(rename = "sinkWriteCount", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub short_sink_write_count: Option<String>,
}

/// SeaTunnel's metrics object of a job.
pub fn metrics(view: &JobView, now_ms: u64) -> StMetrics {
    let c = view.counters(now_ms);
    let committed_bytes = if c.written > 0 {
        (c.written_bytes as f64 * c.committed.min(c.written) as f64 / c.written as f64) as u64
    } else {
        0
    };
    let mut m = StMetrics {
        intermediate_queue_size: c.queue.to_string(),
        source_received_count: c.received.to_string(),
        source_received_qps: rate(c.received, c.src_secs),
        source_received_bytes: c.received_bytes.to_string(),
        source_received_bytes_per_seconds: rate(c.received_bytes, c.src_secs),
        sink_write_count: c.written.to_string(),
        sink_write_qps: rate(c.written, c.dest_secs),
        sink_write_bytes: c.written_bytes.to_string(),
        sink_write_bytes_per_seconds: rate(c.written_bytes, c.dest_secs),
        sink_committed_count: c.committed.to_string(),
        sink_committed_qps: rate(c.committed, c.dest_secs),
        sink_committed_bytes: committed_bytes.to_string(),
        sink_committed_bytes_per_seconds: rate(committed_bytes, c.dest_secs),
        ..StMetrics::default()
    };
    table_metrics(&mut m, &c);
    m
}

/// The `Table*` metrics, from the applier's per-table rows.
fn table_metrics(m: &mut StMetrics, c: &Counters) {
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
    let families: Vec<(&str, &mut BTreeMap<String, String>, Render)> = vec![
        (
            "TableSourceReceivedCount",
            &mut m.table_source_received_count,
            Box::new(|rows| rows.to_string()),
        ),
        (
            "TableSourceReceivedBytes",
            &mut m.table_source_received_bytes,
            Box::new(|rows| share(received_bytes, rows).to_string()),
        ),
        (
            "TableSourceReceivedBytesPerSeconds",
            &mut m.table_source_received_bytes_per_seconds,
            Box::new(|rows| rate(share(received_bytes, rows), src_secs)),
        ),
        (
            "TableSourceReceivedQPS",
            &mut m.table_source_received_qps,
            Box::new(|rows| rate(rows, src_secs)),
        ),
        (
            "TableSinkWriteCount",
            &mut m.table_sink_write_count,
            Box::new(|rows| rows.to_string()),
        ),
        (
            "TableSinkWriteQPS",
            &mut m.table_sink_write_qps,
            Box::new(|rows| rate(rows, dest_secs)),
        ),
        (
            "TableSinkWriteBytes",
            &mut m.table_sink_write_bytes,
            Box::new(|rows| share(written_bytes, rows).to_string()),
        ),
        (
            "TableSinkWriteBytesPerSeconds",
            &mut m.table_sink_write_bytes_per_seconds,
            Box::new(|rows| rate(share(written_bytes, rows), dest_secs)),
        ),
        (
            "TableSinkCommittedCount",
            &mut m.table_sink_committed_count,
            Box::new(|rows| rows.to_string()),
        ),
        (
            "TableSinkCommittedQPS",
            &mut m.table_sink_committed_qps,
            Box::new(|rows| rate(rows, dest_secs)),
        ),
        (
            "TableSinkCommittedBytes",
            &mut m.table_sink_committed_bytes,
            Box::new(|rows| share(written_bytes, rows).to_string()),
        ),
        (
            "TableSinkCommittedBytesPerSeconds",
            &mut m.table_sink_committed_bytes_per_seconds,
            Box::new(|rows| rate(share(written_bytes, rows), dest_secs)),
        ),
    ];
    let mut flat = Vec::new();
    for (family, per_table, render) in families {
        for (table, rows) in tables {
            let value = render(*rows);
            flat.push((format!("{family}#{table}"), value.clone()));
            per_table.insert(table.clone(), value);
        }
    }
    m.flat = FlatTableMetrics(flat);
}

/// `job.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StJobMode {
    /// Replicates until stopped.
    Streaming,
    /// Copies the snapshot and ends (`SkipIncrementalCopy`).
    Batch,
}

/// The job's `env` options, as a SeaTunnel config would have set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StEnvOptions {
    /// `STREAMING`, or `BATCH` for a job that only copies the snapshot.
    #[serde(rename = "job.mode")]
    pub job_mode: StJobMode,
    /// The job's name.
    #[serde(rename = "job.name")]
    pub job_name: String,
    /// Always 1.
    pub parallelism: u32,
}

/// The job's `env` options.
pub fn env_options(view: &JobView) -> StEnvOptions {
    let batch = view
        .spec
        .as_ref()
        .is_some_and(|s| s.src.extract.skip_incremental_copy);
    StEnvOptions {
        job_mode: if batch {
            StJobMode::Batch
        } else {
            StJobMode::Streaming
        },
        job_name: view.name.clone(),
        parallelism: 1,
    }
}

/// Whether a vertex reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StVertexType {
    /// The Src task.
    Source,
    /// The Dest task.
    Sink,
}

/// One vertex of the DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StVertex {
    /// 1 (the Src) or 2 (the Dest).
    pub vertex_id: u32,
    /// `source` or `sink`.
    #[serde(rename = "type")]
    pub vertex_type: StVertexType,
    /// `Source[0]-MySQL-CDC` or `Sink[0]-Jdbc`.
    pub vertex_name: String,
    /// The tables, `db.table` (or `db.*`, a pattern, as the job's rules name them).
    pub table_paths: Vec<String>,
}

/// An edge of the DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StPipelineEdge {
    /// `"1"`.
    pub input_vertex_id: String,
    /// `"2"`.
    pub target_vertex_id: String,
}

/// The job's DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StJobDag {
    /// The job ID.
    pub job_id: String,
    /// The job's `env` options.
    pub env_options: StEnvOptions,
    /// The Src and the Dest.
    pub vertex_info_map: Vec<StVertex>,
    /// Per pipeline (`"1"`), its edges.
    pub pipeline_edges: BTreeMap<String, Vec<StPipelineEdge>>,
}

/// The job's DAG: vertex 1 the Src (`Source[0]-MySQL-CDC`), vertex 2 the Dest
/// (`Sink[0]-Jdbc`), one edge in pipeline 1.
pub fn job_dag(view: &JobView) -> StJobDag {
    StJobDag {
        job_id: view.id.clone(),
        env_options: env_options(view),
        vertex_info_map: vec![
            StVertex {
                vertex_id: 1,
                vertex_type: StVertexType::Source,
                vertex_name: "Source[0]-MySQL-CDC".into(),
                table_paths: view.tables(false),
            },
            StVertex {
                vertex_id: 2,
                vertex_type: StVertexType::Sink,
                vertex_name: "Sink[0]-Jdbc".into(),
                table_paths: view.tables(true),
            },
        ],
        pipeline_edges: BTreeMap::from([(
            "1".to_owned(),
            vec![StPipelineEdge {
                input_vertex_id: "1".into(),
                target_vertex_id: "2".into(),
            }],
        )]),
    }
}

fn time_or_empty(ms: Option<u64>) -> String {
    ms.map(seatunnel_time).unwrap_or_default()
}

/// The keys of an ended job's info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StEndedJobFields {
    /// When it ended, `yyyy-MM-dd HH:mm:ss` (UTC; empty when unknown).
    pub finished_time: String,
    /// Why it failed (null unless `FAILED`).
    #[schema(required = true)]
    pub error_msg: Option<String>,
}

/// The keys of a running or pending job's info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StActiveJobFields {
    /// The job's `env` options.
    pub env_options: StEnvOptions,
    /// Always empty: dtle has no plugin jars.
    pub plugin_jars_urls: Vec<String>,
    /// Whether the current run was submitted with `isStartWithSavePoint=true`.
    pub is_start_with_save_point: bool,
}

/// What a job's info adds by state: ended, or running (or pending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StJobStateFields {
    /// The job has ended.
    Ended(StEndedJobFields),
    /// The job runs or waits to run.
    Active(StActiveJobFields),
}

/// `/job-info/{jobId}` (and `/running-job/{jobId}`, `/running-jobs`): always jobId, jobName,
/// jobStatus, createTime, startTime, jobDag, metrics; envOptions, pluginJarsUrls,
/// isStartWithSavePoint while the job runs; finishedTime and errorMsg once it has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StJobInfo {
    /// The job ID.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// Its state.
    pub job_status: StStatus,
    /// When it was created, `yyyy-MM-dd HH:mm:ss` (UTC; empty when unknown).
    pub create_time: String,
    /// When its current run started (empty when unknown).
    pub start_time: String,
    /// Its DAG.
    pub job_dag: StJobDag,
    /// Its metrics.
    pub metrics: StMetrics,
    /// The keys of its state.
    #[serde(flatten)]
    pub state: StJobStateFields,
}

/// A job's info.
pub fn job_info(view: &JobView, start_with_savepoint: bool, now_ms: u64) -> StJobInfo {
    let state = if view.status.is_ended() {
        StJobStateFields::Ended(StEndedJobFields {
            finished_time: time_or_empty(view.finished_ms),
            error_msg: view.error.clone(),
        })
    } else {
        StJobStateFields::Active(StActiveJobFields {
            env_options: env_options(view),
            plugin_jars_urls: Vec::new(),
            is_start_with_save_point: start_with_savepoint,
        })
    };
    StJobInfo {
        job_id: view.id.clone(),
        job_name: view.name.clone(),
        job_status: view.status,
        create_time: time_or_empty(view.created_ms),
        start_time: time_or_empty(view.started_ms),
        job_dag: job_dag(view),
        metrics: metrics(view, now_ms),
        state,
    }
}

/// The deprecated shape's metrics (`/running-job/{jobId}`, `/running-jobs`): SeaTunnel's
/// `sourceReceivedCount` and `sinkWriteCount` beside the full set.
pub fn with_short_metrics(mut info: StJobInfo) -> StJobInfo {
    info.metrics.short_source_received_count = Some(info.metrics.source_received_count.clone());
    info.metrics.short_sink_write_count = Some(info.metrics.sink_write_count.clone());
    info
}

/// One entry of `/finished-jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StFinishedJob {
    /// The job ID.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// How it ended.
    pub job_status: StStatus,
    /// Why it failed (null unless `FAILED`).
    #[schema(required = true)]
    pub error_msg: Option<String>,
    /// When it was created, `yyyy-MM-dd HH:mm:ss` (UTC; empty when unknown).
    pub create_time: String,
    /// When its last run started (empty when unknown).
    pub start_time: String,
    /// When it ended (empty when unknown).
    pub finish_time: String,
    /// Its DAG.
    pub job_dag: StJobDag,
    /// Always empty: dtle has no plugin jars.
    pub plugin_jars_urls: Vec<String>,
    /// Its last metrics.
    pub metrics: StMetrics,
}

/// One entry of `/finished-jobs`.
pub fn finished_job(view: &JobView, now_ms: u64) -> StFinishedJob {
    StFinishedJob {
        job_id: view.id.clone(),
        job_name: view.name.clone(),
        job_status: view.status,
        error_msg: view.error.clone(),
        create_time: time_or_empty(view.created_ms),
        start_time: time_or_empty(view.started_ms),
        finish_time: time_or_empty(view.finished_ms),
        job_dag: job_dag(view),
        plugin_jars_urls: Vec::new(),
        metrics: metrics(view, now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::view::TaskView;
    use crate::orchestrator::{Allocation, TaskState};
    use driver::stats::{RowCount, StatsSnapshot, TaskStats};
    use jobs::Role;
    use serde_json::json;
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

    /// The JSON the handlers answer with.
    fn json<T: Serialize>(value: T) -> serde_json::Value {
        serde_json::to_value(value).expect("JSON")
    }

    #[test]
    fn metrics_have_seatunnel_names_and_string_values() {
        let m = json(metrics(&view(), 1_700_000_010_000));
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
        let m = m.as_object().expect("an object");
        assert!(m.values().all(|v| v.is_string() || v.is_object()));
    }

    #[test]
    fn the_dag_is_two_vertices_and_one_edge() {
        let v = view();
        let dag = json(job_dag(&v));
        assert_eq!(dag["vertexInfoMap"][0]["vertexName"], "Source[0]-MySQL-CDC");
        assert_eq!(dag["vertexInfoMap"][1]["type"], "sink");
        assert_eq!(dag["vertexInfoMap"][0]["tablePaths"], json!(["a.t"]));
        assert_eq!(dag["pipelineEdges"]["1"][0]["targetVertexId"], "2");
        let info = job_info(&v, true, 1_700_000_010_000);
        let info_json = json(&info);
        assert_eq!(info_json["isStartWithSavePoint"], true);
        assert_eq!(info_json["createTime"], "2023-11-14 22:13:20");
        assert!(info_json.get("finishedTime").is_none());
        let short = json(with_short_metrics(info));
        assert_eq!(short["metrics"]["sourceReceivedCount"], "100");
        let text = serde_json::to_string(&finished_job(&v, 0)).expect("json");
        assert!(!text.contains("secret"));
    }
}
