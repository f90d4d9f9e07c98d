//! The snapshot's items and the copies of tables a schema change brought in: each chunk one
//! target transaction of REPLACEs (or a `LOAD DATA ... REPLACE`) together with its table's
//! progress (see [`super`]).
//!
//! A snapshot's chunks (between `SnapshotBegin` and `SnapshotEnd`) go to [`writers::Pool`] when
//! the applier has one: several target sessions write different tables at once, each table's
//! chunks in stream order on one session, so every table's committed chunks are a prefix of its
//! chunks, as with one session; `SnapshotEnd` waits for all of them before it records the
//! binlog position. Chunks of a copy inside a source transaction (`TableCopy`), and every chunk
//! of an applier without a pool (the unit tests' recording executor), are written on the
//! applier's own session, in order.

mod load_data;
pub(super) mod writers;

use super::{Applier, Executor, Phase, MAX_BATCH_BYTES, MAX_PARAMS};
use crate::applier::statements;
use crate::change::{ChunkProgress, SourcePosition, Value};
use crate::error::TaskError;
use crate::stats::{RowCount, TaskStats};
use jobs::JobSpec;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Rows per statement for `rows` of a table with `columns` written columns: at most
/// [`statements::MAX_BATCH_ROWS`] rows, [`MAX_PARAMS`] parameters and about [`MAX_BATCH_BYTES`]
/// of row data each.
fn statement_sizes(rows: &[Vec<Value>], columns: usize) -> Vec<usize> {
    let per_row = columns.max(1);
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < rows.len() {
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
        sizes.push(end - start);
        start = end;
    }
    sizes
}

impl<E: Executor> Applier<E> {
    /// Writes the snapshot's chunks with several sessions of `spec`'s target.
    pub(in crate::applier) fn with_snapshot_writers(
        mut self,
        spec: &JobSpec,
        stats: Arc<TaskStats>,
    ) -> Self {
        self.writers = Some(writers::Pool::new(
            spec.dest.connection.clone(),
            spec.name.clone(),
            stats,
        ));
        self
    }

    pub(super) async fn snapshot_begin(
        &mut self,
        snapshot_id: u64,
        position: SourcePosition,
        rows_estimated: u64,
    ) -> Result<(), TaskError> {
        self.stats
            .snapshot_rows_estimated
            .store(rows_estimated, Relaxed);
        self.sql("SET SESSION foreign_key_checks = 0").await?;
        self.exec
            .write_position(Phase::Snapshot, Some(snapshot_id), &position)
            .await?;
        self.snapshot = Some((snapshot_id, position));
        self.stats.set_stage("Copying the snapshot");
        Ok(())
    }

    pub(super) async fn snapshot_chunk(
        &mut self,
        table: u32,
        rows: Vec<Vec<Value>>,
        progress: ChunkProgress,
    ) -> Result<(), TaskError> {
        if self.txn.as_ref().is_some_and(|t| t.skip) {
            return Ok(());
        }
        // A copy inside a source transaction stands apart from its rows, as DDL does.
        self.close_group().await?;
        let resolved = self.resolve(table).await?;
        let name = resolved.def.qualified();
        let count = rows.len() as u64;
        let mut rows: Vec<Vec<Value>> = rows.into_iter().map(|r| resolved.row(r)).collect();
        let sizes = statement_sizes(&rows, resolved.def.columns.len());
        let copied_at = match (&self.snapshot, &self.copy) {
            (Some((_, position)), _) | (None, Some(position)) => position.gtid_set.clone(),
            (None, None) => None,
        };
        if let (Some(pool), Some(_), None) = (self.writers.as_mut(), &self.snapshot, &self.copy) {
            let def = Arc::new(resolved.def.clone());
            let bytes = rows
                .iter()
                .map(|r| r.iter().map(Value::size_hint).sum::<usize>())
                .sum();
            return pool
                .write(writers::Work {
                    table,
                    def,
                    name,
                    rows,
                    statements: sizes,
                    progress,
                    copied_at,
                    bytes,
                })
                .await;
        }
        self.sql("START TRANSACTION").await?;
        for size in sizes {
            // Each statement's rows are moved into its parameters, so none is held twice.
            let mut statement = statements::Prepared::default();
            statements::insert_into(&mut statement, &resolved.def, rows.drain(..size), true);
            self.exec
                .exec(
                    statement.sql,
                    statement.params,
                    &format!("copying rows into {name}"),
                )
                .await?;
        }
        self.exec
            .write_progress(&progress, &name, copied_at.as_ref())
            .await?;
        self.sql("COMMIT").await?;
        if let (Some(_), Some(copied_at), true) = (&self.copy, &copied_at, progress.table_done) {
            self.catch_up.set(name.clone(), copied_at.clone());
        }
        self.stats.rows_applied.fetch_add(count, Relaxed);
        self.stats.snapshot_rows_done.fetch_add(count, Relaxed);
        self.stats.count_rows(&name, RowCount::Insert, count);
        Ok(())
    }

    pub(super) async fn snapshot_end(
        &mut self,
        snapshot_id: u64,
        position: SourcePosition,
    ) -> Result<(), TaskError> {
        if !matches!(&self.snapshot, Some((id, _)) if *id == snapshot_id) {
            return Err(TaskError::Transient(
                "snapshot end without its beginning in this epoch".into(),
            ));
        }
        // Every chunk is committed before the position says the snapshot is complete.
        if let Some(pool) = self.writers.as_mut() {
            pool.drain().await?;
        }
        // The progress rows stay until the binlog has passed every table's copy: they say, per
        // table, what the catch-up must skip.
        self.exec
            .write_position(Phase::Binlog, None, &position)
            .await?;
        self.executed = position.gtid_set.clone();
        self.load_catch_up().await?;
        self.snapshot = None;
        let fk = format!(
            "SET SESSION foreign_key_checks = {}",
            u8::from(self.settings.foreign_key_checks)
        );
        self.sql(&fk).await?;
        self.stats.set_stage("Applying the binlog");
        self.stats.set_position(&position);
        self.stats.snapshot_finished();
        tracing::info!(%position, "snapshot applied; following the binlog");
        Ok(())
    }

    /// A copy of tables brought in by the open transaction's schema change begins.
    pub(super) async fn table_copy(
        &mut self,
        position: SourcePosition,
        tables: Vec<String>,
    ) -> Result<(), TaskError> {
        self.flush_batch().await?;
        if self.txn.as_ref().is_some_and(|t| t.skip) {
            return Ok(());
        }
        for table in &tables {
            self.catch_up.forget(table);
        }
        self.copy = Some(position);
        Ok(())
    }
}
