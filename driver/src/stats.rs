//! Counters each task keeps for the API (dtle's stats object) and for metrics.
//!
//! Updated from the task's own loop with relaxed atomics (each counter is independent; readers
//! want a recent value, not a consistent cut). The few non-numeric fields sit behind a std mutex
//! held only to copy a value in or out.

use crate::change::SourcePosition;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One task's live counters.
#[derive(Debug, Default)]
pub struct TaskStats {
    /// Rows read from the source (snapshot and binlog).
    pub rows_read: AtomicU64,
    /// Source transactions read.
    pub txns_read: AtomicU64,
    /// Rows applied to the target.
    pub rows_applied: AtomicU64,
    /// Source transactions applied to the target.
    pub txns_applied: AtomicU64,
    /// Snapshot: rows the source's statistics estimate, for progress and ETA.
    pub snapshot_rows_estimated: AtomicU64,
    /// Snapshot: rows copied.
    pub snapshot_rows_done: AtomicU64,
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_out: AtomicU64,
    /// NATS reconnections.
    pub reconnects: AtomicU64,
    /// Batches sent because they reached `GroupMaxSize` (or the frame size).
    pub sends_by_size: AtomicU64,
    /// Batches sent because `GroupTimeout` passed.
    pub sends_by_timeout: AtomicU64,
    backlog: AtomicU64,
    backlog_capacity: AtomicU64,
    /// Source commit time (epoch seconds) of the last transaction read or applied.
    last_source_ts: AtomicU64,
    text: Mutex<TextStats>,
    /// Per table (`schema.table`): rows by kind.
    tables: Mutex<BTreeMap<String, TableCounters>>,
    /// The last throughput sample: when, and rows handled by then.
    sample: Mutex<Option<(Instant, u64, u64)>>,
}

#[derive(Debug, Default, Clone)]
struct TextStats {
    stage: String,
    position: SourcePosition,
}

/// Rows of one table, by kind of change.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableCounters {
    /// Rows copied or inserted.
    pub inserts: u64,
    /// Rows updated.
    pub updates: u64,
    /// Rows deleted.
    pub deletes: u64,
    /// All of them.
    pub rows: u64,
}

/// Which kind of row change, for [`TaskStats::count_rows`].
#[derive(Debug, Clone, Copy)]
pub enum RowCount {
    /// Inserted or copied.
    Insert,
    /// Updated.
    Update,
    /// Deleted.
    Delete,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Transactions read from the source.
    pub txns_read: u64,
    /// Rows applied to the target.
    pub rows_applied: u64,
    /// Transactions applied to the target.
    pub txns_applied: u64,
    /// Snapshot rows estimated.
    pub snapshot_rows_estimated: u64,
    /// Snapshot rows copied.
    pub snapshot_rows_done: u64,
    /// NATS messages received.
    pub msgs_in: u64,
    /// NATS bytes received.
    pub bytes_in: u64,
    /// NATS messages sent.
    pub msgs_out: u64,
    /// NATS bytes sent.
    pub bytes_out: u64,
    /// NATS reconnections.
    pub reconnects: u64,
    /// Frames in flight, and the window.
    pub backlog: (u64, u64),
    /// Batches sent because they were full.
    pub sends_by_size: u64,
    /// Batches sent because they had waited long enough.
    pub sends_by_timeout: u64,
    /// What the task is doing.
    pub stage: String,
    /// Current source coordinates.
    pub position: SourcePosition,
    /// Seconds between now and the source commit time of the last transaction handled.
    pub lag_seconds: Option<u64>,
    /// Per table counters.
    pub tables: BTreeMap<String, TableCounters>,
    /// Rows per second over the last sample window, and that window in seconds.
    pub throughput: (u64, u64),
}

impl StatsSnapshot {
    /// Snapshot progress in percent (dtle's `ProgressPct`), `100.0` once the snapshot is done
    /// or when there was none.
    pub fn progress_pct(&self) -> f64 {
        if self.snapshot_rows_estimated == 0 {
            return 100.0;
        }
        (self.snapshot_rows_done as f64 * 100.0 / self.snapshot_rows_estimated as f64).min(100.0)
    }

    /// Estimated time left in the snapshot, given how long it has run: the remaining rows at the
    /// rate so far. `None` before any row is copied.
    pub fn eta(&self, elapsed: std::time::Duration) -> Option<std::time::Duration> {
        if self.snapshot_rows_done == 0 {
            return None;
        }
        let remaining = self
            .snapshot_rows_estimated
            .saturating_sub(self.snapshot_rows_done);
        let per_row = elapsed.as_secs_f64() / self.snapshot_rows_done as f64;
        Some(std::time::Duration::from_secs_f64(
            remaining as f64 * per_row,
        ))
    }
}

impl TaskStats {
    /// Counts a NATS message sent.
    pub fn record_out_msg(&self, bytes: u64) {
        self.msgs_out.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Counts a NATS message received.
    pub fn record_in_msg(&self, bytes: u64) {
        self.msgs_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes, Relaxed);
    }

    /// Records frames in flight against the window.
    pub fn set_backlog(&self, in_flight: u64, capacity: u64) {
        self.backlog.store(in_flight, Relaxed);
        self.backlog_capacity.store(capacity, Relaxed);
    }

    /// Records the source commit time of the transaction just handled.
    pub fn set_source_timestamp(&self, epoch_secs: u32) {
        if epoch_secs > 0 {
            self.last_source_ts.store(u64::from(epoch_secs), Relaxed);
        }
    }

    /// The snapshot is complete: progress is 100% whatever the estimate said.
    pub fn snapshot_finished(&self) {
        self.snapshot_rows_estimated
            .store(self.snapshot_rows_done.load(Relaxed), Relaxed);
    }

    /// Counts `n` rows of `table`.
    pub fn count_rows(&self, table: &str, kind: RowCount, n: u64) {
        if let Ok(mut tables) = self.tables.lock() {
            let counters = match tables.get_mut(table) {
                Some(c) => c,
                None => tables.entry(table.to_owned()).or_default(),
            };
            match kind {
                RowCount::Insert => counters.inserts += n,
                RowCount::Update => counters.updates += n,
                RowCount::Delete => counters.deletes += n,
            }
            counters.rows += n;
        }
    }

    /// Sets the stage text (dtle's `Stage`).
    pub fn set_stage(&self, stage: &str) {
        if let Ok(mut text) = self.text.lock() {
            if text.stage != stage {
                text.stage = stage.to_owned();
            }
        }
    }

    /// Sets the current source coordinates.
    pub fn set_position(&self, position: &SourcePosition) {
        if let Ok(mut text) = self.text.lock() {
            text.position.clone_from(position);
        }
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let text = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let ts = self.last_source_ts.load(Relaxed);
        let handled = self.rows_read.load(Relaxed) + self.rows_applied.load(Relaxed);
        let throughput = self
            .sample
            .lock()
            .map(|mut sample| {
                let now = Instant::now();
                match *sample {
                    Some((at, _, rate)) if now.duration_since(at).as_secs() < 1 => (rate, 1),
                    Some((at, rows, _)) => {
                        let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                        let rate = (handled.saturating_sub(rows) as f64 / secs) as u64;
                        *sample = Some((now, handled, rate));
                        (rate, secs.round() as u64)
                    }
                    None => {
                        *sample = Some((now, handled, 0));
                        (0, 0)
                    }
                }
            })
            .unwrap_or((0, 0));
        StatsSnapshot {
            rows_read: self.rows_read.load(Relaxed),
            txns_read: self.txns_read.load(Relaxed),
            rows_applied: self.rows_applied.load(Relaxed),
            txns_applied: self.txns_applied.load(Relaxed),
            snapshot_rows_estimated: self.snapshot_rows_estimated.load(Relaxed),
            snapshot_rows_done: self.snapshot_rows_done.load(Relaxed),
            msgs_in: self.msgs_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            msgs_out: self.msgs_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            backlog: (
                self.backlog.load(Relaxed),
                self.backlog_capacity.load(Relaxed),
            ),
            sends_by_size: self.sends_by_size.load(Relaxed),
            sends_by_timeout: self.sends_by_timeout.load(Relaxed),
            stage: text.stage,
            position: text.position,
            lag_seconds: (ts > 0).then(|| now.saturating_sub(ts)),
            tables: self.tables.lock().map(|t| t.clone()).unwrap_or_default(),
            throughput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn progress_and_eta_follow_the_copied_rows() {
        let stats = TaskStats::default();
        stats.snapshot_rows_estimated.store(1000, Relaxed);
        stats.snapshot_rows_done.store(250, Relaxed);
        let snap = stats.snapshot();
        assert_eq!(snap.progress_pct(), 25.0);
        assert_eq!(
            snap.eta(Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        stats.snapshot_rows_done.store(1200, Relaxed);
        assert_eq!(stats.snapshot().progress_pct(), 100.0);
        assert_eq!(
            TaskStats::default().snapshot().eta(Duration::from_secs(1)),
            None
        );
    }
}
