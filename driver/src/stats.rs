//! Counters each task keeps for the API (dtle's stats object) and for metrics.
//!
//! Updated from the task's own loop with relaxed atomics (each counter is independent; readers
//! want a recent value, not a consistent cut). The few non-numeric fields sit behind a std mutex
//! held only to copy a value in or out.
//!
//! # Read and executed
//! The Src counts what it reads (`rows_read`, `txns_read`) and, from the applier's
//! acknowledgements, what the target has committed of it (`rows_applied`, `txns_applied`, the
//! executed position; see [`crate::transport::ledger`]). The Dest counts what it commits itself.
//!
//! # Lag
//! As a DBA reads `Seconds_Behind_Master`: [`Lag::CaughtUp`] (0) once everything read has been
//! applied and the source had nothing newer to send (its idle heartbeat), [`Lag::Since`] a
//! source commit time while something is being (or was last) applied, so the lag is now minus
//! that time. It is kept as that basis, not as a number, so that it is computed when read.
//!
//! "Caught up" holds as of a moment: an idle source renews it every second with its heartbeats.
//! When no renewal comes for [`CAUGHT_UP_HOLDS`] (the other task or NATS is gone, the pipeline
//! stalls) nobody knows what the source wrote since, and the lag counts from that moment instead
//! of staying 0.

use crate::change::SourcePosition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds a "caught up" holds without being renewed (idle sources renew it every second).
pub const CAUGHT_UP_HOLDS: u64 = 3;

/// This machine's clock, seconds since the epoch.
pub fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One task's live counters.
#[derive(Debug, Default)]
pub struct TaskStats {
    /// Rows read from the source (snapshot and binlog).
    pub rows_read: AtomicU64,
    /// Source transactions read.
    pub txns_read: AtomicU64,
    /// Rows applied to the target (on the Src: as the applier acknowledged them).
    pub rows_applied: AtomicU64,
    /// Source transactions applied to the target (on the Src: as acknowledged).
    pub txns_applied: AtomicU64,
    /// Target transactions that committed source transactions (the Dest; with group commit,
    /// `txns_applied / target_commits` is the mean group size).
    pub target_commits: AtomicU64,
    /// Where the task waited, in microseconds (off-CPU time by cause, see [`Wait`]).
    waits: [AtomicU64; 3],
    /// Snapshot: rows the source's statistics estimate, for progress and ETA.
    pub snapshot_rows_estimated: AtomicU64,
    /// Snapshot: rows copied.
    pub snapshot_rows_done: AtomicU64,
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_out: AtomicU64,
    /// NATS reconnections of the task's connection (not its first connection).
    pub reconnects: AtomicU64,
    /// Epochs the transport restarted (a resync: the applier asked, NATS reconnected, a stall).
    pub resyncs: AtomicU64,
    /// Batches sent because they reached `GroupMaxSize` (or the frame size).
    pub sends_by_size: AtomicU64,
    /// Batches sent because `GroupTimeout` passed.
    pub sends_by_timeout: AtomicU64,
    backlog: AtomicU64,
    backlog_capacity: AtomicU64,
    /// What the lag is measured from ([`Lag`], packed by [`Lag::pack`]).
    lag: AtomicU64,
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
    executed: Option<SourcePosition>,
}

/// What a task's lag is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Nothing known yet (no transaction or heartbeat handled): no lag is shown.
    Unknown,
    /// Everything the source had was applied, as of this time (seconds since the epoch, this
    /// machine's clock): the lag is 0 for [`CAUGHT_UP_HOLDS`], then counts from it.
    CaughtUp(u32),
    /// Behind since this source commit time (seconds since the epoch): the lag is now minus it.
    Since(u32),
}

impl Lag {
    const CAUGHT_UP: u64 = 1 << 32;

    /// Caught up now.
    pub fn caught_up_now() -> Self {
        Lag::CaughtUp(u32::try_from(wall_secs()).unwrap_or(u32::MAX))
    }

    fn pack(self) -> u64 {
        match self {
            Lag::Unknown => 0,
            Lag::CaughtUp(at) => Self::CAUGHT_UP | u64::from(at),
            Lag::Since(ts) => u64::from(ts),
        }
    }

    fn unpack(packed: u64) -> Self {
        let time = (packed & u64::from(u32::MAX)) as u32;
        match (packed & Self::CAUGHT_UP != 0, time) {
            (_, 0) => Lag::Unknown,
            (true, at) => Lag::CaughtUp(at),
            (false, ts) => Lag::Since(ts),
        }
    }

    /// The lag in seconds at `now` (seconds since the epoch); `None` when unknown.
    pub fn seconds_at(self, now: u64) -> Option<u64> {
        match self {
            Lag::Unknown => None,
            Lag::CaughtUp(at) => {
                let since = now.saturating_sub(u64::from(at));
                Some(if since <= CAUGHT_UP_HOLDS { 0 } else { since })
            }
            Lag::Since(ts) => Some(now.saturating_sub(u64::from(ts))),
        }
    }
}

/// Rows of one table, by kind of change.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// Transport epochs restarted.
    pub resyncs: u64,
    /// Frames in flight, and the window.
    pub backlog: (u64, u64),
    /// Target transactions that committed source transactions.
    pub target_commits: u64,
    /// Microseconds waited, by [`Wait`] (as `Wait as usize`).
    pub waited_us: [u64; 3],
    /// Batches sent because they were full.
    pub sends_by_size: u64,
    /// Batches sent because they had waited long enough.
    pub sends_by_timeout: u64,
    /// What the task is doing.
    pub stage: String,
    /// Current source coordinates (the Src: read; the Dest: applied).
    pub position: SourcePosition,
    /// What the target has committed, as the Src learnt it from the applier (the Src only).
    pub executed: Option<SourcePosition>,
    /// Seconds behind the source, as `Seconds_Behind_Master` (see [`Lag`]).
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

/// A task's NATS traffic ([`TaskStats::traffic`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages received.
    pub msgs_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Messages sent.
    pub msgs_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

/// What a task waits for: the stages of the pipeline that can keep it idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The Src: binlog events or snapshot rows from the source.
    Source = 0,
    /// The Dest: the target's answers to its statements.
    Target = 1,
    /// The other task: the Src for acknowledgements (a full window), the Dest for frames.
    Peer = 2,
}

impl Wait {
    /// Every kind, in index order.
    pub const ALL: [Wait; 3] = [Wait::Source, Wait::Target, Wait::Peer];

    /// The name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Wait::Source => "source",
            Wait::Target => "target",
            Wait::Peer => "peer",
        }
    }
}

impl TaskStats {
    /// Counts time spent waiting for `on`.
    pub fn waited(&self, on: Wait, time: std::time::Duration) {
        self.waits[on as usize].fetch_add(time.as_micros() as u64, Relaxed);
    }

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

    /// Records the source commit time of the transaction being or just applied: the lag is
    /// measured from it until something newer is handled.
    pub fn set_source_timestamp(&self, epoch_secs: u32) {
        if epoch_secs > 0 {
            self.set_lag(Lag::Since(epoch_secs));
        }
    }

    /// Records a heartbeat handled after everything before it: `timestamp` 0 means the source
    /// had nothing newer (caught up: the lag is 0); otherwise it is the source time of the
    /// filtered transactions it stands for (see [`crate::change::Item::Heartbeat`]).
    pub fn source_heartbeat(&self, timestamp: u32) {
        if timestamp == 0 {
            self.set_lag(Lag::caught_up_now());
        } else {
            self.set_lag(Lag::Since(timestamp));
        }
    }

    /// Sets what the lag is measured from.
    pub fn set_lag(&self, lag: Lag) {
        self.lag.store(lag.pack(), Relaxed);
    }

    /// What the lag is measured from.
    pub fn lag(&self) -> Lag {
        Lag::unpack(self.lag.load(Relaxed))
    }

    /// Takes back rows and transactions counted as read that will be read again (the transport
    /// restarted before the applier acknowledged them), so that, caught up, read equals applied.
    pub fn unread(&self, rows: u64, txns: u64) {
        let less = |counter: &AtomicU64, n: u64| {
            let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
        };
        less(&self.rows_read, rows);
        less(&self.txns_read, txns);
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

    /// Records what the target has committed (the Src, from the applier's answers).
    pub fn set_executed(&self, position: &SourcePosition) {
        if let Ok(mut text) = self.text.lock() {
            match &mut text.executed {
                Some(executed) => executed.clone_from(position),
                None => text.executed = Some(position.clone()),
            }
        }
    }

    /// What the target has committed, if the Src has learnt it.
    pub fn executed(&self) -> Option<SourcePosition> {
        self.text.lock().ok().and_then(|t| t.executed.clone())
    }

    /// NATS traffic so far, without taking a snapshot (which samples the throughput).
    pub fn traffic(&self) -> Traffic {
        Traffic {
            msgs_in: self.msgs_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            msgs_out: self.msgs_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
        }
    }

    /// The current source coordinates (the Src: read; the Dest: committed).
    pub fn position(&self) -> SourcePosition {
        self.text
            .lock()
            .map(|t| t.position.clone())
            .unwrap_or_default()
    }

    /// The tables counted so far (`schema.table`).
    pub fn table_names(&self) -> Vec<String> {
        self.tables
            .lock()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let text = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        let now = wall_secs();
        // The Src reads what the Dest applies: its rows are the larger count, the Dest's the
        // only one.
        let handled = self
            .rows_read
            .load(Relaxed)
            .max(self.rows_applied.load(Relaxed));
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
            resyncs: self.resyncs.load(Relaxed),
            backlog: (
                self.backlog.load(Relaxed),
                self.backlog_capacity.load(Relaxed),
            ),
            target_commits: self.target_commits.load(Relaxed),
            waited_us: [0, 1, 2].map(|i| self.waits[i].load(Relaxed)),
            sends_by_size: self.sends_by_size.load(Relaxed),
            sends_by_timeout: self.sends_by_timeout.load(Relaxed),
            stage: text.stage,
            position: text.position,
            executed: text.executed,
            lag_seconds: self.lag().seconds_at(now),
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

    #[test]
    fn lag_is_unknown_then_behind_then_zero_when_caught_up() {
        let stats = TaskStats::default();
        assert_eq!(stats.snapshot().lag_seconds, None);
        stats.set_source_timestamp(0);
        assert_eq!(stats.lag(), Lag::Unknown, "0 is no source time");
        stats.set_source_timestamp(1_000);
        assert_eq!(stats.lag().seconds_at(1_030), Some(30));
        assert_eq!(stats.lag().seconds_at(990), Some(0));
        stats.source_heartbeat(0);
        assert!(matches!(stats.lag(), Lag::CaughtUp(_)));
        assert_eq!(stats.snapshot().lag_seconds, Some(0));
        stats.source_heartbeat(1_040);
        assert_eq!(stats.lag(), Lag::Since(1_040));
    }

    #[test]
    fn caught_up_holds_a_few_seconds_unless_renewed() {
        let at = Lag::CaughtUp(2_000);
        assert_eq!(Lag::unpack(at.pack()), at);
        assert_eq!(Lag::unpack(Lag::Since(7).pack()), Lag::Since(7));
        assert_eq!(Lag::unpack(Lag::Unknown.pack()), Lag::Unknown);
        assert_eq!(at.seconds_at(2_000 + CAUGHT_UP_HOLDS), Some(0));
        assert_eq!(at.seconds_at(2_010), Some(10), "nothing heard for 10 s");
    }

    #[test]
    fn unread_rows_leave_the_read_counts_never_below_zero() {
        let stats = TaskStats::default();
        stats.rows_read.store(10, Relaxed);
        stats.txns_read.store(2, Relaxed);
        stats.unread(4, 5);
        assert_eq!(
            (stats.rows_read.load(Relaxed), stats.txns_read.load(Relaxed)),
            (6, 0)
        );
    }
}
