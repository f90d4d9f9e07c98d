//! How the embedded orchestrator feeds the [job history](crate::orchestrator::history).
//!
//! - Registration, pause, resume, stop, purge and the agent's restart of a running job each
//!   record their transition (see the calls in the parent module).
//! - Every change of an allocation (the supervisor's events, persisted by `persist`) is looked
//!   at for failures: a `Restarting` event's error is a restart cause, a `Terminated` event with
//!   an error a failure that ended the task; a task that failed for good fails the job, and a Src
//!   that finished by itself (a snapshot-only job) finishes it.
//! - A timer ([`SAMPLE_EVERY`]) reads the running tasks' counters: the Src's executed position
//!   (what the target committed, learnt from the applier's acknowledgements) becomes a
//!   checkpoint whenever it moved, and each task's counters are kept for when it has ended.
//!
//! Errors are recorded with the job's passwords replaced by `*`, whatever the driver wrote.

use super::{EmbeddedOrchestrator, Inner};
use crate::orchestrator::history::{
    scrub, JobState, PositionSample, Sample, TaskFailure, VertexTotals, SAMPLE_EVERY,
};
use driver::change::SourcePosition;
use driver::stats::TaskStats;
use jobs::{JobSpec, Role};
use std::sync::{Arc, Weak};

/// The position a sample records, from a task's coordinates.
pub(super) fn position_sample(position: &SourcePosition, rows: u64, txns: u64) -> PositionSample {
    PositionSample {
        gtid_set: position.gtid_set.as_ref().map(ToString::to_string),
        binlog_file: position.file.clone(),
        binlog_pos: position.pos,
        rows_applied: rows,
        txns_applied: txns,
    }
}

/// What one allocation looks like to the history.
struct TaskView {
    role: Role,
    failures: Vec<TaskFailure>,
    /// The error of the failure that ended it, when it failed for good.
    failed: Option<String>,
    /// Whether it ended by itself, without error and without being asked to.
    finished: bool,
}

impl EmbeddedOrchestrator {
    /// The job `id` was posted (new, changed, or again after it ended): record the new run.
    /// Call it before its tasks are launched, so that their first events belong to it.
    pub(super) fn history_registered(&self, id: &str, message: &str) {
        let spec = self
            .inner
            .state
            .lock()
            .ok()
            .and_then(|s| s.jobs.get(id).map(|e| e.record.spec.clone()));
        if let Some(spec) = spec {
            self.inner.history.registered(&spec, message);
        }
    }

    /// A job read back from the state folder: record its restart (when it runs), or give it a
    /// history if it had none (a state folder from before the history was kept).
    pub(super) fn history_restored(&self, spec: &JobSpec, run: bool, paused: bool) {
        let history = &self.inner.history;
        if history.get(&spec.id).is_none() {
            history.registered(spec, "known before the history was kept");
            if paused {
                history.transition(&spec.id, JobState::Paused, "paused");
            } else if !run {
                history.transition(
                    &spec.id,
                    JobState::Canceled,
                    "ended before the agent restarted",
                );
            }
        } else if run {
            history.resumed(
                &spec.id,
                "the agent restarted; resuming from the target's position",
            );
        }
    }

    /// Looks at job `id`'s allocations for failures not recorded yet, and at whether the job
    /// failed or finished.
    pub(super) fn history_observe(&self, id: &str) {
        let (spec, views) = {
            let Ok(state) = self.inner.state.lock() else {
                return;
            };
            let Some(entry) = state.jobs.get(id) else {
                return;
            };
            let views: Vec<TaskView> = entry
                .tasks
                .iter()
                .filter_map(|t| t.alloc.lock().ok().map(|a| view(&a)))
                .collect();
            (entry.record.spec.clone(), views)
        };
        let history = &self.inner.history;
        for task in &views {
            let failures: Vec<TaskFailure> = task
                .failures
                .iter()
                .map(|f| TaskFailure {
                    message: scrub(&f.message, &spec),
                    ..f.clone()
                })
                .collect();
            history.task_events(id, task.role, &failures);
        }
        if let Some(task) = views.iter().find(|t| t.failed.is_some()) {
            let error = scrub(task.failed.as_deref().unwrap_or_default(), &spec);
            history.transition(
                id,
                JobState::Failed,
                &format!("the {} task failed: {error}", task.role),
            );
        } else if views.iter().any(|t| t.role == Role::Src && t.finished) {
            history.transition(
                id,
                JobState::Finished,
                "the Src finished by itself (SkipIncrementalCopy)",
            );
        }
    }

    /// Records one look at every running job's tasks.
    fn sample_all(&self) {
        struct Look {
            id: String,
            src: Option<Arc<TaskStats>>,
            dest: Option<Arc<TaskStats>>,
        }
        let looks: Vec<Look> = {
            let Ok(state) = self.inner.state.lock() else {
                return;
            };
            state
                .jobs
                .iter()
                .filter(|(_, e)| !e.record.paused && e.record.status != "dead")
                .map(|(id, entry)| {
                    let stats = |role: Role| {
                        entry
                            .tasks
                            .iter()
                            .find(|t| t.alloc.lock().is_ok_and(|a| a.role == role))
                            .map(|t| t.stats.clone())
                    };
                    Look {
                        id: id.clone(),
                        src: stats(Role::Src),
                        dest: stats(Role::Dest),
                    }
                })
                .collect()
        };
        for look in looks {
            let sample = sample(look.src.as_deref(), look.dest.as_deref());
            if let Some(checkpoint) = self.inner.history.sample(&look.id, &sample) {
                tracing::debug!(
                    job = %look.id,
                    id = checkpoint.id,
                    position = %checkpoint.position_text(),
                    rows = checkpoint.rows_since_previous,
                    "checkpoint"
                );
            }
        }
    }
}

/// Failures, and how the allocation ended, from its events and status.
fn view(alloc: &crate::orchestrator::Allocation) -> TaskView {
    let events = &alloc.task_state.events;
    let failures = events
        .iter()
        .filter(|e| {
            !e.driver_error.is_empty() && (e.kind == "Restarting" || e.kind == "Terminated")
        })
        .map(|e| TaskFailure {
            event_ns: e.time,
            message: e.driver_error.clone(),
            restarted: e.kind == "Restarting",
        })
        .collect();
    let last = events.last();
    let failed = (alloc.client_status == "failed").then(|| {
        last.filter(|e| !e.driver_error.is_empty())
            .map_or_else(|| "the task failed".to_owned(), |e| e.driver_error.clone())
    });
    let finished = alloc.client_status == "complete"
        && alloc.desired_status == "run"
        && last.is_some_and(|e| e.kind == "Terminated" && e.driver_error.is_empty());
    TaskView {
        role: alloc.role,
        failures,
        failed,
        finished,
    }
}

/// What the tasks' counters say now. The checkpoint position is the Src's executed one (what
/// the target committed, as the applier acknowledged it), else the Dest's own.
fn sample(src: Option<&TaskStats>, dest: Option<&TaskStats>) -> Sample {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = Sample::default();
    if let Some(src) = src {
        let traffic = src.traffic();
        let read = src.rows_read.load(Relaxed);
        out.vertices.push((
            Role::Src,
            VertexTotals {
                read_records: read,
                write_records: read,
                read_bytes: traffic.bytes_in,
                write_bytes: traffic.bytes_out,
            },
        ));
        out.tables = src.table_names();
        out.position = src.executed().map(|p| {
            position_sample(
                &p,
                src.rows_applied.load(Relaxed),
                src.txns_applied.load(Relaxed),
            )
        });
    }
    if let Some(dest) = dest {
        let traffic = dest.traffic();
        let applied = dest.rows_applied.load(Relaxed);
        out.vertices.push((
            Role::Dest,
            VertexTotals {
                read_records: applied,
                write_records: applied,
                read_bytes: traffic.bytes_in,
                write_bytes: traffic.bytes_out,
            },
        ));
        if out.position.as_ref().is_none_or(|p| !p.is_known()) {
            let position =
                position_sample(&dest.position(), applied, dest.txns_applied.load(Relaxed));
            out.position = Some(position).filter(PositionSample::is_known);
        }
    }
    out
}

/// Starts the timer that samples the running tasks every [`SAMPLE_EVERY`] until the agent
/// shuts down. It holds the orchestrator weakly: dropping the orchestrator ends it too.
pub(super) fn spawn_sampler(orchestrator: &EmbeddedOrchestrator) {
    let weak: Weak<Inner> = Arc::downgrade(&orchestrator.inner);
    let root = orchestrator.inner.root.clone();
    orchestrator.inner.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = root.cancelled() => return,
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
            let Some(inner) = weak.upgrade() else {
                return;
            };
            EmbeddedOrchestrator { inner }.sample_all();
        }
    });
}
