//! The job history: what the monitoring APIs (Flink's, SeaTunnel's) tell about jobs and the
//! dtle 2.x API does not keep. It lives in the agent's state folder, so it survives agent
//! restarts and outlives a job's purge.
//!
//! # What is kept, per job ([`JobHistory`])
//! - who it is: the dtle job ID, its name, the job as last posted with its passwords masked,
//!   and the tables it replicates (as its `ReplicateDoDb` names them, and as the Src was seen to
//!   read them);
//! - its life: when it was first registered, when its current run started, its [`JobState`]
//!   (running, paused, finished, canceled, failed, savepoint-done) with every transition and
//!   its time, the finish time, the last error;
//! - exceptions: every task failure and restart cause, with its time and task (Src or Dest),
//!   passwords scrubbed;
//! - checkpoints: each position the target was seen to have committed (its GTID set, binlog
//!   file and offset), when, and the rows and transactions committed since the previous one; a
//!   savepoint is a checkpoint taken by a stop with savepoint; also how often, and from which
//!   checkpoint, the job last started again from a recorded position (a *restore*);
//! - the last counters of each task (rows and bytes in and out), so an ended job still shows
//!   them.
//!
//! # When it is written
//! Whoever runs the jobs feeds it (the embedded orchestrator: `embedded::history_feed`):
//! at registration, stop, purge, pause, resume, on every change of a task's allocation (its
//! failures and restarts), and from a timer that samples the running tasks' counters every
//! [`SAMPLE_EVERY`] and records a checkpoint whenever the committed position moved. Each change
//! rewrites that job's file, `<state_dir>/history/<job ID>.json` (temporary file, fsync,
//! rename; readable by its owner only), before the call returns.
//!
//! # Bounds
//! Per job at most [`MAX_TRANSITIONS`] transitions, [`MAX_EXCEPTIONS`] exceptions and
//! [`MAX_CHECKPOINTS`] checkpoints are kept (the oldest are dropped; totals count them all, and
//! the latest savepoint is kept aside), and [`MAX_TABLES`] table names. A job's history is
//! removed only with its file: purging the job keeps it (marked purged).

pub mod model;
#[cfg(test)]
mod tests;

pub use model::{
    Checkpoint, ExceptionEntry, JobHistory, JobState, PositionSample, Restore, Transition,
    VertexTotals, MAX_CHECKPOINTS, MAX_EXCEPTIONS, MAX_TABLES, MAX_TRANSITIONS,
};

use jobs::{JobSpec, Role};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How often the running tasks are sampled for checkpoints and counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Time since the epoch in ms, as Flink and SeaTunnel report times.
pub fn now_ms() -> u64 {
    super::now_ns() / 1_000_000
}

/// Passwords shorter than this are not scrubbed from messages (they would mangle every word).
const SHORTEST_SCRUBBED: usize = 3;

/// `message` with the job's passwords replaced by `*`, whatever wrote it.
pub fn scrub(message: &str, spec: &JobSpec) -> String {
    let mut out = message.to_owned();
    for password in [
        &spec.src.connection.password,
        &spec.dest.connection.password,
    ] {
        let plain = password.expose();
        if plain.len() >= SHORTEST_SCRUBBED {
            out = out.replace(plain, jobs::Password::MASK);
        }
    }
    out
}

/// Why the history could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The folder could not be created.
    #[error("creating the history folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A job's file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A job's history could not be encoded.
    #[error("encoding the history of job {job}: {source}")]
    Encode {
        /// The job.
        job: String,
        /// What went wrong.
        source: serde_json::Error,
    },
}

/// The history of every job, kept in memory and in its folder.
#[derive(Debug)]
pub struct History {
    dir: PathBuf,
    /// Held while a job's history changes and its file is written, so files are written in
    /// the order of the changes.
    jobs: Mutex<BTreeMap<String, JobHistory>>,
}

impl History {
    /// Opens (creating) `<state_dir>/history` and reads every job's history back; unreadable
    /// files are reported and skipped.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn open(state_dir: &Path) -> Result<Self, HistoryError> {
        let dir = state_dir.join("history");
        std::fs::create_dir_all(&dir).map_err(|source| HistoryError::Folder {
            path: dir.clone(),
            source,
        })?;
        let mut jobs = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let read = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<JobHistory>(&b).map_err(|e| e.to_string())
                    });
                match read {
                    Ok(history) => {
                        jobs.insert(history.job_id.clone(), history);
                    }
                    Err(err) => {
                        tracing::error!(file = %path.display(), %err, "skipping an unreadable job history")
                    }
                }
            }
        }
        Ok(Self {
            dir,
            jobs: Mutex::new(jobs),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, JobHistory>> {
        // A panic while holding the lock leaves whole records behind: keep using them.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One job's history.
    pub fn get(&self, id: &str) -> Option<JobHistory> {
        self.lock().get(id).cloned()
    }

    /// Every job's history, sorted by job ID.
    pub fn all(&self) -> Vec<JobHistory> {
        self.lock().values().cloned().collect()
    }

    /// Applies `change` to job `id`'s history (when there is one) and writes it when `change`
    /// says it changed something; write errors are logged, never returned: the history must
    /// not stop a job.
    fn update(&self, id: &str, change: impl FnOnce(&mut JobHistory) -> bool) {
        let mut jobs = self.lock();
        let Some(history) = jobs.get_mut(id) else {
            return;
        };
        if change(history) {
            if let Err(err) = self.write(history) {
                tracing::error!(job = %id, %err, "could not write the job's history");
            }
        }
    }

    fn write(&self, history: &JobHistory) -> Result<(), HistoryError> {
        // Job IDs are validated to [A-Za-z0-9_-], so they are safe file names.
        let path = self.dir.join(format!("{}.json", history.job_id));
        let text = serde_json::to_vec(history).map_err(|source| HistoryError::Encode {
            job: history.job_id.clone(),
            source,
        })?;
        super::state_file::write_private(&path, &text)
            .map_err(|source| HistoryError::Write { path, source })
    }

    /// A job was posted (created, updated, or posted again after it ended): it runs.
    pub fn registered(&self, spec: &JobSpec, message: &str) {
        let now = now_ms();
        let mut jobs = self.lock();
        let history = jobs
            .entry(spec.id.clone())
            .and_modify(|h| h.start(spec, message, now))
            .or_insert_with(|| {
                let mut h = JobHistory::new(spec, now);
                h.enter(JobState::Running, message, now);
                h
            });
        if let Err(err) = self.write(history) {
            tracing::error!(job = %spec.id, %err, "could not write the job's history");
        }
    }

    /// A paused job was resumed, or the agent restarted a running job: it runs again from the
    /// target's position.
    pub fn resumed(&self, id: &str, message: &str) {
        let now = now_ms();
        self.update(id, |h| {
            h.note_restore(now);
            h.enter(JobState::Running, message, now);
            true
        });
    }

    /// The job entered `state`. A job that has ended keeps its end: only a running or paused
    /// job changes state here (a new run comes through [`Self::registered`]).
    pub fn transition(&self, id: &str, state: JobState, message: &str) {
        let now = now_ms();
        self.update(id, |h| {
            if h.state.is_terminal() || h.state == state {
                return false;
            }
            h.enter(state, message, now);
            true
        });
    }

    /// The dtle job was purged: its history stays, marked so; a job still running or paused is
    /// canceled by it.
    pub fn purged(&self, id: &str) {
        let now = now_ms();
        self.update(id, |h| {
            if !h.state.is_terminal() {
                h.enter(JobState::Canceled, "stopped and purged by the user", now);
            }
            h.purged = true;
            true
        });
    }

    /// Looks at one task's events for failures and restart causes not seen yet.
    pub fn task_events(&self, id: &str, task: Role, events: &[TaskFailure]) {
        self.update(id, |h| {
            let mut changed = false;
            for event in events {
                changed |= h.record_exception(
                    event.event_ns,
                    ExceptionEntry {
                        time_ms: event.event_ns / 1_000_000,
                        task,
                        message: event.message.clone(),
                        restarted: event.restarted,
                    },
                );
            }
            changed
        });
    }

    /// Records what the running tasks were seen doing: their counters, the tables read, and a
    /// checkpoint when the committed position moved. Returns the checkpoint when one was
    /// recorded.
    pub fn sample(&self, id: &str, sample: &Sample) -> Option<Checkpoint> {
        let now = now_ms();
        let mut recorded = None;
        self.update(id, |h| {
            let mut changed = h.saw_tables(&sample.tables);
            for (role, totals) in &sample.vertices {
                if h.vertices.get(role) != Some(totals) {
                    h.vertices.insert(*role, totals.clone());
                    changed = true;
                }
            }
            if let Some(position) = &sample.position {
                recorded = h.checkpoint(position, false, 0, now);
                changed |= recorded.is_some();
            }
            changed
        });
        recorded
    }

    /// Records a savepoint at `position` and marks the job savepoint-done.
    pub fn savepoint(
        &self,
        id: &str,
        position: &PositionSample,
        duration_ms: u64,
    ) -> Option<Checkpoint> {
        let now = now_ms();
        let mut recorded = None;
        self.update(id, |h| {
            recorded = h.checkpoint(position, true, duration_ms, now);
            h.enter(
                JobState::SavepointDone,
                "stopped with a savepoint by the user",
                now,
            );
            true
        });
        recorded
    }
}

/// A failure seen in a task's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The event's time, ns since the epoch (events are told apart by it).
    pub event_ns: u64,
    /// The error.
    pub message: String,
    /// Whether the task was restarted after it.
    pub restarted: bool,
}

/// What one look at a job's running tasks found.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The position the target has committed, with the applied counters, when known.
    pub position: Option<PositionSample>,
    /// Each task's counters.
    pub vertices: Vec<(Role, VertexTotals)>,
    /// Tables the Src read (`schema.table`).
    pub tables: Vec<String>,
}
