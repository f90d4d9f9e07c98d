//! Several target sessions writing a snapshot's chunks at once, each table on one session.
//!
//! # Why
//! Writing a chunk is mostly the target server's work on the session's own thread (rows into
//! index entries, row events into the binlog cache). With one session the snapshot is bound by
//! one server thread; with [`SESSIONS`] the server writes several tables at once. The extractor
//! reads several tables a chunk at a time in turn, so the stream interleaves their chunks.
//!
//! # Algorithm
//! All chunks of a table go to one session, the one given the table at its first chunk (the
//! session with the fewest tables); the table's last chunk frees its place. A session writes
//! each chunk in its own transaction: the rows (one `LOAD DATA LOCAL INFILE ... REPLACE`,
//! [`super::load_data`], or multi-row REPLACE statements where the server refuses local infiles
//! or a chunk's values cannot be written as text), then the table's progress row, then COMMIT.
//! Sessions never share a table, so they never wait for each other's row locks or a table's
//! AUTO_INCREMENT lock; a progress row is the last thing each transaction locks, so whatever
//! waits there is InnoDB's own and its deadlock detection sees it.
//!
//! # What is committed when (why resume stays exact)
//! A session takes its chunks in stream order, so for every table the committed chunks are a
//! prefix of that table's chunks, each committed with the table's progress: after any failure
//! the progress rows say, per table, the last key whose rows are on the target, and no row after
//! it is there, which is all the extractor needs to resume (it resumes each table on its own).
//! A table without a progress row has no committed row. The snapshot's end waits for every chunk
//! ([`Pool::drain`]) before the applier records the binlog phase.
//!
//! A failed session records its error, rolls back and stops the pool: queued chunks are dropped
//! and the other sessions stop before their next statement, rolling back. The applier gets the
//! error at its next chunk or at the snapshot's end and asks for a resync; [`Pool::abort`] (from
//! the applier's rollback) returns only once every session has committed or rolled back and
//! closed, so the progress read after it is final. A session never stops in the middle of a
//! statement or of its commit.
//!
//! # Memory
//! Chunks queued or being written hold at most [`BUDGET_BYTES`] of row data between them (a
//! larger chunk takes the whole budget and is written alone).

use super::load_data;
use crate::applier::position;
use crate::applier::statements;
use crate::change::{ChunkProgress, TableDef, Value};
use crate::error::{classify_mysql, server_code, TaskError};
use crate::mysql;
use crate::stats::{RowCount, TaskStats};
use bytes::Bytes;
use futures::StreamExt;
use jobs::{ConnectionConfig, GtidSet};
use mysql_async::prelude::Queryable;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Target sessions writing chunks at once.
const SESSIONS: usize = 4;
/// Server errors that refuse `LOAD DATA LOCAL INFILE` (MySQL 1148 and 3948, MariaDB 4166).
const LOCAL_INFILE_REFUSED: [u16; 3] = [1148, 3948, 4166];
/// Chunks waiting for each session (the budget bounds their bytes).
const QUEUE: usize = 4;
/// Row data (bytes, by [`Value::size_hint`]) queued or being written at once.
const BUDGET_BYTES: usize = 64 << 20;
/// The budget is counted in KiB (a semaphore's permits are a `u32`).
const BUDGET_KIB: u32 = (BUDGET_BYTES >> 10) as u32;

/// One chunk for a session: its rows cut into statements, and the progress to commit with them.
pub(super) struct Work {
    /// The stream's id of the table: all chunks of a table go to one session.
    pub table: u32,
    /// The written columns of the target table (its REPLACE's columns).
    pub def: Arc<TableDef>,
    /// `schema.table` on the target.
    pub name: String,
    pub rows: Vec<Vec<Value>>,
    /// Rows per statement, in order; they add up to `rows.len()`.
    pub statements: Vec<usize>,
    pub progress: ChunkProgress,
    pub copied_at: Option<GtidSet>,
    /// Row data bytes, for the budget.
    pub bytes: usize,
}

/// A chunk with its share of the budget.
struct Queued {
    work: Work,
    _budget: OwnedSemaphorePermit,
}

/// What the sessions share.
struct Shared {
    job: String,
    stats: Arc<TaskStats>,
    /// How many chunks have been committed.
    committed: watch::Sender<u64>,
    /// The first failure, until the applier takes it.
    failure: Mutex<Option<TaskError>>,
    /// Stops every session (a failure, or the applier abandons the epoch).
    stop: CancellationToken,
}

impl Shared {
    fn fail(&self, err: TaskError) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(err);
        }
        self.stop.cancel();
    }

    /// The recorded failure, or a stand-in when it was already taken.
    fn take_failure(&self) -> TaskError {
        self.failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or_else(|| TaskError::Transient("a snapshot writer session stopped".into()))
    }
}

/// The sessions of one epoch of the snapshot.
struct Running {
    queues: Vec<mpsc::Sender<Queued>>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    budget: Arc<Semaphore>,
    /// How many chunks have been handed out.
    dispatched: u64,
    /// The session of each table being written, and how many tables each session has.
    lanes: HashMap<u32, usize>,
    tables_per_session: Vec<usize>,
}

/// Writer sessions for the snapshot's chunks, opened at the first chunk of an epoch.
pub(in crate::applier) struct Pool {
    config: ConnectionConfig,
    job: String,
    stats: Arc<TaskStats>,
    running: Option<Running>,
}

impl Pool {
    pub(in crate::applier) fn new(
        config: ConnectionConfig,
        job: String,
        stats: Arc<TaskStats>,
    ) -> Self {
        Self {
            config,
            job,
            stats,
            running: None,
        }
    }

    /// Hands `work` to the next session; waits while the budget or that session's queue is full.
    ///
    /// # Errors
    /// A session's failure (then the pool has stopped), or failing to open the sessions.
    pub(super) async fn write(&mut self, work: Work) -> Result<(), TaskError> {
        if self.running.is_none() {
            self.running = Some(self.open().await?);
        }
        let Some(running) = self.running.as_mut() else {
            return Err(TaskError::Transient("snapshot writers not open".into()));
        };
        let shared = running.shared.clone();
        if shared.stop.is_cancelled() {
            return Err(shared.take_failure());
        }
        let kib = u32::try_from(work.bytes >> 10)
            .unwrap_or(u32::MAX)
            .clamp(1, BUDGET_KIB);
        let budget = tokio::select! {
            permit = running.budget.clone().acquire_many_owned(kib) => permit,
            _ = shared.stop.cancelled() => return Err(shared.take_failure()),
        };
        let Ok(budget) = budget else {
            return Err(shared.take_failure());
        };
        running.dispatched += 1;
        let queued = Queued {
            work,
            _budget: budget,
        };
        let lane = running.lane(queued.work.table, queued.work.progress.table_done);
        let queue = &running.queues[lane];
        let sent = tokio::select! {
            sent = queue.send(queued) => sent.is_ok(),
            _ = shared.stop.cancelled() => false,
        };
        if sent {
            Ok(())
        } else {
            Err(shared.take_failure())
        }
    }

    /// Waits until every chunk handed out has committed.
    ///
    /// # Errors
    /// A session's failure.
    pub(super) async fn drain(&mut self) -> Result<(), TaskError> {
        let Some(running) = self.running.as_ref() else {
            return Ok(());
        };
        let shared = running.shared.clone();
        let last = running.dispatched;
        let mut committed = shared.committed.subscribe();
        tokio::select! {
            done = committed.wait_for(|&c| c >= last) => {
                if done.is_err() {
                    return Err(shared.take_failure());
                }
            }
            _ = shared.stop.cancelled() => return Err(shared.take_failure()),
        }
        self.close().await;
        Ok(())
    }

    /// Stops every session: what is queued is dropped, a chunk being written rolls back.
    /// Returns once every session has committed or rolled back and closed.
    pub(in crate::applier) async fn abort(&mut self) {
        if let Some(running) = &self.running {
            running.shared.stop.cancel();
        }
        self.close().await;
    }

    /// Closes the queues and waits for the sessions to end.
    async fn close(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        drop(running.queues);
        for task in running.tasks {
            if let Err(err) = task.await {
                tracing::warn!(%err, "a snapshot writer session ended abnormally");
            }
        }
    }

    async fn open(&self) -> Result<Running, TaskError> {
        let shared = Arc::new(Shared {
            job: self.job.clone(),
            stats: self.stats.clone(),
            committed: watch::Sender::new(0),
            failure: Mutex::new(None),
            stop: CancellationToken::new(),
        });
        let mut queues = Vec::with_capacity(SESSIONS);
        let mut tasks = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS {
            let conn = connect(&self.config).await;
            let conn = match conn {
                Ok(conn) => conn,
                Err(err) => {
                    shared.stop.cancel();
                    drop(queues);
                    for task in tasks {
                        let _ = task.await;
                    }
                    return Err(err);
                }
            };
            let (queue, receiver) = mpsc::channel(QUEUE);
            queues.push(queue);
            tasks.push(tokio::spawn(session(conn, receiver, shared.clone())));
        }
        Ok(Running {
            queues,
            tasks,
            shared,
            budget: Arc::new(Semaphore::new(BUDGET_KIB as usize)),
            dispatched: 0,
            lanes: HashMap::new(),
            tables_per_session: vec![0; SESSIONS],
        })
    }
}

impl Running {
    /// The session that writes `table`'s chunks: the one it has, or else the one with the fewest
    /// tables. A table's last chunk frees its place.
    fn lane(&mut self, table: u32, last: bool) -> usize {
        let lane = match self.lanes.get(&table) {
            Some(&lane) => lane,
            None => {
                let lane = (0..self.tables_per_session.len())
                    .min_by_key(|&i| self.tables_per_session[i])
                    .unwrap_or(0);
                self.tables_per_session[lane] += 1;
                self.lanes.insert(table, lane);
                lane
            }
        };
        if last {
            self.lanes.remove(&table);
            self.tables_per_session[lane] = self.tables_per_session[lane].saturating_sub(1);
        }
        lane
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Sessions of a pool dropped without `abort` stop at their next step.
        if let Some(running) = &self.running {
            running.shared.stop.cancel();
        }
    }
}

/// A writer session: a connection, and whether its server takes `LOAD DATA LOCAL INFILE`.
struct Session {
    conn: mysql_async::Conn,
    load_data: bool,
}

/// A session set up as the applier's own: raw bytes, no foreign-key checks (a snapshot's tables
/// fill in any order), and the same SQL mode.
async fn connect(config: &ConnectionConfig) -> Result<Session, TaskError> {
    let context = "setting up a snapshot writer session";
    let mut conn = mysql::connect(config, "target").await?;
    conn.query_drop(
        "SET NAMES binary, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
         SESSION foreign_key_checks = 0",
    )
    .await
    .map_err(|e| classify_mysql(context, &e))?;
    let local_infile: Option<u8> = conn
        .query_first("SELECT @@GLOBAL.local_infile")
        .await
        .map_err(|e| classify_mysql(context, &e))?;
    Ok(Session {
        conn,
        load_data: local_infile == Some(1),
    })
}

/// Why a chunk was not committed.
enum Stopped {
    /// The pool stopped (another session failed, or the applier abandoned the epoch).
    Aborted,
    Failed(TaskError),
}

async fn session(mut session: Session, mut queue: mpsc::Receiver<Queued>, shared: Arc<Shared>) {
    loop {
        let next = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => None,
            next = queue.recv() => next,
        };
        let Some(chunk) = next else { break };
        match write_chunk(&mut session, chunk, &shared).await {
            Ok(()) => {}
            Err(stopped) => {
                let _ = session.conn.query_drop("ROLLBACK").await;
                if let Stopped::Failed(err) = stopped {
                    shared.fail(err);
                }
                break;
            }
        }
    }
    drop(queue);
    let _ = session.conn.disconnect().await;
}

/// Writes one chunk's rows and commits them with the table's progress.
async fn write_chunk(session: &mut Session, chunk: Queued, shared: &Shared) -> Result<(), Stopped> {
    let Queued { work, _budget } = chunk;
    let Work {
        def,
        name,
        mut rows,
        statements: sizes,
        progress,
        copied_at,
        bytes: _,
        table: _,
    } = work;
    let failed =
        |context: &str, e: mysql_async::Error| Stopped::Failed(classify_mysql(context, &e));
    let context = format!("copying rows into {name}");
    let count = rows.len() as u64;
    let conn = &mut session.conn;
    conn.query_drop("START TRANSACTION")
        .await
        .map_err(|e| failed(&context, e))?;
    let loaded = if session.load_data {
        load_data::encode(&def, &rows)
    } else {
        None
    };
    if let Some((sql, text)) = loaded {
        let text = Bytes::from(text);
        conn.set_infile_handler(async move {
            Ok(futures::stream::once(async move { Ok(text) }).boxed())
        });
        match conn.query_drop(sql).await {
            Ok(()) => rows = Vec::new(),
            // Refused (by the server, a proxy, the user's grants): nothing was written; this
            // session writes REPLACE statements from now on.
            Err(e) if server_code(&e).is_some_and(|c| LOCAL_INFILE_REFUSED.contains(&c)) => {
                tracing::warn!(error = %e, "LOAD DATA LOCAL INFILE refused; writing REPLACE statements");
                session.load_data = false;
            }
            Err(e) => return Err(failed(&context, e)),
        }
    }
    for size in sizes {
        if rows.is_empty() {
            break;
        }
        if shared.stop.is_cancelled() {
            return Err(Stopped::Aborted);
        }
        let size = size.min(rows.len());
        // Each statement's rows are moved into its parameters, so none is held twice.
        let mut statement = statements::Prepared::default();
        statements::insert_into(&mut statement, &def, rows.drain(..size), true);
        conn.exec_drop(statement.sql, statement.params)
            .await
            .map_err(|e| failed(&context, e))?;
    }
    if shared.stop.is_cancelled() {
        return Err(Stopped::Aborted);
    }
    position::write_progress(conn, &shared.job, &progress, &name, copied_at.as_ref())
        .await
        .map_err(|e| failed("recording snapshot progress", e))?;
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| failed(&context, e))?;
    shared.committed.send_modify(|c| *c += 1);
    shared.stats.rows_applied.fetch_add(count, Relaxed);
    shared.stats.snapshot_rows_done.fetch_add(count, Relaxed);
    shared.stats.count_rows(&name, RowCount::Insert, count);
    Ok(())
}
