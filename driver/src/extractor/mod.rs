//! The Src task: reads the source and streams its changes to the applier. This module only wires
//! the parts together; the work is in [`snapshot`], [`binlog`], [`routing`], [`row_filter`],
//! [`ddl`], [`definition`], [`schema`] and [`values`].
//!
//! # The loop
//! Every pass starts with a sync ([`crate::transport::sender::Sender::sync`]): the applier says
//! what the target has committed, and the extractor continues from exactly there:
//! - nothing yet: the job's start (a snapshot, or its Gtid/GtidStart/AutoGtid/BinlogFile);
//! - a snapshot under way: the same snapshot's remaining chunks if this extractor still holds it
//!   open, otherwise a new snapshot;
//! - the binlog phase: the binlog after the committed position.
//!
//! A transport restart (lost frames, a NATS reconnect, an applier restart) or a transient error
//! ends the pass and a new sync begins it again; transient errors are retried with backoff, a
//! definite error ends the task.

pub mod binlog;
pub mod ddl;
pub mod definition;
pub mod preflight;
pub mod routing;
pub mod row_filter;
pub mod schema;
pub mod snapshot;
pub mod sql_filter;
pub mod values;

use crate::change::SourcePosition;
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql;
use crate::retry::RetryPolicy;
use crate::stats::TaskStats;
use crate::transport::protocol::{ResumePoint, TableProgress};
use crate::transport::sender::{SendError, Sender};
use jobs::{GtidSet, JobSpec, StartPosition};
use mysql_async::prelude::Queryable;
use routing::Routing;
use snapshot::SnapshotSession;
use std::collections::HashSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A pass that lasted this long resets the count of consecutive transient failures.
const HEALTHY_PASS: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a pass ended.
#[derive(Debug)]
pub enum Stop {
    /// Sync again and continue from the target's position.
    Restart(String),
    /// The task is being stopped.
    Cancelled,
    /// An error (definite or transient).
    Failed(TaskError),
}

impl From<SendError> for Stop {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Restart(why) => Stop::Restart(why),
            SendError::Cancelled => Stop::Cancelled,
        }
    }
}

impl From<TaskError> for Stop {
    fn from(err: TaskError) -> Self {
        Stop::Failed(err)
    }
}

/// What one pass of the extractor works with.
pub struct ExtractCtx<'a> {
    /// The job.
    pub spec: &'a JobSpec,
    /// Where items go.
    pub sender: &'a mut Sender,
    /// Fires when the task is stopped.
    pub cancel: &'a CancellationToken,
    /// Counters.
    pub stats: &'a TaskStats,
    /// Which tables, under which names.
    pub routing: &'a Routing,
    next_table: u32,
    announced: HashSet<u32>,
}

impl ExtractCtx<'_> {
    /// A fresh stream table id.
    pub fn next_table_id(&mut self) -> u32 {
        self.next_table += 1;
        self.next_table
    }

    /// Records that table `id` is being defined to the applier; false if it already was.
    pub fn announce(&mut self, id: u32) -> bool {
        self.announced.insert(id)
    }
}

/// Runs the Src task of `spec` until it is cancelled, finishes (`SkipIncrementalCopy`), or fails
/// definitely.
///
/// # Errors
/// The definite error that stopped it, or the transient one it gave up on.
pub async fn run(
    spec: &JobSpec,
    mut sender: Sender,
    stats: Arc<TaskStats>,
    retry: RetryPolicy,
    cancel: CancellationToken,
) -> Result<(), TaskError> {
    let routing = Routing::new(&spec.src.extract);
    stats.set_stage("Checking the source");
    retry
        .run("checking the source", &cancel, || {
            preflight::check_source(&spec.src.connection)
        })
        .await?;
    let mut session: Option<SnapshotSession> = None;
    let mut failures = 0u32;
    let mut backoff = retry.backoff();
    loop {
        stats.set_stage("Waiting for the applier");
        let reply = match sender.sync(session.as_ref().map(|s| s.id), &cancel).await {
            Ok(reply) => reply,
            Err(SendError::Cancelled) => return Ok(()),
            Err(SendError::Restart(why)) => {
                tracing::warn!(why, "sync failed");
                continue;
            }
        };
        let mut ctx = ExtractCtx {
            spec,
            sender: &mut sender,
            cancel: &cancel,
            stats: &stats,
            routing: &routing,
            next_table: 0,
            announced: HashSet::new(),
        };
        let began = std::time::Instant::now();
        let outcome = pass(&mut ctx, reply.resume, &mut session).await;
        if began.elapsed() >= HEALTHY_PASS {
            // A pass that ran this long was healthy: its failure is a new incident, not a retry.
            failures = 0;
            backoff.reset();
        }
        match outcome {
            Ok(()) => {
                stats.set_stage("Snapshot copied; no incremental copy (SkipIncrementalCopy)");
                return Ok(());
            }
            Err(Stop::Cancelled) => return Ok(()),
            Err(Stop::Restart(why)) => {
                tracing::info!(why, "restarting from the target's position");
                failures = 0;
                backoff.reset();
            }
            Err(Stop::Failed(err)) if err.is_transient() => {
                failures += 1;
                if failures >= retry.attempts.max(1) {
                    return Err(TaskError::Transient(format!(
                        "{err} (gave up after {failures} attempts)"
                    )));
                }
                tracing::warn!(%err, failures, "transient error; retrying");
                // A snapshot connection that failed is gone; a new snapshot is needed.
                session = None;
                if !backoff.wait(&cancel).await {
                    return Ok(());
                }
            }
            Err(Stop::Failed(err)) => return Err(err),
        }
    }
}

/// One pass: from the sync's answer to the end of the stream.
async fn pass(
    ctx: &mut ExtractCtx<'_>,
    resume: ResumePoint,
    session: &mut Option<SnapshotSession>,
) -> Result<(), Stop> {
    let start = match resume {
        ResumePoint::Binlog { position } => {
            *session = None;
            position
        }
        ResumePoint::Snapshot { tables, .. } => match snapshot(ctx, session, tables).await? {
            Some(position) => position,
            None => return Ok(()),
        },
        ResumePoint::Fresh => match &ctx.spec.src.extract.start {
            StartPosition::Snapshot => match snapshot(ctx, session, Vec::new()).await? {
                Some(position) => position,
                None => return Ok(()),
            },
            StartPosition::AfterExecuted(set) => SourcePosition {
                gtid_set: Some(set.clone()),
                ..Default::default()
            },
            StartPosition::FromGtid(set) => SourcePosition {
                gtid_set: Some(before(set)),
                ..Default::default()
            },
            StartPosition::Current => current_position(ctx).await?,
            StartPosition::BinlogFile { file, pos } => at_file(ctx, file, *pos).await?,
        },
    };
    binlog::follow(ctx, start).await
}

/// Copies what the target's snapshot progress (`tables`) says is missing, and returns where the
/// binlog starts, or `None` when the job stops after its snapshot (`SkipIncrementalCopy`).
///
/// Rows of the snapshot held open continue after their last key; tables an older snapshot copied
/// completely are kept; tables an older snapshot copied in part are copied again. The snapshot is
/// kept open across transport restarts, so a restart resumes this very copy (and a snapshot opened
/// before a resync that found nothing committed is reused).
async fn snapshot(
    ctx: &mut ExtractCtx<'_>,
    session: &mut Option<SnapshotSession>,
    tables: Vec<TableProgress>,
) -> Result<Option<SourcePosition>, Stop> {
    let open_id = session.as_ref().map(|s| s.id);
    let (progress, older): (Vec<_>, Vec<_>) = tables
        .into_iter()
        .partition(|t| Some(t.snapshot_id) == open_id);
    let (kept, stale): (Vec<_>, Vec<_>) = older
        .into_iter()
        .partition(|t| t.done && t.copied_at.is_some());
    let open = match session {
        Some(open) => open,
        None => session.insert(SnapshotSession::open(ctx).await?),
    };
    let position = open.copy(ctx, &progress, &stale, &kept).await?;
    *session = None;
    Ok((!ctx.spec.src.extract.skip_incremental_copy).then_some(position))
}

/// `GtidStart` names the first transaction to read; the connect state is the one before it.
fn before(set: &GtidSet) -> GtidSet {
    match set {
        GtidSet::MariaDb(map) => GtidSet::MariaDb(
            map.iter()
                .map(|(d, g)| {
                    (
                        *d,
                        jobs::MariaDbGtid {
                            seq: g.seq.saturating_sub(1),
                            ..*g
                        },
                    )
                })
                .collect(),
        ),
        GtidSet::MySql(map) => GtidSet::MySql(
            map.iter()
                .filter_map(|(uuid, intervals)| {
                    let first = intervals.first()?.0;
                    (first > 1).then(|| (*uuid, vec![(1, first - 1)]))
                })
                .collect(),
        ),
    }
}

/// `AutoGtid`: the source's position now.
async fn current_position(ctx: &ExtractCtx<'_>) -> Result<SourcePosition, Stop> {
    let mut conn = mysql::connect(&ctx.spec.src.connection, "source").await?;
    let (flavor, _) = mysql::flavor(&mut conn).await?;
    let query = match flavor {
        mysql::Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
        mysql::Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
    };
    let text: Option<String> = conn
        .query_first(query)
        .await
        .map_err(|e| classify_mysql("reading the source's position", &e))?;
    let text = text.unwrap_or_default();
    let gtid_set = if text.trim().is_empty() {
        match flavor {
            mysql::Flavor::MariaDb => Some(GtidSet::MariaDb(Default::default())),
            mysql::Flavor::MySql => None,
        }
    } else {
        Some(
            GtidSet::parse(&text)
                .map_err(|e| TaskError::transient("reading the source's position", e))?,
        )
    };
    Ok(SourcePosition {
        gtid_set,
        ..Default::default()
    })
}

/// `BinlogFile`/`BinlogPos`: on MariaDB turned into a GTID position the server can start from.
async fn at_file(ctx: &ExtractCtx<'_>, file: &str, pos: u64) -> Result<SourcePosition, Stop> {
    let mut conn = mysql::connect(&ctx.spec.src.connection, "source").await?;
    let (flavor, _) = mysql::flavor(&mut conn).await?;
    let gtid_set = match flavor {
        mysql::Flavor::MariaDb => {
            let text: Option<String> = conn
                .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
                .await
                .map_err(|e| classify_mysql("locating BinlogFile/BinlogPos", &e))?;
            match text {
                Some(t) if t.trim().is_empty() => Some(GtidSet::MariaDb(Default::default())),
                Some(t) => Some(
                    GtidSet::parse(&t)
                        .map_err(|e| TaskError::transient("locating BinlogFile/BinlogPos", e))?,
                ),
                None => {
                    return Err(Stop::Failed(TaskError::because(
                        DefiniteCause::BinlogPurged(format!(
                            "BinlogFile {file} / BinlogPos {pos} is not a position the source has"
                        )),
                    )))
                }
            }
        }
        mysql::Flavor::MySql => None,
    };
    Ok(SourcePosition {
        gtid_set,
        file: file.to_owned(),
        pos,
        resume_from: None,
    })
}
