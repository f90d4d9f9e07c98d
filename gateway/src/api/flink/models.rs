//! Flink's response shapes for jobs, their vertices, plan and configuration, built from
//! [`JobView`]s. Key names and types follow Flink's REST API (its `JobDetails`,
//! `JobDetailsInfo`, `JobVertexDetailsInfo`, `JobPlanInfo`, `JobConfigInfo`): times in ms since
//! the epoch, -1 for "not yet". Every schema is named `Flink…` (the agent's document holds three
//! APIs).

use super::ids;
use super::view::{ExecutionState, ExecutionStateCounts, JobStatus, JobView};
use crate::orchestrator::history::JobState;
use jobs::Role;
use serde::{Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

/// Serialises `(key, value)` pairs as a JSON object, in their order (the keys are unique).
pub(crate) fn ordered_map<S: Serializer, V: Serialize>(
    entries: &[(String, V)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(entries.iter().map(|(k, v)| (k, v)))
}

/// A job's type: always a streaming job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkJobType)]
pub enum JobType {
    /// Replication never ends by itself (unless `SkipIncrementalCopy`).
    Streaming,
}

/// One entry of `GET /jobs` (Flink's `JobIdWithStatus`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobIdWithStatus)]
pub struct JobIdWithStatus {
    /// The Flink job ID.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    /// Its state.
    pub status: JobStatus,
}

/// `GET /jobs` (Flink's `JobIdsWithStatusOverview`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobIdsWithStatus)]
pub struct JobIdsWithStatus {
    /// Every job, live or only in the history.
    pub jobs: Vec<JobIdWithStatus>,
}

/// One entry of `GET /jobs`.
pub fn job_id_with_status(view: &JobView) -> JobIdWithStatus {
    JobIdWithStatus {
        id: view.flink_id.clone(),
        status: view.state(),
    }
}

/// ms from `start` to `end` (to `now` while not ended); -1 without a start.
pub(super) fn duration(start: i64, end: i64, now: i64) -> i64 {
    if start < 0 {
        return -1;
    }
    if end >= 0 {
        end - start
    } else {
        now - start
    }
}

/// A job's tasks by state, lower-case (Flink's `JobDetails.tasks`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = FlinkJobTaskCounts)]
pub struct JobTaskCounts {
    /// Its tasks: always 2 (Src and Dest).
    pub total: u32,
    pub created: u32,
    pub scheduled: u32,
    pub deploying: u32,
    pub running: u32,
    pub finished: u32,
    pub canceling: u32,
    pub canceled: u32,
    pub failed: u32,
    pub reconciling: u32,
    pub initializing: u32,
}

impl From<ExecutionStateCounts> for JobTaskCounts {
    fn from(c: ExecutionStateCounts) -> Self {
        Self {
            total: 2,
            created: c.created,
            scheduled: c.scheduled,
            deploying: c.deploying,
            running: c.running,
            finished: c.finished,
            canceling: c.canceling,
            canceled: c.canceled,
            failed: c.failed,
            reconciling: c.reconciling,
            initializing: c.initializing,
        }
    }
}

/// One entry of `GET /jobs/overview` (Flink's `JobDetails`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkJobDetails)]
pub struct JobDetails {
    /// The Flink job ID.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub jid: String,
    /// The dtle job's name.
    pub name: String,
    /// When its current (or last) run started, ms; -1 when not known.
    pub start_time: i64,
    /// When it ended, ms; -1 while it has not.
    pub end_time: i64,
    /// ms it ran (until now while it runs); -1 when not known.
    pub duration: i64,
    /// Its state.
    pub state: JobStatus,
    /// Its last change, ms.
    pub last_modification: i64,
    /// Its tasks by state.
    pub tasks: JobTaskCounts,
}

/// `GET /jobs/overview` (Flink's `MultipleJobsDetails`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkMultipleJobsDetails)]
pub struct MultipleJobsDetails {
    /// Every job, live or only in the history.
    pub jobs: Vec<JobDetails>,
}

/// One entry of `GET /jobs/overview`.
pub fn job_details(view: &JobView, now: i64) -> JobDetails {
    let (start, end) = (view.start_ms(), view.end_ms());
    JobDetails {
        jid: view.flink_id.clone(),
        name: view.name(),
        start_time: start,
        end_time: end,
        duration: duration(start, end, now),
        state: view.state(),
        last_modification: view.last_modification_ms(),
        tasks: view.task_counts().into(),
    }
}

/// A vertex's counters (Flink's `IOMetricsInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkIoMetrics)]
pub struct IoMetrics {
    /// Bytes received over NATS.
    pub read_bytes: u64,
    /// Always true.
    pub read_bytes_complete: bool,
    /// Bytes sent over NATS.
    pub write_bytes: u64,
    /// Always true.
    pub write_bytes_complete: bool,
    /// Rows taken in (the Src: read from the source; the Dest: received and applied).
    pub read_records: u64,
    /// Always true.
    pub read_records_complete: bool,
    /// Rows passed on (the Src: sent; the Dest: committed on the target).
    pub write_records: u64,
    /// Always true.
    pub write_records_complete: bool,
    /// ms spent waiting for the next stage.
    pub accumulated_backpressured_time: u64,
    /// ms spent waiting for input.
    pub accumulated_idle_time: u64,
    /// ms of the run spent neither idle nor back-pressured.
    pub accumulated_busy_time: f64,
}

/// A vertex's Flink `IOMetricsInfo`.
fn io_metrics(view: &JobView, role: Role, start: i64, end: i64, now: i64) -> IoMetrics {
    let totals = view.vertex_totals(role);
    let (idle, backpressured) = view.vertex_waits(role);
    let ran = u64::try_from(duration(start, end, now).max(0)).unwrap_or(0);
    IoMetrics {
        read_bytes: totals.read_bytes,
        read_bytes_complete: true,
        write_bytes: totals.write_bytes,
        write_bytes_complete: true,
        read_records: totals.read_records,
        read_records_complete: true,
        write_records: totals.write_records,
        write_records_complete: true,
        accumulated_backpressured_time: backpressured,
        accumulated_idle_time: idle,
        accumulated_busy_time: ran.saturating_sub(idle + backpressured) as f64,
    }
}

/// One vertex of `GET /jobs/{jobid}` (Flink's `JobDetailsVertexInfo`): the Src or the Dest.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkJobVertex)]
pub struct JobVertex {
    /// The vertex ID.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    /// Its slot sharing group: its own ID.
    #[serde(rename = "slotSharingGroupId")]
    pub slot_sharing_group_id: String,
    /// `Src: read host:port` or `Dest: apply to host:port`.
    pub name: String,
    /// Always 1.
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u32,
    /// Always 1.
    pub parallelism: u32,
    /// Its task's state.
    pub status: ExecutionState,
    /// When its task last started, ms; -1 when it has not.
    pub start_time: i64,
    /// When its task ended, ms; -1 while it has not.
    pub end_time: i64,
    /// ms it ran; -1 when not known.
    pub duration: i64,
    /// Its one task, by state.
    pub tasks: ExecutionStateCounts,
    /// Its counters.
    pub metrics: IoMetrics,
}

/// One vertex of `GET /jobs/{jobid}`.
pub fn vertex(view: &JobView, role: Role, now: i64) -> JobVertex {
    let (start, end) = view.vertex_times(role);
    let state = view.vertex_state(role);
    JobVertex {
        id: ids::vertex_id(&view.id, role),
        slot_sharing_group_id: ids::vertex_id(&view.id, role),
        name: vertex_name(view, role),
        max_parallelism: 1,
        parallelism: 1,
        status: state,
        start_time: start,
        end_time: end,
        duration: duration(start, end, now),
        tasks: ExecutionStateCounts::of([state]),
        metrics: io_metrics(view, role, start, end, now),
    }
}

/// A vertex's one subtask (Flink's `SubtaskExecutionAttemptDetailsInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkSubtask)]
pub struct Subtask {
    /// Always 0.
    pub subtask: u32,
    /// Its state.
    pub status: ExecutionState,
    /// Its restarts so far.
    pub attempt: u64,
    /// The node that runs it (empty once purged).
    pub host: String,
    /// The same node.
    pub endpoint: String,
    /// As the vertex's.
    pub start_time: i64,
    /// As the vertex's.
    pub end_time: i64,
    /// As the vertex's.
    pub duration: i64,
    /// As the vertex's.
    pub metrics: IoMetrics,
    /// The same node.
    #[serde(rename = "taskmanager-id")]
    pub taskmanager_id: String,
}

/// `GET /jobs/{jobid}/vertices/{vertexid}` (Flink's `JobVertexDetailsInfo`): the vertex, the
/// time of the answer, and its one subtask.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobVertexDetails)]
pub struct JobVertexDetails {
    /// The vertex.
    #[serde(flatten)]
    pub vertex: JobVertex,
    /// When this was answered, ms.
    pub now: i64,
    /// Its one subtask.
    pub subtasks: Vec<Subtask>,
}

/// `GET /jobs/{jobid}/vertices/{vertexid}` of the `role` vertex.
pub fn vertex_details(view: &JobView, role: Role, now: i64) -> JobVertexDetails {
    let vertex = vertex(view, role, now);
    let host = view
        .task(role)
        .map(|t| t.alloc.node_id.clone())
        .unwrap_or_default();
    let subtask = Subtask {
        subtask: 0,
        status: vertex.status,
        attempt: view.task(role).map_or(0, |t| t.alloc.task_state.restarts),
        host: host.clone(),
        endpoint: host.clone(),
        start_time: vertex.start_time,
        end_time: vertex.end_time,
        duration: vertex.duration,
        metrics: vertex.metrics.clone(),
        taskmanager_id: host,
    };
    JobVertexDetails {
        vertex,
        now,
        subtasks: vec![subtask],
    }
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

/// The input of a plan node: the Src, for the Dest.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkPlanInput)]
pub struct PlanInput {
    /// Always 0.
    pub num: u32,
    /// The vertex ID of the input.
    pub id: String,
    /// Always `FORWARD`.
    pub ship_strategy: String,
    /// Always `pipelined_bounded`.
    pub exchange: String,
}

/// A plan node's optimizer properties: none.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FlinkOptimizerProperties)]
pub struct OptimizerProperties {}

/// One node of the plan: a vertex.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkPlanNode)]
pub struct PlanNode {
    /// The vertex ID.
    pub id: String,
    /// Always 1.
    pub parallelism: u32,
    /// Always empty.
    pub operator: String,
    /// Always empty.
    pub operator_strategy: String,
    /// The vertex's name (the Src's with the tables it reads).
    pub description: String,
    /// What feeds it: the Src, for the Dest; absent for the Src.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<PlanInput>,
    /// None.
    pub optimizer_properties: OptimizerProperties,
}

/// The dataflow plan (Flink's `JobPlanInfo.plan`): the Src feeds the Dest.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobPlan)]
pub struct JobPlan {
    /// The Flink job ID.
    pub jid: String,
    /// The job's name.
    pub name: String,
    /// Always `STREAMING`.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// The Dest, then the Src.
    pub nodes: Vec<PlanNode>,
}

/// `GET /jobs/{jobid}/plan` (Flink's `JobPlanInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobPlanInfo)]
pub struct JobPlanInfo {
    /// The plan.
    pub plan: JobPlan,
}

/// The dataflow plan: the Src feeds the Dest.
pub fn plan(view: &JobView) -> JobPlan {
    let (src, dest) = (
        ids::vertex_id(&view.id, Role::Src),
        ids::vertex_id(&view.id, Role::Dest),
    );
    let tables = view
        .history
        .as_ref()
        .map(|h| h.tables().join(", "))
        .unwrap_or_default();
    JobPlan {
        jid: view.flink_id.clone(),
        name: view.name(),
        job_type: JobType::Streaming,
        nodes: vec![
            PlanNode {
                id: dest,
                parallelism: 1,
                operator: String::new(),
                operator_strategy: String::new(),
                description: vertex_name(view, Role::Dest),
                inputs: vec![PlanInput {
                    num: 0,
                    id: src.clone(),
                    ship_strategy: "FORWARD".into(),
                    exchange: "pipelined_bounded".into(),
                }],
                optimizer_properties: OptimizerProperties {},
            },
            PlanNode {
                id: src,
                parallelism: 1,
                operator: String::new(),
                operator_strategy: String::new(),
                description: format!("{} ({tables})", vertex_name(view, Role::Src)),
                inputs: Vec::new(),
                optimizer_properties: OptimizerProperties {},
            },
        ],
    }
}

/// When the job entered each state, ms; 0 for states it has not been in (Flink's
/// `JobDetailsInfo.timestamps`).
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkJobTimestamps)]
pub struct JobTimestamps {
    pub initializing: u64,
    pub created: u64,
    pub running: u64,
    pub failing: u64,
    pub failed: u64,
    pub cancelling: u64,
    pub canceled: u64,
    pub finished: u64,
    pub restarting: u64,
    pub suspended: u64,
    pub reconciling: u64,
}

impl JobTimestamps {
    fn set(&mut self, state: JobStatus, at: u64) {
        let slot = match state {
            JobStatus::Initializing => &mut self.initializing,
            JobStatus::Created => &mut self.created,
            JobStatus::Running => &mut self.running,
            JobStatus::Failing => &mut self.failing,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelling => &mut self.cancelling,
            JobStatus::Canceled => &mut self.canceled,
            JobStatus::Finished => &mut self.finished,
            JobStatus::Restarting => &mut self.restarting,
            JobStatus::Suspended => &mut self.suspended,
            JobStatus::Reconciling => &mut self.reconciling,
        };
        *slot = at;
    }
}

/// `GET /jobs/{jobid}` (Flink's `JobDetailsInfo`), with the dtle job ID.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkJobDetailsInfo)]
pub struct JobDetailsInfo {
    /// The Flink job ID.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub jid: String,
    /// The job's name.
    pub name: String,
    /// Whether it can be stopped (it has not ended).
    #[serde(rename = "isStoppable")]
    pub is_stoppable: bool,
    /// Its state.
    pub state: JobStatus,
    /// Always `STREAMING`.
    pub job_type: JobType,
    /// When its current (or last) run started, ms; -1 when not known.
    pub start_time: i64,
    /// When it ended, ms; -1 while it has not.
    pub end_time: i64,
    /// ms it ran; -1 when not known.
    pub duration: i64,
    /// Always -1.
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: i64,
    /// When this was answered, ms.
    pub now: i64,
    /// When it entered each state.
    pub timestamps: JobTimestamps,
    /// The Src, then the Dest.
    pub vertices: Vec<JobVertex>,
    /// Its tasks by state.
    pub status_counts: ExecutionStateCounts,
    /// The dataflow plan.
    pub plan: JobPlan,
    /// The dtle job ID.
    pub dtle_job_id: String,
}

/// `GET /jobs/{jobid}`.
pub fn job_details_info(view: &JobView, now: i64) -> JobDetailsInfo {
    let (start, end) = (view.start_ms(), view.end_ms());
    let mut timestamps = JobTimestamps::default();
    if let Some(h) = &view.history {
        timestamps.set(JobStatus::Initializing, h.created_ms);
        timestamps.set(JobStatus::Created, h.created_ms);
        for (state, at) in h.state_times() {
            let status = match state {
                JobState::Running => JobStatus::Running,
                JobState::Paused => JobStatus::Suspended,
                JobState::Finished | JobState::SavepointDone => JobStatus::Finished,
                JobState::Canceled => JobStatus::Canceled,
                JobState::Failed => JobStatus::Failed,
            };
            timestamps.set(status, at);
        }
        if let Some(restart) = h.exceptions.iter().rev().find(|e| e.restarted) {
            timestamps.set(JobStatus::Restarting, restart.time_ms);
        }
    } else if let Ok(start) = u64::try_from(start) {
        timestamps.set(JobStatus::Created, start);
        timestamps.set(JobStatus::Running, start);
    }
    JobDetailsInfo {
        jid: view.flink_id.clone(),
        name: view.name(),
        is_stoppable: view.is_active(),
        state: view.state(),
        job_type: JobType::Streaming,
        start_time: start,
        end_time: end,
        duration: duration(start, end, now),
        max_parallelism: -1,
        now,
        timestamps,
        vertices: vec![vertex(view, Role::Src, now), vertex(view, Role::Dest, now)],
        status_counts: view.task_counts(),
        plan: plan(view),
        dtle_job_id: view.id.clone(),
    }
}

/// Turns a JSON document into `path → text` pairs (`Tasks[0].Config.ChunkSize`).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
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
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// How the job is run (Flink's `ExecutionConfigInfo`), with the dtle job as the user config.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkExecutionConfig)]
pub struct ExecutionConfig {
    /// Always `PIPELINED`.
    pub execution_mode: String,
    /// How failed tasks are restarted.
    pub restart_strategy: String,
    /// Always 1.
    pub job_parallelism: u32,
    /// Always false.
    pub object_reuse_mode: bool,
    /// The dtle job flattened: `ID`, `Name`, then every setting of its tasks by path
    /// (`Tasks[0].Config.ChunkSize`), each as text, passwords `*`. Empty when the job's
    /// specification is not known any more.
    #[serde(serialize_with = "ordered_map")]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub user_config: Vec<(String, String)>,
}

/// `GET /jobs/{jobid}/config` (Flink's `JobConfigInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkJobConfigInfo)]
pub struct JobConfigInfo {
    /// The Flink job ID.
    pub jid: String,
    /// The job's name.
    pub name: String,
    /// How it is run, and the dtle job.
    pub execution_config: ExecutionConfig,
}

/// `GET /jobs/{jobid}/config`: the dtle job, passwords masked, as the user config.
pub fn job_config(view: &JobView) -> JobConfigInfo {
    let spec = view
        .record
        .as_ref()
        .map(|r| r.spec.redacted())
        .or_else(|| view.history.as_ref().and_then(|h| h.spec.clone()));
    let mut user = Vec::new();
    if let Some(spec) = spec {
        let mut tasks = serde_json::json!({ "Tasks": jobs::render::dtle_tasks(&spec.redacted()) });
        jobs::redact_value(&mut tasks);
        user.push(("ID".to_owned(), spec.id));
        user.push(("Name".to_owned(), spec.name));
        flatten("", &tasks, &mut user);
    }
    JobConfigInfo {
        jid: view.flink_id.clone(),
        name: view.name(),
        execution_config: ExecutionConfig {
            execution_mode: "PIPELINED".into(),
            restart_strategy: "Failed tasks are restarted with a growing delay, up to the agent's restart policy; definite errors (bad credentials, a purged binlog) are not restarted.".into(),
            job_parallelism: 1,
            object_reuse_mode: false,
            user_config: user,
        },
    }
}
