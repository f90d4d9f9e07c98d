//! The embedded orchestrator's calls (the [`Orchestrator`] trait).
//!
//! # Registering
//! A job posted under an existing ID is read against the stored one first
//! ([`jobs::JobSpec::reconciled_with`]): passwords posted as `*`, the executed `Gtid` and the node
//! shown by the API are the stored values. Unchanged and running, nothing happens (`Changed:
//! false`, no restart, the form it was first posted in stays); otherwise its tasks are stopped and
//! started again with the new definition.
//!
//! Names key a job's NATS subjects and its position rows on the target, so no two jobs share one:
//! a job whose `Name` another job (another ID) has is refused (409). A job posted without `ID`
//! gets its name as ID (dtle 3.x's rule); when a job has that ID already, the post never replaces
//! it (dtle 2.x would have created a second job under a generated ID, which dtle-rs cannot run
//! beside the first): it is the same job (nothing changes, or a stopped job starts again), or a
//! 409 that says to post it with its `ID` to update it.

use super::supervisor::push_event;
use super::{EmbeddedOrchestrator, JobEntry};
use crate::orchestrator::history::{Checkpoint, JobHistory, JobState};
use crate::orchestrator::{
    Allocation, JobRecord, Node, Orchestrator, OrchestratorError, Registered, Watched,
};
use driver::stats::StatsSnapshot;
use jobs::ParsedJob;
use std::path::PathBuf;
use std::time::Duration;

#[async_trait::async_trait]
impl Orchestrator for EmbeddedOrchestrator {
    async fn register(&self, job: ParsedJob) -> Result<Registered, OrchestratorError> {
        let ParsedJob {
            mut spec,
            posted,
            explicit_id,
            ..
        } = job;
        // Passwords posted sealed (`POST /encrypt-config`) are opened here, once.
        self.inner.store.keys().open_job(&mut spec).map_err(|why| {
            OrchestratorError::Rejected(format!("a password of the job was {why}"))
        })?;
        let id = spec.id.clone();
        let eval_id = uuid::Uuid::new_v4().to_string();
        let existing = {
            let state = self.lock()?;
            if let Some(other) = state
                .jobs
                .values()
                .find(|e| e.record.spec.name == spec.name && e.record.spec.id != id)
            {
                return Err(OrchestratorError::Conflict(format!(
                    "job {} is named {:?} already: a job's name keys its NATS subjects and its \
                     position on the target, so two jobs cannot share one. Give this job another \
                     Name, or post it with \"ID\": \"{}\" to update that job",
                    other.record.spec.id, spec.name, other.record.spec.id
                )));
            }
            state.jobs.get(&id).map(|e| {
                (
                    self.view(&e.record, &e.tasks),
                    e.record.status == "dead" || e.tasks.iter().all(|t| t.run.is_cancelled()),
                )
            })
        };
        let spec = match &existing {
            Some((shown, _)) => {
                let executed = shown.executed();
                spec.reconciled_with(&shown.spec, &shown.shown(executed.as_ref()))
            }
            None => spec,
        };
        let same = existing
            .as_ref()
            .is_some_and(|(shown, _)| shown.spec == spec);
        match existing {
            Some((_, false)) if same => {
                // Posted again unchanged and still running: nothing to do.
                tracing::info!(job = %id, "job posted again unchanged");
                return self.registered(&id, eval_id, false);
            }
            Some(_) if !same && !explicit_id => {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} exists, and this job, posted without an ID under its name, differs \
                     from it: a job without an ID never replaces another. Post it with \"ID\": \
                     \"{id}\" to update job {id}, or give it another Name"
                )));
            }
            Some(_) => {
                // Changed (or stopped): stop the old tasks, keep the allocations' history.
                self.halt(&id, "Killed", "Task stopped: the job was updated")
                    .await;
                let mut state = self.lock()?;
                let index = self.bump_jobs(&mut state);
                if let Some(entry) = state.jobs.get_mut(&id) {
                    if !same {
                        entry.record.posted = posted;
                    }
                    entry.record.spec = spec;
                    entry.record.job_modify_index = index;
                    entry.record.modify_index = index;
                    entry.record.paused = false;
                    entry.record.status = "pending".into();
                    for task in &entry.tasks {
                        if let Ok(mut alloc) = task.alloc.lock() {
                            alloc.eval_id = eval_id.clone();
                            push_event(
                                &mut alloc,
                                "Received",
                                "Task received by client (job updated)",
                                "",
                                Duration::ZERO,
                            );
                        }
                    }
                }
            }
            None => {
                let mut state = self.lock()?;
                let index = self.bump_jobs(&mut state);
                let record = JobRecord::new(spec, posted, index);
                let tasks = self.new_allocations(&record, &eval_id);
                let shown_status = self.view(&record, &tasks).status;
                state.jobs.insert(
                    id.clone(),
                    JobEntry {
                        record,
                        tasks,
                        shown_status,
                    },
                );
            }
        }
        self.history_registered(&id, "registered");
        self.launch(&id);
        tracing::info!(job = %id, "job registered");
        self.registered(&id, eval_id, true)
    }

    async fn jobs(&self) -> Result<Vec<JobRecord>, OrchestratorError> {
        let state = self.lock()?;
        Ok(state
            .jobs
            .values()
            .map(|e| self.view(&e.record, &e.tasks))
            .collect())
    }

    async fn job(&self, id: &str) -> Result<JobRecord, OrchestratorError> {
        let state = self.lock()?;
        state
            .jobs
            .get(id)
            .map(|e| self.view(&e.record, &e.tasks))
            .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))
    }

    async fn stop(
        &self,
        id: &str,
        purge: bool,
        forget_position: bool,
    ) -> Result<Registered, OrchestratorError> {
        let eval_id = uuid::Uuid::new_v4().to_string();
        let registered = self.registered(id, eval_id, true)?;
        self.halt(id, "Killed", "Task killed: the job was stopped")
            .await;
        if forget_position {
            // The applier has ended (rolled back, let go of its connection), unless it was left
            // detached, which `halt` warned of.
            let spec = self.job(id).await?.spec;
            driver::task::forget_position(&spec).await.map_err(|e| {
                OrchestratorError::Internal(format!(
                    "deleting the position of job {id} on the target: {e}"
                ))
            })?;
        }
        if purge {
            let index = {
                let mut state = self.lock()?;
                state.jobs.remove(id);
                self.bump_jobs(&mut state)
            };
            self.inner.store.remove(id)?;
            self.inner.store.save_index(index)?;
            self.inner.history.purged(id);
        } else {
            self.inner
                .history
                .transition(id, JobState::Canceled, "stopped by the user");
            let mut state = self.lock()?;
            let index = self.bump_jobs(&mut state);
            if let Some(entry) = state.jobs.get_mut(id) {
                entry.record.status = "dead".into();
                entry.record.paused = false;
                entry.record.modify_index = index;
            }
            drop(state);
            self.touch(id);
        }
        tracing::info!(job = %id, purge, "job stopped");
        Ok(registered)
    }

    async fn pause(&self, id: &str) -> Result<Registered, OrchestratorError> {
        {
            let state = self.lock()?;
            let entry = state
                .jobs
                .get(id)
                .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
            if entry.record.paused {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is already paused"
                )));
            }
            if self.view(&entry.record, &entry.tasks).status == "dead" {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is not running"
                )));
            }
        }
        self.halt(
            id,
            "Paused",
            "Task stopped: the job was paused; it resumes from the target's position",
        )
        .await;
        {
            let mut state = self.lock()?;
            let index = self.bump_jobs(&mut state);
            if let Some(entry) = state.jobs.get_mut(id) {
                entry.record.paused = true;
                entry.record.modify_index = index;
            }
        }
        self.inner
            .history
            .transition(id, JobState::Paused, "paused by the user");
        self.touch(id);
        self.registered(id, uuid::Uuid::new_v4().to_string(), true)
    }

    async fn resume(&self, id: &str) -> Result<Registered, OrchestratorError> {
        {
            let mut state = self.lock()?;
            let paused = state
                .jobs
                .get(id)
                .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?
                .record
                .paused;
            if !paused {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is not paused"
                )));
            }
            let index = self.bump_jobs(&mut state);
            let Some(entry) = state.jobs.get_mut(id) else {
                return Err(OrchestratorError::JobNotFound(id.to_owned()));
            };
            entry.record.paused = false;
            entry.record.modify_index = index;
            for task in &entry.tasks {
                if let Ok(mut alloc) = task.alloc.lock() {
                    push_event(
                        &mut alloc,
                        "Resumed",
                        "The job was resumed",
                        "",
                        Duration::ZERO,
                    );
                }
            }
        }
        self.inner.history.resumed(id, "resumed by the user");
        self.launch(id);
        self.registered(id, uuid::Uuid::new_v4().to_string(), true)
    }

    async fn allocations(&self, id: &str) -> Result<Vec<Allocation>, OrchestratorError> {
        let state = self.lock()?;
        let entry = state
            .jobs
            .get(id)
            .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
        Ok(entry
            .tasks
            .iter()
            .filter_map(|t| {
                let mut alloc = t.alloc.lock().ok()?.clone();
                // The driver's stage travels with the latest event, as dtle's DriverMessage did.
                let stage = t.stats.snapshot().stage;
                if let Some(last) = alloc.task_state.events.last_mut() {
                    last.driver_message = stage;
                }
                Some(alloc)
            })
            .collect())
    }

    async fn allocation_stats(
        &self,
        alloc_id: &str,
    ) -> Result<(Allocation, StatsSnapshot, Option<Duration>), OrchestratorError> {
        let state = self.lock()?;
        let mut found = Vec::new();
        for entry in state.jobs.values() {
            for task in &entry.tasks {
                let Ok(alloc) = task.alloc.lock() else {
                    continue;
                };
                if !alloc_id.is_empty() && alloc.id.starts_with(alloc_id) {
                    let stats = task.stats.snapshot();
                    let eta = stats.eta(task.since.elapsed());
                    found.push((alloc.clone(), stats, eta));
                }
            }
        }
        match found.len() {
            0 => Err(OrchestratorError::AllocationNotFound(alloc_id.to_owned())),
            1 => Ok(found.remove(0)),
            _ => {
                let mut candidates: Vec<String> = found.into_iter().map(|(a, _, _)| a.id).collect();
                candidates.sort();
                Err(OrchestratorError::AmbiguousPrefix {
                    prefix: alloc_id.to_owned(),
                    candidates,
                })
            }
        }
    }

    async fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        // The node is this agent: registered at its start, the first index, and never changed.
        Ok(vec![Node {
            create_index: 1,
            modify_index: 1,
            id: self.inner.node_id.clone(),
            name: self.inner.config.node_name.clone(),
            datacenter: self.inner.config.datacenter.clone(),
            http_addr: self.inner.config.http_addr.clone(),
            status: "ready".into(),
        }])
    }

    async fn leader(&self) -> Result<String, OrchestratorError> {
        Ok(self.inner.config.http_addr.clone())
    }

    async fn wait_index(
        &self,
        watched: Watched<'_>,
        min_index: u64,
        wait: Duration,
    ) -> Result<u64, OrchestratorError> {
        self.wait_for(watched, min_index, wait).await
    }

    fn release_watchers(&self) {
        self.release();
    }

    async fn history(&self, id: &str) -> Result<JobHistory, OrchestratorError> {
        self.inner
            .history
            .get(id)
            .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))
    }

    async fn histories(&self) -> Result<Vec<JobHistory>, OrchestratorError> {
        Ok(self.inner.history.all())
    }

    async fn stop_with_savepoint(&self, id: &str) -> Result<Checkpoint, OrchestratorError> {
        self.savepoint_stop(id).await
    }

    fn seal_secret(&self, plain: &str) -> Result<String, OrchestratorError> {
        Ok(self.inner.store.keys().seal(plain))
    }

    fn job_log_dir(&self) -> Option<PathBuf> {
        // Where the agent's `JobLogLayer` writes (see `dtle agent`).
        Some(self.inner.config.state_dir.join("logs"))
    }
}
