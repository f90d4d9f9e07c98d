//! The consistent copy of every replicated table, and the exact binlog position it corresponds to.
//!
//! # Algorithm
//! 1. One connection opens `START TRANSACTION WITH CONSISTENT SNAPSHOT` at REPEATABLE READ. On
//!    MariaDB the snapshot's own binlog coordinates (`binlog_snapshot_file/position`, which the
//!    server captures atomically with the snapshot) are turned into a GTID position with
//!    `BINLOG_GTID_POS()`: no lock, no race. On MySQL `@@gtid_executed` is read before and after
//!    opening the snapshot and the open is retried until both agree.
//! 2. Schemas and tables are created on the target from `SHOW CREATE` (renamed; honouring
//!    `DropTableIfExists` and `SkipCreateDbTable`).
//! 3. Each table is read by keyset pagination on its key (`ChunkSize` rows, and at most
//!    `DumpEntryLimit` bytes, per chunk); a table without a key is read in one streaming pass.
//!    Up to [`TABLES_AT_ONCE`] keyed tables are read at once, one query of each in turn, so the
//!    stream interleaves their chunks and the applier writes them on several sessions at once;
//!    each table's chunks still come in key order. A `Where` filter is applied to the rows read
//!    ([`super::row_filter`]), as in the binlog.
//! 4. `SnapshotEnd`; the binlog then follows from the snapshot's position.
//!
//! # After the extractor restarts
//! The open snapshot is gone, but the tables it copied completely are not copied again: each
//! table's progress on the target records the position its rows reflect (`copied_at`). A new
//! snapshot copies the remaining tables, and the binlog starts at the meet of all those
//! positions; the applier skips, table by table, the transactions its copy already holds.
//!
//! # What is committed when
//! The applier commits each chunk together with the table's progress (last key, rows), each
//! table's chunks in order (tables apart from each other in any order). If the
//! transport restarts while this extractor still holds the snapshot open, the copy resumes after
//! the last committed key of each table. A new snapshot (the extractor restarted) cannot continue
//! an old one: tables the old one had touched are truncated on the target and copied again.
//! Rows are written with REPLACE, so a chunk applied twice leaves one copy.

use super::ddl::{self, DdlAction};
use super::definition;
use super::row_filter::RowFilter;
use super::schema::{ColumnKind, TableSchema};
use super::values::from_snapshot;
use super::{ExtractCtx, Stop};
use crate::change::{ChunkProgress, Ddl, Item, SourcePosition, Value};
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql::{self, params::to_param, quote, Flavor};
use crate::transport::protocol::TableProgress;
use futures::StreamExt;
use jobs::{GtidSet, NameMatch};
use mysql_async::prelude::Queryable;
use std::sync::atomic::Ordering::Relaxed;

/// Keyed tables read at once, a chunk of each in turn: the applier writes different tables'
/// chunks on different sessions at once (see `applier::apply::snapshot`).
const TABLES_AT_ONCE: usize = 4;

/// Times a snapshot is opened again because a schema change raced it, before giving up.
const RACE_ATTEMPTS: u32 = 10;

/// A source table to copy: its definition at the snapshot point, where it goes, and how many
/// rows the server estimates.
#[derive(Clone)]
struct ToCopy {
    table: TableSchema,
    route: super::routing::Route,
    estimate: u64,
    /// `SHOW CREATE TABLE` at the snapshot point.
    create: String,
}

/// An open consistent snapshot, kept across transport restarts.
pub struct SnapshotSession {
    /// Identifies it to the applier.
    pub id: u64,
    /// The source position it reflects.
    pub position: SourcePosition,
    conn: mysql_async::Conn,
    tables: Vec<ToCopy>,
}

impl SnapshotSession {
    /// Opens a snapshot of every replicated table.
    ///
    /// # Errors
    /// Classified MySQL errors; a table named in `ReplicateDoDb` that the source lacks is definite.
    pub async fn open(ctx: &ExtractCtx<'_>) -> Result<Self, Stop> {
        Self::open_tables(ctx, None).await
    }

    /// Opens a snapshot of `only` (source schema and table), or of every replicated table.
    ///
    /// Each table's definition is read before the snapshot opens and again once the snapshot's
    /// transaction holds the table's metadata lock (from then on no schema change can complete
    /// on it until the snapshot ends). If the two differ, a schema change raced the snapshot:
    /// it is opened again. So the definitions used are exactly those at the snapshot point.
    async fn open_tables(
        ctx: &ExtractCtx<'_>,
        only: Option<&[(String, String)]>,
    ) -> Result<Self, Stop> {
        for attempt in 1..=RACE_ATTEMPTS {
            let mut conn = mysql::connect(&ctx.spec.src.connection, "source").await?;
            conn.query_drop("SET NAMES binary")
                .await
                .map_err(|e| Stop::Failed(classify_mysql("opening the snapshot", &e)))?;
            let names = list_tables(ctx, &mut conn, only).await?;
            let before = definitions(&mut conn, &names).await?;
            let (id, position) = Self::start(ctx, &mut conn).await?;
            let mut tables = Vec::with_capacity(names.len());
            let mut raced = false;
            for ((schema, name, route, estimate), before) in names.into_iter().zip(before) {
                let qualified = quote::table(&schema, &name);
                // Held until the snapshot's transaction ends.
                let locked = conn
                    .query_drop(format!("SELECT 1 FROM {qualified} LIMIT 0"))
                    .await;
                let create = match locked {
                    Ok(()) => definition::show_create(&mut conn, &schema, &name).await?,
                    Err(_) => None,
                };
                let Some(create) = create.filter(|c| Some(c) == before.as_ref()) else {
                    raced = true;
                    break;
                };
                let table = TableSchema::load(&mut conn, &schema, &name).await?;
                tables.push(ToCopy {
                    table,
                    route,
                    estimate,
                    create,
                });
            }
            if !raced {
                repair_definitions(ctx, &mut tables).await?;
                tracing::info!(snapshot = id, %position, tables = tables.len(), "consistent snapshot opened");
                return Ok(Self {
                    id,
                    position,
                    conn,
                    tables,
                });
            }
            tracing::warn!(
                attempt,
                "a schema change raced the snapshot; opening it again"
            );
            let _ = conn.query_drop("ROLLBACK").await;
        }
        Err(Stop::Failed(TaskError::Transient(format!(
            "schema changes kept racing the snapshot ({RACE_ATTEMPTS} attempts)"
        ))))
    }

    /// Starts the consistent-snapshot transaction; returns its id and source position.
    async fn start(
        ctx: &ExtractCtx<'_>,
        conn: &mut mysql_async::Conn,
    ) -> Result<(u64, SourcePosition), Stop> {
        let (flavor, _) = mysql::flavor(conn).await?;
        let q = |e: mysql_async::Error| Stop::Failed(classify_mysql("opening the snapshot", &e));
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(q)?;
        conn.query_drop(format!(
            "SET SESSION net_write_timeout = {}",
            ctx.spec.src.extract.net_write_timeout_s
        ))
        .await
        .map_err(q)?;
        let position = match flavor {
            Flavor::MariaDb => {
                conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    .await
                    .map_err(q)?;
                let status: Vec<(String, String)> = conn
                    .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
                    .await
                    .map_err(q)?;
                let get = |name: &str| {
                    status
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                let file = get("binlog_snapshot_file").unwrap_or_default();
                let pos: u64 = get("binlog_snapshot_position")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(4);
                if file.is_empty() {
                    return Err(Stop::Failed(TaskError::definite(
                        "the source has no binlog",
                        DefiniteCause::InvalidSystemSetting {
                            setting: "log_bin".into(),
                            expected: "ON".into(),
                            actual: "OFF".into(),
                        },
                    )));
                }
                let gtid: Option<String> = conn
                    .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
                    .await
                    .map_err(q)?;
                SourcePosition {
                    gtid_set: gtid
                        .filter(|g| !g.is_empty())
                        .map(|g| GtidSet::parse(&g))
                        .transpose()
                        .map_err(|e| {
                            Stop::Failed(TaskError::transient(
                                "reading the snapshot's GTID position",
                                e,
                            ))
                        })?
                        .or(Some(GtidSet::MariaDb(Default::default()))),
                    file,
                    pos,
                    resume_from: None,
                }
            }
            Flavor::MySql => mysql_snapshot_position(conn).await?,
        };
        let id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Ok((id, position))
    }

    /// Copies every table not yet complete according to `progress`, which is the applier's
    /// record of *this* snapshot (empty for a fresh one). `stale` lists tables an older snapshot
    /// had partly copied (they are recreated and copied again); `kept` lists tables an older
    /// snapshot copied completely (they are not copied again). Returns where the binlog must
    /// start: the meet of this snapshot's position and every kept table's.
    ///
    /// # Errors
    /// [`Stop`].
    pub async fn copy(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        progress: &[TableProgress],
        stale: &[TableProgress],
        kept: &[TableProgress],
    ) -> Result<SourcePosition, Stop> {
        ctx.stats.set_stage("Copying the snapshot");
        let estimated: u64 = self.tables.iter().map(|t| t.estimate).sum();
        ctx.sender
            .send(
                &Item::SnapshotBegin {
                    snapshot_id: self.id,
                    position: self.position.clone(),
                    rows_estimated: estimated,
                },
                ctx.cancel,
            )
            .await?;
        ctx.stats.snapshot_rows_estimated.store(estimated, Relaxed);
        ctx.stats
            .snapshot_rows_done
            .store(progress.iter().map(|p| p.rows_done).sum(), Relaxed);
        if progress.is_empty() && !ctx.spec.src.extract.skip_create_db_table {
            self.create_schemas(ctx).await?;
        }
        let tables = self.tables.clone();
        let mut reading: Vec<TableRead> = Vec::new();
        for to_copy in &tables {
            let (table, route) = (&to_copy.table, &to_copy.route);
            let name = table.qualified();
            if kept.iter().any(|k| k.source_table == name) {
                tracing::info!(table = %name, "kept from an earlier snapshot");
                continue;
            }
            let done = progress.iter().find(|p| p.source_table == name);
            if done.is_some_and(|p| p.done) {
                continue;
            }
            let resume_key = done.and_then(|p| p.last_key.clone());
            let fresh_copy = resume_key.is_none();
            if fresh_copy {
                let touched = done.is_some() || stale.iter().any(|p| p.source_table == name);
                prepare_target(ctx, to_copy, touched).await?;
            }
            let rows_before = done.map_or(0, |p| p.rows_done);
            let mut read = TableRead::start(ctx, table, route, resume_key, rows_before).await?;
            if !read.keyed() {
                // One streaming pass holds the connection: read alone.
                while !read.step(&mut self.conn, ctx, self.id).await? {}
                continue;
            }
            reading.push(read);
            self.read_in_turn(ctx, &mut reading, TABLES_AT_ONCE).await?;
        }
        self.read_in_turn(ctx, &mut reading, 1).await?;
        let mut binlog_from = self.position.clone();
        for table in kept {
            if let (Some(from), Some(at)) = (&binlog_from.gtid_set, &table.copied_at) {
                binlog_from.gtid_set = Some(from.meet(at));
                // The meet is earlier than the snapshot: its file/offset no longer apply.
                binlog_from.file.clear();
                binlog_from.pos = 4;
            }
        }
        ctx.sender
            .send(
                &Item::SnapshotEnd {
                    snapshot_id: self.id,
                    binlog_from: binlog_from.clone(),
                },
                ctx.cancel,
            )
            .await?;
        ctx.sender.flush(ctx.cancel).await?;
        Ok(binlog_from)
    }

    async fn create_schemas(&mut self, ctx: &mut ExtractCtx<'_>) -> Result<(), Stop> {
        let schemas: Vec<String> = {
            let mut s: Vec<String> = self.tables.iter().map(|t| t.table.schema.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        for schema in schemas {
            let row: Option<(Vec<u8>, Vec<u8>)> = self
                .conn
                .query_first(format!("SHOW CREATE DATABASE {}", quote::ident(&schema)))
                .await
                .map_err(|e| {
                    Stop::Failed(classify_mysql(format!("reading schema {schema}"), &e))
                })?;
            let Some((_, create)) = row else { continue };
            let create = String::from_utf8_lossy(&create).into_owned();
            if let DdlAction::Apply(_, mut ddl) = ddl::route(&create, &schema, ctx.routing) {
                ddl.statement = add_if_not_exists(&ddl.statement, "DATABASE");
                ctx.sender.send(&Item::Ddl(ddl), ctx.cancel).await?;
            }
        }
        Ok(())
    }

    /// Reads a chunk of each table of `reading` in turn, until fewer than `at_once` are left
    /// unfinished.
    async fn read_in_turn(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        reading: &mut Vec<TableRead>,
        at_once: usize,
    ) -> Result<(), Stop> {
        while !reading.is_empty() && reading.len() >= at_once {
            let mut i = 0;
            while i < reading.len() {
                if reading[i].step(&mut self.conn, ctx, self.id).await? {
                    reading.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        Ok(())
    }

    async fn copy_table(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        table: &TableSchema,
        route: &super::routing::Route,
        last_key: Option<Vec<Value>>,
        rows_done: u64,
    ) -> Result<(), Stop> {
        let mut read = TableRead::start(ctx, table, route, last_key, rows_done).await?;
        while !read.step(&mut self.conn, ctx, self.id).await? {}
        Ok(())
    }
}

/// One table being read: its definition's stream id, what is selected, and how far it has come.
struct TableRead {
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
    async fn start(
        ctx: &mut ExtractCtx<'_>,
        table: &TableSchema,
        route: &super::routing::Route,
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
    fn keyed(&self) -> bool {
        !self.table.key.is_empty()
    }

    /// Reads and sends the next chunk (one query: `ChunkSize` rows after the last key, sent in
    /// pieces of at most `DumpEntryLimit` bytes; a keyless table in one pass). True when the
    /// table is finished.
    async fn step(
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

/// Creates the target table before its rows are copied, from the definition at the snapshot
/// point. A table an older copy had touched (`touched`: partly copied, or copied by an older
/// snapshot) is recreated, so its definition is the snapshot's too; where the job may not create
/// tables (`SkipCreateDbTable`, a column map) it is emptied instead.
async fn prepare_target(
    ctx: &mut ExtractCtx<'_>,
    to_copy: &ToCopy,
    touched: bool,
) -> Result<(), Stop> {
    let route = &to_copy.route;
    let target = quote::table(&route.schema, &route.table);
    let config = &ctx.spec.src.extract;
    let target_name = route.qualified();
    let send = |statement: String| {
        Item::Ddl(Ddl {
            schema: None,
            statement,
            tables: vec![target_name.clone()],
        })
    };
    if config.skip_create_db_table || route.column_map.is_some() {
        if touched {
            ctx.sender
                .send(&send(format!("TRUNCATE TABLE {target}")), ctx.cancel)
                .await?;
        }
        return Ok(());
    }
    if config.drop_table_if_exists || touched {
        ctx.sender
            .send(&send(format!("DROP TABLE IF EXISTS {target}")), ctx.cancel)
            .await?;
    }
    if let DdlAction::Apply(_, mut ddl) =
        ddl::route(&to_copy.create, &to_copy.table.schema, ctx.routing)
    {
        ddl.statement = add_if_not_exists(&ddl.statement, "TABLE");
        ctx.sender.send(&Item::Ddl(ddl), ctx.cancel).await?;
    }
    Ok(())
}

/// Copies `tables` (source schema and name) into the middle of the binlog stream, as they are
/// now: a schema change brought them into the job (a rename from a table the job does not
/// replicate, a `CREATE TABLE ... LIKE` one), so the target lacks them.
///
/// A consistent snapshot of just these tables is opened at position P; `TableCopy` tells the
/// applier the chunks that follow reflect P, so it skips these tables' binlog changes up to P
/// (its catch-up, as after a resumed snapshot). The copy is sent inside the source transaction
/// of the schema change, before its commit: if anything fails before that commit, the replay
/// reads the schema change again and copies again.
///
/// # Errors
/// [`Stop`].
pub async fn copy_into_stream(
    ctx: &mut ExtractCtx<'_>,
    tables: &[(String, String)],
) -> Result<(), Stop> {
    let mut session = SnapshotSession::open_tables(ctx, Some(tables)).await?;
    ctx.sender
        .send(
            &Item::TableCopy {
                snapshot_id: session.id,
                position: session.position.clone(),
                tables: session.tables.iter().map(|t| t.route.qualified()).collect(),
            },
            ctx.cancel,
        )
        .await?;
    let copies = session.tables.clone();
    for to_copy in &copies {
        prepare_target(ctx, to_copy, true).await?;
        session
            .copy_table(ctx, &to_copy.table, &to_copy.route, None, 0)
            .await?;
    }
    let _ = session.conn.query_drop("ROLLBACK").await;
    Ok(())
}

/// The definitions MariaDB prints wrong, repaired ([`definition::repair_members`]), on a
/// connection of their own.
async fn repair_definitions(ctx: &ExtractCtx<'_>, tables: &mut [ToCopy]) -> Result<(), Stop> {
    let mut probe = None;
    for to_copy in tables.iter_mut().filter(|t| t.create.contains('?')) {
        let conn = match probe.as_mut() {
            Some(conn) => conn,
            None => probe.insert(mysql::connect(&ctx.spec.src.connection, "source").await?),
        };
        let create = std::mem::take(&mut to_copy.create);
        to_copy.create =
            definition::repair_members(conn, &to_copy.table.schema, &to_copy.table.name, create)
                .await?;
    }
    if let Some(conn) = probe {
        conn.disconnect().await.ok();
    }
    Ok(())
}

/// Each table's `SHOW CREATE TABLE`, `None` for a table that is gone.
async fn definitions(
    conn: &mut mysql_async::Conn,
    tables: &[(String, String, super::routing::Route, u64)],
) -> Result<Vec<Option<String>>, Stop> {
    let mut out = Vec::with_capacity(tables.len());
    for (schema, name, _, _) in tables {
        out.push(definition::show_create(conn, schema, name).await?);
    }
    Ok(out)
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

fn add_if_not_exists(statement: &str, object: &str) -> String {
    let upper = statement.to_ascii_uppercase();
    let marker = format!("CREATE {object} ");
    match upper.find(&marker) {
        Some(at) if !upper[at..].starts_with(&format!("CREATE {object} IF NOT EXISTS")) => {
            let split = at + marker.len();
            format!(
                "{}IF NOT EXISTS {}",
                &statement[..split],
                &statement[split..]
            )
        }
        _ => statement.to_owned(),
    }
}

async fn mysql_snapshot_position(conn: &mut mysql_async::Conn) -> Result<SourcePosition, Stop> {
    let q = |e: mysql_async::Error| Stop::Failed(classify_mysql("opening the snapshot", &e));
    for _ in 0..20 {
        let before: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .await
            .map_err(q)?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(q)?;
        let after: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .await
            .map_err(q)?;
        if before == after {
            let gtid_set = after
                .filter(|g| !g.trim().is_empty())
                .map(|g| GtidSet::parse(&g))
                .transpose()
                .map_err(|e| Stop::Failed(TaskError::transient("reading gtid_executed", e)))?;
            return Ok(SourcePosition {
                gtid_set,
                file: String::new(),
                pos: 4,
                resume_from: None,
            });
        }
        conn.query_drop("ROLLBACK").await.map_err(q)?;
    }
    Err(Stop::Failed(TaskError::Transient(
        "the source's gtid_executed kept moving while the snapshot opened; retrying later".into(),
    )))
}

/// The replicated tables (or those of `only`), with their routes and row estimates; an exact
/// table name in `ReplicateDoDb` that the source lacks is a definite error.
async fn list_tables(
    ctx: &ExtractCtx<'_>,
    conn: &mut mysql_async::Conn,
    only: Option<&[(String, String)]>,
) -> Result<Vec<(String, String, super::routing::Route, u64)>, Stop> {
    let rows: Vec<(Vec<u8>, Vec<u8>, Option<u64>)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(|e| Stop::Failed(classify_mysql("listing the source's tables", &e)))?;
    let names: Vec<(String, String, u64)> = rows
        .into_iter()
        .map(|(s, t, r)| {
            (
                String::from_utf8_lossy(&s).into_owned(),
                String::from_utf8_lossy(&t).into_owned(),
                r.unwrap_or(0),
            )
        })
        .collect();
    if let Some(only) = only {
        return Ok(names
            .into_iter()
            .filter(|(s, t, _)| only.iter().any(|(os, ot)| os == s && ot == t))
            .filter_map(|(s, t, r)| Some((s.clone(), t.clone(), ctx.routing.route(&s, &t)?, r)))
            .collect());
    }
    for rule in &ctx.spec.src.extract.replicate_do_db {
        let NameMatch::Exact(schema) = &rule.schema else {
            continue;
        };
        for table in &rule.tables {
            let NameMatch::Exact(name) = &table.table else {
                continue;
            };
            if !names.iter().any(|(s, t, _)| s == schema && t == name) {
                return Err(Stop::Failed(TaskError::because(
                    DefiniteCause::MissingTable(format!(
                        "ReplicateDoDb names table {schema}.{name}, which the source does not have"
                    )),
                )));
            }
        }
        if rule.tables.is_empty() && !names.iter().any(|(s, _, _)| s == schema) {
            let exists: Option<String> = conn
                .exec_first(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (schema.as_bytes(),),
                )
                .await
                .map_err(|e| Stop::Failed(classify_mysql("listing the source's schemas", &e)))?;
            if exists.is_none() {
                return Err(Stop::Failed(TaskError::because(
                    DefiniteCause::MissingTable(format!(
                        "ReplicateDoDb names schema {schema}, which the source does not have"
                    )),
                )));
            }
        }
    }
    Ok(names
        .into_iter()
        .filter_map(|(s, t, r)| Some((s.clone(), t.clone(), ctx.routing.route(&s, &t)?, r)))
        .collect())
}
