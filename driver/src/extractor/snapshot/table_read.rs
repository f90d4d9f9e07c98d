//! Reading one table of a snapshot: keyset-paginated chunk queries, each chunk sent with the
//! table's progress (last key, rows so far), or one streaming pass for a table without a key.

use super::super::row_filter::RowFilter;
use super::super::schema::{ColumnKind, TableSchema};
use super::super::values::from_snapshot;
use super::super::{routing::Route, ExtractCtx, Stop};
use crate::change::{ChunkProgress, Item, Value};
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql::{params::to_param, quote};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use std::sync::atomic::Ordering::Relaxed;

/// One table being read: its definition's stream id, what is selected, and how far it has come.
pub(super) struct TableRead {
    def_id: u32,
    table: TableSchema,
    /// Index in the table's columns of each copied column.
    copied: Vec<usize>,
    select_list: Vec<String>,
    filter: Option<RowFilter>,
    name: String,
    last_key: Option<Vec<Value>>,
    rows_done: u64,
}

impl TableRead {
    /// Defines the table to the applier and prepares its reads.
    pub(super) async fn start(
        ctx: &mut ExtractCtx<'_>,
        table: &TableSchema,
        route: &Route,
        last_key: Option<Vec<Value>>,
        rows_done: u64,
    ) -> Result<Self, Stop> {
        let def_id = ctx.next_table_id();
        let def = table.table_def(def_id, route);
        ctx.announce(def_id);
        ctx.sender.send(&Item::Table(def), ctx.cancel).await?;
        let copied = table.copied_columns(route);
        let select_list: Vec<String> = table
            .columns
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Enum | ColumnKind::Set => format!("{} + 0", quote::ident(&c.name)),
                // UUID/INET6/INET4 print as text; their binary form is what the binlog carries.
                ColumnKind::FixedBinary(n) => {
                    format!("CAST({} AS BINARY({n}))", quote::ident(&c.name))
                }
                _ => quote::ident(&c.name),
            })
            .collect();
        // The Where filter is evaluated here, not by the server, exactly as the binlog phase
        // evaluates it: both phases agree on every row.
        let filter = RowFilter::for_table(route, table)?;
        Ok(Self {
            def_id,
            table: table.clone(),
            copied,
            select_list,
            filter,
            name: table.qualified(),
            last_key,
            rows_done,
        })
    }

    /// Whether rows are read by key, a chunk per query (else in one streaming pass).
    pub(super) fn keyed(&self) -> bool {
        !self.table.key.is_empty()
    }

    /// Reads and sends the next chunk (one query: `ChunkSize` rows after the last key, sent in
    /// pieces of at most `DumpEntryLimit` bytes; a keyless table in one pass). True when the
    /// table is finished.
    pub(super) async fn step(
        &mut self,
        conn: &mut mysql_async::Conn,
        ctx: &mut ExtractCtx<'_>,
        snapshot_id: u64,
    ) -> Result<bool, Stop> {
        let table = &self.table;
        let name = &self.name;
        let def_id = self.def_id;
        let from = quote::table(&table.schema, &table.name);
        let chunk_rows = ctx.spec.src.extract.chunk_size;
        let byte_limit = ctx.spec.src.extract.dump_entry_limit as usize;
        let keyed = self.keyed();
        let (sql, params) = if keyed {
            let order: Vec<String> = table
                .key
                .iter()
                .map(|&k| quote::ident(&table.columns[k].name))
                .collect();
            let (after, params) = match &self.last_key {
                Some(values) => keyset_condition(table, values),
                None => ("TRUE".to_owned(), Vec::new()),
            };
            (
                format!(
                    "SELECT {} FROM {from} WHERE {after} ORDER BY {} LIMIT {chunk_rows}",
                    self.select_list.join(", "),
                    order.join(", ")
                ),
                params,
            )
        } else {
            (
                format!("SELECT {} FROM {from}", self.select_list.join(", ")),
                Vec::new(),
            )
        };
        let mut result = conn
            .exec_iter(sql, mysql_async::Params::Positional(params))
            .await
            .map_err(|e| Stop::Failed(classify_mysql(format!("reading {name}"), &e)))?;
        let mut stream = result
            .stream::<mysql_async::Row>()
            .await
            .map_err(|e| Stop::Failed(classify_mysql(format!("reading {name}"), &e)))?;
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut bytes = 0usize;
        let mut read_this_query = 0u64;
        if let Some(stream) = stream.as_mut() {
            while let Some(row) = stream.next().await {
                let row =
                    row.map_err(|e| Stop::Failed(classify_mysql(format!("reading {name}"), &e)))?;
                let mut raw = row.unwrap();
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, column) in table.columns.iter().enumerate() {
                    let value = std::mem::replace(&mut raw[i], mysql_async::Value::NULL);
                    values.push(from_snapshot(column, value).map_err(|e| {
                        Stop::Failed(TaskError::definite(
                            format!("reading {name}"),
                            DefiniteCause::CorruptStream(e.to_string()),
                        ))
                    })?);
                }
                if keyed {
                    self.last_key = Some(table.key.iter().map(|&k| values[k].clone()).collect());
                }
                read_this_query += 1;
                if self.filter.as_ref().is_some_and(|f| !f.matches(&values)) {
                    continue;
                }
                let out: Vec<Value> = self.copied.iter().map(|&i| values[i].clone()).collect();
                bytes += out.iter().map(Value::size_hint).sum::<usize>();
                rows.push(out);
                // Bounded memory: a chunk also ends at DumpEntryLimit bytes, and a keyless
                // table (one pass) is sent every ChunkSize rows.
                if bytes >= byte_limit || (!keyed && rows.len() as u64 >= chunk_rows) {
                    self.rows_done += rows.len() as u64;
                    let chunk = Chunk {
                        table: def_id,
                        rows: std::mem::take(&mut rows),
                        last_key: self.last_key.clone(),
                        rows_done: self.rows_done,
                        table_done: false,
                    };
                    // The result set is still being read: the stream holds the connection,
                    // so sending waits for the window while the server's rows queue up.
                    chunk.send(ctx, name, snapshot_id).await?;
                    bytes = 0;
                }
            }
        }
        drop(stream);
        drop(result);
        let finished = !keyed || read_this_query < chunk_rows;
        self.rows_done += rows.len() as u64;
        Chunk {
            table: def_id,
            rows,
            last_key: self.last_key.clone(),
            rows_done: self.rows_done,
            table_done: finished,
        }
        .send(ctx, name, snapshot_id)
        .await?;
        if finished {
            tracing::info!(table = %name, rows = self.rows_done, "table copied");
        }
        Ok(finished)
    }
}

/// Rows of one table read so far, and how far the table has come with them.
struct Chunk {
    table: u32,
    rows: Vec<Vec<Value>>,
    last_key: Option<Vec<Value>>,
    rows_done: u64,
    table_done: bool,
}

impl Chunk {
    async fn send(
        self,
        ctx: &mut ExtractCtx<'_>,
        name: &str,
        snapshot_id: u64,
    ) -> Result<(), Stop> {
        let count = self.rows.len() as u64;
        ctx.sender
            .send(
                &Item::SnapshotChunk {
                    table: self.table,
                    rows: self.rows,
                    progress: ChunkProgress {
                        snapshot_id,
                        source_table: name.to_owned(),
                        last_key: self.last_key,
                        rows_done: self.rows_done,
                        table_done: self.table_done,
                    },
                },
                ctx.cancel,
            )
            .await?;
        ctx.stats.rows_read.fetch_add(count, Relaxed);
        ctx.stats.snapshot_rows_done.fetch_add(count, Relaxed);
        Ok(())
    }
}

/// `(k1 > ?) OR (k1 = ? AND k2 > ?) ...`: rows after `last` in key order, with each text key
/// compared in its column's own collation (the session sends bytes as binary).
fn keyset_condition(table: &TableSchema, last: &[Value]) -> (String, Vec<mysql_async::Value>) {
    let mut terms = Vec::new();
    let mut params = Vec::new();
    let placeholder = |i: usize| -> String {
        let column = &table.columns[table.key[i]];
        match &column.collation {
            Some((charset, collation)) => {
                format!("CONVERT(? USING {charset}) COLLATE {collation}")
            }
            None => "?".to_owned(),
        }
    };
    for i in 0..table.key.len() {
        let mut parts = Vec::new();
        for (j, value) in last.iter().enumerate().take(i) {
            parts.push(format!(
                "{} = {}",
                quote::ident(&table.columns[table.key[j]].name),
                placeholder(j)
            ));
            params.push(to_param(value));
        }
        parts.push(format!(
            "{} > {}",
            quote::ident(&table.columns[table.key[i]].name),
            placeholder(i)
        ));
        params.push(to_param(&last[i]));
        terms.push(format!("({})", parts.join(" AND ")));
    }
    (terms.join(" OR "), params)
}
