//! The embedded orchestrator's change index, as Nomad's Raft index is to its API: one counter,
//! raised by every change, whose value at a change is that change's index.
//!
//! - A job's record: created (`CreateIndex`), its definition changed (`JobModifyIndex`), any
//!   change of the record, its shown status included (`ModifyIndex`). Each is also a change of
//!   the job list, whose index is that of its last change (a purge included: the index is written
//!   to the state folder then, so it never goes back across restarts).
//! - An allocation: its `ModifyIndex` is raised whenever what it shows changed (a task event, a
//!   status): [`EmbeddedOrchestrator::touch`] compares it with what it was when last numbered.
//!
//! Watchers ([`EmbeddedOrchestrator::wait_for`]) subscribe to the counter and wake at each
//! change to see whether what they watch has passed the index they know. As Nomad, a wait is
//! lengthened by up to a sixteenth at random, so that watchers that started together do not all
//! come back at once. At the agent's shutdown every wait ends at once.

use super::{EmbeddedOrchestrator, State};
use crate::orchestrator::{Allocation, OrchestratorError, Watched};
use std::time::Duration;

/// What an allocation showed when its index was last raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    modify_time: u64,
    client_status: String,
    desired_status: String,
    state: String,
    failed: bool,
    restarts: u64,
    events: usize,
}

impl Seen {
    pub(super) fn of(alloc: &Allocation) -> Self {
        Self {
            modify_time: alloc.modify_time,
            client_status: alloc.client_status.clone(),
            desired_status: alloc.desired_status.clone(),
            state: alloc.task_state.state.clone(),
            failed: alloc.task_state.failed,
            restarts: alloc.task_state.restarts,
            events: alloc.task_state.events.len(),
        }
    }
}

impl EmbeddedOrchestrator {
    /// A change: the next index, announced to watchers.
    pub(super) fn bump(&self, state: &mut State) -> u64 {
        state.index += 1;
        self.inner.changes.send_replace(state.index);
        state.index
    }

    /// A change of a job's record, hence of the job list.
    pub(super) fn bump_jobs(&self, state: &mut State) -> u64 {
        let index = self.bump(state);
        state.jobs_index = index;
        index
    }

    /// Numbers what changed in `id`'s allocations and shown status since last time, then writes
    /// the job to the state folder. Call it after changing an allocation.
    pub(super) fn touch(&self, id: &str) {
        {
            let Ok(mut state) = self.inner.state.lock() else {
                return;
            };
            let Some(entry) = state.jobs.get(id) else {
                return;
            };
            let changed: Vec<usize> = entry
                .tasks
                .iter()
                .enumerate()
                .filter(|(_, task)| {
                    task.alloc
                        .lock()
                        .is_ok_and(|alloc| Seen::of(&alloc) != task.seen)
                })
                .map(|(i, _)| i)
                .collect();
            let status = self.view(&entry.record, &entry.tasks).status;
            let status_changed = status != entry.shown_status;
            if !changed.is_empty() || status_changed {
                let index = if status_changed {
                    self.bump_jobs(&mut state)
                } else {
                    self.bump(&mut state)
                };
                if let Some(entry) = state.jobs.get_mut(id) {
                    for i in changed {
                        let task = &mut entry.tasks[i];
                        if let Ok(mut alloc) = task.alloc.lock() {
                            alloc.modify_index = index;
                            task.seen = Seen::of(&alloc);
                        }
                    }
                    if status_changed {
                        entry.shown_status = status;
                        entry.record.modify_index = index;
                    }
                }
            }
        }
        self.persist(id);
    }

    /// The index of what `watched` reads.
    pub(super) fn index_of(&self, watched: Watched<'_>) -> Result<u64, OrchestratorError> {
        let state = self.lock()?;
        let index = match watched {
            Watched::Jobs => state.jobs_index,
            Watched::Job(id) => state
                .jobs
                .get(id)
                .map_or(state.jobs_index, |e| e.record.modify_index),
            Watched::Allocations(id) => state.jobs.get(id).map_or(state.jobs_index, |e| {
                e.tasks
                    .iter()
                    .filter_map(|t| t.alloc.lock().ok().map(|a| a.modify_index))
                    .fold(e.record.create_index, u64::max)
            }),
        };
        // Nomad never answers index 0: a watcher passing it back would not block.
        Ok(index.max(1))
    }

    /// Ends every wait, now and later.
    pub(super) fn release(&self) {
        self.inner.watchers.cancel();
    }

    /// Waits until the index of `watched` is above `min_index` (at once for 0), at most `wait`,
    /// or until [`Self::release`]; returns it.
    pub(super) async fn wait_for(
        &self,
        watched: Watched<'_>,
        min_index: u64,
        wait: Duration,
    ) -> Result<u64, OrchestratorError> {
        let mut changes = self.inner.changes.subscribe();
        let deadline = tokio::time::Instant::now() + with_jitter(wait);
        loop {
            let index = self.index_of(watched)?;
            if min_index == 0 || index > min_index {
                return Ok(index);
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, changes.changed()) => match changed {
                    Ok(Ok(())) => {}
                    // The wait is over (or the orchestrator is gone): answer with what there is.
                    _ => return self.index_of(watched),
                },
                () = self.inner.watchers.cancelled() => return self.index_of(watched),
            }
        }
    }
}

/// Up to a sixteenth more, at random.
fn with_jitter(wait: Duration) -> Duration {
    let most = wait.as_nanos() / 16;
    if most == 0 {
        return wait;
    }
    let extra = uuid::Uuid::new_v4().as_u128() % most;
    wait + Duration::from_nanos(u64::try_from(extra).unwrap_or(0))
}
