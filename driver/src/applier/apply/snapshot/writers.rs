//! Several target sessions writing a snapshot's chunks at once, committing them in stream order.
//!
//! # Why
//! Writing a chunk is mostly the target server's work on the session's own thread (rows into
//! index entries, row events into the binlog cache). With one session the snapshot is bound by
//! one server thread; with [`SESSIONS`] the server turns several chunks into rows at once.
//!
//! # Algorithm
//! The applier numbers each chunk in the order the stream brings it (1, 2, ...) and hands it to
//! the sessions in turn (round robin; each session has a queue of one). A session writes the
//! chunk's rows in its own transaction (multi-row REPLACEs), then waits for its turn, which comes
//! once chunk `n - 1` has committed; only then does it write the table's progress row and commit,
//! and pass the turn on. So statements run in parallel while commits happen one at a time, in
//! stream order.
//!
//! # What is committed when (why resume stays exact)
//! The committed chunks are always a prefix of the stream, each committed with its table's
//! progress, exactly as with a single session: after any failure the progress rows say, per
//! table, the last key whose rows are on the target, and no row after it is there. Progress rows
//! are only written by the session holding the turn, so two sessions never wait on each other's
//! locks in `dtle.snapshot_progress`; the rows themselves are disjoint key ranges of fresh tables.
//!
//! A failed session records its error, rolls back and stops the pool: queued chunks are dropped
//! and sessions waiting for their turn roll back. The applier gets the error at its next chunk
//! or at the snapshot's end and asks for a resync; [`Pool::abort`] (from the applier's rollback)
//! returns only once every session has committed or rolled back and closed, so the progress read
//! after it is final. A session never stops in the middle of a statement or of its commit.
//!
//! # Memory
//! Chunks queued or being written hold at most [`BUDGET_BYTES`] of row data between them (a
//! larger chunk takes the whole budget and is written alone).

use crate::applier::position;
use crate::applier::statements;
use crate::change::{ChunkProgress, TableDef, Value};
use crate::error::{classify_mysql, TaskError};
use crate::mysql;
use crate::stats::{RowCount, TaskStats};
use jobs::{ConnectionConfig, GtidSet};
use mysql_async::prelude::Queryable;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Target sessions writing chunks at once.
pub(super) const SESSIONS: usize = 3;
/// Row data (bytes, by [`Value::size_hint`]) queued or being written at once.
const BUDGET_BYTES: usize = 96 << 20;
/// The budget is counted in KiB (a semaphore's permits are a `u32`).
const BUDGET_KIB: u32 = (BUDGET_BYTES >> 10) as u32;

/// One chunk for a session: its rows cut into statements, and the progress to commit with them.
pub(super) struct Work {
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

/// A chunk numbered in stream order, with its share of the budget.
struct Numbered {
    seq: u64,
    work: Work,
    _budget: OwnedSemaphorePermit,
}

/// What the sessions share.
struct Shared {
    job: String,
    stats: Arc<TaskStats>,
    /// The number of the last chunk committed.
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
    queues: Vec<mpsc::Sender<Numbered>>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    budget: Arc<Semaphore>,
    /// The number given to the last chunk handed out.
    dispatched: u64,
    next: usize,
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
        let numbered = Numbered {
            seq: running.dispatched,
            work,
            _budget: budget,
        };
        let queue = &running.queues[running.next];
        running.next = (running.next + 1) % running.queues.len();
        let sent = tokio::select! {
            sent = queue.send(numbered) => sent.is_ok(),
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

    /// Stops every session: what is queued is dropped, what is waiting for its turn rolls back.
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
            let (queue, receiver) = mpsc::channel(1);
            queues.push(queue);
            tasks.push(tokio::spawn(session(conn, receiver, shared.clone())));
        }
        Ok(Running {
            queues,
            tasks,
            shared,
            budget: Arc::new(Semaphore::new(BUDGET_KIB as usize)),
            dispatched: 0,
            next: 0,
        })
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

/// A session set up as the applier's own: raw bytes, no foreign-key checks (a snapshot's tables
/// fill in any order), and the same SQL mode.
async fn connect(config: &ConnectionConfig) -> Result<mysql_async::Conn, TaskError> {
    let mut conn = mysql::connect(config, "target").await?;
    conn.query_drop(
        "SET NAMES binary, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
         SESSION foreign_key_checks = 0",
    )
    .await
    .map_err(|e| classify_mysql("setting up a snapshot writer session", &e))?;
    Ok(conn)
}

/// Why a chunk was not committed.
enum Stopped {
    /// The pool stopped (another session failed, or the applier abandoned the epoch).
    Aborted,
    Failed(TaskError),
}

async fn session(
    mut conn: mysql_async::Conn,
    mut queue: mpsc::Receiver<Numbered>,
    shared: Arc<Shared>,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => None,
            next = queue.recv() => next,
        };
        let Some(chunk) = next else { break };
        match write_chunk(&mut conn, chunk, &shared).await {
            Ok(()) => {}
            Err(stopped) => {
                let _ = conn.query_drop("ROLLBACK").await;
                if let Stopped::Failed(err) = stopped {
                    shared.fail(err);
                }
                break;
            }
        }
    }
    drop(queue);
    let _ = conn.disconnect().await;
}

/// Writes one chunk's rows, waits for its turn, then commits them with the table's progress.
async fn write_chunk(
    conn: &mut mysql_async::Conn,
    chunk: Numbered,
    shared: &Shared,
) -> Result<(), Stopped> {
    let Numbered { seq, work, _budget } = chunk;
    let Work {
        def,
        name,
        mut rows,
        statements: sizes,
        progress,
        copied_at,
        bytes: _,
    } = work;
    let failed =
        |context: &str, e: mysql_async::Error| Stopped::Failed(classify_mysql(context, &e));
    let context = format!("copying rows into {name}");
    let count = rows.len() as u64;
    conn.query_drop("START TRANSACTION")
        .await
        .map_err(|e| failed(&context, e))?;
    for size in sizes {
        if shared.stop.is_cancelled() {
            return Err(Stopped::Aborted);
        }
        let size = size.min(rows.len());
        let sql = statements::insert(&def, size, true);
        // Each statement's rows are moved into its parameters, so none is held twice.
        let params = statements::insert_params(rows.drain(..size));
        conn.exec_drop(sql, params)
            .await
            .map_err(|e| failed(&context, e))?;
    }
    let mut committed = shared.committed.subscribe();
    tokio::select! {
        turn = committed.wait_for(|&c| c + 1 >= seq) => {
            if turn.is_err() {
                return Err(Stopped::Aborted);
            }
        }
        _ = shared.stop.cancelled() => return Err(Stopped::Aborted),
    }
    position::write_progress(conn, &shared.job, &progress, &name, copied_at.as_ref())
        .await
        .map_err(|e| failed("recording snapshot progress", e))?;
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| failed(&context, e))?;
    shared.committed.send_replace(seq);
    shared.stats.rows_applied.fetch_add(count, Relaxed);
    shared.stats.snapshot_rows_done.fetch_add(count, Relaxed);
    shared.stats.count_rows(&name, RowCount::Insert, count);
    Ok(())
}
