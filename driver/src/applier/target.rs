//! The target side of the applier: one connection, the items of the stream applied to it in
//! order, each source transaction as one target transaction with its position (see the module
//! docs of [`super`] for the invariant).

use super::catch_up::CatchUp;
use super::{position, statements};
use crate::change::{Ddl, Gtid, Item, RowKind, SourcePosition, TableDef, Value};
use crate::error::{classify_mysql, codes, server_code, TaskError};
use crate::mysql::{self, quote};
use crate::stats::{RowCount, TaskStats};
use jobs::{GtidSet, JobSpec};
use mysql_async::prelude::Queryable;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors MySQL raises when a DDL statement has already been applied.
const ALREADY_APPLIED: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146];
/// Parameters per statement the protocol allows, less a margin.
const MAX_PARAMS: usize = 60_000;
/// Bytes of row data per multi-row statement.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// How often a heartbeat's position is written when nothing else is.
const POSITION_EVERY: Duration = Duration::from_secs(1);

/// The source transaction being applied.
struct OpenTxn {
    gtid: Option<Gtid>,
    timestamp: u32,
    /// Already applied: ignore its items.
    skip: bool,
    /// A target transaction is open.
    started: bool,
    rows: u64,
}

/// Consecutive inserts into one table, not yet written.
struct Batch {
    table: u32,
    rows: Vec<Vec<Value>>,
    bytes: usize,
}

/// The target connection and what the applier knows.
pub(super) struct Target {
    conn: mysql_async::Conn,
    job: String,
    foreign_key_checks: bool,
    stats: Arc<TaskStats>,
    tables: HashMap<u32, TableDef>,
    executed: Option<GtidSet>,
    pending_ddl: Option<String>,
    snapshot: Option<(u64, SourcePosition)>,
    txn: Option<OpenTxn>,
    batch: Option<Batch>,
    last_position_write: Instant,
    warned_missing: std::collections::HashSet<u32>,
    /// `gtid_executed` rows kept per source server.
    gtid_retention: u64,
    /// While the binlog catches up after a snapshot: what each table's copy already holds.
    catch_up: CatchUp,
    /// Transactions committed since the last compaction.
    since_compaction: u64,
}

impl Target {
    pub(super) async fn connect(spec: &JobSpec, stats: Arc<TaskStats>) -> Result<Self, TaskError> {
        let mut conn = mysql::connect(&spec.dest.connection, "target").await?;
        position::ensure_tables(&mut conn).await?;
        let setup = format!(
            "SET NAMES binary, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
             SESSION foreign_key_checks = {}",
            u8::from(spec.dest.apply.foreign_key_checks)
        );
        conn.query_drop(setup)
            .await
            .map_err(|e| classify_mysql("setting up the target session", &e))?;
        Ok(Self {
            conn,
            job: spec.name.clone(),
            foreign_key_checks: spec.dest.apply.foreign_key_checks,
            stats,
            tables: HashMap::new(),
            executed: None,
            pending_ddl: None,
            snapshot: None,
            txn: None,
            batch: None,
            last_position_write: Instant::now(),
            warned_missing: Default::default(),
            gtid_retention: spec.dest.apply.gtid_executed_retention,
            catch_up: CatchUp::default(),
            since_compaction: 0,
        })
    }

    pub(super) async fn is_alive(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }

    pub(super) fn current_gtid(&self) -> String {
        self.txn
            .as_ref()
            .and_then(|t| t.gtid)
            .map(|g| g.to_string())
            .unwrap_or_else(|| "(snapshot)".into())
    }

    pub(super) async fn rollback(&mut self) {
        self.batch = None;
        self.txn = None;
        // Also ends a snapshot chunk's transaction, which `txn` does not track.
        let _ = self.conn.query_drop("ROLLBACK").await;
    }

    pub(super) async fn read_position(
        &mut self,
    ) -> Result<crate::transport::protocol::ResumePoint, TaskError> {
        let stored = position::read(&mut self.conn, &self.job).await?;
        self.tables.clear();
        self.pending_ddl = stored.pending_ddl.clone();
        self.executed = match &stored.resume {
            crate::transport::protocol::ResumePoint::Binlog { position } => {
                position.gtid_set.clone()
            }
            _ => None,
        };
        self.stats.set_stage(match &stored.resume {
            crate::transport::protocol::ResumePoint::Fresh => "Starting",
            crate::transport::protocol::ResumePoint::Snapshot { .. } => "Copying the snapshot",
            crate::transport::protocol::ResumePoint::Binlog { .. } => "Applying the binlog",
        });
        Ok(stored.resume)
    }

    pub(super) async fn apply(&mut self, item: Item) -> Result<(), TaskError> {
        match item {
            Item::Table(def) => {
                self.flush_batch().await?;
                self.tables.insert(def.id, def);
            }
            Item::SnapshotBegin {
                snapshot_id,
                position,
                rows_estimated,
            } => {
                self.stats
                    .snapshot_rows_estimated
                    .store(rows_estimated, Relaxed);
                self.sql("SET SESSION foreign_key_checks = 0").await?;
                position::write(
                    &mut self.conn,
                    &self.job,
                    "snapshot",
                    Some(snapshot_id),
                    &position,
                )
                .await
                .map_err(|e| classify_mysql("recording the snapshot", &e))?;
                self.snapshot = Some((snapshot_id, position));
                self.stats.set_stage("Copying the snapshot");
            }
            Item::SnapshotChunk {
                table,
                rows,
                progress,
            } => {
                let def = self.table(table)?;
                let count = rows.len() as u64;
                self.sql("START TRANSACTION").await?;
                let mut start = 0;
                while start < rows.len() {
                    let per_row = def.columns.len().max(1);
                    let mut end = start;
                    let mut bytes = 0;
                    while end < rows.len()
                        && end - start < statements::MAX_BATCH_ROWS
                        && (end - start + 1) * per_row <= MAX_PARAMS
                        && bytes < MAX_BATCH_BYTES
                    {
                        bytes += rows[end].iter().map(Value::size_hint).sum::<usize>();
                        end += 1;
                    }
                    let sql = statements::insert(&def, end - start, true);
                    let params = statements::insert_params(rows[start..end].iter());
                    self.conn.exec_drop(sql, params).await.map_err(|e| {
                        classify_mysql(format!("copying rows into {}.{}", def.schema, def.name), &e)
                    })?;
                    start = end;
                }
                let copied_at = self.snapshot.as_ref().and_then(|(_, p)| p.gtid_set.clone());
                position::write_progress(
                    &mut self.conn,
                    &self.job,
                    &progress,
                    &def.qualified(),
                    copied_at.as_ref(),
                )
                .await
                .map_err(|e| classify_mysql("recording snapshot progress", &e))?;
                self.sql("COMMIT").await?;
                self.stats.rows_applied.fetch_add(count, Relaxed);
                self.stats.snapshot_rows_done.fetch_add(count, Relaxed);
                self.stats
                    .count_rows(&def.qualified(), RowCount::Insert, count);
            }
            Item::SnapshotEnd {
                snapshot_id,
                binlog_from,
            } => {
                if !matches!(&self.snapshot, Some((id, _)) if *id == snapshot_id) {
                    return Err(TaskError::Transient(
                        "snapshot end without its beginning in this epoch".into(),
                    ));
                }
                let position = binlog_from;
                // The progress rows stay until the binlog has passed every table's copy: they
                // say, per table, what the catch-up must skip.
                position::write(&mut self.conn, &self.job, "binlog", None, &position)
                    .await
                    .map_err(|e| classify_mysql("recording the end of the snapshot", &e))?;
                self.executed = position.gtid_set.clone();
                self.load_catch_up().await?;
                self.snapshot = None;
                let fk = format!(
                    "SET SESSION foreign_key_checks = {}",
                    u8::from(self.foreign_key_checks)
                );
                self.sql(&fk).await?;
                self.stats.set_stage("Applying the binlog");
                self.stats.set_position(&position);
                self.stats.snapshot_finished();
                tracing::info!(%position, "snapshot applied; following the binlog");
            }
            Item::Begin(meta) => {
                let skip = match (&meta.gtid, &self.executed) {
                    (Some(gtid), Some(set)) => gtid.is_in(set),
                    _ => false,
                };
                self.txn = Some(OpenTxn {
                    gtid: meta.gtid,
                    timestamp: meta.timestamp,
                    skip,
                    started: false,
                    rows: 0,
                });
            }
            Item::Row(change) => {
                let Some(txn) = self.txn.as_mut() else {
                    return Err(TaskError::Transient("a row outside a transaction".into()));
                };
                if txn.skip {
                    return Ok(());
                }
                let gtid = txn.gtid;
                let copied = self
                    .tables
                    .get(&change.table)
                    .is_some_and(|def| self.catch_up.holds(gtid.as_ref(), &def.qualified()));
                if copied {
                    return Ok(());
                }
                if let Some(txn) = self.txn.as_mut() {
                    txn.rows += 1;
                }
                self.start_txn().await?;
                if let Some(def) = self.tables.get(&change.table) {
                    let kind = match &change.kind {
                        RowKind::Insert(_) => RowCount::Insert,
                        RowKind::Update { .. } => RowCount::Update,
                        RowKind::Delete(_) => RowCount::Delete,
                    };
                    self.stats.count_rows(&def.qualified(), kind, 1);
                }
                match change.kind {
                    RowKind::Insert(row) => {
                        let same = self.batch.as_ref().is_some_and(|b| b.table == change.table);
                        if !same {
                            self.flush_batch().await?;
                        }
                        let size = row.iter().map(Value::size_hint).sum::<usize>();
                        let per_row = self.table(change.table)?.columns.len().max(1);
                        let batch = self.batch.get_or_insert(Batch {
                            table: change.table,
                            rows: Vec::new(),
                            bytes: 0,
                        });
                        batch.rows.push(row);
                        batch.bytes += size;
                        let full = batch.rows.len() >= statements::MAX_BATCH_ROWS
                            || (batch.rows.len() + 1) * per_row > MAX_PARAMS
                            || batch.bytes >= MAX_BATCH_BYTES;
                        if full {
                            self.flush_batch().await?;
                        }
                    }
                    RowKind::Update { before, after } => {
                        self.flush_batch().await?;
                        let def = self.table(change.table)?;
                        let (sql, params) = statements::update(&def, &before, &after);
                        self.exec_row(&def, change.table, sql, params).await?;
                    }
                    RowKind::Delete(before) => {
                        self.flush_batch().await?;
                        let def = self.table(change.table)?;
                        let (sql, params) = statements::delete(&def, &before);
                        self.exec_row(&def, change.table, sql, params).await?;
                    }
                }
            }
            Item::Ddl(ddl) => {
                self.flush_batch().await?;
                match self.txn.as_ref() {
                    None => self.run_ddl(&ddl, false).await?,
                    Some(txn) if txn.skip => {}
                    Some(txn)
                        if !ddl.tables.is_empty()
                            && ddl
                                .tables
                                .iter()
                                .all(|t| self.catch_up.holds(txn.gtid.as_ref(), t)) => {}
                    Some(txn) => {
                        let gtid = txn.gtid;
                        if txn.started {
                            // DDL commits implicitly; keep the rows before it in their own commit.
                            self.sql("COMMIT").await?;
                            if let Some(t) = self.txn.as_mut() {
                                t.started = false;
                            }
                        }
                        // During a catch-up the target may already hold a schema change (a table
                        // or database created by a later snapshot).
                        let maybe_done = self.catch_up.is_active()
                            || match (&gtid, &self.pending_ddl) {
                                (Some(g), Some(pending)) => &g.to_string() == pending,
                                _ => false,
                            };
                        if let Some(g) = &gtid {
                            position::mark_pending_ddl(&mut self.conn, &self.job, g)
                                .await
                                .map_err(|e| classify_mysql("recording a pending DDL", &e))?;
                        }
                        self.run_ddl(&ddl, maybe_done).await?;
                    }
                }
            }
            Item::Commit { position } => {
                self.flush_batch().await?;
                let Some(txn) = self.txn.take() else {
                    return Ok(());
                };
                if txn.skip {
                    return Ok(());
                }
                if !txn.started {
                    self.sql("START TRANSACTION").await?;
                }
                if let Some(gtid) = &txn.gtid {
                    if let Err(err) = position::record_gtid(&mut self.conn, &self.job, gtid).await {
                        if server_code(&err) == Some(codes::DUP_ENTRY) {
                            tracing::warn!(%gtid, "transaction already applied; rolled back");
                            self.sql("ROLLBACK").await?;
                            return Ok(());
                        }
                        return Err(classify_mysql("recording the transaction's GTID", &err));
                    }
                }
                position::write(&mut self.conn, &self.job, "binlog", None, &position)
                    .await
                    .map_err(|e| classify_mysql("recording the position", &e))?;
                self.sql("COMMIT").await?;
                self.pending_ddl = None;
                self.executed = position.gtid_set.clone();
                self.finish_catch_up().await?;
                if let Some(gtid) = &txn.gtid {
                    self.since_compaction += 1;
                    // Compact a tenth of the retention at a time, so deletes stay small.
                    if self.since_compaction >= (self.gtid_retention / 10).max(1) {
                        self.since_compaction = 0;
                        position::compact_gtids(
                            &mut self.conn,
                            &self.job,
                            gtid,
                            self.gtid_retention,
                        )
                        .await
                        .map_err(|e| classify_mysql("compacting dtle.gtid_executed", &e))?;
                    }
                }
                self.last_position_write = Instant::now();
                self.stats.txns_applied.fetch_add(1, Relaxed);
                self.stats.rows_applied.fetch_add(txn.rows, Relaxed);
                self.stats.set_source_timestamp(txn.timestamp);
                self.stats.set_position(&position);
            }
            Item::Heartbeat {
                position,
                timestamp,
            } => {
                self.stats.source_heartbeat(timestamp);
                if self.txn.is_none()
                    && self.snapshot.is_none()
                    && self.last_position_write.elapsed() >= POSITION_EVERY
                    && position.gtid_set.is_some()
                {
                    position::write(&mut self.conn, &self.job, "binlog", None, &position)
                        .await
                        .map_err(|e| classify_mysql("recording the position", &e))?;
                    self.executed = position.gtid_set.clone();
                    self.last_position_write = Instant::now();
                    self.stats.set_position(&position);
                }
            }
        }
        Ok(())
    }

    /// Reads each copied table's position from its snapshot progress.
    async fn load_catch_up(&mut self) -> Result<(), TaskError> {
        self.catch_up = CatchUp::new(
            position::read_progress(&mut self.conn, &self.job)
                .await?
                .into_iter()
                .filter_map(|(progress, target)| Some((target?, progress.copied_at?))),
        );
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
            position::clear_progress(&mut self.conn, &self.job)
                .await
                .map_err(|e| classify_mysql("finishing the catch-up after the snapshot", &e))?;
            self.catch_up = CatchUp::default();
            tracing::info!("the binlog has caught up with every table's copy");
        }
        Ok(())
    }

    fn table(&self, id: u32) -> Result<TableDef, TaskError> {
        self.tables.get(&id).cloned().ok_or_else(|| {
            TaskError::Transient(format!(
                "rows of table {id}, which was never defined in this epoch"
            ))
        })
    }

    async fn sql(&mut self, statement: &str) -> Result<(), TaskError> {
        self.conn
            .query_drop(statement)
            .await
            .map_err(|e| classify_mysql(format!("running {statement}"), &e))
    }

    async fn start_txn(&mut self) -> Result<(), TaskError> {
        if self.txn.as_ref().is_some_and(|t| !t.started) {
            self.sql("START TRANSACTION").await?;
            if let Some(t) = self.txn.as_mut() {
                t.started = true;
            }
        }
        Ok(())
    }

    async fn flush_batch(&mut self) -> Result<(), TaskError> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        if batch.rows.is_empty() {
            return Ok(());
        }
        let def = self.table(batch.table)?;
        let sql = statements::insert(&def, batch.rows.len(), false);
        let params = statements::insert_params(batch.rows.iter());
        self.conn.exec_drop(sql, params).await.map_err(|e| {
            if server_code(&e) == Some(codes::DUP_ENTRY) {
                TaskError::definite(
                    format!("inserting into {}.{}", def.schema, def.name),
                    format!(
                        "{e}: the target already has this row, so it no longer matches the source"
                    ),
                )
            } else {
                classify_mysql(format!("inserting into {}.{}", def.schema, def.name), &e)
            }
        })
    }

    async fn exec_row(
        &mut self,
        def: &TableDef,
        id: u32,
        sql: String,
        params: Vec<mysql_async::Value>,
    ) -> Result<(), TaskError> {
        self.conn.exec_drop(sql, params).await.map_err(|e| {
            classify_mysql(format!("changing a row of {}.{}", def.schema, def.name), &e)
        })?;
        if self.conn.affected_rows() == 0 && self.warned_missing.insert(id) {
            tracing::warn!(
                table = %def.qualified(),
                "an update or delete found no row on the target: the target differs from the source"
            );
        }
        Ok(())
    }

    async fn run_ddl(&mut self, ddl: &Ddl, maybe_done: bool) -> Result<(), TaskError> {
        self.sql("SET NAMES utf8mb4").await?;
        if let Some(schema) = &ddl.schema {
            if let Err(err) = self
                .conn
                .query_drop(format!("USE {}", quote::ident(schema)))
                .await
            {
                if server_code(&err) != Some(codes::BAD_DB) {
                    return Err(classify_mysql("choosing the DDL's schema", &err));
                }
            }
        }
        let result = self.conn.query_drop(&ddl.statement).await;
        self.sql("SET NAMES binary").await?;
        match result {
            Ok(()) => Ok(()),
            Err(err)
                if maybe_done
                    && server_code(&err).is_some_and(|c| ALREADY_APPLIED.contains(&c)) =>
            {
                tracing::info!(statement = %ddl.statement, "schema change was already applied before a restart");
                Ok(())
            }
            Err(err) => Err(classify_mysql(
                format!("applying {:?}", ddl.statement),
                &err,
            )),
        }
    }
}
