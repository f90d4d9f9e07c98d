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
//!    `DumpEntryLimit` bytes, per chunk); a table without a key is read in one streaming pass
//!    (`table_read`). Up to `TABLES_AT_ONCE` keyed tables are read at once, one query of
//!    each in turn, so the stream interleaves their chunks and the applier writes them on
//!    several sessions at once; each table's chunks still come in key order. A `Where` filter is
//!    applied to the rows read ([`super::row_filter`]), as in the binlog.
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

mod table_read;

use super::ddl::{self, DdlAction};
use super::definition;
use super::schema::TableSchema;
use super::{ExtractCtx, Stop};
use crate::change::{Ddl, Item, SourcePosition, Value};
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql::{self, quote, Flavor};
use crate::transport::protocol::TableProgress;
use jobs::{GtidSet, NameMatch};
use mysql_async::prelude::Queryable;
use std::sync::atomic::Ordering::Relaxed;
use table_read::TableRead;

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
