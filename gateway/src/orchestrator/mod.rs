//! What the gateway asks of whoever runs jobs: the `Orchestrator` trait, and the records it
//! answers with.
//!
//! Two implementations exist: [`embedded`] (one node, in-process, the default) and [`nomad`]
//! (registering jobs with Nomad's HTTP API, run by the dtle plugin on Nomad's clients). The trait speaks in job IDs, validated
//! [`ParsedJob`]s and plain records, so handlers never know which one they talk to; everything a
//! Nomad cluster would need (indexes, evaluation IDs, allocation IDs, node IDs) is in the records.
//!
//! # Indexes and blocking queries
//! As in Nomad, every change has an index that only grows: a job's `CreateIndex`, its
//! `ModifyIndex` (any change of the record, its status included) and `JobModifyIndex` (a change
//! of its definition); an allocation's `CreateIndex` and `ModifyIndex`. A watcher asks
//! [`Orchestrator::wait_index`] to wait until what it watches ([`Watched`]) has an index above the
//! one it last saw, then reads it: the API's blocking queries (`?index=N&wait=30s`,
//! `X-Nomad-Index`).

pub mod embedded;
pub mod history;
pub mod nomad;
pub mod state_file;

use driver::stats::StatsSnapshot;
use jobs::{JobSpec, ParsedJob, Posted, Role};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Time since the epoch in ns, as Nomad and dtle report times.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A time in ns since the epoch as RFC 3339 UTC with nanoseconds, as Nomad prints times.
pub fn rfc3339(ns: u64) -> String {
    let (year, month, day, hour, minute, second) =
        driver::change::civil::civil_from_epoch(ns / 1_000_000_000);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z",
        ns % 1_000_000_000
    )
}

/// Why an orchestrator call failed.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// No such job.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// No such allocation.
    #[error("allocation {0} not found")]
    AllocationNotFound(String),
    /// An allocation-ID prefix that more than one allocation has.
    #[error(
        "{} allocations start with {prefix:?}: {}; give more of the ID",
        candidates.len(),
        candidates.join(", ")
    )]
    AmbiguousPrefix {
        /// What was given.
        prefix: String,
        /// The IDs that start with it.
        candidates: Vec<String>,
    },
    /// The job is in a state that does not allow this (e.g. resuming a running job).
    #[error("{0}")]
    Conflict(String),
    /// The orchestrator itself failed (its state folder, say).
    #[error("{0}")]
    Internal(String),
    /// The scheduler behind the gateway (Nomad), or a dtle plugin on one of its nodes, cannot
    /// be reached: the message names the address and what went wrong.
    #[error("{0}")]
    Unavailable(String),
    /// The scheduler refused the credentials it was given (Nomad's ACL token).
    #[error("{0}")]
    Forbidden(String),
    /// The scheduler refused the request as invalid (Nomad's 400: a job it will not run).
    #[error("{0}")]
    Rejected(String),
    /// The scheduler (or a plugin) failed, or answered what the gateway cannot read.
    #[error("{0}")]
    Upstream(String),
    /// This orchestrator does not do that (the message says what and why).
    #[error("{0}")]
    Unsupported(String),
}

/// The answer to a job registration.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The job's ID.
    pub job_id: String,
    /// An ID for the evaluation this registration caused.
    pub eval_id: String,
    /// The job's modify index after the registration.
    pub job_modify_index: u64,
    /// Whether the job's tasks were (re)started: false when an identical job was posted again.
    pub changed: bool,
}

/// A job as the orchestrator keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job (with its real passwords: never hand this out unredacted).
    pub spec: JobSpec,
    /// `pending`, `running`, `paused` or `dead` (dtle/Nomad job status words, plus `paused`).
    pub status: String,
    /// Why the job is in that status, when it is not obvious.
    pub status_description: String,
    /// Raft-style indexes (here: a counter of the orchestrator's changes).
    pub create_index: u64,
    /// Last change to the record.
    pub modify_index: u64,
    /// Last change to the job's definition.
    pub job_modify_index: u64,
    /// Whether the user paused it.
    pub paused: bool,
    /// The task configs in the form the user posted them (secrets masked), for the job views.
    #[serde(default)]
    pub posted: Posted,
    /// The GTID set the target has committed, as the Src task last learnt it from the applier:
    /// dtle shows it as the Src's `Gtid`. Live state, not kept in the state folder.
    #[serde(skip)]
    pub executed_gtid: Option<String>,
    /// The `host:port` of the NATS server the tasks use, as dtle 2.x showed it in every task's
    /// `NatsAddr`. Live, not kept.
    #[serde(skip)]
    pub nats_addr: Option<String>,
    /// The node each task runs on (Src, Dest), shown as its `NodeName`. Live, not kept.
    #[serde(skip)]
    pub task_nodes: [Option<TaskNode>; 2],
}

/// The node a task runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNode {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
}

impl JobRecord {
    /// A record of `spec`, posted in the form `posted`, at `index`, not started yet.
    pub fn new(spec: JobSpec, posted: Posted, index: u64) -> Self {
        Self {
            spec,
            status: "pending".into(),
            status_description: String::new(),
            create_index: index,
            modify_index: index,
            job_modify_index: index,
            paused: false,
            posted,
            executed_gtid: None,
            nats_addr: None,
            task_nodes: [None, None],
        }
    }

    /// What the views of this job showed besides the job, for reading a job posted back
    /// ([`jobs::JobSpec::reconciled_with`]); `executed` is the parsed [`Self::executed_gtid`].
    pub fn shown<'a>(&'a self, executed: Option<&'a jobs::GtidSet>) -> jobs::Shown<'a> {
        let node = |n: &'a Option<TaskNode>| n.as_ref().map(|n| (n.name.as_str(), n.id.as_str()));
        jobs::Shown {
            executed,
            nodes: [node(&self.task_nodes[0]), node(&self.task_nodes[1])],
        }
    }

    /// The executed GTID set, parsed.
    pub fn executed(&self) -> Option<jobs::GtidSet> {
        self.executed_gtid
            .as_deref()
            .and_then(|g| jobs::GtidSet::parse(g).ok())
    }
}

/// What a blocking query watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched<'a> {
    /// The job list: any job created, changed or forgotten.
    Jobs,
    /// One job's record (its index is the jobs' while it does not exist).
    Job(&'a str),
    /// One job's allocations.
    Allocations(&'a str),
}

/// One task's placement and life.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    /// Allocation ID (a UUID).
    pub id: String,
    /// The job.
    pub job_id: String,
    /// The evaluation that created it.
    pub eval_id: String,
    /// The node it runs on.
    pub node_id: String,
    /// `<job>.Src` or `<job>.Dest`.
    pub name: String,
    /// Which task.
    pub role: Role,
    /// `pending`, `running`, `complete`, `failed`.
    pub client_status: String,
    /// `run` or `stop`.
    pub desired_status: String,
    /// Creation time, ns since the epoch.
    pub create_time: u64,
    /// The index it was created at.
    #[serde(default)]
    pub create_index: u64,
    /// The index of its last change.
    #[serde(default)]
    pub modify_index: u64,
    /// Last change, ns since the epoch.
    pub modify_time: u64,
    /// The task's state.
    pub task_state: TaskState,
}

/// A task's state, as Nomad reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskState {
    /// `pending`, `running` or `dead`.
    pub state: String,
    /// Whether it ended in failure.
    pub failed: bool,
    /// When it last started (RFC 3339), if ever.
    pub started_at: Option<String>,
    /// When it last ended (RFC 3339), if it did.
    pub finished_at: Option<String>,
    /// Restarts so far.
    pub restarts: u64,
    /// What happened, oldest first (bounded).
    pub events: Vec<TaskEvent>,
}

/// One thing that happened to a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskEvent {
    /// `Received`, `Started`, `Restarting`, `Terminated`, `Killed`, `Paused`, `Resumed`, ...
    pub kind: String,
    /// When, ns since the epoch.
    pub time: u64,
    /// What to tell the user.
    pub message: String,
    /// The driver's error, when the task failed.
    pub driver_error: String,
    /// For `Restarting`: the delay before the restart, ns.
    pub restart_delay: u64,
    /// The stage the driver reported (dtle's `DriverMessage`, e.g. the snapshot or binlog phase).
    pub driver_message: String,
    /// For a kill: how long the task was given to end, ns (Nomad's `KillTimeout`).
    #[serde(default)]
    pub kill_timeout: u64,
    /// For `Terminated`: the task's exit code (1 when it failed).
    #[serde(default)]
    pub exit_code: i64,
}

/// A node (this agent, for the embedded orchestrator).
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Node ID.
    pub id: String,
    /// Node name.
    pub name: String,
    /// Datacenter.
    pub datacenter: String,
    /// Where its HTTP API listens.
    pub http_addr: String,
    /// `ready` or `down`.
    pub status: String,
    /// The index it was registered at.
    pub create_index: u64,
    /// The index of its last change.
    pub modify_index: u64,
}

/// The scheduler that runs jobs.
#[async_trait::async_trait]
pub trait Orchestrator: Send + Sync {
    /// Creates a job, or updates the job with the same ID (restarting its tasks if its definition
    /// changed). A job posted back as shown is read against the stored one
    /// ([`jobs::JobSpec::reconciled_with`]). A job without an explicit ID never replaces
    /// another: when its name is taken by a different job, it is a [`OrchestratorError::Conflict`].
    async fn register(&self, job: ParsedJob) -> Result<Registered, OrchestratorError>;
    /// Every job, sorted by ID.
    async fn jobs(&self) -> Result<Vec<JobRecord>, OrchestratorError>;
    /// One job.
    async fn job(&self, id: &str) -> Result<JobRecord, OrchestratorError>;
    /// Stops a job's tasks; `purge` also forgets the job; `forget_position` also deletes its
    /// position rows on the target (so a job posted again starts afresh).
    async fn stop(
        &self,
        id: &str,
        purge: bool,
        forget_position: bool,
    ) -> Result<Registered, OrchestratorError>;
    /// Stops a job's tasks but keeps it, to resume later.
    async fn pause(&self, id: &str) -> Result<Registered, OrchestratorError>;
    /// Starts a paused job's tasks again; they continue from the target's stored position.
    async fn resume(&self, id: &str) -> Result<Registered, OrchestratorError>;
    /// A job's allocations, one per task.
    async fn allocations(&self, id: &str) -> Result<Vec<Allocation>, OrchestratorError>;
    /// One allocation and its task's live replication stats (an ID prefix is enough; one that
    /// several allocations have is [`OrchestratorError::AmbiguousPrefix`]).
    async fn allocation_stats(
        &self,
        alloc_id: &str,
    ) -> Result<(Allocation, StatsSnapshot, Option<std::time::Duration>), OrchestratorError>;
    /// The nodes that run tasks.
    async fn nodes(&self) -> Result<Vec<Node>, OrchestratorError>;
    /// The address of the leader (`host:port`).
    async fn leader(&self) -> Result<String, OrchestratorError>;
    /// The index of what `watched` reads, once it is above `min_index` or `wait` has passed
    /// (at once when `min_index` is 0, or once [`Self::release_watchers`] was called): a
    /// blocking query's wait, before it reads.
    async fn wait_index(
        &self,
        watched: Watched<'_>,
        min_index: u64,
        wait: Duration,
    ) -> Result<u64, OrchestratorError>;
    /// Ends every wait of [`Self::wait_index`], now and later: the server is shutting down and
    /// should not wait minutes for blocked queries to answer. Nothing to do for an orchestrator
    /// whose waits do not block.
    fn release_watchers(&self) {}
    /// One job's history (see [`history`]): its states, failures and checkpoints, also once
    /// the job has been purged.
    async fn history(&self, id: &str) -> Result<history::JobHistory, OrchestratorError> {
        let _ = id;
        Err(OrchestratorError::Unsupported(
            "this orchestrator keeps no job history".into(),
        ))
    }
    /// Every job's history, sorted by job ID, purged jobs included.
    async fn histories(&self) -> Result<Vec<history::JobHistory>, OrchestratorError> {
        Err(OrchestratorError::Unsupported(
            "this orchestrator keeps no job history".into(),
        ))
    }
    /// Stops a running job once the target has committed everything its Src read, records
    /// that position as a savepoint, and returns it; posting the job again resumes from it.
    async fn stop_with_savepoint(
        &self,
        id: &str,
    ) -> Result<history::Checkpoint, OrchestratorError> {
        let _ = id;
        Err(OrchestratorError::Unsupported(
            "this orchestrator cannot stop a job with a savepoint".into(),
        ))
    }
    /// `plain` sealed under the key that seals job passwords at rest ([`crate::secrets`]), in
    /// the form every job endpoint accepts in place of a password.
    fn seal_secret(&self, plain: &str) -> Result<String, OrchestratorError> {
        let _ = plain;
        Err(OrchestratorError::Unsupported(
            "this orchestrator keeps no key to seal passwords with".into(),
        ))
    }
    /// The folder of the per-job log files ([`crate::joblog`]) of the tasks this process runs;
    /// `None` when it runs none (in front of Nomad).
    fn job_log_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}
