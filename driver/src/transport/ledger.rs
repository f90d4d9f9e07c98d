//! The extractor's account of what it sent and what the applier has acknowledged: the Src's
//! executed counts, executed position and lag, learnt through the transport alone (the tasks may
//! run on different machines).
//!
//! # Why an acknowledgement means "committed"
//! The applier acknowledges a frame only after applying every item of it, and applying a
//! `Commit` commits the target transaction (or finds it already committed). So every transaction
//! whose `Commit` ends in an acknowledged frame is on the target. The sender knows which frame
//! each item ends in: frames are cut from the pending bytes in order, so byte `i` of the pending
//! buffer goes out in frame `seq + 1 + i / max_chunk` (see [`super::sender`]).
//!
//! # What it keeps
//! Per epoch: cumulative counts of what was sent, and for each frame still in flight the counts
//! up to its end, the last position it carries, the source time of its oldest transaction and
//! the lag its last transaction or heartbeat implies. An acknowledgement turns the frames it
//! covers into executed counts, position and lag.
//!
//! # Lag
//! Measured (see [`crate::stats::Lag`]) from the oldest transaction sent and not yet
//! acknowledged; with none, from the last transaction or heartbeat acknowledged. A heartbeat
//! sent at the end of the binlog means caught up as of when it was sent, which the next one
//! renews; only acknowledged ones count, so a job whose applier stopped answering does not go on
//! showing 0.
//!
//! # Epochs
//! When an epoch ends (a resync, the task stopping), what was sent and not acknowledged will be
//! read again from the target's position. It is taken back out of the read counts, so that a
//! caught-up job shows as many rows and transactions read as executed, and the lag stays
//! measured from the oldest of it until it is acknowledged.

use crate::change::{Item, SourcePosition};
use crate::stats::{Lag, TaskStats};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Rows and transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    txns: u64,
    rows: u64,
}

/// What the frames up to one frame carry.
#[derive(Debug)]
struct Mark {
    /// The frame.
    frame: u64,
    /// Committed transactions and their rows (and snapshot rows) of the epoch up to its end.
    through: Tally,
    /// The last position it carries.
    position: Option<SourcePosition>,
    /// Source time of the first transaction that commits in it.
    oldest: Option<u32>,
    /// The lag its last transaction or heartbeat implies once acknowledged.
    settles: Option<Lag>,
}

/// The transaction being sent.
#[derive(Debug, Clone, Copy)]
struct Open {
    timestamp: u32,
    rows: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Ledger {
    epoch: u64,
    /// Sent in this epoch: committed transactions, their rows and snapshot rows.
    sent: Tally,
    open: Option<Open>,
    /// Frames in flight that carry something, in frame order.
    marks: VecDeque<Mark>,
    /// Acknowledged in this epoch.
    executed: Tally,
    /// The lag when nothing sent is outstanding.
    settled: Lag,
    stats: Arc<TaskStats>,
}

impl Ledger {
    /// An empty ledger feeding `stats`.
    pub fn new(stats: Arc<TaskStats>) -> Self {
        Self {
            epoch: 0,
            sent: Tally::default(),
            open: None,
            marks: VecDeque::new(),
            executed: Tally::default(),
            settled: Lag::Unknown,
            stats,
        }
    }

    /// Ends the current epoch (what it did not get acknowledged will be read again) and starts
    /// `epoch` (0: none).
    pub fn begin_epoch(&mut self, epoch: u64) {
        let open_rows = self.open.map_or(0, |o| o.rows);
        let again = Tally {
            txns: self.sent.txns.saturating_sub(self.executed.txns),
            rows: (self.sent.rows + open_rows).saturating_sub(self.executed.rows),
        };
        if again != Tally::default() {
            self.stats.unread(again.rows, again.txns);
        }
        // The target is no further than the oldest of what will be sent again.
        if let Some(oldest) = self.oldest_outstanding() {
            self.settled = Lag::Since(oldest);
        }
        self.epoch = epoch;
        self.sent = Tally::default();
        self.open = None;
        self.marks.clear();
        self.executed = Tally::default();
        self.publish_lag();
    }

    /// Records `item`, whose last byte goes out in `frame` of the current epoch, sent at
    /// `wall_secs` (this machine's clock).
    pub fn sent(&mut self, item: &Item, frame: u64, wall_secs: u64) {
        match item {
            Item::Begin(meta) => {
                self.open = Some(Open {
                    timestamp: meta.timestamp,
                    rows: 0,
                });
            }
            Item::Row(_) => {
                if let Some(open) = self.open.as_mut() {
                    open.rows += 1;
                }
            }
            Item::SnapshotChunk { rows, .. } => {
                self.sent.rows += rows.len() as u64;
                self.mark(frame);
            }
            Item::Commit { position } => {
                let open = self.open.take();
                let timestamp = open.map_or(0, |o| o.timestamp);
                self.sent.txns += 1;
                self.sent.rows += open.map_or(0, |o| o.rows);
                let mark = self.mark(frame);
                mark.position = Some(position.clone());
                if timestamp > 0 {
                    mark.oldest.get_or_insert(timestamp);
                    mark.settles = Some(Lag::Since(timestamp));
                }
            }
            Item::Heartbeat {
                position,
                timestamp,
            } => {
                let mark = self.mark(frame);
                mark.position = Some(position.clone());
                mark.settles = Some(match timestamp {
                    0 => Lag::CaughtUp(u32::try_from(wall_secs).unwrap_or(u32::MAX)),
                    &ts => Lag::Since(ts),
                });
            }
            Item::SnapshotEnd { binlog_from, .. } => {
                self.mark(frame).position = Some(binlog_from.clone());
            }
            Item::Table(_) | Item::SnapshotBegin { .. } | Item::Ddl(_) | Item::TableCopy { .. } => {
            }
        }
        self.publish_lag();
    }

    /// The applier has processed every frame up to `seq` of `epoch`.
    pub fn acknowledged(&mut self, epoch: u64, seq: u64) {
        if epoch != self.epoch || epoch == 0 {
            return;
        }
        let mut through = None;
        let mut position = None;
        while self.marks.front().is_some_and(|m| m.frame <= seq) {
            let Some(mark) = self.marks.pop_front() else {
                break;
            };
            through = Some(mark.through);
            position = mark.position.or(position);
            self.settled = mark.settles.unwrap_or(self.settled);
        }
        if let Some(through) = through {
            let txns = through.txns.saturating_sub(self.executed.txns);
            let rows = through.rows.saturating_sub(self.executed.rows);
            self.stats.txns_applied.fetch_add(txns, Relaxed);
            self.stats.rows_applied.fetch_add(rows, Relaxed);
            self.executed = through;
        }
        if let Some(position) = &position {
            self.stats.set_executed(position);
        }
        self.publish_lag();
    }

    /// The mark of `frame`, made if the last one is of an earlier frame.
    fn mark(&mut self, frame: u64) -> &mut Mark {
        let through = self.sent;
        if self.marks.back().is_none_or(|m| m.frame < frame) {
            self.marks.push_back(Mark {
                frame,
                through,
                position: None,
                oldest: None,
                settles: None,
            });
        }
        let last = self.marks.len() - 1;
        let mark = &mut self.marks[last];
        mark.through = through;
        mark
    }

    /// Source time of the oldest transaction sent and not acknowledged.
    fn oldest_outstanding(&self) -> Option<u32> {
        self.marks
            .iter()
            .find_map(|m| m.oldest)
            .or_else(|| self.open.map(|o| o.timestamp).filter(|&t| t > 0))
    }

    fn publish_lag(&self) {
        let lag = self.oldest_outstanding().map_or(self.settled, Lag::Since);
        self.stats.set_lag(lag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{ChunkProgress, RowChange, RowKind, TxnMeta};

    const NOW: u64 = 5_000;

    fn at(pos: u64) -> SourcePosition {
        SourcePosition {
            gtid_set: None,
            file: "bin.000001".into(),
            pos,
            resume_from: None,
        }
    }

    fn begin(ledger: &mut Ledger, timestamp: u32, frame: u64) {
        let meta = TxnMeta {
            gtid: None,
            timestamp,
        };
        ledger.sent(&Item::Begin(meta), frame, NOW);
    }

    fn rows(ledger: &mut Ledger, n: u64, frame: u64) {
        for _ in 0..n {
            let change = RowChange {
                table: 1,
                kind: RowKind::Insert(vec![]),
            };
            ledger.sent(&Item::Row(change), frame, NOW);
        }
    }

    fn txn(ledger: &mut Ledger, timestamp: u32, n: u64, frame: u64, pos: u64) {
        begin(ledger, timestamp, frame);
        rows(ledger, n, frame);
        ledger.sent(&Item::Commit { position: at(pos) }, frame, NOW);
    }

    fn heartbeat(ledger: &mut Ledger, timestamp: u32, frame: u64, pos: u64) {
        let item = Item::Heartbeat {
            position: at(pos),
            timestamp,
        };
        ledger.sent(&item, frame, NOW);
    }

    fn counts(stats: &TaskStats) -> (u64, u64) {
        (
            stats.txns_applied.load(Relaxed),
            stats.rows_applied.load(Relaxed),
        )
    }

    fn fresh() -> (Arc<TaskStats>, Ledger) {
        let stats = Arc::new(TaskStats::default());
        let mut ledger = Ledger::new(stats.clone());
        ledger.begin_epoch(7);
        (stats, ledger)
    }

    #[test]
    fn acknowledged_frames_become_executed_counts_position_and_lag() {
        let (stats, mut ledger) = fresh();
        assert_eq!(stats.lag(), Lag::Unknown);
        txn(&mut ledger, 100, 2, 1, 10);
        txn(&mut ledger, 105, 3, 1, 20);
        txn(&mut ledger, 110, 1, 2, 30);
        assert_eq!(stats.lag(), Lag::Since(100), "the oldest unacknowledged");
        ledger.acknowledged(7, 1);
        assert_eq!(counts(&stats), (2, 5));
        assert_eq!(stats.executed(), Some(at(20)));
        assert_eq!(stats.lag(), Lag::Since(110));
        ledger.acknowledged(6, 2);
        assert_eq!(
            counts(&stats),
            (2, 5),
            "another epoch's ack counts for nothing"
        );
        ledger.acknowledged(7, 2);
        assert_eq!(counts(&stats), (3, 6));
        assert_eq!(
            stats.lag(),
            Lag::Since(110),
            "the last applied, until told more"
        );
        heartbeat(&mut ledger, 0, 3, 40);
        assert_eq!(
            stats.lag(),
            Lag::Since(110),
            "caught up only once acknowledged"
        );
        ledger.acknowledged(7, 3);
        assert_eq!(stats.lag(), Lag::CaughtUp(NOW as u32));
        assert_eq!(stats.executed(), Some(at(40)));
        assert_eq!(counts(&stats), (3, 6));
    }

    #[test]
    fn a_transaction_being_sent_is_behind_and_progress_heartbeats_carry_their_time() {
        let (stats, mut ledger) = fresh();
        heartbeat(&mut ledger, 0, 1, 5);
        ledger.acknowledged(7, 1);
        assert_eq!(stats.lag(), Lag::CaughtUp(NOW as u32));
        begin(&mut ledger, 200, 2);
        assert_eq!(stats.lag(), Lag::Since(200));
        ledger.sent(&Item::Commit { position: at(9) }, 3, NOW);
        ledger.acknowledged(7, 3);
        heartbeat(&mut ledger, 230, 4, 12);
        ledger.acknowledged(7, 4);
        assert_eq!(stats.lag(), Lag::Since(230));
    }

    #[test]
    fn a_new_epoch_takes_back_what_will_be_read_again() {
        let (stats, mut ledger) = fresh();
        stats.txns_read.store(3, Relaxed);
        stats.rows_read.store(9, Relaxed);
        txn(&mut ledger, 100, 4, 1, 10);
        txn(&mut ledger, 101, 2, 2, 20);
        begin(&mut ledger, 102, 3);
        rows(&mut ledger, 3, 3);
        heartbeat(&mut ledger, 0, 3, 25);
        ledger.acknowledged(7, 1);
        ledger.begin_epoch(8);
        // Read again: the second transaction (2 rows) and the open one's 3 rows.
        assert_eq!(stats.txns_read.load(Relaxed), 2);
        assert_eq!(stats.rows_read.load(Relaxed), 4);
        assert_eq!(counts(&stats), (1, 4));
        assert_eq!(stats.lag(), Lag::Since(101), "behind until sent again");
        ledger.acknowledged(7, 3);
        assert_eq!(counts(&stats), (1, 4), "the old epoch is over");
    }

    #[test]
    fn snapshot_rows_count_as_executed_once_acknowledged() {
        let (stats, mut ledger) = fresh();
        let chunk = Item::SnapshotChunk {
            table: 1,
            rows: vec![vec![], vec![]],
            progress: ChunkProgress {
                snapshot_id: 1,
                source_table: "s.t".into(),
                last_key: None,
                rows_done: 2,
                table_done: true,
            },
        };
        ledger.sent(&chunk, 1, NOW);
        ledger.sent(&chunk, 1, NOW);
        let end = Item::SnapshotEnd {
            snapshot_id: 1,
            binlog_from: at(4),
        };
        ledger.sent(&end, 2, NOW);
        ledger.acknowledged(7, 1);
        assert_eq!(counts(&stats), (0, 4));
        assert_eq!(stats.executed(), None);
        ledger.acknowledged(7, 2);
        assert_eq!(stats.executed(), Some(at(4)));
    }
}
