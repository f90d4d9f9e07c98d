//! The Dest task: applies the item stream to the target, each source transaction as one target
//! transaction together with its position.
//!
//! # Algorithm
//! The applier answers syncs with what the target holds ([`position::read`]) and then applies the
//! epoch's items in order: table definitions are remembered; snapshot chunks are written with the
//! table's progress, one target transaction per chunk, on several sessions; consecutive source
//! transactions are grouped into one target transaction holding their rows (consecutive inserts
//! into one table as multi-row statements, statements sent hundreds per round trip), their GTID
//! rows and the position after the last of them (see `apply::group`). A frame is acknowledged
//! once all its items are applied and, if no source transaction is open at its end, committed;
//! the acknowledgement opens the extractor's window.
//!
//! # Resume invariant
//! The target's position tables change only in the same transaction as the rows they account for,
//! so after any crash they describe exactly what the target holds. A transaction whose GTID is
//! already in the stored set is skipped; one that slips through anyway fails on the
//! `gtid_executed` primary key and is rolled back. A target error that may heal (lost connection,
//! deadlock, restart) rolls back, reconnects with backoff and asks the extractor to resync, which
//! replays from the committed position, the failed group's transactions one per target
//! transaction; `RetryTxLimit` failures of the same transaction in a row stop the task.
//!
//! This module runs the loop (syncs, frames, acknowledgements, retries); [`apply`] holds the
//! rules that turn items into target transactions, over the [`executor::Executor`] seam that
//! `target` implements on a real server; [`statements`] builds the SQL, [`position`] keeps the
//! position tables and [`catch_up`] decides what a table's copy already holds after a snapshot.

pub mod apply;
pub mod catch_up;
pub mod executor;
pub mod position;
pub mod statements;
mod target;

use crate::error::{DefiniteCause, TaskError};
use crate::retry::RetryPolicy;
use crate::stats::{TaskStats, Wait};
use crate::transport::receiver::{Incoming, ReceiveError, Receiver};
use apply::{Applier, Settings};
use executor::Executor;
use jobs::JobSpec;
use std::collections::HashMap;
use std::sync::Arc;
use target::MySqlTarget;
use tokio_util::sync::CancellationToken;

/// Runs the Dest task of `spec` until cancelled or a definite failure.
///
/// # Errors
/// The definite error that stopped it, or the transient one it gave up on.
pub async fn run(
    spec: &JobSpec,
    mut receiver: Receiver,
    stats: Arc<TaskStats>,
    retry: RetryPolicy,
    cancel: CancellationToken,
) -> Result<(), TaskError> {
    stats.set_stage("Connecting to the target");
    let mut target = connect(spec, &stats, &retry, &cancel, None).await?;
    stats.set_stage("Waiting for the extractor");
    // An extractor already streaming (to an applier that died) waits for acknowledgements that
    // will never come: tell it to sync with this one.
    receiver
        .request_resync("the applier (re)started")
        .await
        .map_err(|e| TaskError::transient("announcing the applier", e))?;
    let mut failures: HashMap<String, u64> = HashMap::new();
    loop {
        let waiting = std::time::Instant::now();
        let incoming = tokio::select! {
            _ = cancel.cancelled() => {
                target.rollback().await;
                return Ok(());
            }
            incoming = receiver.next() => incoming,
        };
        stats.waited(Wait::Peer, waiting.elapsed());
        let incoming = incoming.map_err(|e| receive_error("receiving from the extractor", e))?;
        match incoming {
            Incoming::Sync { request, reply_to } => {
                target.rollback().await;
                let stored = match target.read_position().await {
                    Ok(stored) => stored,
                    Err(err) if err.is_transient() => {
                        target = connect(spec, &stats, &retry, &cancel, Some(err)).await?;
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                receiver
                    .accept_sync(reply_to, request.epoch, stored)
                    .await
                    .map_err(|e| TaskError::transient("answering the extractor", e))?;
            }
            Incoming::Frame(header) => {
                let mut outcome = Ok(());
                loop {
                    let item = match receiver.next_item() {
                        Ok(Some(item)) => item,
                        Ok(None) => break,
                        Err(err) => return Err(receive_error("decoding the stream", err)),
                    };
                    if let Err(err) = target.apply(item).await {
                        outcome = Err(err);
                        break;
                    }
                }
                if outcome.is_ok() {
                    outcome = target.end_of_frame().await;
                }
                match outcome {
                    Ok(()) => {
                        receiver
                            .ack(header)
                            .await
                            .map_err(|e| TaskError::transient("acknowledging", e))?;
                    }
                    Err(err) if err.is_transient() => {
                        let key = target.current_gtid();
                        let count = failures.entry(key.clone()).or_default();
                        *count += 1;
                        if *count > spec.dest.apply.retry_tx_limit.max(1) {
                            return Err(TaskError::Transient(format!(
                                "{err} (transaction {key} failed {count} times; RetryTxLimit is {})",
                                spec.dest.apply.retry_tx_limit
                            )));
                        }
                        tracing::warn!(%err, "applying failed; resyncing from the committed position");
                        // The failed group's transactions are replayed one by one.
                        let alone = target.group_size();
                        target.rollback().await;
                        if !target.executor().is_alive().await {
                            target = connect(spec, &stats, &retry, &cancel, Some(err)).await?;
                        }
                        target.replay_alone(alone);
                        receiver
                            .request_resync(
                                "the target failed; replaying from the committed position",
                            )
                            .await
                            .map_err(|e| TaskError::transient("asking for a resync", e))?;
                    }
                    Err(err) => {
                        target.rollback().await;
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// A corrupt stream (or one of another version) is definite; a NATS failure may heal.
fn receive_error(context: &str, err: ReceiveError) -> TaskError {
    match err {
        ReceiveError::Codec(codec) => {
            TaskError::definite(context, DefiniteCause::CorruptStream(codec.to_string()))
        }
        ReceiveError::Closed | ReceiveError::Publish(_) => TaskError::transient(context, err),
    }
}

/// Connects to the target (again, after `cause`).
async fn connect(
    spec: &JobSpec,
    stats: &Arc<TaskStats>,
    retry: &RetryPolicy,
    cancel: &CancellationToken,
    cause: Option<TaskError>,
) -> Result<Applier<MySqlTarget>, TaskError> {
    let what = match cause {
        Some(cause) => {
            tracing::warn!(%cause, "reconnecting to the target");
            stats.set_stage("Reconnecting to the target");
            "reconnecting to the target"
        }
        None => "connecting to the target",
    };
    let exec = retry
        .run(what, cancel, || MySqlTarget::connect(spec))
        .await?;
    let settings = Settings {
        job: spec.name.clone(),
        foreign_key_checks: spec.dest.apply.foreign_key_checks,
        gtid_retention: spec.dest.apply.gtid_executed_retention,
    };
    Ok(Applier::new(exec, settings, stats.clone()).with_snapshot_writers(spec, stats.clone()))
}
