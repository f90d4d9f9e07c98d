//! Flink's shapes for a job's checkpoints, from the job history.
//!
//! A dtle checkpoint is a position the target has committed: its `external_path` is that
//! position (the GTID set, else `binlog file:offset`), and the extra keys `gtid_set`,
//! `binlog_file`, `binlog_pos`, `rows_since_previous` and `txns_since_previous` tell it in full.
//! `processed_data` is the rows committed since the previous checkpoint; sizes are 0 (no state
//! is written anywhere but the target's position row).

use super::ids;
use super::models::ordered_map;
use super::view::JobView;
use crate::orchestrator::embedded::savepoint::DRAIN_TIMEOUT;
use crate::orchestrator::history::{Checkpoint, SAMPLE_EVERY};
use jobs::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// A checkpoint's status: always completed (a position is recorded once committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkCheckpointStatus)]
pub enum CheckpointStatus {
    /// Committed on the target.
    Completed,
}

/// A checkpoint's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FlinkCheckpointType)]
pub enum CheckpointType {
    /// Sampled while the job runs.
    Checkpoint,
    /// Taken by a stop with savepoint.
    Savepoint,
}

/// The class of a checkpoint's statistics: always completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = FlinkCheckpointClass)]
pub enum CheckpointClass {
    /// A completed checkpoint.
    Completed,
}

/// One vertex's part of a checkpoint (Flink's `TaskCheckpointStatistics`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkTaskCheckpointStatistics)]
pub struct TaskCheckpointStatistics {
    /// The checkpoint's ID.
    pub id: u64,
    /// Always `COMPLETED`.
    pub status: CheckpointStatus,
    /// When the target committed it, ms.
    pub latest_ack_timestamp: u64,
    /// Always 0.
    pub checkpointed_size: u64,
    /// Always 0.
    pub state_size: u64,
    /// ms it took.
    pub end_to_end_duration: u64,
    /// Always 0.
    pub alignment_buffered: u64,
    /// Rows committed since the previous checkpoint.
    pub processed_data: u64,
    /// Always 0.
    pub persisted_data: u64,
    /// Always 1.
    pub num_subtasks: u32,
    /// Always 1.
    pub num_acknowledged_subtasks: u32,
}

fn task_statistics(c: &Checkpoint) -> TaskCheckpointStatistics {
    TaskCheckpointStatistics {
        id: c.id,
        status: CheckpointStatus::Completed,
        latest_ack_timestamp: c.time_ms,
        checkpointed_size: 0,
        state_size: 0,
        end_to_end_duration: c.duration_ms,
        alignment_buffered: 0,
        processed_data: c.rows_since_previous,
        persisted_data: 0,
        num_subtasks: 1,
        num_acknowledged_subtasks: 1,
    }
}

/// One checkpoint (Flink's `CompletedCheckpointStatistics`), with dtle's position.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkCheckpointStatistics)]
pub struct CheckpointStatistics {
    /// Always `completed`.
    #[serde(rename = "className")]
    pub class_name: CheckpointClass,
    /// Always `completed`.
    pub clazz: CheckpointClass,
    /// Its ID (1, 2, ... per job).
    pub id: u64,
    /// Always `COMPLETED`.
    pub status: CheckpointStatus,
    /// Whether a stop with savepoint took it.
    pub is_savepoint: bool,
    /// When it was started, ms.
    pub trigger_timestamp: u64,
    /// When the target committed it, ms.
    pub latest_ack_timestamp: u64,
    /// Always 0.
    pub checkpointed_size: u64,
    /// Always 0.
    pub state_size: u64,
    /// ms it took.
    pub end_to_end_duration: u64,
    /// Always 0.
    pub alignment_buffered: u64,
    /// Rows committed since the previous checkpoint.
    pub processed_data: u64,
    /// Always 0.
    pub persisted_data: u64,
    /// Always 2.
    pub num_subtasks: u32,
    /// Always 2.
    pub num_acknowledged_subtasks: u32,
    /// A checkpoint or a savepoint.
    pub checkpoint_type: CheckpointType,
    /// `CANONICAL` for a savepoint, else null.
    #[serde(rename = "savepointFormat")]
    pub savepoint_format: Option<String>,
    /// By vertex ID, the two vertices' parts (only in the details endpoint; else empty).
    #[serde(serialize_with = "ordered_map")]
    #[schema(value_type = std::collections::HashMap<String, TaskCheckpointStatistics>)]
    pub tasks: Vec<(String, TaskCheckpointStatistics)>,
    /// The position: the GTID set, else `binlog file:offset`.
    pub external_path: String,
    /// Always false.
    pub discarded: bool,
    /// The GTID set committed, when the source has GTIDs.
    pub gtid_set: Option<String>,
    /// The binlog file.
    pub binlog_file: String,
    /// The offset in it.
    pub binlog_pos: u64,
    /// Rows committed since the previous checkpoint.
    pub rows_since_previous: u64,
    /// Transactions committed since the previous checkpoint.
    pub txns_since_previous: u64,
}

/// One checkpoint; `with_tasks` fills `tasks` with the two vertices, as the details
/// endpoint does.
pub fn checkpoint(view: &JobView, c: &Checkpoint, with_tasks: bool) -> CheckpointStatistics {
    let tasks = if with_tasks {
        [Role::Src, Role::Dest]
            .into_iter()
            .map(|role| (ids::vertex_id(&view.id, role), task_statistics(c)))
            .collect()
    } else {
        Vec::new()
    };
    CheckpointStatistics {
        class_name: CheckpointClass::Completed,
        clazz: CheckpointClass::Completed,
        id: c.id,
        status: CheckpointStatus::Completed,
        is_savepoint: c.savepoint,
        trigger_timestamp: c.time_ms.saturating_sub(c.duration_ms),
        latest_ack_timestamp: c.time_ms,
        checkpointed_size: 0,
        state_size: 0,
        end_to_end_duration: c.duration_ms,
        alignment_buffered: 0,
        processed_data: c.rows_since_previous,
        persisted_data: 0,
        num_subtasks: 2,
        num_acknowledged_subtasks: 2,
        checkpoint_type: if c.savepoint {
            CheckpointType::Savepoint
        } else {
            CheckpointType::Checkpoint
        },
        savepoint_format: c.savepoint.then(|| "CANONICAL".to_owned()),
        tasks,
        external_path: c.position_text(),
        discarded: false,
        gtid_set: c.gtid_set.clone(),
        binlog_file: c.binlog_file.clone(),
        binlog_pos: c.binlog_pos,
        rows_since_previous: c.rows_since_previous,
        txns_since_previous: c.txns_since_previous,
    }
}

/// Some values summed up (Flink's `StatsSummaryDto`); all 0 without values.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[schema(as = FlinkStatsSummary)]
pub struct StatsSummary {
    /// The smallest.
    pub min: u64,
    /// The largest.
    pub max: u64,
    /// The mean, rounded down.
    pub avg: u64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
}

fn summary(values: &[u64]) -> StatsSummary {
    if values.is_empty() {
        return StatsSummary::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| {
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[at.min(sorted.len() - 1)] as f64
    };
    let sum: u128 = sorted.iter().map(|v| u128::from(*v)).sum();
    StatsSummary {
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        avg: (sum / sorted.len() as u128) as u64,
        p50: pick(0.5),
        p90: pick(0.9),
        p95: pick(0.95),
        p99: pick(0.99),
        p999: pick(0.999),
    }
}

/// How many checkpoints there were (Flink's `CheckpointingStatistics.Counts`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkCheckpointCounts)]
pub struct CheckpointCounts {
    /// Restores from a checkpoint.
    pub restored: u64,
    /// Completed and in progress.
    pub total: u64,
    /// A stop with savepoint under way: 0 or 1.
    pub in_progress: u32,
    /// Completed.
    pub completed: u64,
    /// Always 0.
    pub failed: u32,
}

/// Summaries of the checkpoints kept (Flink's `CheckpointStatisticsSummary`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkCheckpointSummary)]
pub struct CheckpointSummary {
    /// All 0.
    pub checkpointed_size: StatsSummary,
    /// All 0.
    pub state_size: StatsSummary,
    /// Of the ms they took.
    pub end_to_end_duration: StatsSummary,
    /// All 0.
    pub alignment_buffered: StatsSummary,
    /// Of the rows committed since the previous checkpoint.
    pub processed_data: StatsSummary,
    /// All 0.
    pub persisted_data: StatsSummary,
}

/// The latest restore (Flink's `RestoredCheckpointStatistics`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkRestoredCheckpoint)]
pub struct RestoredCheckpoint {
    /// The checkpoint it started from.
    pub id: u64,
    /// When, ms.
    pub restore_timestamp: u64,
    /// Whether that checkpoint is a savepoint.
    pub is_savepoint: bool,
    /// Its position.
    pub external_path: String,
}

/// The latest checkpoints of each kind (Flink's `CheckpointingStatistics.LatestCheckpoints`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkLatestCheckpoints)]
pub struct LatestCheckpoints {
    /// The latest checkpoint (or savepoint); null before the first.
    pub completed: Option<CheckpointStatistics>,
    /// The latest savepoint; null before the first.
    pub savepoint: Option<CheckpointStatistics>,
    /// Always null: a dtle checkpoint does not fail.
    pub failed: Option<CheckpointStatistics>,
    /// The latest restore; null before the first.
    pub restored: Option<RestoredCheckpoint>,
}

/// `GET /jobs/{jobid}/checkpoints` (Flink's `CheckpointingStatistics`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkCheckpointingStatistics)]
pub struct CheckpointingStatistics {
    /// How many.
    pub counts: CheckpointCounts,
    /// Summaries.
    pub summary: CheckpointSummary,
    /// The latest of each kind.
    pub latest: LatestCheckpoints,
    /// The checkpoints kept (the last 100), newest first.
    pub history: Vec<CheckpointStatistics>,
}

/// `GET /jobs/{jobid}/checkpoints`; `in_progress` counts a stop with savepoint under way.
pub fn checkpoints(view: &JobView, in_progress: u32) -> CheckpointingStatistics {
    let zeros = StatsSummary::default();
    let Some(h) = view.history.as_ref() else {
        return CheckpointingStatistics {
            counts: CheckpointCounts {
                restored: 0,
                total: u64::from(in_progress),
                in_progress,
                completed: 0,
                failed: 0,
            },
            summary: CheckpointSummary {
                checkpointed_size: zeros,
                state_size: zeros,
                end_to_end_duration: zeros,
                alignment_buffered: zeros,
                processed_data: zeros,
                persisted_data: zeros,
            },
            latest: LatestCheckpoints {
                completed: None,
                savepoint: None,
                failed: None,
                restored: None,
            },
            history: Vec::new(),
        };
    };
    let durations: Vec<u64> = h.checkpoints.iter().map(|c| c.duration_ms).collect();
    let rows: Vec<u64> = h
        .checkpoints
        .iter()
        .map(|c| c.rows_since_previous)
        .collect();
    let restored = h.last_restore.as_ref().map(|r| RestoredCheckpoint {
        id: r.checkpoint_id,
        restore_timestamp: r.time_ms,
        is_savepoint: r.savepoint,
        external_path: r.position.clone(),
    });
    CheckpointingStatistics {
        counts: CheckpointCounts {
            restored: h.restores_total,
            total: h.checkpoints_total + u64::from(in_progress),
            in_progress,
            completed: h.checkpoints_total,
            failed: 0,
        },
        summary: CheckpointSummary {
            checkpointed_size: zeros,
            state_size: zeros,
            end_to_end_duration: summary(&durations),
            alignment_buffered: zeros,
            processed_data: summary(&rows),
            persisted_data: zeros,
        },
        latest: LatestCheckpoints {
            completed: h.latest_checkpoint().map(|c| checkpoint(view, c, false)),
            savepoint: h
                .latest_savepoint
                .as_ref()
                .map(|c| checkpoint(view, c, false)),
            failed: None,
            restored,
        },
        history: h
            .checkpoints
            .iter()
            .rev()
            .map(|c| checkpoint(view, c, false))
            .collect(),
    }
}

/// The checkpoint `id` of the job, while the history keeps it.
pub fn find(view: &JobView, id: u64) -> Option<&Checkpoint> {
    let h = view.history.as_ref()?;
    h.checkpoints
        .iter()
        .find(|c| c.id == id)
        .or(h.latest_savepoint.as_ref().filter(|c| c.id == id))
}

/// Whether checkpoints are kept when the job ends (Flink's `ExternalizedCheckpointInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkExternalizedCheckpointInfo)]
pub struct ExternalizedCheckpointInfo {
    /// Always true: the position stays on the target.
    pub enabled: bool,
    /// Always false.
    pub delete_on_cancellation: bool,
}

/// The checkpointing mode: always exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = FlinkCheckpointMode)]
pub enum CheckpointMode {
    /// The target commits each transaction with its position.
    ExactlyOnce,
}

/// `GET /jobs/{jobid}/checkpoints/config` (Flink's `CheckpointConfigInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkCheckpointConfigInfo)]
pub struct CheckpointConfigInfo {
    /// Always `exactly_once`.
    pub mode: CheckpointMode,
    /// How often the position is sampled, ms.
    pub interval: u64,
    /// How long a stop with savepoint waits for the target, ms.
    pub timeout: u64,
    /// Always 0.
    pub min_pause: u64,
    /// Always 1.
    pub max_concurrent: u32,
    /// Checkpoints are kept.
    pub externalization: ExternalizedCheckpointInfo,
    /// Where the position is: the target's `dtle.job_position` table.
    pub state_backend: String,
    /// The target database.
    pub checkpoint_storage: String,
    /// Always false.
    pub unaligned_checkpoints: bool,
    /// Always 0.
    pub tolerable_failed_checkpoints: u32,
    /// Always 0.
    pub aligned_checkpoint_timeout: u64,
    /// Always false.
    pub checkpoints_after_tasks_finish: bool,
    /// Always false.
    pub state_changelog_enabled: bool,
    /// Always 0.
    pub changelog_periodic_materialization_interval: u64,
    /// Always empty.
    pub changelog_storage: String,
}

/// `GET /jobs/{jobid}/checkpoints/config`.
pub fn checkpoint_config() -> CheckpointConfigInfo {
    CheckpointConfigInfo {
        mode: CheckpointMode::ExactlyOnce,
        interval: SAMPLE_EVERY.as_millis() as u64,
        timeout: DRAIN_TIMEOUT.as_millis() as u64,
        min_pause: 0,
        max_concurrent: 1,
        externalization: ExternalizedCheckpointInfo {
            enabled: true,
            delete_on_cancellation: false,
        },
        state_backend: "the target's dtle.job_position table".into(),
        checkpoint_storage: "the target database".into(),
        unaligned_checkpoints: false,
        tolerable_failed_checkpoints: 0,
        aligned_checkpoint_timeout: 0,
        checkpoints_after_tasks_finish: false,
        state_changelog_enabled: false,
        changelog_periodic_materialization_interval: 0,
        changelog_storage: String::new(),
    }
}
