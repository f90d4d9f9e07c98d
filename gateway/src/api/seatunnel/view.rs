//! A dtle job as SeaTunnel sees it: its status word, times, error, pending reason, tables and
//! counters, read from the orchestrator's record, the job's allocations and their live stats,
//! and the job's history ([`crate::orchestrator::history`]) when the orchestrator keeps one.
//! The history outlives the job: a purged job (`DELETE /v1/job/{ID}?purge=true`) is still shown,
//! from its history alone.
//!
//! # Status (dtle → SeaTunnel)
//! | dtle | SeaTunnel |
//! |---|---|
//! | a task failed for good (`ClientStatus` failed) | `FAILED` (the job cannot go on; errorMsg is the task's error) |
//! | paused (the position is kept; stop-job with a savepoint pauses) | `SAVEPOINT_DONE` |
//! | dead, every task ended by itself (`SkipIncrementalCopy`: the snapshot is copied) | `FINISHED` |
//! | dead otherwise (stopped: `DELETE /v1/job/{ID}`, stop-job) | `CANCELED` |
//! | a task waits to start, or to be restarted after a failure | `PENDING` (with the reason) |
//! | every task runs | `RUNNING` |
//!
//! An ended state in the history wins (it knows a stop with a savepoint, `SAVEPOINT_DONE`,
//! from a plain stop); times, the error and the last counters of an ended job come from it too.

use crate::api::handlers::Shared;
use crate::orchestrator::history::{JobHistory, JobState, VertexTotals};
use crate::orchestrator::{Allocation, JobRecord};
use driver::stats::StatsSnapshot;
use jobs::{JobSpec, NameMatch, Role};
use std::collections::BTreeMap;

/// SeaTunnel's job states that a dtle job can be in (`jobStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StStatus {
    /// Waiting for a task to start or to be restarted.
    Pending,
    /// Every task runs.
    Running,
    /// Ended by itself.
    Finished,
    /// Stopped by the user.
    Canceled,
    /// A task failed for good.
    Failed,
    /// Stopped with its position kept, to be resumed.
    SavepointDone,
}

impl StStatus {
    /// SeaTunnel's word.
    pub fn as_str(self) -> &'static str {
        match self {
            StStatus::Pending => "PENDING",
            StStatus::Running => "RUNNING",
            StStatus::Finished => "FINISHED",
            StStatus::Canceled => "CANCELED",
            StStatus::Failed => "FAILED",
            StStatus::SavepointDone => "SAVEPOINT_DONE",
        }
    }

    /// Whether the job has ended (it is listed by `/finished-jobs`).
    pub fn is_ended(self) -> bool {
        !matches!(self, StStatus::Pending | StStatus::Running)
    }
}

/// One task: its allocation and, while the orchestrator has them, its counters.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// The allocation.
    pub alloc: Allocation,
    /// Its live counters (of the current or last run).
    pub stats: Option<StatsSnapshot>,
}

impl TaskView {
    /// Seconds the counters have been counting: since the task last started, until it ended.
    pub fn counting_secs(&self, now_ms: u64) -> f64 {
        let started = self
            .alloc
            .task_state
            .started_at
            .as_deref()
            .and_then(parse_rfc3339_ms);
        let ended = self
            .alloc
            .task_state
            .finished_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .filter(|end| started.is_some_and(|s| *end >= s));
        match started {
            Some(start) => (ended.unwrap_or(now_ms).saturating_sub(start)) as f64 / 1000.0,
            None => 0.0,
        }
    }
}

/// What SeaTunnel shows of one job.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The dtle job ID (SeaTunnel's jobId).
    pub id: String,
    /// The job's name.
    pub name: String,
    /// Its state.
    pub status: StStatus,
    /// When it was created, ms since the epoch, if known.
    pub created_ms: Option<u64>,
    /// When its tasks last started, ms.
    pub started_ms: Option<u64>,
    /// When it ended, ms (ended jobs only).
    pub finished_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Why it is pending.
    pub pending_reason: Option<String>,
    /// When it became pending, ms.
    pub pending_since_ms: Option<u64>,
    /// Whether it is pending after a failure (rather than before its first start).
    pub restoring: bool,
    /// The job, passwords masked (a purged job's history may not have it).
    pub spec: Option<JobSpec>,
    /// The Src task.
    pub src: Option<TaskView>,
    /// The Dest task.
    pub dest: Option<TaskView>,
    /// The tasks' last counters, as the history kept them.
    pub totals: BTreeMap<Role, VertexTotals>,
    /// The tables the history saw or its rules named.
    pub history_tables: Vec<String>,
    /// Whether the job's current run started from a savepoint, as the history recorded it.
    pub restored_from_savepoint: bool,
    /// Whether only the history is left of the job.
    pub purged: bool,
}

/// What the metrics are computed from: live counters, else the history's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Rows the Src read.
    pub received: u64,
    /// Bytes the Src sent.
    pub received_bytes: u64,
    /// Rows the Dest applied.
    pub written: u64,
    /// Bytes the Dest received.
    pub written_bytes: u64,
    /// Rows the target acknowledged committing.
    pub committed: u64,
    /// Frames in flight.
    pub queue: u64,
    /// Seconds the Src's counters have counted.
    pub src_secs: f64,
    /// Seconds the Dest's counters have counted.
    pub dest_secs: f64,
    /// Rows per table, as the applier counted them.
    pub tables: Vec<(String, u64)>,
}

/// The view of one job, asking the orchestrator for its allocations, their stats and its
/// history (what it cannot answer is left out).
pub async fn load(orchestrator: &Shared, record: &JobRecord) -> JobView {
    let allocations = orchestrator
        .allocations(&record.spec.id)
        .await
        .unwrap_or_default();
    let mut tasks = Vec::with_capacity(allocations.len());
    for alloc in allocations {
        let stats = orchestrator
            .allocation_stats(&alloc.id)
            .await
            .ok()
            .map(|(_, stats, _)| stats);
        tasks.push(TaskView { alloc, stats });
    }
    let history = orchestrator.history(&record.spec.id).await.ok();
    from_parts(record, tasks, history.as_ref())
}

/// One job by ID: a job the orchestrator runs, else one only its history remembers.
pub async fn load_one(
    orchestrator: &Shared,
    id: &str,
) -> Result<Option<JobView>, super::error::StError> {
    match orchestrator.job(id).await {
        Ok(record) => Ok(Some(load(orchestrator, &record).await)),
        Err(crate::orchestrator::OrchestratorError::JobNotFound(_)) => Ok(orchestrator
            .history(id)
            .await
            .ok()
            .filter(|h| h.purged)
            .map(|h| from_history(&h))),
        Err(err) => Err(err.into()),
    }
}

/// Every job's view: the orchestrator's jobs, then the purged ones the history remembers.
pub async fn load_all(orchestrator: &Shared) -> Result<Vec<JobView>, super::error::StError> {
    let records = orchestrator.jobs().await?;
    let histories = orchestrator.histories().await.unwrap_or_default();
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        views.push(load(orchestrator, record).await);
    }
    views.extend(
        histories
            .iter()
            .filter(|h| h.purged && !records.iter().any(|r| r.spec.id == h.job_id))
            .map(from_history),
    );
    Ok(views)
}

/// SeaTunnel's word for an ended state of the history.
fn ended_state(state: JobState) -> Option<StStatus> {
    match state {
        JobState::Finished => Some(StStatus::Finished),
        JobState::Canceled => Some(StStatus::Canceled),
        JobState::Failed => Some(StStatus::Failed),
        JobState::SavepointDone => Some(StStatus::SavepointDone),
        JobState::Running | JobState::Paused => None,
    }
}

/// Whether the history's current run started from a savepoint.
fn restored_from_savepoint(history: &JobHistory) -> bool {
    history
        .last_restore
        .as_ref()
        .is_some_and(|r| r.savepoint && r.time_ms >= history.started_ms)
}

/// The view of a job only the history remembers (purged).
pub fn from_history(history: &JobHistory) -> JobView {
    let status = ended_state(history.state).unwrap_or(StStatus::Canceled);
    JobView {
        id: history.job_id.clone(),
        name: history.name.clone(),
        status,
        created_ms: Some(history.created_ms),
        started_ms: Some(history.started_ms),
        finished_ms: history.finished_ms,
        error: (status == StStatus::Failed)
            .then(|| history.last_error.clone())
            .flatten(),
        pending_reason: None,
        pending_since_ms: None,
        restoring: false,
        spec: history.spec.clone(),
        src: None,
        dest: None,
        totals: history.vertices.clone(),
        history_tables: history.tables(),
        restored_from_savepoint: restored_from_savepoint(history),
        purged: history.purged,
    }
}

/// The view from a record, its tasks and its history.
pub fn from_parts(
    record: &JobRecord,
    tasks: Vec<TaskView>,
    history: Option<&JobHistory>,
) -> JobView {
    let allocs: Vec<&Allocation> = tasks.iter().map(|t| &t.alloc).collect();
    let status = history
        .and_then(|h| ended_state(h.state))
        .unwrap_or_else(|| status(record, &allocs));
    let alloc_error = allocs
        .iter()
        .filter(|a| a.client_status == "failed")
        .find_map(|a| last_error(a, "Terminated"));
    let error = history.and_then(|h| h.last_error.clone()).or(alloc_error);
    let pending = allocs
        .iter()
        .filter(|a| a.client_status == "pending")
        .map(|a| pending_reason(a))
        .max_by_key(|p| p.1);
    let created_ms = history
        .map(|h| h.created_ms)
        .or_else(|| allocs.iter().map(|a| a.create_time / 1_000_000).min());
    let started_ms = history.map(|h| h.started_ms).or_else(|| {
        allocs
            .iter()
            .filter_map(|a| a.task_state.started_at.as_deref())
            .filter_map(parse_rfc3339_ms)
            .max()
    });
    let finished_ms = status
        .is_ended()
        .then(|| {
            history
                .and_then(|h| h.finished_ms)
                .or_else(|| finish_ms(&allocs))
        })
        .flatten();
    let (mut src, mut dest) = (None, None);
    for task in tasks {
        match task.alloc.role {
            Role::Src => src = Some(task),
            Role::Dest => dest = Some(task),
        }
    }
    JobView {
        id: record.spec.id.clone(),
        name: record.spec.name.clone(),
        status,
        created_ms,
        started_ms,
        finished_ms,
        error: if status == StStatus::Failed {
            error
        } else {
            None
        },
        pending_reason: (status == StStatus::Pending)
            .then(|| pending.as_ref().map(|p| p.0.clone()))
            .flatten(),
        pending_since_ms: pending.as_ref().map(|p| p.1),
        restoring: pending.as_ref().is_some_and(|p| p.2),
        spec: Some(record.spec.redacted()),
        src,
        dest,
        totals: history.map(|h| h.vertices.clone()).unwrap_or_default(),
        history_tables: history.map(JobHistory::tables).unwrap_or_default(),
        restored_from_savepoint: history.is_some_and(restored_from_savepoint),
        purged: false,
    }
}

/// SeaTunnel's state of a job (see the module docs).
pub fn status(record: &JobRecord, allocs: &[&Allocation]) -> StStatus {
    if allocs.iter().any(|a| a.client_status == "failed") {
        return StStatus::Failed;
    }
    if record.paused {
        return StStatus::SavepointDone;
    }
    if record.status == "dead" {
        let finished_by_itself = !allocs.is_empty()
            && allocs.iter().all(|a| {
                a.client_status == "complete"
                    && a.task_state
                        .events
                        .last()
                        .is_some_and(|e| e.kind == "Terminated" && e.driver_error.is_empty())
            });
        return if finished_by_itself {
            StStatus::Finished
        } else {
            StStatus::Canceled
        };
    }
    if allocs.is_empty() || allocs.iter().any(|a| a.client_status == "pending") {
        StStatus::Pending
    } else {
        StStatus::Running
    }
}

/// The driver error of the last event of `kind` that has one.
fn last_error(alloc: &Allocation, kind: &str) -> Option<String> {
    alloc
        .task_state
        .events
        .iter()
        .rev()
        .find(|e| e.kind == kind && !e.driver_error.is_empty())
        .map(|e| e.driver_error.clone())
}

/// Why a pending task waits, since when (ms), and whether it is being restarted.
pub fn pending_reason(alloc: &Allocation) -> (String, u64, bool) {
    let task = alloc.role.as_str();
    match alloc.task_state.events.last() {
        Some(e) if e.kind == "Restarting" => (
            format!(
                "the {task} task failed and waits {}s to be restarted (restart {}): {}",
                e.restart_delay / 1_000_000_000,
                alloc.task_state.restarts,
                e.driver_error
            ),
            e.time / 1_000_000,
            true,
        ),
        Some(e) => (
            format!("the {task} task waits to start ({})", e.message),
            e.time / 1_000_000,
            false,
        ),
        None => (
            format!("the {task} task waits to be placed"),
            alloc.create_time / 1_000_000,
            false,
        ),
    }
}

/// When an ended job ended: its tasks' last ending event (else their last change).
fn finish_ms(allocs: &[&Allocation]) -> Option<u64> {
    allocs
        .iter()
        .filter_map(|a| {
            a.task_state
                .events
                .iter()
                .rev()
                .find(|e| matches!(e.kind.as_str(), "Terminated" | "Killed" | "Paused"))
                .map(|e| e.time / 1_000_000)
        })
        .max()
        .or_else(|| allocs.iter().map(|a| a.modify_time / 1_000_000).max())
}

/// `yyyy-MM-dd HH:mm:ss` (UTC), as SeaTunnel shows times.
pub fn seatunnel_time(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = driver::change::civil::civil_from_epoch(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// ms since the epoch of an RFC 3339 UTC time (`2024-01-02T03:04:05.123456789Z`).
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let time = time.strip_suffix('Z')?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let millis: i64 = format!("{:0<3}", fraction.get(..3.min(fraction.len()))?)
        .parse()
        .ok()?;
    let days = driver::change::civil::days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs * 1000 + millis).ok()
}

fn name_of(m: &NameMatch) -> String {
    match m {
        NameMatch::Exact(name) => name.clone(),
        NameMatch::Regex(pattern) => pattern.as_str().to_owned(),
    }
}

/// The job's tables as its rules name them, on the source side or (with renames) the target's:
/// `db.table`, `db.*` for a whole schema, the pattern for a regular expression.
pub fn rule_tables(spec: &JobSpec, target: bool) -> Vec<String> {
    let mut tables = Vec::new();
    for schema in &spec.src.extract.replicate_do_db {
        let schema_name = match (&schema.rename, target) {
            (Some(rename), true) => rename.clone(),
            _ => name_of(&schema.schema),
        };
        if schema.tables.is_empty() {
            tables.push(format!("{schema_name}.*"));
        }
        for table in &schema.tables {
            let table_name = match (&table.rename, target) {
                (Some(rename), true) => rename.clone(),
                _ => name_of(&table.table),
            };
            tables.push(format!("{schema_name}.{table_name}"));
        }
    }
    if tables.is_empty() {
        tables.push("*.*".into());
    }
    tables
}

impl JobView {
    /// The tables the applier has written (`db.table`), else those the history saw or named,
    /// else the job's rules.
    pub fn tables(&self, target: bool) -> Vec<String> {
        let seen: Vec<String> = self
            .dest
            .as_ref()
            .and_then(|t| t.stats.as_ref())
            .map(|s| s.tables.keys().cloned().collect())
            .unwrap_or_default();
        if !seen.is_empty() {
            return seen;
        }
        let renamed = self.spec.as_ref().is_some_and(|spec| {
            spec.src
                .extract
                .replicate_do_db
                .iter()
                .any(|s| s.rename.is_some() || s.tables.iter().any(|t| t.rename.is_some()))
        });
        match &self.spec {
            Some(spec) if target && renamed => rule_tables(spec, true),
            _ if !self.history_tables.is_empty() => self.history_tables.clone(),
            Some(spec) => rule_tables(spec, target),
            None => vec!["*.*".into()],
        }
    }

    /// The counters the metrics are computed from: the tasks' live counters; for an ended job
    /// the larger of those and the history's last ones (an agent restarted since has none).
    pub fn counters(&self, now_ms: u64) -> Counters {
        let src = self.src.as_ref().and_then(|t| t.stats.as_ref());
        let dest = self.dest.as_ref().and_then(|t| t.stats.as_ref());
        let kept = |role: Role| self.totals.get(&role).cloned().unwrap_or_default();
        let (src_kept, dest_kept) = (kept(Role::Src), kept(Role::Dest));
        let pick = |live: u64, kept: u64| {
            if self.status.is_ended() {
                live.max(kept)
            } else {
                live
            }
        };
        let received = pick(src.map_or(0, |s| s.rows_read), src_kept.read_records);
        let written = pick(dest.map_or(0, |s| s.rows_applied), dest_kept.write_records);
        let committed = src
            .map(|s| s.rows_applied)
            .filter(|n| *n > 0 && !self.status.is_ended())
            .unwrap_or(written);
        let run_secs = match (self.started_ms, self.finished_ms) {
            (Some(start), Some(end)) if end >= start => (end - start) as f64 / 1000.0,
            _ => 0.0,
        };
        let secs = |task: Option<&TaskView>| {
            let counted = task.map_or(0.0, |t| t.counting_secs(now_ms));
            if counted > 0.0 {
                counted
            } else {
                run_secs
            }
        };
        Counters {
            received,
            received_bytes: pick(src.map_or(0, |s| s.bytes_out), src_kept.write_bytes),
            written,
            written_bytes: pick(dest.map_or(0, |s| s.bytes_in), dest_kept.read_bytes),
            committed,
            queue: src.map_or(0, |s| s.backlog.0),
            src_secs: secs(self.src.as_ref()),
            dest_secs: secs(self.dest.as_ref()),
            tables: dest
                .map(|s| s.tables.iter().map(|(t, c)| (t.clone(), c.rows)).collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
