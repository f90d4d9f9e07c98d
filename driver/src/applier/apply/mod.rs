//! The applier's rules: the items of one epoch, in order, against an [`Executor`].
//!
//! # Source transactions
//! A state machine over `txn` (the source transaction being applied):
//! - `Begin` opens it. If its GTID is in the executed set the target already holds it: every item
//!   up to its `Commit` is ignored. A `Begin` while one is open means the stream lost a `Commit`:
//!   the open target transaction is rolled back and a resync is asked for (a transient error),
//!   never committed without its position.
//! - `Row`s start the target transaction on their first write. A row of a table whose snapshot
//!   copy already holds the transaction (the catch-up after a resumed snapshot, [`CatchUp`]) is
//!   skipped. Consecutive inserts into one table are batched into multi-row statements.
//! - `Ddl` commits the rows before it (a schema change commits implicitly), marks its GTID as
//!   pending, and runs; a pending GTID seen again after a crash accepts "already done" errors.
//! - `Commit` writes the GTID row and the position in the same target transaction as the rows and
//!   commits. A duplicate GTID row means the transaction was applied before: roll back, go on.
//!
//! # Snapshot
//! `SnapshotBegin` records the snapshot's position; each chunk is one target transaction with
//! the table's progress, written by one of several sessions (every chunk of a table on the same
//! one, see `snapshot::writers`); `SnapshotEnd` waits for them all, records the binlog position
//! and loads the per-table catch-up.
//!
//! # Tables brought in by a schema change
//! `TableCopy` inside a source transaction announces chunks copied at a later position P (a
//! rename from a table the job does not replicate): the tables' earlier copies are forgotten, the
//! chunks are written like a snapshot's, and each copied table joins the catch-up at P. All of it
//! is ignored when the transaction was applied before; it commits before the transaction's own
//! position, so a crash in between replays the copy.
//!
//! # Tables
//! A `Table` item defines a stream table id. Before its first write the definition is resolved
//! against the target's own: generated columns are never written, and a table whose stream
//! definition has no key (the binlog describes only primary keys) is matched by the target's
//! unique NOT NULL key when it has one. A schema change forgets every resolution.
//!
//! # Resume invariant
//! Nothing here holds state the target does not: at every sync (`Applier::read_position`) the
//! executed set, the pending schema change and the catch-up are read back from the position
//! tables, so a reconnect or restart continues exactly.

mod fold;
mod group;
mod snapshot;
mod tables;

use super::catch_up::CatchUp;
use super::executor::{Executor, Phase};
use super::statements;
use crate::change::{Ddl, Gtid, Item, RowChange, RowKind, SourcePosition, TxnMeta, Value};
use crate::error::{codes, TaskError};
use crate::mysql::literal;
use crate::stats::{RowCount, TaskStats};
use crate::transport::protocol::ResumePoint;
use group::Check;
use jobs::GtidSet;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tables::{resolve, Resolved, Table};

/// Parameters per statement the protocol allows, less a margin.
const MAX_PARAMS: usize = 60_000;
/// Bytes of row data per multi-row prepared statement.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Text of a statement beyond which its row is bound as parameters instead, as a share of the
/// target's text limit.
const TEXT_SHARE: usize = 2;
/// How often a heartbeat's position is written when nothing else is.
const POSITION_EVERY: Duration = Duration::from_secs(1);

/// The job settings the rules follow.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// The job's name, the key of its position rows.
    pub job: String,
    /// `ForeignKeyChecks` for the binlog phase (the snapshot always runs without).
    pub foreign_key_checks: bool,
    /// `gtid_executed` rows kept per source server.
    pub gtid_retention: u64,
}

/// The source transaction being applied.
#[derive(Debug)]
struct OpenTxn {
    gtid: Option<Gtid>,
    timestamp: u32,
    /// Already applied: ignore its items.
    skip: bool,
    rows: u64,
}

/// Consecutive inserts into one table, not yet written.
struct Batch {
    table: Arc<Resolved>,
    name: Arc<str>,
    rows: Vec<Vec<Value>>,
    /// The rows' text at most.
    bytes: usize,
}

/// The applier's state between items.
pub(super) struct Applier<E> {
    exec: E,
    settings: Settings,
    stats: Arc<TaskStats>,
    tables: HashMap<u32, Table>,
    executed: Option<GtidSet>,
    pending_ddl: Option<String>,
    snapshot: Option<(u64, SourcePosition)>,
    /// The position of a copy announced by `TableCopy` in the open source transaction.
    copy: Option<SourcePosition>,
    txn: Option<OpenTxn>,
    batch: Option<Batch>,
    /// The open target transaction (see [`group`]).
    group: Option<group::Group>,
    /// Source transactions still to commit alone, after a group failed.
    alone: u64,
    /// The source transaction of the statement that failed last.
    failed_gtid: Option<Gtid>,
    /// The open group's folded row changes.
    folded: fold::Fold,
    last_position_write: Instant,
    warned_missing: HashSet<String>,
    /// While the binlog catches up after a snapshot: what each table's copy already holds.
    catch_up: CatchUp,
    /// Transactions committed since the last compaction of `gtid_executed`.
    since_compaction: u64,
    /// Sessions writing the snapshot's chunks in parallel (see [`snapshot`]).
    writers: Option<snapshot::writers::Pool>,
}

impl<E: Executor> Applier<E> {
    pub(super) fn new(exec: E, settings: Settings, stats: Arc<TaskStats>) -> Self {
        Self {
            exec,
            settings,
            stats,
            tables: HashMap::new(),
            executed: None,
            pending_ddl: None,
            snapshot: None,
            copy: None,
            txn: None,
            batch: None,
            group: None,
            alone: 0,
            failed_gtid: None,
            folded: fold::Fold::default(),
            last_position_write: Instant::now(),
            warned_missing: HashSet::new(),
            catch_up: CatchUp::default(),
            since_compaction: 0,
            writers: None,
        }
    }

    /// The executor, for the loop's health checks.
    pub(super) fn executor(&mut self) -> &mut E {
        &mut self.exec
    }

    /// The GTID of the source transaction being applied, for messages.
    pub(super) fn current_gtid(&self) -> String {
        self.failed_gtid
            .or_else(|| self.txn.as_ref().and_then(|t| t.gtid))
            .map(|g| g.to_string())
            .unwrap_or_else(|| "(snapshot)".into())
    }

    /// Abandons whatever is open on the target.
    pub(super) async fn rollback(&mut self) {
        self.batch = None;
        self.group = None;
        self.drop_fold();
        self.txn = None;
        self.copy = None;
        if let Some(writers) = self.writers.as_mut() {
            writers.abort().await;
        }
        // Also ends a snapshot chunk's transaction, which `txn` does not track.
        let _ = self.exec.run("ROLLBACK").await;
    }

    /// Reads what the target holds (at a sync) and forgets the previous epoch's state.
    ///
    /// # Errors
    /// Classified target errors.
    pub(super) async fn read_position(&mut self) -> Result<ResumePoint, TaskError> {
        let stored = self.exec.read_position().await?;
        self.tables.clear();
        self.snapshot = None;
        self.copy = None;
        self.pending_ddl = stored.pending_ddl.clone();
        self.executed = match &stored.resume {
            ResumePoint::Binlog { position } => position.gtid_set.clone(),
            _ => None,
        };
        self.catch_up = CatchUp::default();
        if matches!(stored.resume, ResumePoint::Binlog { .. }) {
            // A catch-up after a resumed snapshot survives reconnects and restarts: its state
            // lives in the progress rows until the binlog has passed every copy.
            self.load_catch_up().await?;
        }
        self.stats.set_stage(match &stored.resume {
            ResumePoint::Fresh => "Starting",
            ResumePoint::Snapshot { .. } => "Copying the snapshot",
            ResumePoint::Binlog { .. } => "Applying the binlog",
        });
        Ok(stored.resume)
    }

    /// Applies one item.
    ///
    /// # Errors
    /// Definite errors stop the task; transient ones ask for a resync from the committed position.
    pub(super) async fn apply(&mut self, item: Item) -> Result<(), TaskError> {
        match item {
            Item::Table(def) => {
                self.flush_batch().await?;
                self.tables.insert(
                    def.id,
                    Table {
                        name: def.qualified().into(),
                        def,
                        resolved: None,
                    },
                );
                Ok(())
            }
            Item::SnapshotBegin {
                snapshot_id,
                position,
                rows_estimated,
            } => {
                self.close_group().await?;
                self.snapshot_begin(snapshot_id, position, rows_estimated)
                    .await
            }
            Item::SnapshotChunk {
                table,
                rows,
                progress,
            } => self.snapshot_chunk(table, rows, progress).await,
            Item::SnapshotEnd {
                snapshot_id,
                binlog_from,
            } => {
                self.close_group().await?;
                self.snapshot_end(snapshot_id, binlog_from).await
            }
            Item::Begin(meta) => self.begin(meta),
            Item::Row(change) => self.row(change).await,
            Item::Ddl(ddl) => self.ddl(ddl).await,
            Item::Commit { position } => self.commit(position).await,
            Item::Heartbeat {
                position,
                timestamp,
            } => self.heartbeat(position, timestamp).await,
            Item::TableCopy {
                snapshot_id: _,
                position,
                tables,
            } => self.table_copy(position, tables).await,
        }
    }

    fn begin(&mut self, meta: TxnMeta) -> Result<(), TaskError> {
        if let Some(open) = &self.txn {
            let open = open.gtid.map_or_else(|| "?".to_owned(), |g| g.to_string());
            return Err(TaskError::Transient(format!(
                "transaction {} began while {open} was still open (its end was lost): \
                 rolling back and replaying from the committed position",
                meta.gtid.map_or_else(|| "?".to_owned(), |g| g.to_string()),
            )));
        }
        // Being applied from now on: the lag is measured from its source time until it commits
        // (or something newer is handled).
        self.stats.set_source_timestamp(meta.timestamp);
        let skip = match (&meta.gtid, &self.executed) {
            (Some(gtid), Some(set)) => gtid.is_in(set),
            _ => false,
        };
        self.txn = Some(OpenTxn {
            gtid: meta.gtid,
            timestamp: meta.timestamp,
            skip,
            rows: 0,
        });
        Ok(())
    }

    async fn row(&mut self, change: RowChange) -> Result<(), TaskError> {
        let Some(txn) = self.txn.as_ref() else {
            return Err(TaskError::Transient("a row outside a transaction".into()));
        };
        if txn.skip {
            return Ok(());
        }
        let gtid = txn.gtid;
        let Some(table) = self.tables.get(&change.table) else {
            return Err(undefined(change.table));
        };
        let name = table.name.clone();
        if self.catch_up.holds(gtid.as_ref(), &name) {
            return Ok(());
        }
        let resolved = self.resolve(change.table).await?;
        if let Some(txn) = self.txn.as_mut() {
            txn.rows += 1;
        }
        let kind = match &change.kind {
            RowKind::Insert(_) => RowCount::Insert,
            RowKind::Update { .. } => RowCount::Update,
            RowKind::Delete(_) => RowCount::Delete,
        };
        self.stats.count_rows(&name, kind, 1);
        let max_text = self.exec.max_text() / TEXT_SHARE;
        // Cut down to the written columns, which the key's indexes refer to.
        let mut kind = match change.kind {
            RowKind::Insert(row) => RowKind::Insert(resolved.row(row)),
            RowKind::Update { before, after } => RowKind::Update {
                before: resolved.row(before),
                after: resolved.row(after),
            },
            RowKind::Delete(row) => RowKind::Delete(resolved.row(row)),
        };
        if resolved.fold {
            let image = match &kind {
                RowKind::Insert(row)
                | RowKind::Update { after: row, .. }
                | RowKind::Delete(row) => literal::row_max_len(row),
            };
            if image <= max_text {
                match self.fold(&resolved, &name, kind).await? {
                    None => return Ok(()),
                    Some(given_back) => kind = given_back,
                }
            }
            // Applied as it is, after the table's changes folded before it.
            self.flush_fold().await?;
        }
        match kind {
            RowKind::Insert(row) => {
                let size = literal::row_max_len(&row) + row.len() * 2 + 4;
                let same = self
                    .batch
                    .as_ref()
                    .is_some_and(|b| Arc::ptr_eq(&b.table, &resolved));
                let fits = self
                    .batch
                    .as_ref()
                    .is_none_or(|b| b.bytes + size <= max_text);
                if !same || !fits {
                    self.flush_batch().await?;
                }
                if size > max_text {
                    let mut statement = statements::Prepared::default();
                    statements::insert_into(&mut statement, &resolved.def, [row], false);
                    let context = format!("inserting into {name}");
                    return self
                        .push_prepared(Check::Inserted(name), statement, &context)
                        .await;
                }
                let batch = self.batch.get_or_insert(Batch {
                    table: resolved,
                    name,
                    rows: Vec::new(),
                    bytes: 0,
                });
                batch.rows.push(row);
                batch.bytes += size;
                if batch.rows.len() >= statements::MAX_BATCH_ROWS {
                    self.flush_batch().await?;
                }
            }
            RowKind::Update { before, after } => {
                self.flush_batch().await?;
                let size = literal::row_max_len(&before) + literal::row_max_len(&after);
                let check = Check::Changed(name.clone(), 1);
                if size > max_text {
                    let mut statement = statements::Prepared::default();
                    statements::update_into(&mut statement, &resolved.def, before, after);
                    let context = format!("changing a row of {name}");
                    return self.push_prepared(check, statement, &context).await;
                }
                self.push_statement(check, |text| {
                    statements::update_into(text, &resolved.def, before, after)
                })
                .await?;
            }
            RowKind::Delete(before) => {
                self.flush_batch().await?;
                let size = literal::row_max_len(&before);
                let check = Check::Changed(name.clone(), 1);
                if size > max_text {
                    let mut statement = statements::Prepared::default();
                    statements::delete_into(&mut statement, &resolved.def, before);
                    let context = format!("deleting a row of {name}");
                    return self.push_prepared(check, statement, &context).await;
                }
                self.push_statement(check, |text| {
                    statements::delete_into(text, &resolved.def, before)
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn ddl(&mut self, ddl: Ddl) -> Result<(), TaskError> {
        self.flush_batch().await?;
        let Some(txn) = self.txn.as_ref() else {
            // Outside a source transaction: the snapshot's own CREATE/TRUNCATE statements.
            return self.run_ddl(&ddl, false).await;
        };
        if txn.skip {
            return Ok(());
        }
        let gtid = txn.gtid;
        let copied = !ddl.tables.is_empty()
            && ddl
                .tables
                .iter()
                .all(|t| self.catch_up.holds(gtid.as_ref(), t));
        if copied {
            return Ok(());
        }
        // A schema change commits implicitly: what the group holds commits before it.
        self.close_group().await?;
        // During a catch-up the target may already hold a schema change (a table or database
        // created by a later snapshot); after a crash the pending one may have run.
        let maybe_done = self.catch_up.is_active()
            || match (&gtid, &self.pending_ddl) {
                (Some(g), Some(pending)) => &g.to_string() == pending,
                _ => false,
            };
        if let Some(g) = &gtid {
            self.exec.mark_pending_ddl(g).await?;
        }
        self.run_ddl(&ddl, maybe_done).await
    }

    async fn commit(&mut self, position: SourcePosition) -> Result<(), TaskError> {
        self.flush_batch().await?;
        self.copy = None;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        if txn.skip {
            return Ok(());
        }
        self.commit_into_group(txn.gtid, txn.timestamp, txn.rows, position)
            .await
    }

    /// The stream paused (a frame ended): a group with no transaction open commits now rather
    /// than wait for more.
    ///
    /// # Errors
    /// As [`Applier::close_group`].
    pub(super) async fn end_of_frame(&mut self) -> Result<(), TaskError> {
        if self.txn.is_none() {
            self.close_group().await?;
        }
        Ok(())
    }

    async fn heartbeat(
        &mut self,
        position: SourcePosition,
        timestamp: u32,
    ) -> Result<(), TaskError> {
        self.stats.source_heartbeat(timestamp);
        if self.txn.is_none() {
            self.close_group().await?;
        }
        // A replay from before an unresolved XA prepare passes positions already committed:
        // the stored position never moves back.
        let ahead = match (&position.gtid_set, &self.executed) {
            (Some(new), Some(executed)) => &executed.meet(new) == executed,
            (new, _) => new.is_some(),
        };
        if self.txn.is_none()
            && self.snapshot.is_none()
            && self.last_position_write.elapsed() >= POSITION_EVERY
            && ahead
        {
            self.exec
                .write_position(Phase::Binlog, None, &position)
                .await?;
            self.executed = position.gtid_set.clone();
            self.last_position_write = Instant::now();
            self.stats.set_position(&position);
        }
        Ok(())
    }

    /// How rows of stream table `id` are written, resolving it against the target once.
    async fn resolve(&mut self, id: u32) -> Result<Arc<Resolved>, TaskError> {
        let table = self.tables.get(&id).ok_or_else(|| undefined(id))?;
        if let Some(resolved) = &table.resolved {
            return Ok(resolved.clone());
        }
        let def = table.def.clone();
        let target = self.exec.describe(&def.schema, &def.name).await?;
        let resolved = Arc::new(resolve(def, target.unwrap_or_default()));
        if let Some(table) = self.tables.get_mut(&id) {
            table.resolved = Some(resolved.clone());
        }
        Ok(resolved)
    }

    /// Reads each copied table's position from its snapshot progress.
    async fn load_catch_up(&mut self) -> Result<(), TaskError> {
        self.catch_up = CatchUp::new(self.exec.read_copies().await?);
        self.finish_catch_up().await
    }

    /// Once the binlog has passed every table's copy, forgets the copies' positions.
    async fn finish_catch_up(&mut self) -> Result<(), TaskError> {
        let passed = self.catch_up.is_active()
            && self
                .executed
                .as_ref()
                .is_some_and(|executed| self.catch_up.is_passed_by(executed));
        if passed {
            self.exec.clear_progress().await?;
            self.catch_up = CatchUp::default();
            tracing::info!("the binlog has caught up with every table's copy");
        }
        Ok(())
    }

    async fn sql(&mut self, statement: &str) -> Result<(), TaskError> {
        Ok(self.exec.run(statement).await?)
    }

    /// Writes the batched inserts into the group.
    async fn flush_batch(&mut self) -> Result<(), TaskError> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        if batch.rows.is_empty() {
            return Ok(());
        }
        let Batch {
            table, name, rows, ..
        } = batch;
        self.push_statement(Check::Inserted(name), |text| {
            statements::insert_into(text, &table.def, rows, false)
        })
        .await
    }

    async fn run_ddl(&mut self, ddl: &Ddl, maybe_done: bool) -> Result<(), TaskError> {
        // The target's tables may change shape: resolve them again.
        for table in self.tables.values_mut() {
            table.resolved = None;
        }
        match self.exec.run_ddl(ddl).await {
            Ok(()) => Ok(()),
            Err(err)
                if maybe_done
                    && err
                        .code
                        .is_some_and(|c| codes::SCHEMA_CHANGE_ALREADY_APPLIED.contains(&c)) =>
            {
                tracing::info!(statement = %ddl.statement, "schema change was already applied before a restart");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}

fn undefined(id: u32) -> TaskError {
    TaskError::Transient(format!(
        "rows of table {id}, which was never defined in this epoch"
    ))
}

#[cfg(test)]
mod tests;
