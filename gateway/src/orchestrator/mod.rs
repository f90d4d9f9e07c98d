//! What the gateway asks of whoever runs jobs: the `Orchestrator` trait, and the records it
//! answers with.
//!
//! Two implementations exist: [`embedded`] (one node, in-process, the default) and [`nomad`]
//! (registering jobs with Nomad's HTTP API, run by the dtle plugin on Nomad's clients). The trait speaks in job IDs, validated
//! [`ParsedJob`]s and plain records, so handlers never know which one they talk to; everything a
//! Nomad cluster would need (indexes, evaluation IDs, allocation IDs, node IDs) is in the records.

pub mod embedded;
pub mod history;
pub mod nomad;

use driver::stats::StatsSnapshot;
use jobs::{JobSpec, ParsedJob, Role};
use serde::{Deserialize, Serialize};

/// Time since the epoch in ns, as Nomad and dtle report times.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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
    /// The GTID set the target has committed, as the Src task last learnt it from the applier:
    /// dtle shows it as the Src's `Gtid`. Live state, not kept in the state folder.
    #[serde(skip)]
    pub executed_gtid: Option<String>,
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
}

/// The scheduler that runs jobs.
#[async_trait::async_trait]
pub trait Orchestrator: Send + Sync {
    /// Creates a job, or updates the job with the same ID (restarting its tasks if its definition
    /// changed).
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
    /// One allocation and its task's live replication stats (an ID prefix is enough).
    async fn allocation_stats(
        &self,
        alloc_id: &str,
    ) -> Result<(Allocation, StatsSnapshot, Option<std::time::Duration>), OrchestratorError>;
    /// The nodes that run tasks.
    async fn nodes(&self) -> Result<Vec<Node>, OrchestratorError>;
    /// The address of the leader (`host:port`).
    async fn leader(&self) -> Result<String, OrchestratorError>;
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
    /// The folder of the per-job log files ([`crate::joblog`]) of the tasks this process runs;
    /// `None` when it runs none (in front of Nomad).
    fn job_log_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}
