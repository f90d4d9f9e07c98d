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
//!
//! # Indexes
//! One counter numbers every change, as Nomad's Raft index does ([`index`]): a job's record, its
//! definition, its status, each allocation. Watchers (the API's blocking queries) wait on it.
//!
//! The orchestrator's calls are in [`api`]; a job posted again is read against the stored one
//! there (passwords shown as `*`, the executed `Gtid`, the node: see `jobs::repost`).

mod api;
mod history_feed;
#[cfg(test)]
mod history_tests;
mod index;
pub mod lifecycle;
pub mod savepoint;
pub mod store;
pub mod supervisor;
#[cfg(test)]
mod tests;

use super::history::History;
use super::now_ns;
use super::{Allocation, JobRecord, OrchestratorError, Registered, TaskNode, TaskState};
use crate::secrets::KeyRing;
use driver::retry::RetryPolicy;
use driver::stats::TaskStats;
use driver::transport::security::NatsSecurity;
use index::Seen;
use jobs::Role;
use lifecycle::{stop_all, Outcome, RunHandle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Store, StoredJob};
use supervisor::{push_event, supervise, DriverRunner, RestartPolicy, Supervised, TaskRunner};
use tokio::sync::watch;
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
    /// Where the HTTP API is reached from elsewhere (the advertised address, never `0.0.0.0`).
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
    /// The allocation as its `modify_index` last numbered it ([`index`]).
    seen: Seen,
}

impl Running {
    fn new(alloc: Allocation) -> Self {
        let seen = Seen::of(&alloc);
        Self {
            alloc: Arc::new(Mutex::new(alloc)),
            stats: Arc::new(TaskStats::default()),
            run: RunHandle::idle(),
            since: Instant::now(),
            seen,
        }
    }
}

struct JobEntry {
    record: JobRecord,
    tasks: Vec<Running>,
    /// The status last shown (derived from the allocations): a change is a change of the record.
    shown_status: String,
}

struct State {
    /// The last change's index.
    index: u64,
    /// The index of the last change to the job list (a job created, changed or forgotten).
    jobs_index: u64,
    jobs: BTreeMap<String, JobEntry>,
}

/// The embedded orchestrator; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedOrchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    config: EmbeddedConfig,
    /// The tasks' NATS credentials and TLS (apart from [`EmbeddedConfig`]: never shown, never
    /// stored in the state folder).
    nats_security: NatsSecurity,
    node_id: String,
    store: Store,
    state: Mutex<State>,
    /// What runs each task: the driver's task API, or a stand-in in tests.
    runner: Arc<dyn TaskRunner>,
    /// Every run's token descends from it; the shutdown cancels it, and no run starts after.
    root: CancellationToken,
    /// Every run ever spawned, so the shutdown can wait for all of them, detached ones too.
    tasks: TaskTracker,
    /// The last change's index, for watchers.
    changes: watch::Sender<u64>,
    /// Ends the watchers' waits (the agent is shutting down).
    watchers: CancellationToken,
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

    /// As [`EmbeddedOrchestrator::start`], the jobs' passwords sealed with `keys` (the agent's,
    /// from its environment or its state folder) and the tasks connecting to NATS with
    /// `nats_security`.
    ///
    /// # Errors
    /// When the state folder cannot be used.
    pub fn start_secured(
        config: EmbeddedConfig,
        keys: Arc<KeyRing>,
        nats_security: NatsSecurity,
    ) -> Result<Self, OrchestratorError> {
        Self::open(config, Arc::new(DriverRunner), keys, nats_security)
    }

    /// As [`EmbeddedOrchestrator::start`], with tasks run by `runner`.
    ///
    /// # Errors
    /// When the state folder cannot be used.
    pub fn start_with(
        config: EmbeddedConfig,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Self, OrchestratorError> {
        let keys = KeyRing::for_state_dir(&config.state_dir)
            .map_err(|e| OrchestratorError::Internal(e.to_string()))?;
        Self::open(config, runner, Arc::new(keys), NatsSecurity::default())
    }

    fn open(
        config: EmbeddedConfig,
        runner: Arc<dyn TaskRunner>,
        keys: Arc<KeyRing>,
        nats_security: NatsSecurity,
    ) -> Result<Self, OrchestratorError> {
        let store = Store::open(&config.state_dir, keys)?;
        let node_id = node_id(&config.state_dir)?;
        let index = store.load_index();
        let history = History::open(&config.state_dir)
            .map_err(|e| OrchestratorError::Internal(e.to_string()))?;
        let inner = Arc::new(Inner {
            config,
            nats_security,
            node_id,
            store,
            state: Mutex::new(State {
                index,
                jobs_index: index,
                jobs: BTreeMap::new(),
            }),
            runner,
            root: CancellationToken::new(),
            tasks: TaskTracker::new(),
            changes: watch::Sender::new(index),
            watchers: CancellationToken::new(),
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
        self.inner.watchers.cancel();
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
        state.index = stored
            .allocations
            .iter()
            .map(|a| a.modify_index)
            .fold(state.index, u64::max)
            .max(stored.record.modify_index)
            .max(stored.record.job_modify_index);
        state.jobs_index = state.index;
        let tasks: Vec<Running> = stored
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
        let shown_status = self.view(&stored.record, &tasks).status;
        state.jobs.insert(
            id.clone(),
            JobEntry {
                record: stored.record,
                tasks,
                shown_status,
            },
        );
        drop(state);
        if run {
            self.launch(&id);
        } else {
            self.touch(&id);
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
        if let Err(why) = self.inner.store.keys().open_job(&mut spec.clone()) {
            // Sealed under a key this agent lacks: starting would log in with the sealed text.
            entry.record.status = "dead".into();
            entry.record.status_description =
                format!("cannot be started: the job's passwords were {why}");
            let message = format!("the job's passwords were {why}");
            for task in &entry.tasks {
                if let Ok(mut alloc) = task.alloc.lock() {
                    supervisor::refuse_start(&mut alloc, &message);
                }
            }
            tracing::error!(job = %id, %why, "not starting the job's tasks");
            return;
        }
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
                nats_security: self.inner.nats_security.clone(),
                policy: self.inner.config.restart.clone(),
                retry: self.inner.config.task_retry.clone(),
                on_change: Arc::new(move || persist.touch(&job_id)),
                runner: self.inner.runner.clone(),
            };
            task.run = RunHandle::spawn(&self.inner.tasks, &self.inner.root, |cancel| {
                tracing::Instrument::instrument(supervise(supervised(cancel)), span)
            });
        }
        drop(state);
        self.touch(id);
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
            if let Some(event) = alloc.task_state.events.last_mut() {
                event.kill_timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            }
        }
        self.touch(id);
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
                    create_index: record.create_index.max(record.job_modify_index),
                    modify_index: record.create_index.max(record.job_modify_index),
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

    /// The record as the API shows it: its status from its allocations, and what is live (the
    /// executed position, the NATS server, the node that runs the tasks).
    fn view(&self, record: &JobRecord, tasks: &[Running]) -> JobRecord {
        let mut record = record.clone();
        record.nats_addr = Some(nats_host_port(&self.inner.config.nats_url));
        let here = TaskNode {
            id: self.inner.node_id.clone(),
            name: self.inner.config.node_name.clone(),
        };
        record.task_nodes = [Some(here.clone()), Some(here)];
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

/// The `host:port` list of a NATS URL list (`nats://u:p@h:4222,nats://h2:4222`), as dtle 2.x
/// showed `NatsAddr`: no scheme, no credentials.
fn nats_host_port(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let rest = one.split_once("://").map_or(one, |(_, rest)| rest);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            rest.trim_end_matches('/').to_owned()
        })
        .collect::<Vec<_>>()
        .join(",")
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

#[cfg(test)]
mod nats_tests {
    #[test]
    fn nats_addresses_are_shown_without_scheme_or_credentials() {
        assert_eq!(
            super::nats_host_port("nats://127.0.0.1:8193"),
            "127.0.0.1:8193"
        );
        assert_eq!(
            super::nats_host_port("nats://u:secret@h:4222/, tls://h2:4222"),
            "h:4222,h2:4222"
        );
    }
}
