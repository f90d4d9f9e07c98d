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
use std::collections::BTreeMap;

/// Flink's job states (`JobStatus`), in the order Flink declares them.
pub const JOB_STATES: [&str; 11] = [
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
];

/// Flink's task states (`ExecutionState`), in the order Flink declares them.
pub const TASK_STATES: [&str; 10] = [
    "CREATED",
    "SCHEDULED",
    "DEPLOYING",
    "RUNNING",
    "FINISHED",
    "CANCELING",
    "CANCELED",
    "FAILED",
    "RECONCILING",
    "INITIALIZING",
];

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
    pub fn state(&self) -> &'static str {
        if let Some(history) = &self.history {
            match history.state {
                JobState::Finished | JobState::SavepointDone => return "FINISHED",
                JobState::Canceled => return "CANCELED",
                JobState::Failed => return "FAILED",
                JobState::Paused => return "SUSPENDED",
                JobState::Running => {}
            }
        }
        let states: Vec<&str> = [Role::Src, Role::Dest]
            .into_iter()
            .map(|r| self.vertex_state(r))
            .collect();
        match self.record.as_ref().map(|r| r.status.as_str()) {
            Some("paused") => "SUSPENDED",
            Some("dead") | None if states.contains(&"FAILED") => "FAILED",
            Some("dead") | None => "CANCELED",
            _ if states.contains(&"FAILED") => "FAILED",
            _ if self.restarting() => "RESTARTING",
            _ if states.contains(&"RUNNING") => "RUNNING",
            _ => "CREATED",
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
        !matches!(self.state(), "FINISHED" | "CANCELED" | "FAILED")
    }

    /// The Flink state of the `role` task.
    pub fn vertex_state(&self, role: Role) -> &'static str {
        let Some(task) = self.task(role) else {
            // Only the history is left: what the job's end says of its tasks.
            return match self.history.as_ref().map(|h| h.state) {
                Some(JobState::Finished | JobState::SavepointDone) => "FINISHED",
                Some(JobState::Failed) if self.failed_task() == Some(role) => "FAILED",
                Some(JobState::Running) => "CREATED",
                _ => "CANCELED",
            };
        };
        let alloc = &task.alloc;
        match alloc.task_state.state.as_str() {
            "running" => "RUNNING",
            "pending" if alloc.desired_status == "stop" => "CANCELING",
            "pending" => "SCHEDULED",
            _ if alloc.task_state.failed || alloc.client_status == "failed" => "FAILED",
            _ if alloc.desired_status == "run"
                && alloc
                    .task_state
                    .events
                    .last()
                    .is_some_and(|e| e.kind == "Terminated" && e.driver_error.is_empty()) =>
            {
                "FINISHED"
            }
            _ => "CANCELED",
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

    /// How many of its tasks are in each Flink task state, in Flink's order of the states.
    pub fn task_counts(&self) -> Vec<(&'static str, u32)> {
        let states = [self.vertex_state(Role::Src), self.vertex_state(Role::Dest)];
        TASK_STATES
            .iter()
            .map(|s| (*s, states.iter().filter(|t| *t == s).count() as u32))
            .collect()
    }
}
