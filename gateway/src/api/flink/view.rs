//! What the Flink API knows of one job, gathered from the orchestrator: its record (while the
//! dtle job exists), its history (when the orchestrator keeps one), and its tasks with their
//! live counters; and the Flink states derived from them.

use super::error::FlinkError;
use super::ids;
use crate::api::handlers::Shared;
use crate::orchestrator::history::{JobHistory, JobState, VertexTotals};
use crate::orchestrator::{Allocation, JobRecord, OrchestratorError};
use driver::stats::{StatsSnapshot, Wait};
use jobs::Role;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Flink's job states (`JobStatus`), in the order Flink declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkJobStatus)]
pub enum JobStatus {
    /// Being initialised.
    Initializing,
    /// Registered, its tasks not started yet.
    Created,
    /// Its tasks run.
    Running,
    /// Failing (not used by dtle).
    Failing,
    /// A task failed for good.
    Failed,
    /// Being canceled (not used by dtle).
    Cancelling,
    /// Stopped.
    Canceled,
    /// Ended by itself, or stopped with a savepoint.
    Finished,
    /// A task waits to be restarted after a failure.
    Restarting,
    /// Paused.
    Suspended,
    /// Reconciling (not used by dtle).
    Reconciling,
}

impl JobStatus {
    /// Its name, as Flink writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "INITIALIZING",
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Failing => "FAILING",
            Self::Failed => "FAILED",
            Self::Cancelling => "CANCELLING",
            Self::Canceled => "CANCELED",
            Self::Finished => "FINISHED",
            Self::Restarting => "RESTARTING",
            Self::Suspended => "SUSPENDED",
            Self::Reconciling => "RECONCILING",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flink's task states (`ExecutionState`), in the order Flink declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkExecutionState)]
pub enum ExecutionState {
    /// Not started yet (only the history is left of a job still running).
    Created,
    /// Waiting to be started (or restarted).
    Scheduled,
    /// Being deployed (not used by dtle).
    Deploying,
    /// Running.
    Running,
    /// Ended by itself.
    Finished,
    /// Being stopped.
    Canceling,
    /// Stopped.
    Canceled,
    /// Failed.
    Failed,
    /// Reconciling (not used by dtle).
    Reconciling,
    /// Initialising (not used by dtle).
    Initializing,
}

/// How many tasks are in each Flink task state, in Flink's order of the states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkExecutionStateCounts)]
pub struct ExecutionStateCounts {
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

impl ExecutionStateCounts {
    /// The counts of `states`.
    pub fn of(states: impl IntoIterator<Item = ExecutionState>) -> Self {
        let mut counts = Self::default();
        for state in states {
            *counts.slot(state) += 1;
        }
        counts
    }

    fn slot(&mut self, state: ExecutionState) -> &mut u32 {
        match state {
            ExecutionState::Created => &mut self.created,
            ExecutionState::Scheduled => &mut self.scheduled,
            ExecutionState::Deploying => &mut self.deploying,
            ExecutionState::Running => &mut self.running,
            ExecutionState::Finished => &mut self.finished,
            ExecutionState::Canceling => &mut self.canceling,
            ExecutionState::Canceled => &mut self.canceled,
            ExecutionState::Failed => &mut self.failed,
            ExecutionState::Reconciling => &mut self.reconciling,
            ExecutionState::Initializing => &mut self.initializing,
        }
    }
}

/// One task and, while it exists, its counters.
#[derive(Debug, Clone)]
pub struct TaskLive {
    /// Its allocation.
    pub alloc: Allocation,
    /// Its live counters, when they could be read.
    pub stats: Option<StatsSnapshot>,
}

/// One job as the Flink API shows it.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The dtle job ID.
    pub id: String,
    /// Its Flink ID.
    pub flink_id: String,
    /// The dtle job, unless it was purged.
    pub record: Option<JobRecord>,
    /// Its history, when the orchestrator keeps one.
    pub history: Option<JobHistory>,
    /// Its tasks (none once purged, or when not asked for).
    pub tasks: Vec<TaskLive>,
}

/// The histories, or none when the orchestrator keeps none.
async fn histories(o: &Shared) -> Result<Vec<JobHistory>, FlinkError> {
    match o.histories().await {
        Ok(h) => Ok(h),
        Err(OrchestratorError::Unsupported(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Every job, live or only in the history, sorted by dtle ID; with their tasks (and their
/// counters when `stats`) when `tasks`.
pub async fn all(o: &Shared, tasks: bool, stats: bool) -> Result<Vec<JobView>, FlinkError> {
    let mut views: BTreeMap<String, JobView> = BTreeMap::new();
    for record in o.jobs().await? {
        let id = record.spec.id.clone();
        views.insert(id.clone(), JobView::new(id, Some(record), None));
    }
    for history in histories(o).await? {
        let id = history.job_id.clone();
        views
            .entry(id.clone())
            .or_insert_with(|| JobView::new(id, None, None))
            .history = Some(history);
    }
    let mut out = Vec::with_capacity(views.len());
    for (_, mut view) in views {
        if tasks && view.record.is_some() {
            view.load_tasks(o, stats).await?;
        }
        out.push(view);
    }
    Ok(out)
}

/// The job `wanted` names (its dtle ID or Flink ID), with its tasks and their counters.
pub async fn one(o: &Shared, wanted: &str) -> Result<JobView, FlinkError> {
    let records = o.jobs().await?;
    let histories = histories(o).await?;
    let id = ids::resolve(
        wanted,
        records
            .iter()
            .map(|r| r.spec.id.as_str())
            .chain(histories.iter().map(|h| h.job_id.as_str())),
    )
    .map(str::to_owned)
    .ok_or_else(|| FlinkError::not_found(format!("Job {wanted} not found")))?;
    let record = records.into_iter().find(|r| r.spec.id == id);
    let history = histories.into_iter().find(|h| h.job_id == id);
    let mut view = JobView::new(id, record, history);
    if view.record.is_some() {
        view.load_tasks(o, true).await?;
    }
    Ok(view)
}

/// Milliseconds since the epoch of a time in ns.
fn ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

impl JobView {
    fn new(id: String, record: Option<JobRecord>, history: Option<JobHistory>) -> Self {
        Self {
            flink_id: ids::job_id(&id),
            id,
            record,
            history,
            tasks: Vec::new(),
        }
    }

    async fn load_tasks(&mut self, o: &Shared, stats: bool) -> Result<(), FlinkError> {
        let allocs = match o.allocations(&self.id).await {
            Ok(a) => a,
            // Purged between the two calls.
            Err(OrchestratorError::JobNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for alloc in allocs {
            let snapshot = if stats && alloc.client_status == "running" {
                o.allocation_stats(&alloc.id).await.ok().map(|(_, s, _)| s)
            } else {
                None
            };
            self.tasks.push(TaskLive {
                alloc,
                stats: snapshot,
            });
        }
        Ok(())
    }

    /// The job's name.
    pub fn name(&self) -> String {
        self.record
            .as_ref()
            .map(|r| r.spec.name.clone())
            .or_else(|| self.history.as_ref().map(|h| h.name.clone()))
            .unwrap_or_else(|| self.id.clone())
    }

    /// The task of `role`, if loaded.
    pub fn task(&self, role: Role) -> Option<&TaskLive> {
        self.tasks.iter().find(|t| t.alloc.role == role)
    }

    /// The job's Flink state.
    pub fn state(&self) -> JobStatus {
        if let Some(history) = &self.history {
            match history.state {
                JobState::Finished | JobState::SavepointDone => return JobStatus::Finished,
                JobState::Canceled => return JobStatus::Canceled,
                JobState::Failed => return JobStatus::Failed,
                JobState::Paused => return JobStatus::Suspended,
                JobState::Running => {}
            }
        }
        let states = [Role::Src, Role::Dest].map(|r| self.vertex_state(r));
        let failed = states.contains(&ExecutionState::Failed);
        match self.record.as_ref().map(|r| r.status.as_str()) {
            Some("paused") => JobStatus::Suspended,
            Some("dead") | None if failed => JobStatus::Failed,
            Some("dead") | None => JobStatus::Canceled,
            _ if failed => JobStatus::Failed,
            _ if self.restarting() => JobStatus::Restarting,
            _ if states.contains(&ExecutionState::Running) => JobStatus::Running,
            _ => JobStatus::Created,
        }
    }

    /// Whether a task waits to be restarted after a failure.
    fn restarting(&self) -> bool {
        self.tasks.iter().any(|t| {
            t.alloc.task_state.state == "pending"
                && t.alloc
                    .task_state
                    .events
                    .last()
                    .is_some_and(|e| e.kind == "Restarting")
        })
    }

    /// Whether the job is still to end (Flink: not globally terminal).
    pub fn is_active(&self) -> bool {
        !matches!(
            self.state(),
            JobStatus::Finished | JobStatus::Canceled | JobStatus::Failed
        )
    }

    /// The Flink state of the `role` task.
    pub fn vertex_state(&self, role: Role) -> ExecutionState {
        let Some(task) = self.task(role) else {
            // Only the history is left: what the job's end says of its tasks.
            return match self.history.as_ref().map(|h| h.state) {
                Some(JobState::Finished | JobState::SavepointDone) => ExecutionState::Finished,
                Some(JobState::Failed) if self.failed_task() == Some(role) => {
                    ExecutionState::Failed
                }
                Some(JobState::Running) => ExecutionState::Created,
                _ => ExecutionState::Canceled,
            };
        };
        let alloc = &task.alloc;
        match alloc.task_state.state.as_str() {
            "running" => ExecutionState::Running,
            "pending" if alloc.desired_status == "stop" => ExecutionState::Canceling,
            "pending" => ExecutionState::Scheduled,
            _ if alloc.task_state.failed || alloc.client_status == "failed" => {
                ExecutionState::Failed
            }
            _ if alloc.desired_status == "run"
                && alloc
                    .task_state
                    .events
                    .last()
                    .is_some_and(|e| e.kind == "Terminated" && e.driver_error.is_empty()) =>
            {
                ExecutionState::Finished
            }
            _ => ExecutionState::Canceled,
        }
    }

    /// The task whose failure ended the job, per the history.
    fn failed_task(&self) -> Option<Role> {
        self.history
            .as_ref()?
            .exceptions
            .iter()
            .rev()
            .find(|e| !e.restarted)
            .map(|e| e.task)
    }

    /// When the current (or last) run started, ms.
    pub fn start_ms(&self) -> i64 {
        if let Some(h) = &self.history {
            return i64::try_from(h.started_ms).unwrap_or(i64::MAX);
        }
        self.tasks
            .iter()
            .map(|t| ms(t.alloc.create_time))
            .min()
            .unwrap_or(-1)
    }

    /// When it ended, ms, or -1.
    pub fn end_ms(&self) -> i64 {
        if self.is_active() {
            return -1;
        }
        if let Some(finished) = self.history.as_ref().and_then(|h| h.finished_ms) {
            return i64::try_from(finished).unwrap_or(i64::MAX);
        }
        self.tasks
            .iter()
            .map(|t| ms(t.alloc.modify_time))
            .max()
            .unwrap_or(-1)
    }

    /// Its last change, ms.
    pub fn last_modification_ms(&self) -> i64 {
        let from_tasks = self.tasks.iter().map(|t| ms(t.alloc.modify_time)).max();
        let from_history = self.history.as_ref().and_then(|h| {
            h.transitions
                .back()
                .map(|t| i64::try_from(t.time_ms).unwrap_or(i64::MAX))
        });
        from_tasks
            .max(from_history)
            .unwrap_or_else(|| self.start_ms())
    }

    /// When the `role` task last started and ended (ms; -1 when not).
    pub fn vertex_times(&self, role: Role) -> (i64, i64) {
        let Some(task) = self.task(role) else {
            return (self.start_ms(), self.end_ms());
        };
        let events = &task.alloc.task_state.events;
        let start = events
            .iter()
            .rev()
            .find(|e| e.kind == "Started")
            .map_or(-1, |e| ms(e.time));
        let end = if task.alloc.task_state.state == "dead" {
            events.last().map_or(-1, |e| ms(e.time))
        } else {
            -1
        };
        (start, end)
    }

    /// The `role` task's counters: live, else the last the history kept.
    pub fn vertex_totals(&self, role: Role) -> VertexTotals {
        if let Some(s) = self.task(role).and_then(|t| t.stats.as_ref()) {
            let records = match role {
                Role::Src => s.rows_read,
                Role::Dest => s.rows_applied,
            };
            return VertexTotals {
                read_records: records,
                write_records: records,
                read_bytes: s.bytes_in,
                write_bytes: s.bytes_out,
            };
        }
        self.history
            .as_ref()
            .and_then(|h| h.vertices.get(&role).cloned())
            .unwrap_or_default()
    }

    /// Time the `role` task spent waiting, ms: (idle: for its input; back-pressured: for the
    /// next stage). Zero without live counters.
    pub fn vertex_waits(&self, role: Role) -> (u64, u64) {
        let Some(s) = self.task(role).and_then(|t| t.stats.as_ref()) else {
            return (0, 0);
        };
        let waited = |w: Wait| s.waited_us[w as usize] / 1000;
        match role {
            Role::Src => (waited(Wait::Source), waited(Wait::Peer)),
            Role::Dest => (waited(Wait::Peer), waited(Wait::Target)),
        }
    }

    /// Restarts of its tasks so far.
    pub fn restarts(&self) -> u64 {
        let live: u64 = self.tasks.iter().map(|t| t.alloc.task_state.restarts).sum();
        let kept = self.history.as_ref().map_or(0, |h| {
            h.exceptions.iter().filter(|e| e.restarted).count() as u64
        });
        live.max(kept)
    }

    /// How many of its tasks are in each Flink task state.
    pub fn task_counts(&self) -> ExecutionStateCounts {
        ExecutionStateCounts::of([Role::Src, Role::Dest].map(|r| self.vertex_state(r)))
    }
}
