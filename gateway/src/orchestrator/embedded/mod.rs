//! The single-node orchestrator inside `dtle agent`: it keeps jobs, allocations and events in its
//! state folder and runs each job's Src and Dest tasks in-process through the driver's task API.
//!
//! # What survives what
//! Every change to a job or an allocation is written to the state folder before the call returns
//! (or, for task events, right after they happen). An agent that is killed and started again
//! reads the folder back and restarts the tasks of every job that was running; the tasks resume
//! from the position stored on the target, so nothing is lost or applied twice. Pausing stops the
//! tasks and remembers it; resuming starts them again, which continues from that same position.
//!
//! # What "stopped" means
//! Stop, purge, pause, an update of the job and the agent's shutdown all stop tasks the same
//! way ([`lifecycle`]): each of the job's runs is cancelled, and the call returns only once
//! every run's supervisor future has returned (the driver task has returned, the applier has
//! rolled back, connections are dropped), or once `kill_timeout` has passed. Only then is the
//! allocation marked dead with its `Killed`/`Paused` event, the position forgotten (stop with
//! `forget_position`), the job forgotten (purge) or the new definition started (update), so an
//! updated job never has two runs of one task at once. A run still alive at the deadline is
//! reported as killed, with a warning, and left detached: cancelled, so never restarted. The
//! shutdown cancels the root token every run descends from and waits, bounded by the same
//! timeout, for every run ever spawned, detached ones included; the jobs stay as they are on
//! disk, to be restored by the next start.

mod history_feed;
#[cfg(test)]
mod history_tests;
pub mod lifecycle;
pub mod savepoint;
pub mod store;
pub mod supervisor;
#[cfg(test)]
mod tests;

use super::history::{Checkpoint, History, JobHistory, JobState};
use super::now_ns;
use super::{Allocation, JobRecord, Node, Orchestrator, OrchestratorError, Registered, TaskState};
use driver::retry::RetryPolicy;
use driver::stats::{StatsSnapshot, TaskStats};
use jobs::{ParsedJob, Role};
use lifecycle::{stop_all, Outcome, RunHandle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Store, StoredJob};
use supervisor::{push_event, supervise, DriverRunner, RestartPolicy, Supervised, TaskRunner};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a stop waits for a task to end by default before it is left detached (Nomad's
/// `kill_timeout` is 5 s; an applier finishes the frame it is applying first, so allow more).
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How the embedded orchestrator runs.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Where jobs are kept.
    pub state_dir: PathBuf,
    /// The NATS server the tasks use.
    pub nats_url: String,
    /// This node's name.
    pub node_name: String,
    /// This node's datacenter.
    pub datacenter: String,
    /// Where the HTTP API listens, as other nodes would reach it.
    pub http_addr: String,
    /// Restarts of failed tasks.
    pub restart: RestartPolicy,
    /// Retries inside a task.
    pub task_retry: RetryPolicy,
    /// How long stopping a task (stop, purge, pause, update, shutdown) waits for it to end
    /// before reporting it killed and leaving it detached.
    pub kill_timeout: Duration,
}

/// A running (or ended) task.
struct Running {
    alloc: Arc<Mutex<Allocation>>,
    stats: Arc<TaskStats>,
    /// The current (or last) run: cancels it and tells when it has ended; a fresh one per run.
    run: RunHandle,
    /// When the current run started, for the snapshot's ETA.
    since: Instant,
}

impl Running {
    fn new(alloc: Allocation) -> Self {
        Self {
            alloc: Arc::new(Mutex::new(alloc)),
            stats: Arc::new(TaskStats::default()),
            run: RunHandle::idle(),
            since: Instant::now(),
        }
    }
}

struct JobEntry {
    record: JobRecord,
    tasks: Vec<Running>,
}

struct State {
    index: u64,
    jobs: BTreeMap<String, JobEntry>,
}

/// The embedded orchestrator; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedOrchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    config: EmbeddedConfig,
    node_id: String,
    store: Store,
    state: Mutex<State>,
    /// What runs each task: the driver's task API, or a stand-in in tests.
    runner: Arc<dyn TaskRunner>,
    /// Every run's token descends from it; the shutdown cancels it, and no run starts after.
    root: CancellationToken,
    /// Every run ever spawned, so the shutdown can wait for all of them, detached ones too.
    tasks: TaskTracker,
    /// What the monitoring APIs are told of each job ([`history_feed`]).
    history: History,
}

impl EmbeddedOrchestrator {
    /// Opens the state folder and restarts the jobs that were running; tasks run through the
    /// driver's task API. Call it inside a Tokio runtime.
    ///
    /// # Errors
    /// When the state folder cannot be used.
    pub fn start(config: EmbeddedConfig) -> Result<Self, OrchestratorError> {
        Self::start_with(config, Arc::new(DriverRunner))
    }

    /// As [`EmbeddedOrchestrator::start`], with tasks run by `runner`.
    ///
    /// # Errors
    /// When the state folder cannot be used.
    pub fn start_with(
        config: EmbeddedConfig,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Self, OrchestratorError> {
        let store = Store::open(&config.state_dir)?;
        let node_id = node_id(&config.state_dir)?;
        let history = History::open(&config.state_dir)
            .map_err(|e| OrchestratorError::Internal(e.to_string()))?;
        let inner = Arc::new(Inner {
            config,
            node_id,
            store,
            state: Mutex::new(State {
                index: 0,
                jobs: BTreeMap::new(),
            }),
            runner,
            root: CancellationToken::new(),
            tasks: TaskTracker::new(),
            history,
        });
        let orchestrator = Self { inner };
        for stored in orchestrator.inner.store.load() {
            orchestrator.restore(stored);
        }
        history_feed::spawn_sampler(&orchestrator);
        Ok(orchestrator)
    }

    /// Stops every task (the agent is shutting down) and waits, at most `kill_timeout`, until
    /// every run has ended; the jobs stay as they are on disk. Returns the names of the tasks
    /// still running at the deadline (each also logged as a warning); no task starts after.
    pub async fn shutdown(&self) -> Vec<String> {
        // Begin: one cancellation reaches every run, detached ones included.
        self.inner.root.cancel();
        self.inner.tasks.close();
        // Complete.
        let timeout = self.inner.config.kill_timeout;
        if tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_ok()
        {
            return Vec::new();
        }
        // Force: whatever is left is dropped with the runtime.
        let mut left = Vec::new();
        if let Ok(state) = self.inner.state.lock() {
            for task in state.jobs.values().flat_map(|e| &e.tasks) {
                if !task.run.has_ended() {
                    if let Ok(alloc) = task.alloc.lock() {
                        left.push(alloc.name.clone());
                    }
                }
            }
        }
        tracing::warn!(
            ?timeout,
            tasks = ?left,
            runs = self.inner.tasks.len(),
            "tasks did not end in time; leaving them to the runtime's shutdown"
        );
        left
    }

    fn restore(&self, stored: StoredJob) {
        let id = stored.record.spec.id.clone();
        let run = stored.record.status != "dead" && !stored.record.paused;
        self.history_restored(&stored.record.spec, run, stored.record.paused);
        let Ok(mut state) = self.inner.state.lock() else {
            return;
        };
        state.index = state
            .index
            .max(stored.record.modify_index)
            .max(stored.record.job_modify_index);
        let tasks = stored
            .allocations
            .into_iter()
            .map(|mut alloc| {
                if run {
                    push_event(
                        &mut alloc,
                        "Restored",
                        "The agent restarted; resuming the task",
                        "",
                        Duration::ZERO,
                    );
                }
                Running::new(alloc)
            })
            .collect();
        state.jobs.insert(
            id.clone(),
            JobEntry {
                record: stored.record,
                tasks,
            },
        );
        drop(state);
        if run {
            self.launch(&id);
        }
        tracing::info!(job = %id, running = run, "job restored from the state folder");
    }

    /// Starts (or restarts) the supervisors of a job's tasks; their earlier runs must have
    /// been stopped ([`Self::halt`]).
    fn launch(&self, id: &str) {
        let Ok(mut state) = self.inner.state.lock() else {
            return;
        };
        if self.inner.root.is_cancelled() {
            tracing::warn!(job = %id, "not starting the job's tasks: the agent is shutting down");
            return;
        }
        let Some(entry) = state.jobs.get_mut(id) else {
            return;
        };
        let spec = entry.record.spec.clone();
        for task in &mut entry.tasks {
            task.stats = Arc::new(TaskStats::default());
            task.since = Instant::now();
            if let Ok(mut alloc) = task.alloc.lock() {
                alloc.desired_status = "run".into();
                alloc.client_status = "pending".into();
                alloc.task_state.state = "pending".into();
                alloc.task_state.failed = false;
            }
            let persist = self.clone();
            let job_id = id.to_owned();
            let role = task.alloc.lock().map(|a| a.role).unwrap_or(Role::Src);
            let span = tracing::info_span!("alloc", job_id = %spec.id, task = %role);
            let supervised = |cancel| Supervised {
                spec: spec.clone(),
                alloc: task.alloc.clone(),
                stats: task.stats.clone(),
                cancel,
                nats_url: self.inner.config.nats_url.clone(),
                policy: self.inner.config.restart.clone(),
                retry: self.inner.config.task_retry.clone(),
                on_change: Arc::new(move || persist.persist(&job_id)),
                runner: self.inner.runner.clone(),
            };
            task.run = RunHandle::spawn(&self.inner.tasks, &self.inner.root, |cancel| {
                tracing::Instrument::instrument(supervise(supervised(cancel)), span)
            });
        }
        drop(state);
        self.persist(id);
    }

    /// Stops a job's tasks and returns once they have ended, or `kill_timeout` has passed
    /// ([`lifecycle`]); then records `kind` (`Killed`, `Paused`) with `message` on each, and
    /// warns of each task left detached.
    async fn halt(&self, id: &str, kind: &str, message: &str) {
        self.halt_tasks(id, None, kind, message).await;
    }

    /// As [`Self::halt`], for the task of role `only` alone when given.
    async fn halt_tasks(&self, id: &str, only: Option<Role>, kind: &str, message: &str) {
        let runs: Vec<_> = {
            let Ok(state) = self.inner.state.lock() else {
                return;
            };
            let Some(entry) = state.jobs.get(id) else {
                return;
            };
            entry
                .tasks
                .iter()
                .filter(|task| {
                    only.is_none_or(|role| task.alloc.lock().is_ok_and(|a| a.role == role))
                })
                .map(|task| {
                    if let Ok(mut alloc) = task.alloc.lock() {
                        alloc.desired_status = "stop".into();
                    }
                    (task.alloc.clone(), task.run.clone())
                })
                .collect()
        };
        let timeout = self.inner.config.kill_timeout;
        for (alloc, outcome) in stop_all(runs, timeout).await {
            let Ok(mut alloc) = alloc.lock() else {
                continue;
            };
            if alloc.task_state.state != "dead" {
                alloc.client_status = "complete".into();
                alloc.task_state.state = "dead".into();
                alloc.task_state.finished_at = Some(supervisor::now_rfc3339());
            }
            match outcome {
                Outcome::Ended => push_event(&mut alloc, kind, message, "", Duration::ZERO),
                Outcome::Detached => {
                    tracing::warn!(
                        job = %id,
                        task = %alloc.name,
                        ?timeout,
                        "the task did not end in time; it is left detached"
                    );
                    let message = format!(
                        "{message}; it did not end within {timeout:?} and was left detached"
                    );
                    push_event(&mut alloc, kind, &message, "", Duration::ZERO);
                }
            }
        }
    }

    /// Writes a job's current record and allocations to the state folder.
    fn persist(&self, id: &str) {
        let stored = {
            let Ok(state) = self.inner.state.lock() else {
                return;
            };
            let Some(entry) = state.jobs.get(id) else {
                return;
            };
            StoredJob {
                record: entry.record.clone(),
                allocations: entry
                    .tasks
                    .iter()
                    .filter_map(|t| t.alloc.lock().ok().map(|a| a.clone()))
                    .collect(),
            }
        };
        if let Err(err) = self.inner.store.save(&stored) {
            tracing::error!(job = %id, %err, "could not persist the job");
        }
        self.history_observe(id);
    }

    fn next_index(state: &mut State) -> u64 {
        state.index += 1;
        state.index
    }

    fn new_allocations(&self, record: &JobRecord, eval_id: &str) -> Vec<Running> {
        [Role::Src, Role::Dest]
            .into_iter()
            .map(|role| {
                let mut alloc = Allocation {
                    id: uuid::Uuid::new_v4().to_string(),
                    job_id: record.spec.id.clone(),
                    eval_id: eval_id.to_owned(),
                    node_id: self.inner.node_id.clone(),
                    name: format!("{}.{role}", record.spec.name),
                    role,
                    client_status: "pending".into(),
                    desired_status: "run".into(),
                    create_time: now_ns(),
                    modify_time: now_ns(),
                    task_state: TaskState {
                        state: "pending".into(),
                        ..TaskState::default()
                    },
                };
                push_event(
                    &mut alloc,
                    "Received",
                    "Task received by client",
                    "",
                    Duration::ZERO,
                );
                Running::new(alloc)
            })
            .collect()
    }

    fn with_status(record: &JobRecord, tasks: &[Running]) -> JobRecord {
        let mut record = record.clone();
        let states: Vec<String> = tasks
            .iter()
            .filter_map(|t| t.alloc.lock().ok().map(|a| a.client_status.clone()))
            .collect();
        record.status = if record.paused {
            "paused".into()
        } else if states.iter().any(|s| s == "running" || s == "pending") {
            "running".into()
        } else {
            "dead".into()
        };
        // The Src learns the target's position through the transport, as it would on another
        // node: read it there, not from the Dest next door.
        record.executed_gtid = tasks
            .iter()
            .find(|t| t.alloc.lock().is_ok_and(|a| a.role == Role::Src))
            .and_then(|t| t.stats.executed())
            .and_then(|p| p.gtid_set)
            .map(|set| set.to_string());
        record
    }

    fn registered(
        &self,
        id: &str,
        eval_id: String,
        changed: bool,
    ) -> Result<Registered, OrchestratorError> {
        let state = self.lock()?;
        let entry = state
            .jobs
            .get(id)
            .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
        Ok(Registered {
            job_id: id.to_owned(),
            eval_id,
            job_modify_index: entry.record.job_modify_index,
            changed,
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, OrchestratorError> {
        self.inner.state.lock().map_err(|_| {
            OrchestratorError::Internal("the orchestrator's state lock is poisoned".into())
        })
    }
}

/// This node's ID: made once, kept in the state folder.
fn node_id(state_dir: &std::path::Path) -> Result<String, OrchestratorError> {
    let path = state_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_owned());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id)
        .map_err(|e| OrchestratorError::Internal(format!("writing {}: {e}", path.display())))?;
    Ok(id)
}

#[async_trait::async_trait]
impl Orchestrator for EmbeddedOrchestrator {
    async fn register(&self, job: ParsedJob) -> Result<Registered, OrchestratorError> {
        let spec = job.spec;
        let id = spec.id.clone();
        let eval_id = uuid::Uuid::new_v4().to_string();
        let existing = {
            let state = self.lock()?;
            state.jobs.get(&id).map(|e| {
                (
                    e.record.spec == spec,
                    e.record.status == "dead" || e.tasks.iter().all(|t| t.run.is_cancelled()),
                )
            })
        };
        match existing {
            Some((true, false)) => {
                // Posted again unchanged and still running: nothing to do.
                return self.registered(&id, eval_id, false);
            }
            Some(_) => {
                // Changed (or stopped): stop the old tasks, keep the allocations' history.
                self.halt(&id, "Killed", "Task stopped: the job was updated")
                    .await;
                let mut state = self.lock()?;
                let index = Self::next_index(&mut state);
                if let Some(entry) = state.jobs.get_mut(&id) {
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
                let index = Self::next_index(&mut state);
                let record = JobRecord {
                    spec,
                    status: "pending".into(),
                    status_description: String::new(),
                    create_index: index,
                    modify_index: index,
                    job_modify_index: index,
                    paused: false,
                    executed_gtid: None,
                };
                let tasks = self.new_allocations(&record, &eval_id);
                state.jobs.insert(id.clone(), JobEntry { record, tasks });
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
            .map(|e| Self::with_status(&e.record, &e.tasks))
            .collect())
    }

    async fn job(&self, id: &str) -> Result<JobRecord, OrchestratorError> {
        let state = self.lock()?;
        state
            .jobs
            .get(id)
            .map(|e| Self::with_status(&e.record, &e.tasks))
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
            self.lock()?.jobs.remove(id);
            self.inner.store.remove(id)?;
            self.inner.history.purged(id);
        } else {
            self.inner
                .history
                .transition(id, JobState::Canceled, "stopped by the user");
            let mut state = self.lock()?;
            let index = Self::next_index(&mut state);
            if let Some(entry) = state.jobs.get_mut(id) {
                entry.record.status = "dead".into();
                entry.record.paused = false;
                entry.record.modify_index = index;
            }
            drop(state);
            self.persist(id);
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
            if Self::with_status(&entry.record, &entry.tasks).status == "dead" {
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
            let index = Self::next_index(&mut state);
            if let Some(entry) = state.jobs.get_mut(id) {
                entry.record.paused = true;
                entry.record.modify_index = index;
            }
        }
        self.inner
            .history
            .transition(id, JobState::Paused, "paused by the user");
        self.persist(id);
        self.registered(id, uuid::Uuid::new_v4().to_string(), true)
    }

    async fn resume(&self, id: &str) -> Result<Registered, OrchestratorError> {
        {
            let mut state = self.lock()?;
            let index = Self::next_index(&mut state);
            let entry = state
                .jobs
                .get_mut(id)
                .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
            if !entry.record.paused {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} is not paused"
                )));
            }
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
        for entry in state.jobs.values() {
            for task in &entry.tasks {
                let Ok(alloc) = task.alloc.lock() else {
                    continue;
                };
                if !alloc_id.is_empty() && alloc.id.starts_with(alloc_id) {
                    let stats = task.stats.snapshot();
                    let eta = stats.eta(task.since.elapsed());
                    return Ok((alloc.clone(), stats, eta));
                }
            }
        }
        Err(OrchestratorError::AllocationNotFound(alloc_id.to_owned()))
    }

    async fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        Ok(vec![Node {
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

    fn job_log_dir(&self) -> Option<PathBuf> {
        // Where the agent's `JobLogLayer` writes (see `dtle agent`).
        Some(self.inner.config.state_dir.join("logs"))
    }
}
