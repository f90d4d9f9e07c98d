//! `GET /v1/agent/allocation/{allocID}/stats`: dtle 2.x's figures of one task, from the
//! driver's [`StatsSnapshot`].

use crate::orchestrator::Allocation;
use driver::stats::StatsSnapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// dtle's stats of one allocation: `GET /v1/agent/allocation/{allocID}/stats`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleAllocationStats)]
pub struct AllocationStats {
    /// One entry, keyed by the task's name (`Src` or `Dest`).
    pub tasks: BTreeMap<String, TaskStats>,
}

/// One task's replication figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleTaskStats)]
pub struct TaskStats {
    /// `queued/capacity` of the Src's send queue.
    pub backlog: String,
    pub buffer_stat: BufferStat,
    pub current_coordinates: Coordinates,
    /// The replication lag in seconds, when known.
    pub delay_count: Option<DelayCount>,
    /// Time left of the snapshot as a Go duration (`1h2m3s`), `0s` when done, `N/A` before it
    /// can be estimated.
    #[serde(rename = "ETA")]
    pub eta: String,
    pub exec_master_row_count: u64,
    pub exec_master_tx_count: u64,
    pub msg_stat: MsgStat,
    /// Snapshot progress in percent, one decimal (`"42.0"`).
    pub progress_pct: String,
    pub read_master_row_count: u64,
    pub read_master_tx_count: u64,
    /// `snapshot`, `binlog`, ...
    pub stage: String,
    /// Per `schema.table`.
    pub table_stats: BTreeMap<String, TableStat>,
    pub throughput_stat: ThroughputStat,
    /// Unix time in ns of this reading.
    pub timestamp: u64,
}

/// Queues and how batches were sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleBufferStat)]
pub struct BufferStat {
    pub extractor_tx_queue_size: u64,
    pub applier_tx_queue_size: u64,
    pub applier_group_tx_queue_size: u64,
    pub send_by_timeout: u64,
    pub send_by_size_full: u64,
}

/// Where the task is in the source's binlog.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleCoordinates)]
pub struct Coordinates {
    pub file: String,
    pub position: u64,
    /// Read up to here.
    pub gtid_set: String,
    pub relay_master_log_file: String,
    pub read_master_log_pos: u64,
    pub retrieved_gtid_set: String,
    /// Committed on the target up to here.
    pub executed_gtid_set: String,
}

/// The lag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleDelayCount)]
pub struct DelayCount {
    pub num: u64,
    /// Seconds.
    pub time: u64,
}

/// NATS traffic of the task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleMsgStat)]
pub struct MsgStat {
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub reconnects: u64,
}

/// Row counts of one table.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleTableStat)]
pub struct TableStat {
    pub insert_count: u64,
    pub update_count: u64,
    pub del_count: u64,
    pub row_count: u64,
}

/// Rows per second, sampled every second.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleThroughputStat)]
pub struct ThroughputStat {
    /// Rows in the last sample.
    pub num: u64,
    /// Seconds the sample spans.
    pub time: u64,
}

/// dtle's stats object for `GET /v1/agent/allocation/{allocID}/stats`.
pub fn stats(
    a: &Allocation,
    s: &StatsSnapshot,
    eta: Option<Duration>,
    now_ns: u64,
) -> AllocationStats {
    let gtid = s
        .position
        .gtid_set
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    // The Src knows both what it read and what the target executed; the Dest's position is
    // what it executed.
    let executed = s
        .executed
        .as_ref()
        .map(|p| {
            p.gtid_set
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .unwrap_or_else(|| gtid.clone());
    let table_stats = s
        .tables
        .iter()
        .map(|(name, t)| {
            let stat = TableStat {
                insert_count: t.inserts,
                update_count: t.updates,
                del_count: t.deletes,
                row_count: t.rows,
            };
            (name.clone(), stat)
        })
        .collect();
    let task = TaskStats {
        backlog: format!("{}/{}", s.backlog.0, s.backlog.1),
        buffer_stat: BufferStat {
            extractor_tx_queue_size: s.backlog.0,
            applier_tx_queue_size: 0,
            applier_group_tx_queue_size: 0,
            send_by_timeout: s.sends_by_timeout,
            send_by_size_full: s.sends_by_size,
        },
        current_coordinates: Coordinates {
            file: s.position.file.clone(),
            position: s.position.pos,
            gtid_set: gtid,
            relay_master_log_file: String::new(),
            read_master_log_pos: 0,
            retrieved_gtid_set: String::new(),
            executed_gtid_set: executed,
        },
        delay_count: s.lag_seconds.map(|lag| DelayCount { num: 0, time: lag }),
        eta: eta_text(s, eta),
        exec_master_row_count: s.rows_applied,
        exec_master_tx_count: s.txns_applied,
        msg_stat: MsgStat {
            in_msgs: s.msgs_in,
            out_msgs: s.msgs_out,
            in_bytes: s.bytes_in,
            out_bytes: s.bytes_out,
            reconnects: s.reconnects,
        },
        progress_pct: format!("{:.1}", s.progress_pct()),
        read_master_row_count: s.rows_read,
        read_master_tx_count: s.txns_read,
        stage: s.stage.clone(),
        table_stats,
        throughput_stat: ThroughputStat {
            num: s.throughput.0,
            time: s.throughput.1,
        },
        timestamp: now_ns,
    };
    AllocationStats {
        tasks: BTreeMap::from([(a.role.as_str().to_owned(), task)]),
    }
}

/// dtle's `ETA`: the estimate as a Go duration (`1h2m3s`), `0s` when the snapshot is done (or
/// there is none), `N/A` before anything can be estimated.
fn eta_text(s: &StatsSnapshot, eta: Option<Duration>) -> String {
    match eta {
        Some(eta) => go_duration(eta),
        None if s.progress_pct() >= 100.0 => "0s".to_owned(),
        None => "N/A".to_owned(),
    }
}

/// A duration as Go's `time.Duration` prints it, in whole seconds: `0s`, `45s`, `2m0s`, `1h2m3s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etas_are_go_durations_or_na() {
        assert_eq!(go_duration(Duration::from_secs(0)), "0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(go_duration(Duration::from_millis(3_723_900)), "1h2m3s");
        let mut s = driver::stats::TaskStats::default().snapshot();
        assert_eq!(eta_text(&s, None), "0s", "no snapshot to wait for");
        s.snapshot_rows_estimated = 100;
        assert_eq!(eta_text(&s, None), "N/A");
        assert_eq!(eta_text(&s, Some(Duration::from_secs(75))), "1m15s");
    }
}
