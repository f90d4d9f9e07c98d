//! Stops with savepoint under way or done, by trigger ID: Flink's asynchronous operations
//! (`POST /jobs/:jobid/stop` answers a `request-id`, `GET /jobs/:jobid/savepoints/:triggerid`
//! tells how it went). Kept in memory, the latest [`MAX_OPERATIONS`]; the savepoints themselves
//! are in the job history.

use crate::orchestrator::history::Checkpoint;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use utoipa::ToSchema;

/// Most operations remembered (the oldest are forgotten).
pub const MAX_OPERATIONS: usize = 100;

/// How one operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still stopping.
    InProgress,
    /// Stopped; the savepoint taken.
    Completed(Checkpoint),
    /// It could not be done.
    Failed(String),
}

#[derive(Debug)]
struct Operation {
    job: String,
    trigger: String,
    outcome: Outcome,
}

/// The operations.
#[derive(Debug, Default)]
pub struct Triggers {
    ops: Mutex<VecDeque<Operation>>,
}

impl Triggers {
    fn ops(&self) -> std::sync::MutexGuard<'_, VecDeque<Operation>> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an operation on dtle job `job`, under `trigger` (the client's) or a new ID.
    /// `None` when one is already in progress for the job.
    pub fn start(&self, job: &str, trigger: Option<String>) -> Option<String> {
        let mut ops = self.ops();
        if ops
            .iter()
            .any(|op| op.job == job && op.outcome == Outcome::InProgress)
        {
            return None;
        }
        let trigger = trigger.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        ops.retain(|op| !(op.job == job && op.trigger == trigger));
        ops.push_back(Operation {
            job: job.to_owned(),
            trigger: trigger.clone(),
            outcome: Outcome::InProgress,
        });
        while ops.len() > MAX_OPERATIONS {
            ops.pop_front();
        }
        Some(trigger)
    }

    /// Records how it ended.
    pub fn finish(&self, job: &str, trigger: &str, outcome: Outcome) {
        if let Some(op) = self
            .ops()
            .iter_mut()
            .find(|op| op.job == job && op.trigger == trigger)
        {
            op.outcome = outcome;
        }
    }

    /// How operation `trigger` on `job` stands.
    pub fn get(&self, job: &str, trigger: &str) -> Option<Outcome> {
        self.ops()
            .iter()
            .find(|op| op.job == job && op.trigger.eq_ignore_ascii_case(trigger))
            .map(|op| op.outcome.clone())
    }

    /// Operations in progress for `job` (0 or 1).
    pub fn in_progress(&self, job: &str) -> u32 {
        self.ops()
            .iter()
            .filter(|op| op.job == job && op.outcome == Outcome::InProgress)
            .count() as u32
    }
}

/// `POST /jobs/{jobid}/stop`, `/savepoints` and `PATCH /jobs/{jobid}?mode=stop` (Flink's
/// `TriggerResponse`): the ID to ask how the stop goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkTriggerResponse)]
pub struct TriggerResponse {
    /// The trigger ID (32 hex digits): the client's `triggerId`, else a new one.
    #[serde(rename = "request-id")]
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub request_id: String,
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkOperationStatusId)]
pub enum OperationStatusId {
    /// Still stopping.
    InProgress,
    /// Done: the operation says how.
    Completed,
}

/// An operation's status (Flink's `QueueStatus`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkOperationStatus)]
pub struct OperationStatus {
    /// Where it stands.
    pub id: OperationStatusId,
}

/// Why a stop with savepoint failed (Flink's `SerializedThrowable`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkFailureCause)]
pub struct FailureCause {
    /// Always `dtle.SavepointFailure`.
    pub class: String,
    /// What went wrong.
    pub stack_trace: String,
    /// Always null.
    pub serialized_throwable: Option<String>,
}

/// How a stop with savepoint ended (Flink's `SavepointInfo`): the savepoint, or why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = FlinkSavepointInfo)]
pub enum SavepointInfo {
    /// The savepoint taken.
    Completed {
        /// Its position: the GTID set, else `binlog file:offset` (empty while the job was
        /// still copying its snapshot).
        location: String,
        /// Its checkpoint ID.
        #[serde(rename = "savepoint-id")]
        savepoint_id: u64,
    },
    /// It could not be done.
    Failed {
        /// Why.
        #[serde(rename = "failure-cause")]
        failure_cause: FailureCause,
    },
}

/// `GET /jobs/{jobid}/savepoints/{triggerid}` (Flink's `AsynchronousOperationResult`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkSavepointOperation)]
pub struct SavepointOperation {
    /// Where it stands.
    pub status: OperationStatus,
    /// How it ended; null while in progress.
    pub operation: Option<SavepointInfo>,
}

/// Flink's `AsynchronousOperationResult` of a savepoint operation.
pub fn result(outcome: &Outcome) -> SavepointOperation {
    let (id, operation) = match outcome {
        Outcome::InProgress => (OperationStatusId::InProgress, None),
        Outcome::Completed(c) => (
            OperationStatusId::Completed,
            Some(SavepointInfo::Completed {
                location: c.position_text(),
                savepoint_id: c.id,
            }),
        ),
        Outcome::Failed(message) => (
            OperationStatusId::Completed,
            Some(SavepointInfo::Failed {
                failure_cause: FailureCause {
                    class: "dtle.SavepointFailure".into(),
                    stack_trace: message.clone(),
                    serialized_throwable: None,
                },
            }),
        ),
    };
    SavepointOperation {
        status: OperationStatus { id },
        operation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_operation_at_a_time_per_job_and_its_outcome() {
        let triggers = Triggers::default();
        let t = triggers.start("j", None).expect("started");
        assert_eq!(t.len(), 32);
        assert!(triggers.start("j", None).is_none(), "one at a time");
        assert!(triggers.start("k", Some("abc".into())).is_some());
        assert_eq!(triggers.in_progress("j"), 1);
        assert_eq!(triggers.get("j", &t), Some(Outcome::InProgress));
        triggers.finish("j", &t, Outcome::Failed("no".into()));
        assert_eq!(triggers.in_progress("j"), 0);
        let failed =
            serde_json::to_value(result(&triggers.get("j", &t).expect("kept"))).expect("json");
        assert_eq!(failed["operation"]["failure-cause"]["stack-trace"], "no");
        assert_eq!(triggers.get("k", &t), None, "another job's trigger");
        for i in 0..MAX_OPERATIONS + 5 {
            let job = format!("job{i}");
            let trigger = triggers.start(&job, None).expect("started");
            triggers.finish(&job, &trigger, Outcome::Failed(String::new()));
        }
        assert_eq!(triggers.get("j", &t), None, "forgotten");
    }
}
