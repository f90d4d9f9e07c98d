//! A job's exceptions (Flink's `JobExceptionsInfoWithHistory`): the task failures and restart
//! causes the job history keeps, and those on the tasks it has not recorded yet, passwords
//! scrubbed.

use super::view::JobView;
use crate::orchestrator::history::{scrub, ExceptionEntry};
use serde::Serialize;
use utoipa::ToSchema;

/// What an exception did: end its task, or restart it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = FlinkExceptionName)]
pub enum ExceptionName {
    /// A failure that ended a task.
    TaskFailure,
    /// The cause of a task's restart.
    TaskRestart,
}

/// The task failures to show, newest first, and how many there were: the history's, and
/// those in the tasks' events it has not recorded yet (a failure is on the allocation a moment
/// before it is in the history), passwords scrubbed.
fn exception_entries(view: &JobView) -> (Vec<ExceptionEntry>, u64) {
    let history = view.history.as_ref();
    let mut entries: Vec<ExceptionEntry> = history
        .map(|h| h.exceptions.iter().cloned().collect())
        .unwrap_or_default();
    let mut total = history.map_or(0, |h| h.exceptions_total);
    for task in &view.tasks {
        let role = task.alloc.role;
        let seen = history
            .and_then(|h| h.seen_event_ns.get(&role).copied())
            .unwrap_or(0);
        for e in &task.alloc.task_state.events {
            let failure =
                !e.driver_error.is_empty() && (e.kind == "Restarting" || e.kind == "Terminated");
            if !failure || e.time <= seen {
                continue;
            }
            let message = match &view.record {
                Some(record) => scrub(&e.driver_error, &record.spec),
                None => e.driver_error.clone(),
            };
            entries.push(ExceptionEntry {
                time_ms: e.time / 1_000_000,
                task: role,
                message,
                restarted: e.kind == "Restarting",
            });
            total += 1;
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
    (entries, total)
}

/// One entry of `all-exceptions` (Flink's older `ExecutionExceptionInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkExecutionExceptionInfo)]
pub struct ExecutionExceptionInfo {
    /// The error (passwords scrubbed).
    pub exception: String,
    /// The task: `Src` or `Dest`.
    pub task: String,
    /// The node that runs the job's tasks; null once purged.
    pub location: Option<String>,
    /// When, ms.
    pub timestamp: u64,
    /// The same node.
    #[serde(rename = "taskManagerId")]
    pub task_manager_id: Option<String>,
}

/// The labels of an exception.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkFailureLabels)]
pub struct FailureLabels {
    /// The task: `Src` or `Dest`.
    pub task: String,
    /// `true` when the task was restarted after it, else `false`.
    pub restarted: String,
}

/// One exception (Flink's `ExceptionInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FlinkExceptionInfo)]
pub struct ExceptionInfo {
    /// Whether it ended its task or restarted it.
    pub exception_name: ExceptionName,
    /// The error (passwords scrubbed).
    pub stacktrace: String,
    /// When, ms.
    pub timestamp: u64,
    /// The task: `Src` or `Dest`.
    pub task_name: String,
    /// The node that runs the job's tasks; null once purged.
    pub location: Option<String>,
    /// The same node.
    pub endpoint: Option<String>,
    /// The same node.
    pub task_manager_id: Option<String>,
    /// Its labels.
    pub failure_labels: FailureLabels,
}

/// One entry of the exception history (Flink's `RootExceptionInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkRootExceptionInfo)]
pub struct RootExceptionInfo {
    /// The exception.
    #[serde(flatten)]
    pub info: ExceptionInfo,
    /// Always empty: a task fails alone.
    #[serde(rename = "concurrentExceptions")]
    pub concurrent_exceptions: Vec<ExceptionInfo>,
}

/// The exception history (Flink's `JobExceptionHistory`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJobExceptionHistory)]
pub struct JobExceptionHistory {
    /// Newest first.
    pub entries: Vec<RootExceptionInfo>,
    /// Whether there were more than these.
    pub truncated: bool,
}

/// `GET /jobs/{jobid}/exceptions` (Flink's `JobExceptionsInfoWithHistory`, with its older
/// top-level keys too).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkJobExceptions)]
pub struct JobExceptions {
    /// The error that ended the job (else the latest); null without one.
    pub root_exception: Option<String>,
    /// When it happened, ms; null without one.
    pub timestamp: Option<u64>,
    /// The task failures, newest first.
    pub all_exceptions: Vec<ExecutionExceptionInfo>,
    /// Whether there were more than these.
    pub truncated: bool,
    /// The task failures, newest first.
    #[serde(rename = "exceptionHistory")]
    pub exception_history: JobExceptionHistory,
}

/// `GET /jobs/{jobid}/exceptions[?maxExceptions=N]`.
pub fn exceptions(view: &JobView, max: Option<usize>) -> JobExceptions {
    let (mut entries, total) = exception_entries(view);
    if let Some(max) = max {
        entries.truncate(max);
    }
    let truncated = (entries.len() as u64) < total;
    let node = view.tasks.first().map(|t| t.alloc.node_id.clone());
    let root = entries.iter().find(|e| !e.restarted).or(entries.first());
    let all = entries
        .iter()
        .map(|e| ExecutionExceptionInfo {
            exception: e.message.clone(),
            task: e.task.as_str().to_owned(),
            location: node.clone(),
            timestamp: e.time_ms,
            task_manager_id: node.clone(),
        })
        .collect();
    let history = entries
        .iter()
        .map(|e| RootExceptionInfo {
            info: ExceptionInfo {
                exception_name: if e.restarted {
                    ExceptionName::TaskRestart
                } else {
                    ExceptionName::TaskFailure
                },
                stacktrace: e.message.clone(),
                timestamp: e.time_ms,
                task_name: e.task.as_str().to_owned(),
                location: node.clone(),
                endpoint: node.clone(),
                task_manager_id: node.clone(),
                failure_labels: FailureLabels {
                    task: e.task.as_str().to_owned(),
                    restarted: e.restarted.to_string(),
                },
            },
            concurrent_exceptions: Vec::new(),
        })
        .collect();
    JobExceptions {
        root_exception: root.map(|e| e.message.clone()),
        timestamp: root.map(|e| e.time_ms),
        all_exceptions: all,
        truncated,
        exception_history: JobExceptionHistory {
            entries: history,
            truncated,
        },
    }
}
