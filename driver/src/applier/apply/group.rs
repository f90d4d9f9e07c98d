//! Group commit: consecutive source transactions applied as one target transaction, their
//! statements sent hundreds at a time.
//!
//! # Algorithm
//! The first statement of a source transaction opens a group (`START TRANSACTION`) if none is
//! open. Statements are written as text, values as exact literals (`mysql::literal`), into a
//! batch that goes to the target as one multi-statement round trip once it holds
//! [`SEND_BYTES`]; a row too large for a text batch is sent alone as a prepared statement, after
//! the batch before it. A source transaction that commits joins the group. The group closes (its
//! GTID rows as one multi-row INSERT, the last transaction's position and `COMMIT`, sent with the
//! rest of the batch) when it holds [`MAX_GROUP_TXNS`] transactions or [`MAX_GROUP_BYTES`] of
//! text, when it is [`MAX_GROUP_AGE`] old, when the stream pauses (a frame ends with no
//! transaction open, a heartbeat), and before anything that must stand alone: a schema change, a
//! snapshot chunk. A group never holds part of a source transaction when it commits, except the
//! rows before a schema change in the same transaction, which a schema change commits anyway.
//!
//! # Exactly once
//! Every transaction in a group, its GTID row and the position after the last of them commit
//! together or not at all, so the position tables still describe exactly what the target holds.
//! A group that fails is rolled back whole and the loop resyncs; the transactions it held are
//! then replayed one per target transaction ([`Applier::replay_alone`]), so the one that fails
//! is known (it is the one counted against `RetryTxLimit`), and a duplicate GTID row, which
//! means that transaction was applied before, skips that transaction alone.

use super::{Applier, Executor, Phase};
use crate::applier::executor::ExecError;
use crate::applier::{position, statements};
use crate::change::{Gtid, SourcePosition};
use crate::error::{codes, DefiniteCause, TaskError};
use crate::stats::Wait;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Text sent per round trip.
pub(super) const SEND_BYTES: usize = 512 << 10;
/// Source transactions per group at most.
const MAX_GROUP_TXNS: usize = 2000;
/// Text per group at most.
const MAX_GROUP_BYTES: usize = 32 << 20;
/// A group closes at the first commit after it is this old.
const MAX_GROUP_AGE: Duration = Duration::from_millis(100);

/// What a statement's result must be checked for.
#[derive(Debug, Clone)]
pub(super) enum Check {
    /// Nothing (transaction brackets, the position).
    Nothing,
    /// An UPDATE or DELETE of this many rows of this table: changing fewer means the target
    /// differs.
    Changed(Arc<str>, u64),
    /// An INSERT into this table: a duplicate key means the target differs.
    Inserted(Arc<str>),
    /// The GTID rows: a duplicate key means a transaction was applied before.
    Gtids,
}

/// A statement in a batch: its check, and the source transaction it belongs to (an index into
/// the group's transactions; the number of them while the transaction is still open).
#[derive(Debug, Clone)]
struct Note {
    txn: usize,
    check: Check,
}

/// A source transaction that committed into the group.
#[derive(Debug)]
struct Committed {
    gtid: Option<Gtid>,
    timestamp: u32,
    rows: u64,
}

/// Statements not yet sent, and what each must be checked for.
#[derive(Debug)]
struct Pending {
    sql: Vec<u8>,
    notes: Vec<Note>,
    /// Text sent or batched since the group opened.
    written: usize,
}

impl Pending {
    /// Appends the statement `write` writes, of source transaction `txn`; false, appending
    /// nothing, when `write` writes none.
    fn push(&mut self, txn: usize, check: Check, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let before = self.sql.len();
        if before > 0 {
            self.sql.push(b';');
        }
        if !write(&mut self.sql) {
            self.sql.truncate(before);
            return false;
        }
        self.written += self.sql.len() - before;
        self.notes.push(Note { txn, check });
        true
    }
}

/// The open target transaction.
#[derive(Debug)]
pub(super) struct Group {
    pending: Pending,
    txns: Vec<Committed>,
    position: Option<SourcePosition>,
    opened: Instant,
    /// The last batch deletes old GTID rows.
    compacts: bool,
}

impl Group {
    fn open() -> Self {
        let mut pending = Pending {
            sql: Vec::with_capacity(SEND_BYTES + (SEND_BYTES >> 2)),
            notes: Vec::new(),
            written: 0,
        };
        pending.push(0, Check::Nothing, |sql| {
            sql.extend_from_slice(b"START TRANSACTION");
            true
        });
        Group {
            pending,
            txns: Vec::new(),
            position: None,
            opened: Instant::now(),
            compacts: false,
        }
    }

    /// Committed transactions with a GTID, each a row of `dtle.gtid_executed`.
    fn recorded(&self) -> u64 {
        self.txns.iter().filter(|t| t.gtid.is_some()).count() as u64
    }
}

/// A failed statement and what it was.
struct Failed {
    note: Note,
    error: ExecError,
}

impl<E: Executor> Applier<E> {
    /// The open group (the target transaction), opened if none is.
    pub(super) fn open_group(&mut self) -> &mut Group {
        self.group.get_or_insert_with(Group::open)
    }

    /// Appends a statement written by `write` to the open group's batch, and sends the batch
    /// once it is full.
    ///
    /// # Errors
    /// As [`Applier::send`].
    pub(super) async fn push_statement(
        &mut self,
        check: Check,
        write: impl FnOnce(&mut statements::Text<'_>),
    ) -> Result<(), TaskError> {
        let limit = SEND_BYTES.min(self.exec.max_text());
        let group = self.open_group();
        let txn = group.txns.len();
        group.pending.push(txn, check, |sql| {
            write(&mut statements::Text(sql));
            true
        });
        if group.pending.sql.len() >= limit {
            self.send().await?;
        }
        Ok(())
    }

    /// Runs a prepared statement in the open group, after what is batched before it.
    ///
    /// # Errors
    /// As [`Applier::send`].
    pub(super) async fn push_prepared(
        &mut self,
        check: Check,
        statement: statements::Prepared,
        context: &str,
    ) -> Result<(), TaskError> {
        self.open_group();
        self.send().await?;
        let txn = self.open_group().txns.len();
        let waiting = Instant::now();
        let result = self
            .exec
            .exec(statement.sql, statement.params, context)
            .await;
        self.stats.waited(Wait::Target, waiting.elapsed());
        match result {
            Ok(changed) => {
                self.checked(&check, changed);
                Ok(())
            }
            Err(error) => Err(self.failure(Failed {
                note: Note { txn, check },
                error,
            })),
        }
    }

    /// Sends the batch.
    ///
    /// # Errors
    /// The statement that failed, as the error to report.
    pub(super) async fn send(&mut self) -> Result<(), TaskError> {
        self.send_batch().await.map_err(|f| self.failure(f))
    }

    async fn send_batch(&mut self) -> Result<(), Failed> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        if group.pending.notes.is_empty() {
            return Ok(());
        }
        let notes = std::mem::take(&mut group.pending.notes);
        let waiting = Instant::now();
        let result = self.exec.pipeline(&group.pending.sql, notes.len()).await;
        self.stats.waited(Wait::Target, waiting.elapsed());
        group.pending.sql.clear();
        match result {
            Ok(changed) => {
                for (note, changed) in notes.iter().zip(changed) {
                    self.checked(&note.check, changed);
                }
                Ok(())
            }
            Err((at, error)) => Err(Failed {
                note: notes.get(at).cloned().unwrap_or(Note {
                    txn: 0,
                    check: Check::Nothing,
                }),
                error,
            }),
        }
    }

    /// A source transaction commits into the group at `position`; the group closes when it is
    /// due (or at once, while failed transactions are replayed one at a time).
    ///
    /// # Errors
    /// As [`Applier::close_group`].
    pub(super) async fn commit_into_group(
        &mut self,
        gtid: Option<Gtid>,
        timestamp: u32,
        rows: u64,
        position: SourcePosition,
    ) -> Result<(), TaskError> {
        let group = self.open_group();
        group.txns.push(Committed {
            gtid,
            timestamp,
            rows,
        });
        group.position = Some(position);
        let due = group.txns.len() >= MAX_GROUP_TXNS
            || group.pending.written >= MAX_GROUP_BYTES
            || group.opened.elapsed() >= MAX_GROUP_AGE;
        if self.alone > 0 {
            self.alone -= 1;
        } else if !due {
            return Ok(());
        }
        self.close_group().await
    }

    /// Commits the open group: its GTID rows, the position after its last transaction, and
    /// whatever rows of a transaction still open it holds (before a schema change).
    ///
    /// # Errors
    /// A failed statement; a duplicate GTID row of a group of one transaction is not an error:
    /// that transaction was applied before, and is rolled back.
    pub(super) async fn close_group(&mut self) -> Result<(), TaskError> {
        self.flush_fold().await?;
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        let txn = group.txns.len().saturating_sub(1);
        let job = &self.settings.job;
        let gtids = group.txns.iter().filter_map(|t| t.gtid.as_ref());
        group.pending.push(txn, Check::Gtids, |sql| {
            position::push_record_gtids(sql, job, gtids)
        });
        if let Some(position) = &group.position {
            group.pending.push(txn, Check::Nothing, |sql| {
                position::push_write(sql, job, Phase::Binlog.as_str(), None, position);
                true
            });
        }
        // A tenth of the retention, at most 1,000 rows at a time: each delete stays small and
        // rides in the group's last round trip.
        let due = self.since_compaction + group.recorded()
            >= (self.settings.gtid_retention / 10).clamp(1, 1000);
        let last_gtid = group.txns.iter().rev().find_map(|t| t.gtid);
        if let (Some(gtid), true) = (last_gtid, due) {
            let keep = self.settings.gtid_retention;
            group.compacts = group.pending.push(txn, Check::Nothing, |sql| {
                position::push_compact_gtids(sql, job, &gtid, keep)
            });
        }
        group.pending.push(txn, Check::Nothing, |sql| {
            sql.extend_from_slice(b"COMMIT");
            true
        });
        if let Err(failed) = self.send_batch().await {
            let alone = self.group.as_ref().is_some_and(|g| g.txns.len() == 1);
            if alone
                && matches!(failed.note.check, Check::Gtids)
                && failed.error.code == Some(codes::DUP_ENTRY)
            {
                let gtid = self.group.as_ref().and_then(|g| g.txns[0].gtid);
                tracing::warn!(gtid = ?gtid.map(|g| g.to_string()), "transaction already applied; rolled back");
                self.group = None;
                self.sql("ROLLBACK").await?;
                return Ok(());
            }
            return Err(self.failure(failed));
        }
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        self.committed(group).await
    }

    /// Bookkeeping after a group committed.
    async fn committed(&mut self, group: Group) -> Result<(), TaskError> {
        let Some(position) = &group.position else {
            return Ok(());
        };
        self.pending_ddl = None;
        self.executed = position.gtid_set.clone();
        self.finish_catch_up().await?;
        self.since_compaction = if group.compacts {
            0
        } else {
            self.since_compaction + group.recorded()
        };
        self.last_position_write = Instant::now();
        let rows: u64 = group.txns.iter().map(|t| t.rows).sum();
        self.stats
            .txns_applied
            .fetch_add(group.txns.len() as u64, Relaxed);
        self.stats.rows_applied.fetch_add(rows, Relaxed);
        if let Some(last) = group.txns.last() {
            self.stats.set_source_timestamp(last.timestamp);
        }
        self.stats.target_commits.fetch_add(1, Relaxed);
        // A job started from a GTID has no snapshot to say so.
        self.stats.set_stage("Applying the binlog");
        self.stats.set_position(position);
        Ok(())
    }

    /// The next `count` source transactions are each committed alone (after a failed group).
    pub(in crate::applier) fn replay_alone(&mut self, count: u64) {
        self.alone = count;
    }

    /// How many source transactions a failure just now would replay alone: those of the open
    /// group, and the one still open.
    pub(in crate::applier) fn group_size(&self) -> u64 {
        self.group.as_ref().map_or(0, |g| g.txns.len() as u64) + u64::from(self.txn.is_some())
    }

    fn checked(&mut self, check: &Check, changed: u64) {
        let missing = match check {
            Check::Changed(table, expected) => (changed < *expected).then_some(table),
            _ => None,
        };
        if let Some(table) = missing {
            if self.warned_missing.insert(table.to_string()) {
                tracing::warn!(
                    %table,
                    "an update or delete found no row on the target: the target differs from the source"
                );
            }
        }
    }

    /// The error to report for a failed statement; remembers whose transaction it was.
    fn failure(&mut self, failed: Failed) -> TaskError {
        let Failed { note, error } = failed;
        // The statement's own transaction; for a folded statement, which holds rows of many, the
        // open one or else the group's first (the replay one at a time then finds the culprit).
        let txns = self
            .group
            .as_ref()
            .map(|g| g.txns.as_slice())
            .unwrap_or_default();
        let owner = txns
            .get(note.txn)
            .map(|t| t.gtid)
            .or_else(|| self.txn.as_ref().map(|t| t.gtid))
            .or_else(|| txns.first().map(|t| t.gtid))
            .flatten();
        self.failed_gtid = owner;
        match note.check {
            Check::Inserted(table) if error.code == Some(codes::DUP_ENTRY) => TaskError::definite(
                format!("inserting into {table}"),
                DefiniteCause::Diverged(format!(
                    "{}: the target already has this row, so it no longer matches the source",
                    error.error
                )),
            ),
            _ => error.error,
        }
    }
}
