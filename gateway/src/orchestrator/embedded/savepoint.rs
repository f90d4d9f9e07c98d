//! Stop with savepoint: the job stops only once the target has committed what its Src read,
//! and that position is recorded as a savepoint in the job's history.
//!
//! # Steps
//! 1. The Src task is stopped (and awaited, as every stop is): nothing more is read.
//! 2. The Dest goes on applying what the Src had sent; once it has received nothing and
//!    committed nothing for [`IDLE_FOR`] (or [`DRAIN_TIMEOUT`] has passed), it has applied
//!    everything in flight.
//! 3. The Dest is stopped (it rolls back a transaction still open: one whose end the Src never
//!    sent).
//! 4. The position the Dest last committed (else the one the Src last learnt from it, else the
//!    latest checkpoint) is recorded as a savepoint, and the job's status becomes dead, its
//!    history savepoint-done.
//!
//! Resuming from the savepoint is posting the job again: its tasks start from the position
//! stored on the target, which is the savepoint's (nothing ran in between).
//!
//! A job still copying its snapshot has committed no binlog position yet: its savepoint has
//! none, and the job posted again goes on with the snapshot from the target's progress rows.

use super::EmbeddedOrchestrator;
use crate::orchestrator::history::{Checkpoint, PositionSample};
use crate::orchestrator::OrchestratorError;
use driver::stats::TaskStats;
use jobs::Role;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How long the Dest must have received and committed nothing to count as drained.
pub const IDLE_FOR: Duration = Duration::from_secs(1);
/// The longest wait for the Dest to drain; then it is stopped anyway (the savepoint is still
/// what the target committed, only not everything the Src had read).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the Dest's counters are looked at while it drains.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// What changes while the Dest applies.
fn activity(stats: &TaskStats) -> (u64, u64, u64, u64) {
    (
        stats.traffic().msgs_in,
        stats.rows_applied.load(Relaxed),
        stats.txns_applied.load(Relaxed),
        stats.target_commits.load(Relaxed),
    )
}

/// Waits until `stats` has not moved for [`IDLE_FOR`], at most `timeout`; tells whether it
/// got there.
async fn drained(stats: &TaskStats, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = activity(stats);
    let mut still_since = tokio::time::Instant::now();
    loop {
        if still_since.elapsed() >= IDLE_FOR {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(PROBE_EVERY).await;
        let now = activity(stats);
        if now != last {
            last = now;
            still_since = tokio::time::Instant::now();
        }
    }
}

impl EmbeddedOrchestrator {
    fn task_stats(&self, id: &str, role: Role) -> Option<Arc<TaskStats>> {
        let state = self.inner.state.lock().ok()?;
        let entry = state.jobs.get(id)?;
        entry
            .tasks
            .iter()
            .find(|t| t.alloc.lock().is_ok_and(|a| a.role == role))
            .map(|t| t.stats.clone())
    }

    /// See the module docs.
    pub(super) async fn savepoint_stop(&self, id: &str) -> Result<Checkpoint, OrchestratorError> {
        let started = tokio::time::Instant::now();
        {
            let state = self.lock()?;
            let entry = state
                .jobs
                .get(id)
                .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
            if entry.record.paused {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is paused: resume it before stopping it with a savepoint"
                )));
            }
            let ended = self.inner.history.get(id).map(|h| h.state);
            if let Some(state) = ended.filter(|s| s.is_terminal()) {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} has ended ({}): it is not running",
                    state.as_str()
                )));
            }
            if Self::with_status(&entry.record, &entry.tasks).status == "dead" {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is not running"
                )));
            }
        }
        let (Some(src), Some(dest)) = (
            self.task_stats(id, Role::Src),
            self.task_stats(id, Role::Dest),
        ) else {
            return Err(OrchestratorError::Internal(format!(
                "job {id} has no Src or no Dest task"
            )));
        };
        tracing::info!(job = %id, "stopping the job with a savepoint: stopping the Src");
        self.halt_tasks(
            id,
            Some(Role::Src),
            "Killed",
            "Task stopped: the job is being stopped with a savepoint",
        )
        .await;
        if !drained(&dest, DRAIN_TIMEOUT).await {
            tracing::warn!(job = %id, timeout = ?DRAIN_TIMEOUT, "the Dest kept applying; stopping it anyway");
        }
        self.halt_tasks(
            id,
            Some(Role::Dest),
            "Killed",
            "Task stopped: the job was stopped with a savepoint",
        )
        .await;
        // What the Dest committed last; a Dest that committed nothing in this run has the
        // position the Src learnt from it at the start.
        let committed = super::history_feed::position_sample(
            &dest.position(),
            dest.rows_applied.load(Relaxed),
            dest.txns_applied.load(Relaxed),
        );
        let position = if committed.is_known() {
            committed
        } else if let Some(executed) = src.executed() {
            super::history_feed::position_sample(
                &executed,
                dest.rows_applied.load(Relaxed),
                dest.txns_applied.load(Relaxed),
            )
        } else {
            self.latest_position(id)
        };
        {
            let mut state = self.lock()?;
            let index = Self::next_index(&mut state);
            if let Some(entry) = state.jobs.get_mut(id) {
                entry.record.status = "dead".into();
                entry.record.paused = false;
                entry.record.modify_index = index;
            }
        }
        self.persist(id);
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let checkpoint = self
            .inner
            .history
            .savepoint(id, &position, duration_ms)
            .ok_or_else(|| {
                OrchestratorError::Internal(format!("job {id} has no history to record it in"))
            })?;
        tracing::info!(
            job = %id,
            savepoint = checkpoint.id,
            position = %checkpoint.position_text(),
            "job stopped with a savepoint"
        );
        Ok(checkpoint)
    }

    /// The latest checkpoint's position, or an unknown one.
    fn latest_position(&self, id: &str) -> PositionSample {
        self.inner
            .history
            .get(id)
            .and_then(|h| h.latest_checkpoint().cloned())
            .map(|c| PositionSample {
                gtid_set: c.gtid_set,
                binlog_file: c.binlog_file,
                binlog_pos: c.binlog_pos,
                rows_applied: 0,
                txns_applied: 0,
            })
            .unwrap_or_default()
    }
}
