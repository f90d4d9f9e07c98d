//! Flink's shapes for a job's exceptions and checkpoints, from the job history.
//!
//! A dtle checkpoint is a position the target has committed: its `external_path` is that
//! position (the GTID set, else `binlog file:offset`), and the extra keys `gtid_set`,
//! `binlog_file`, `binlog_pos`, `rows_since_previous` and `txns_since_previous` tell it in full.
//! `processed_data` is the rows committed since the previous checkpoint; sizes are 0 (no state
//! is written anywhere but the target's position row).

use super::ids;
use super::view::JobView;
use crate::orchestrator::embedded::savepoint::DRAIN_TIMEOUT;
use crate::orchestrator::history::{scrub, Checkpoint, ExceptionEntry, SAMPLE_EVERY};
use jobs::Role;
use serde_json::{json, Map, Value};

/// The exception name shown for a failure that ended a task, and for a restart cause.
const ENDED_TASK: &str = "TaskFailure";
const RESTARTED_TASK: &str = "TaskRestart";

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

/// `GET /jobs/:jobid/exceptions[?maxExceptions=N]` (Flink's `JobExceptionsInfoWithHistory`,
/// with its older top-level keys too).
pub fn exceptions(view: &JobView, max: Option<usize>) -> Value {
    let (mut entries, total) = exception_entries(view);
    if let Some(max) = max {
        entries.truncate(max);
    }
    let truncated = (entries.len() as u64) < total;
    let node = view.tasks.first().map(|t| t.alloc.node_id.clone());
    let root = entries.iter().find(|e| !e.restarted).or(entries.first());
    let all: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "exception": e.message,
                "task": e.task.as_str(),
                "location": node,
                "timestamp": e.time_ms,
                "taskManagerId": node,
            })
        })
        .collect();
    let history: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "exceptionName": if e.restarted { RESTARTED_TASK } else { ENDED_TASK },
                "stacktrace": e.message,
                "timestamp": e.time_ms,
                "taskName": e.task.as_str(),
                "location": node,
                "endpoint": node,
                "taskManagerId": node,
                "failureLabels": {
                    "task": e.task.as_str(),
                    "restarted": e.restarted.to_string(),
                },
                "concurrentExceptions": [],
            })
        })
        .collect();
    json!({
        "root-exception": root.map(|e| e.message.clone()),
        "timestamp": root.map(|e| e.time_ms),
        "all-exceptions": all,
        "truncated": truncated,
        "exceptionHistory": {
            "entries": history,
            "truncated": truncated,
        },
    })
}

/// One vertex's part of a checkpoint (Flink's `TaskCheckpointStatistics`).
fn task_statistics(c: &Checkpoint) -> Value {
    json!({
        "id": c.id,
        "status": "COMPLETED",
        "latest_ack_timestamp": c.time_ms,
        "checkpointed_size": 0,
        "state_size": 0,
        "end_to_end_duration": c.duration_ms,
        "alignment_buffered": 0,
        "processed_data": c.rows_since_previous,
        "persisted_data": 0,
        "num_subtasks": 1,
        "num_acknowledged_subtasks": 1,
    })
}

/// One checkpoint (Flink's `CompletedCheckpointStatistics`); `with_tasks` fills `tasks` with
/// the two vertices, as the details endpoint does.
pub fn checkpoint(view: &JobView, c: &Checkpoint, with_tasks: bool) -> Value {
    let mut tasks = Map::new();
    if with_tasks {
        for role in [Role::Src, Role::Dest] {
            tasks.insert(ids::vertex_id(&view.id, role), task_statistics(c));
        }
    }
    json!({
        "className": "completed",
        "clazz": "completed",
        "id": c.id,
        "status": "COMPLETED",
        "is_savepoint": c.savepoint,
        "trigger_timestamp": c.time_ms.saturating_sub(c.duration_ms),
        "latest_ack_timestamp": c.time_ms,
        "checkpointed_size": 0,
        "state_size": 0,
        "end_to_end_duration": c.duration_ms,
        "alignment_buffered": 0,
        "processed_data": c.rows_since_previous,
        "persisted_data": 0,
        "num_subtasks": 2,
        "num_acknowledged_subtasks": 2,
        "checkpoint_type": if c.savepoint { "SAVEPOINT" } else { "CHECKPOINT" },
        "savepointFormat": if c.savepoint { Value::from("CANONICAL") } else { Value::Null },
        "tasks": tasks,
        "external_path": c.position_text(),
        "discarded": false,
        "gtid_set": c.gtid_set,
        "binlog_file": c.binlog_file,
        "binlog_pos": c.binlog_pos,
        "rows_since_previous": c.rows_since_previous,
        "txns_since_previous": c.txns_since_previous,
    })
}

/// Flink's `StatsSummaryDto` of some values.
fn summary(values: &[u64]) -> Value {
    if values.is_empty() {
        return json!({"min": 0, "max": 0, "avg": 0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0});
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| {
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[at.min(sorted.len() - 1)] as f64
    };
    let sum: u128 = sorted.iter().map(|v| u128::from(*v)).sum();
    json!({
        "min": sorted[0],
        "max": sorted[sorted.len() - 1],
        "avg": (sum / sorted.len() as u128) as u64,
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "p999": pick(0.999),
    })
}

/// `GET /jobs/:jobid/checkpoints` (Flink's `CheckpointingStatistics`); `in_progress` counts a
/// stop with savepoint under way.
pub fn checkpoints(view: &JobView, in_progress: u32) -> Value {
    let zeros = summary(&[]);
    let Some(h) = view.history.as_ref() else {
        return json!({
            "counts": {"restored": 0, "total": in_progress, "in_progress": in_progress, "completed": 0, "failed": 0},
            "summary": {
                "checkpointed_size": zeros, "state_size": zeros, "end_to_end_duration": zeros,
                "alignment_buffered": zeros, "processed_data": zeros, "persisted_data": zeros,
            },
            "latest": {"completed": null, "savepoint": null, "failed": null, "restored": null},
            "history": [],
        });
    };
    let durations: Vec<u64> = h.checkpoints.iter().map(|c| c.duration_ms).collect();
    let rows: Vec<u64> = h
        .checkpoints
        .iter()
        .map(|c| c.rows_since_previous)
        .collect();
    let restored = h.last_restore.as_ref().map(|r| {
        json!({
            "id": r.checkpoint_id,
            "restore_timestamp": r.time_ms,
            "is_savepoint": r.savepoint,
            "external_path": r.position,
        })
    });
    json!({
        "counts": {
            "restored": h.restores_total,
            "total": h.checkpoints_total + u64::from(in_progress),
            "in_progress": in_progress,
            "completed": h.checkpoints_total,
            "failed": 0,
        },
        "summary": {
            "checkpointed_size": zeros,
            "state_size": zeros,
            "end_to_end_duration": summary(&durations),
            "alignment_buffered": zeros,
            "processed_data": summary(&rows),
            "persisted_data": zeros,
        },
        "latest": {
            "completed": h.latest_checkpoint().map(|c| checkpoint(view, c, false)),
            "savepoint": h.latest_savepoint.as_ref().map(|c| checkpoint(view, c, false)),
            "failed": Value::Null,
            "restored": restored,
        },
        "history": h.checkpoints.iter().rev().map(|c| checkpoint(view, c, false)).collect::<Vec<_>>(),
    })
}

/// The checkpoint `id` of the job, while the history keeps it.
pub fn find(view: &JobView, id: u64) -> Option<&Checkpoint> {
    let h = view.history.as_ref()?;
    h.checkpoints
        .iter()
        .find(|c| c.id == id)
        .or(h.latest_savepoint.as_ref().filter(|c| c.id == id))
}

/// `GET /jobs/:jobid/checkpoints/config` (Flink's `CheckpointConfigInfo`).
pub fn checkpoint_config() -> Value {
    json!({
        "mode": "exactly_once",
        "interval": SAMPLE_EVERY.as_millis() as u64,
        "timeout": DRAIN_TIMEOUT.as_millis() as u64,
        "min_pause": 0,
        "max_concurrent": 1,
        "externalization": {"enabled": true, "delete_on_cancellation": false},
        "state_backend": "the target's dtle.job_position table",
        "checkpoint_storage": "the target database",
        "unaligned_checkpoints": false,
        "tolerable_failed_checkpoints": 0,
        "aligned_checkpoint_timeout": 0,
        "checkpoints_after_tasks_finish": false,
        "state_changelog_enabled": false,
        "changelog_periodic_materialization_interval": 0,
        "changelog_storage": "",
    })
}
