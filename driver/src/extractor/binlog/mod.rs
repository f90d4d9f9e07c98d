//! Following the source's binlog from a position, as a stream of transactions.
//!
//! # Algorithm
//! Connect as a replica (a server id derived from the job name, so two jobs never evict each
//! other), at a GTID position: MariaDB with `@slave_connect_state` and capability 4 so its own GTID
//! events arrive; MySQL with COM_BINLOG_DUMP_GTID and the executed set. Every event's CRC32 is
//! verified. A GTID event opens a transaction; row events of replicated tables are decoded against
//! their table map (which carries the full column metadata) and sent as `Row` items; DDL is routed
//! and rewritten ([`super::ddl`]); XID (or a `COMMIT` query, or the end of a standalone statement)
//! closes the transaction with a `Commit` item carrying the position just after it.
//!
//! # Memory
//! A row may be as large as the source's `max_allowed_packet` (1 GiB). Each rows event is decoded
//! into its changes and then dropped, before the changes are sent one by one and each dropped once
//! encoded ([`crate::transport::sender::Sender::send`]), so at most two copies of a large row
//! exist at any time (the event and its decoded row, then the decoded row and its encoding).
//! Table maps are kept per transaction only (module `table_maps`): the server's table ids change
//! at every reopen of a table, and a map keyed by id would otherwise grow with the stream.
//!
//! # Resume invariant
//! The position only ever advances at a transaction's end: `Commit` carries the GTID set including
//! that transaction, and the applier commits it atomically with the rows. A transaction that
//! touches nothing replicated sends no rows; its progress travels in a `Heartbeat` at most once a
//! second, so a restart may read a few filtered transactions again but never skips a replicated
//! one. An XA transaction's rows wait from its `XA PREPARE` to its `XA COMMIT`, and while one
//! waits every position sent says to restart from before its prepare (see `xa`). A stream that
//! ends is a transient error: the extractor re-syncs and starts again from
//! what the target holds. A start position the server no longer has (purged) is error 1236: a
//! definite error that says so.
//!
//! # Heartbeats and lag
//! `Heartbeat` items carry filtered progress and tell the applier when the reader is at the end
//! of the binlog, which is what makes lag mean `Seconds_Behind_Master`; [`pulse`] decides when.

pub mod mariadb;
pub mod pulse;
mod table_maps;
mod xa;

use super::ddl::{self, DdlAction};
use super::row_filter::RowFilter;
use super::schema::TableSchema;
use super::values::from_binlog;
use super::{ExtractCtx, Stop};
use crate::change::{Gtid, Item, RowChange, RowKind, SourcePosition, TableDef, TxnMeta, Value};
use crate::error::{classify_mysql, codes, server_code, DefiniteCause, TaskError};
use crate::mysql::{self, Flavor};
use crate::stats::{wall_secs, Wait};
use futures::StreamExt;
use jobs::GtidSet;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::{BinlogChecksumAlg, EventType};
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use pulse::Pulse;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use table_maps::TableMaps;
use xa::{Prepared, XaStatement};

/// A replicated table as the binlog currently describes it.
struct BinlogTable {
    map: TableMapEvent<'static>,
    schema: TableSchema,
    copied: Vec<usize>,
    filter: Option<RowFilter>,
    def_id: u32,
}

/// The transaction being read.
struct OpenTxn {
    gtid: Option<Gtid>,
    timestamp: u32,
    standalone: bool,
    begun: bool,
    rows: u64,
    /// The rows of an `XA PREPARE`, kept instead of sent.
    preparing: Option<Prepared>,
}

impl OpenTxn {
    fn new(gtid: Option<Gtid>, timestamp: u32, standalone: bool) -> Self {
        Self {
            gtid,
            timestamp,
            standalone,
            begun: false,
            rows: 0,
            preparing: None,
        }
    }
}

/// Reads the binlog from `start` until stopped.
///
/// # Errors
/// [`Stop`]: restart (transport), cancelled, or failed (definite or transient).
pub async fn follow(ctx: &mut ExtractCtx<'_>, mut start: SourcePosition) -> Result<(), Stop> {
    if let Some(from) = start.resume_from.take() {
        // An XA transaction was prepared before the committed position and is not resolved
        // yet: read from before its prepare (the applier skips what it already holds).
        start.gtid_set = Some(from);
    }
    let config = &ctx.spec.src.connection;
    let mut conn = mysql::connect(config, "source").await?;
    let (flavor, _) = mysql::flavor(&mut conn).await?;
    // The server's dump thread gives up on a reader that does not read for this long; the reader
    // pauses while the applier's window is full or a table is copied mid-stream.
    conn.query_drop(format!(
        "SET SESSION net_write_timeout = {}",
        ctx.spec.src.extract.net_write_timeout_s
    ))
    .await
    .map_err(|e| classify_mysql("preparing the binlog connection", &e))?;
    let server_id = replica_server_id(&ctx.spec.name);
    let request = match (&start.gtid_set, flavor) {
        (Some(GtidSet::MariaDb(_)) | None, Flavor::MariaDb) => {
            let state = start
                .gtid_set
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            for statement in [
                "SET @mariadb_slave_capability = 4".to_owned(),
                format!("SET @slave_connect_state = '{state}'"),
                "SET @slave_gtid_strict_mode = 1".to_owned(),
                "SET @slave_gtid_ignore_duplicates = 0".to_owned(),
                "SET @master_heartbeat_period = 1000000000".to_owned(),
            ] {
                conn.query_drop(&statement)
                    .await
                    .map_err(|e| classify_mysql("preparing the binlog connection", &e))?;
            }
            BinlogStreamRequest::new(server_id)
        }
        (Some(GtidSet::MySql(set)), Flavor::MySql) => {
            conn.query_drop("SET @master_heartbeat_period = 1000000000")
                .await
                .map_err(|e| classify_mysql("preparing the binlog connection", &e))?;
            let sids: Vec<mysql_async::Sid<'static>> = set
                .iter()
                .map(|(uuid, intervals)| {
                    mysql_async::Sid::new(uuid.0).with_intervals(
                        intervals
                            .iter()
                            .map(|&(s, e)| mysql_async::GnoInterval::new(s, e + 1))
                            .collect(),
                    )
                })
                .collect();
            BinlogStreamRequest::new(server_id)
                .with_gtid()
                .with_gtid_set(sids)
        }
        (None, Flavor::MySql) => {
            conn.query_drop("SET @master_heartbeat_period = 1000000000")
                .await
                .map_err(|e| classify_mysql("preparing the binlog connection", &e))?;
            return follow_stream(
                ctx,
                conn,
                BinlogStreamRequest::new(server_id)
                    .with_filename(start.file.as_bytes())
                    .with_pos(start.pos),
                start.clone(),
            )
            .await;
        }
        (Some(set), _) => {
            return Err(Stop::Failed(TaskError::because(DefiniteCause::BadConfig(
                format!(
                    "the start position {set} is a {} GTID set, but the source is {flavor:?}",
                    if matches!(set, GtidSet::MariaDb(_)) {
                        "MariaDB"
                    } else {
                        "MySQL"
                    }
                ),
            ))))
        }
    };
    follow_stream(ctx, conn, request, start).await
}

async fn follow_stream(
    ctx: &mut ExtractCtx<'_>,
    conn: mysql_async::Conn,
    request: BinlogStreamRequest<'_>,
    start: SourcePosition,
) -> Result<(), Stop> {
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| classify_mysql("starting the binlog stream", &e))?;
    ctx.stats.set_stage("Reading the binlog");
    let mut reader = Reader {
        position: start,
        tables: TableMaps::default(),
        defs: HashMap::new(),
        txn: None,
        pulse: Pulse::new(Instant::now()),
        seen_format_description: false,
        prepared: Vec::new(),
    };
    loop {
        let deadline = ctx.sender.flush_deadline();
        let idle = reader.pulse.idle_deadline(reader.txn.is_some());
        let waiting = Instant::now();
        let next = tokio::select! {
            // A silence counts only when no event is ready.
            biased;
            _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
            _ = sleep_until(deadline) => {
                ctx.stats.sends_by_timeout.fetch_add(1, Relaxed);
                ctx.sender.flush(ctx.cancel).await?;
                continue;
            }
            _ = ctx.sender.window_moved() => {
                ctx.stats.sends_by_size.fetch_add(1, Relaxed);
                ctx.sender.flush(ctx.cancel).await?;
                continue;
            }
            event = stream.next() => event,
            _ = sleep_until(idle) => {
                if let Some(timestamp) = reader.pulse.idle(wall_secs()) {
                    reader.heartbeat(ctx, timestamp).await?;
                }
                continue;
            }
        };
        ctx.stats.waited(Wait::Source, waiting.elapsed());
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(err)) => return Err(Stop::Failed(binlog_error(&err, &reader.position))),
            None => {
                return Err(Stop::Failed(TaskError::Transient(
                    "the source ended the binlog stream".into(),
                )))
            }
        };
        reader.handle(ctx, event).await?;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn binlog_error(err: &mysql_async::Error, position: &SourcePosition) -> TaskError {
    if server_code(err) == Some(codes::MASTER_FATAL_READING_BINLOG) {
        return TaskError::because(DefiniteCause::BinlogPurged(format!(
            "the source no longer has the binlog at {position} (purged?): {err}; \
             the job must start again from a snapshot (or a Gtid the source still has)"
        )));
    }
    classify_mysql("reading the binlog", err)
}

/// A replica server id for job `name`: stable, and distinct across jobs (FNV-1a, top bit set so
/// it does not collide with the small ids servers usually have).
pub fn replica_server_id(name: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    0x8000_0000 | (hash & 0x7fff_ffff)
}

struct Reader {
    position: SourcePosition,
    /// The current transaction's table maps; `None` for a table that is not replicated.
    tables: TableMaps<Option<BinlogTable>>,
    /// Stream table ids by target table, so an unchanged table keeps its id across table maps.
    defs: HashMap<(String, String), TableDef>,
    txn: Option<OpenTxn>,
    pulse: Pulse,
    seen_format_description: bool,
    /// XA transactions prepared and not yet resolved, oldest first.
    prepared: Vec<Prepared>,
}

impl Reader {
    /// Handles one event, taking it so that a large rows event is freed before its rows are sent.
    async fn handle(&mut self, ctx: &mut ExtractCtx<'_>, event: Event) -> Result<(), Stop> {
        let header = event.header();
        self.pulse
            .event(header.timestamp(), header.log_pos(), Instant::now());
        if let Some(stored) = event.checksum() {
            let computed = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
            if computed != u32::from_le_bytes(stored) {
                return Err(Stop::Failed(TaskError::Transient(format!(
                    "binlog event at {}:{} fails its CRC32 check",
                    self.position.file,
                    header.log_pos()
                ))));
            }
        }
        let raw_type = header.event_type_raw();
        let next_pos = u64::from(header.log_pos());
        match raw_type {
            mariadb::GTID_EVENT => {
                let gtid =
                    mariadb::parse_gtid(event.data(), header.server_id()).ok_or_else(|| {
                        Stop::Failed(TaskError::Transient(
                            "an undecodable MariaDB GTID event".into(),
                        ))
                    })?;
                let mut txn = OpenTxn::new(
                    Some(Gtid::MariaDb(gtid.gtid)),
                    header.timestamp(),
                    gtid.standalone,
                );
                if gtid.xa == Some(mariadb::XaPart::Prepare) {
                    txn.preparing = Some(self.prepare_here());
                }
                self.txn = Some(txn);
            }
            mariadb::XA_PREPARE_LOG_EVENT => self.xa_prepared().await?,
            mariadb::GTID_LIST_EVENT
            | mariadb::ANNOTATE_ROWS_EVENT
            | mariadb::BINLOG_CHECKPOINT_EVENT
            | 164 => {}
            165..=168 => {
                return Err(Stop::Failed(TaskError::definite(
                    "the source writes compressed binlog events, which dtle-rs cannot read",
                    DefiniteCause::InvalidSystemSetting {
                        setting: "log_bin_compress".into(),
                        expected: "OFF".into(),
                        actual: "ON".into(),
                    },
                )))
            }
            _ => self.handle_data(ctx, event).await?,
        }
        if next_pos > 0 && raw_type != EventType::ROTATE_EVENT as u8 {
            self.position.pos = next_pos;
        }
        if self.txn.as_ref().is_some_and(|t| t.standalone) && ends_standalone(raw_type) {
            self.commit(ctx).await?;
        }
        let due = self
            .pulse
            .after_event(self.txn.is_some(), Instant::now(), wall_secs());
        if let Some(timestamp) = due {
            self.heartbeat(ctx, timestamp).await?;
        }
        Ok(())
    }

    async fn handle_data(&mut self, ctx: &mut ExtractCtx<'_>, event: Event) -> Result<(), Stop> {
        let data = match event.read_data() {
            Ok(Some(data)) => data,
            Ok(None) => return Ok(()),
            Err(err) => {
                return Err(Stop::Failed(TaskError::Transient(format!(
                    "an undecodable binlog event at {}:{}: {err}",
                    self.position.file, self.position.pos
                ))))
            }
        };
        match data {
            EventData::RotateEvent(rotate) => {
                let mut name = rotate.name_raw().to_vec();
                if !self.seen_format_description && event.header().log_pos() == 0 {
                    // The artificial first rotate precedes the format description, so the
                    // decoder has not stripped its CRC32 from the name.
                    name.truncate(name.len().saturating_sub(4));
                }
                self.position.file = String::from_utf8_lossy(&name).into_owned();
                self.position.pos = rotate.position();
                self.tables.clear();
            }
            EventData::FormatDescriptionEvent(_) => self.seen_format_description = true,
            EventData::GtidEvent(gtid) => {
                self.txn = Some(OpenTxn::new(
                    Some(Gtid::MySql {
                        uuid: jobs::ServerUuid(gtid.sid()),
                        gno: gtid.gno(),
                    }),
                    event.header().timestamp(),
                    false,
                ));
            }
            EventData::QueryEvent(query) => {
                let sql = query.query();
                let trimmed = sql.trim();
                if trimmed.eq_ignore_ascii_case("BEGIN") {
                    if self.txn.is_none() {
                        self.txn = Some(OpenTxn::new(None, event.header().timestamp(), false));
                    }
                } else if let Some(xa) = XaStatement::parse(trimmed) {
                    self.xa_statement(ctx, xa, event.header().timestamp())
                        .await?;
                } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                    self.commit(ctx).await?;
                } else {
                    self.ddl(ctx, &query.schema(), trimmed, event.header().timestamp())
                        .await?;
                    if implicit_commit(trimmed) && self.txn.as_ref().is_some_and(|t| !t.standalone)
                    {
                        // MySQL DDL has no BEGIN/COMMIT: it is its own transaction.
                        self.commit(ctx).await?;
                    }
                }
            }
            EventData::XidEvent(_) => self.commit(ctx).await?,
            EventData::TableMapEvent(map) => self.table_map(ctx, map.into_owned())?,
            EventData::RowsEvent(rows) => {
                let changes = self.rows(ctx, &rows).await?;
                // The event holds a copy of every value: let it go before the rows are encoded.
                drop(rows);
                drop(event);
                self.send_rows(ctx, changes).await?;
            }
            EventData::HeartbeatEvent => self.pulse.source_heartbeat(),
            _ => {}
        }
        Ok(())
    }

    fn table_map(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        map: TableMapEvent<'static>,
    ) -> Result<(), Stop> {
        let id = map.table_id();
        let (database, table) = (map.database_name(), map.table_name());
        let route = ctx.routing.route(&database, &table);
        let Some(route) = route else {
            self.tables.insert(id, &database, &table, None);
            return Ok(());
        };
        let schema = TableSchema::from_table_map(&map)?;
        let copied = schema.copied_columns(&route);
        let filter = RowFilter::for_table(&route, &schema)?;
        let key = (route.schema.clone(), route.table.clone());
        let def = schema.table_def(0, &route);
        let def_id = match self.defs.get(&key) {
            Some(known)
                if TableDef {
                    id: 0,
                    ..known.clone()
                } == def =>
            {
                known.id
            }
            _ => {
                let def_id = ctx.next_table_id();
                self.defs.insert(key, TableDef { id: def_id, ..def });
                def_id
            }
        };
        let (database, table) = (database.into_owned(), table.into_owned());
        self.tables.insert(
            id,
            &database,
            &table,
            Some(BinlogTable {
                map,
                schema,
                copied,
                filter,
                def_id,
            }),
        );
        Ok(())
    }

    async fn begin(&mut self, ctx: &mut ExtractCtx<'_>, timestamp: u32) -> Result<(), Stop> {
        let txn = self
            .txn
            .get_or_insert_with(|| OpenTxn::new(None, timestamp, true));
        if !txn.begun {
            txn.begun = true;
            if txn.preparing.is_some() {
                // Sent at its XA COMMIT, as that transaction.
                return Ok(());
            }
            let meta = TxnMeta {
                gtid: txn.gtid,
                timestamp: txn.timestamp,
            };
            ctx.sender.send(&Item::Begin(meta), ctx.cancel).await?;
        }
        Ok(())
    }

    /// The changes of one rows event, decoded, filtered and projected (after sending the
    /// transaction's `Begin` and the table's definition if they are due); empty for a table that
    /// is not replicated.
    async fn rows(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        rows: &RowsEventData<'_>,
    ) -> Result<Vec<Item>, Stop> {
        let table_id = rows.table_id();
        let def_id = match self.tables.get(table_id) {
            Some(Some(table)) => table.def_id,
            Some(None) => return Ok(Vec::new()),
            // A rowless event only marks the end of a statement (servers write one with no table).
            None if rows.rows_data().is_empty() => return Ok(Vec::new()),
            None => {
                return Err(Stop::Failed(TaskError::Transient(format!(
                    "a rows event at {}:{} for table id {table_id}, which no table map of its \
                     transaction defined",
                    self.position.file, self.position.pos
                ))))
            }
        };
        let timestamp = self.txn.as_ref().map_or(0, |t| t.timestamp);
        self.begin(ctx, timestamp).await?;
        if ctx.announce(def_id) {
            if let Some(def) = self.defs.values().find(|d| d.id == def_id) {
                ctx.sender
                    .send(Item::Table(def.clone()), ctx.cancel)
                    .await?;
            }
        }
        let Some(Some(table)) = self.tables.get(table_id) else {
            return Ok(Vec::new());
        };
        let mut changes = Vec::new();
        for row in rows.rows(&table.map) {
            let (before, after) = row.map_err(|e| {
                Stop::Failed(TaskError::Transient(format!(
                    "an undecodable row of {}: {e}",
                    table.schema.qualified()
                )))
            })?;
            let before = before.map(|r| decode_row(table, r)).transpose()?;
            let after = after.map(|r| decode_row(table, r)).transpose()?;
            let kind = match (before, after) {
                (None, Some(after)) => RowKind::Insert(after),
                (Some(before), Some(after)) => RowKind::Update { before, after },
                (Some(before), None) => RowKind::Delete(before),
                (None, None) => continue,
            };
            let kind = match &table.filter {
                Some(filter) => match filter.apply(kind) {
                    Some(kind) => kind,
                    None => continue,
                },
                None => kind,
            };
            if super::sql_filter::skips_row(&ctx.spec.src.extract.sql_filter, &kind) {
                continue;
            }
            let kind = project(kind, &table.copied);
            changes.push(Item::Row(RowChange {
                table: def_id,
                kind,
            }));
        }
        Ok(changes)
    }

    /// Sends the changes of a rows event, each dropped once it is encoded.
    async fn send_rows(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        changes: Vec<Item>,
    ) -> Result<(), Stop> {
        let count = changes.len() as u64;
        match self.txn.as_mut().and_then(|t| t.preparing.as_mut()) {
            Some(prepared) => prepared.rows.extend(changes),
            None => {
                for item in changes {
                    ctx.sender.send(item, ctx.cancel).await?;
                }
            }
        }
        ctx.stats.rows_read.fetch_add(count, Relaxed);
        if let Some(txn) = self.txn.as_mut() {
            txn.rows += count;
        }
        Ok(())
    }

    async fn ddl(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        default_schema: &str,
        sql: &str,
        timestamp: u32,
    ) -> Result<(), Stop> {
        match ddl::route(sql, default_schema, ctx.routing) {
            DdlAction::Skip => Ok(()),
            DdlAction::Unsupported(why) => Err(Stop::Failed(TaskError::definite(
                "cannot replicate a schema change",
                DefiniteCause::UnsupportedSchemaChange(why),
            ))),
            DdlAction::Apply(kind, statement) => {
                if super::sql_filter::skips_ddl(
                    &ctx.spec.src.extract.sql_filter,
                    kind,
                    &statement.statement,
                ) {
                    return Ok(());
                }
                self.begin(ctx, timestamp).await?;
                ctx.sender.send(&Item::Ddl(statement), ctx.cancel).await?;
                // Table maps after DDL describe the new shape; forget the old ones.
                self.tables.clear();
                Ok(())
            }
            DdlAction::ApplyAndCopy(kind, statement, copy) => {
                if super::sql_filter::skips_ddl(&ctx.spec.src.extract.sql_filter, kind, sql) {
                    return Ok(());
                }
                self.begin(ctx, timestamp).await?;
                if let Some(statement) = statement {
                    ctx.sender.send(&Item::Ddl(statement), ctx.cancel).await?;
                }
                self.tables.clear();
                tracing::info!(tables = ?copy, "a schema change brought tables into the job; copying them");
                super::snapshot::copy_into_stream(ctx, &copy).await
            }
        }
    }

    /// The position passes the end of `txn` (a commit, or an XA prepare, whose rows are kept
    /// until its commit): its GTID joins the set, and a restart must read from before the oldest
    /// unresolved prepare.
    fn pass(&mut self, txn: &OpenTxn) {
        // Table ids are valid within their statement only; the next transaction maps its own.
        self.tables.clear();
        if let Some(gtid) = txn.gtid {
            match &mut self.position.gtid_set {
                Some(set) => gtid.add_to(set),
                None => self.position.gtid_set = Some(gtid.to_set()),
            }
        }
        self.position.resume_from = self.prepared.first().and_then(|p| p.before.clone());
    }

    async fn commit(&mut self, ctx: &mut ExtractCtx<'_>) -> Result<(), Stop> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        self.pass(&txn);
        if txn.begun {
            ctx.sender
                .send(
                    &Item::Commit {
                        position: self.position.clone(),
                    },
                    ctx.cancel,
                )
                .await?;
            ctx.stats.txns_read.fetch_add(1, Relaxed);
        }
        self.pulse
            .transaction(txn.timestamp, txn.begun, Instant::now());
        ctx.stats.set_position(&self.position);
        Ok(())
    }

    async fn heartbeat(&mut self, ctx: &mut ExtractCtx<'_>, timestamp: u32) -> Result<(), Stop> {
        self.pulse.sent(timestamp, Instant::now());
        ctx.sender
            .send(
                &Item::Heartbeat {
                    position: self.position.clone(),
                    timestamp,
                },
                ctx.cancel,
            )
            .await?;
        ctx.stats.set_position(&self.position);
        Ok(())
    }
}

/// Whether a statement commits implicitly (MySQL writes DDL without BEGIN/COMMIT).
fn implicit_commit(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default();
    [
        "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE",
    ]
    .iter()
    .any(|w| first.eq_ignore_ascii_case(w))
}

/// Whether a standalone transaction ends with this event (its one statement, or its rows'
/// last event; MariaDB flags the last rows event, but a Query or XID always ends it).
fn ends_standalone(raw_type: u8) -> bool {
    raw_type == EventType::QUERY_EVENT as u8 || raw_type == EventType::XID_EVENT as u8
}

/// The copied columns of a change's rows, in target order.
fn project(kind: RowKind, copied: &[usize]) -> RowKind {
    let pick = |row: Vec<Value>| -> Vec<Value> {
        let mut row: Vec<Option<Value>> = row.into_iter().map(Some).collect();
        copied
            .iter()
            .map(|&i| row.get_mut(i).and_then(Option::take).unwrap_or(Value::Null))
            .collect()
    };
    match kind {
        RowKind::Insert(after) => RowKind::Insert(pick(after)),
        RowKind::Update { before, after } => RowKind::Update {
            before: pick(before),
            after: pick(after),
        },
        RowKind::Delete(before) => RowKind::Delete(pick(before)),
    }
}

/// Every column of a binlog row, decoded.
fn decode_row(
    table: &BinlogTable,
    row: mysql_async::binlog::row::BinlogRow,
) -> Result<Vec<Value>, Stop> {
    let mut values: Vec<Option<mysql_async::binlog::value::BinlogValue<'static>>> =
        row.unwrap().into_iter().map(Some).collect();
    table
        .schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = values.get_mut(i).and_then(Option::take).ok_or_else(|| {
                Stop::Failed(TaskError::definite(
                    format!(
                        "a row of {} lacks column {}",
                        table.schema.qualified(),
                        column.name
                    ),
                    DefiniteCause::InvalidSystemSetting {
                        setting: "binlog_row_image".into(),
                        expected: "FULL".into(),
                        actual: "another value when this row was written".into(),
                    },
                ))
            })?;
            from_binlog(column, value).map_err(|e| {
                Stop::Failed(TaskError::definite(
                    format!("decoding a row of {}", table.schema.qualified()),
                    DefiniteCause::CorruptStream(e.to_string()),
                ))
            })
        })
        .collect()
}
