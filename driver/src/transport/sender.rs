//! The extractor's end: batching items into frames, and the flow-control window.
//!
//! # Batching
//! Items are encoded into a pending buffer. At a transaction boundary (`Commit`, `Heartbeat`, a
//! snapshot chunk, `SnapshotEnd`) the buffer is sent once it holds `GroupMaxSize` bytes, or once
//! `GroupTimeout` has passed since its first byte; a buffer that reaches the frame size is sent at
//! once, boundary or not, so a transaction of any size streams out in frames.
//!
//! While the applier has a frame it has not acknowledged, a boundary holds the buffer instead:
//! the applier is busy, so sending now would only make more, smaller frames for it to work
//! through (and smaller groups of transactions per target commit, see `applier::apply::group`).
//! The held buffer goes out as soon as an acknowledgement arrives ([`Sender::window_moved`]), at
//! `GroupTimeout`, or when it fills a frame. So an applier that keeps up gets each transaction at
//! once, and one that falls behind gets frames of many transactions.
//!
//! The frame size is the NATS server's max payload (less the frame header), read at each sync.
//! Frames are cut from the pending buffer by [`ItemEncoder`] in linear time, and an item passed
//! by value is dropped once encoded, so a large row exists here as its encoding alone while its
//! frames go out.
//!
//! # Window
//! A frame is published only while fewer than `ReplChanBufferSize` frames are unacknowledged, so
//! the extractor runs at most that far ahead of the applier and memory stays bounded on both sides
//! and in NATS. A resync request from the applier, a NATS reconnect, or no acknowledgement for
//! [`STALL_TIMEOUT`] ends the epoch with [`SendError::Restart`]: the extractor then syncs again and
//! resumes from what the target committed.
//!
//! # What the applier has executed
//! Every item sent is entered in a [`Ledger`] with the frame it ends in; acknowledgements, as
//! they arrive, turn it into the Src's executed counts, executed position and lag. A sync's
//! answer also tells the executed position.

use super::codec::{encode_control, FrameHeader, ItemEncoder, FRAME_HEADER_LEN};
use super::connection::NatsConnection;
use super::ledger::Ledger;
use super::protocol::{Ack, ResumePoint, Resync, Subjects, SyncReply, SyncRequest};
use crate::change::Item;
use crate::retry::Backoff;
use crate::stats::{TaskStats, Wait};
use futures::StreamExt;
use std::borrow::Borrow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// With frames unacknowledged and no acknowledgement for this long, the epoch is restarted.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest chunk a frame may carry when the server accepts `max_payload` bytes per message
/// (never below 4 KiB, so a nonsensical limit cannot make frames empty).
fn chunk_limit(max_payload: usize) -> usize {
    max_payload.max(4096) - FRAME_HEADER_LEN - 64
}

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The epoch is over: sync again and resume from the target's position.
    #[error("transport restart: {0}")]
    Restart(String),
    /// The task is being stopped.
    #[error("cancelled")]
    Cancelled,
}

/// Settings of a [`Sender`].
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Frames that may be unacknowledged (`ReplChanBufferSize`).
    pub window: u64,
    /// Bytes that make a batch worth sending at a boundary (`GroupMaxSize`).
    pub group_max_size: usize,
    /// Longest a batch waits (`GroupTimeout`).
    pub group_timeout: Duration,
}

/// Publishes one job's item stream.
pub struct Sender {
    nats: NatsConnection,
    subjects: Subjects,
    config: SenderConfig,
    /// Largest chunk per frame: the server's max payload less the frame header, as the server
    /// said at the last sync.
    max_chunk: usize,
    epoch: u64,
    /// Last frame published in this epoch.
    seq: u64,
    /// Latest acknowledgement (any epoch; only this epoch's counts), fed by a listener task.
    acks: watch::Receiver<Ack>,
    /// Resync requests received so far and the last one's reason, fed by a listener task.
    resyncs: watch::Receiver<(u64, String)>,
    /// The resync count when the epoch began.
    resyncs_at_sync: u64,
    /// Connection count when the epoch began.
    connections_at_sync: u64,
    /// This sender's own view of the connection count, kept across waits (a fresh clone per
    /// wait would wake at once for a value it never marked seen, and spin).
    connection_changes: watch::Receiver<u64>,
    /// Encoded items not yet published.
    pending: ItemEncoder,
    pending_since: Option<Instant>,
    /// A batch due by size is held while the applier is busy.
    held: bool,
    stats: Arc<TaskStats>,
    /// What was sent and what the applier acknowledged; shared with the ack listener.
    ledger: Arc<Mutex<Ledger>>,
    /// Stops the listener tasks when the sender goes.
    _listeners: tokio_util::sync::DropGuard,
}

impl Sender {
    /// Subscribes to acknowledgements and resync requests of job `subjects`.
    ///
    /// # Errors
    /// When NATS refuses the subscriptions.
    pub async fn new(
        nats: NatsConnection,
        subjects: Subjects,
        config: SenderConfig,
        stats: Arc<TaskStats>,
    ) -> Result<Self, async_nats::SubscribeError> {
        let stop = CancellationToken::new();
        let (ack_tx, acks) = watch::channel(Ack { epoch: 0, seq: 0 });
        let mut ack_sub = nats.client.subscribe(subjects.ack.clone()).await?;
        let token = stop.clone();
        let ledger = Arc::new(Mutex::new(Ledger::new(stats.clone())));
        let acked = ledger.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = token.cancelled() => return,
                    m = ack_sub.next() => match m { Some(m) => m, None => return },
                };
                match super::codec::decode_control::<Ack>(&message.payload) {
                    Ok(ack) => {
                        if let Ok(mut ledger) = acked.lock() {
                            ledger.acknowledged(ack.epoch, ack.seq);
                        }
                        ack_tx.send_if_modified(|current| {
                            let newer = (ack.epoch, ack.seq) > (current.epoch, current.seq);
                            if newer {
                                *current = ack;
                            }
                            newer
                        });
                    }
                    Err(err) => tracing::warn!(%err, "ignoring an undecodable ack"),
                }
            }
        });
        let (resync_tx, resyncs) = watch::channel((0u64, String::new()));
        let mut resync_sub = nats.client.subscribe(subjects.resync.clone()).await?;
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = token.cancelled() => return,
                    m = resync_sub.next() => match m { Some(m) => m, None => return },
                };
                match super::codec::decode_control::<Resync>(&message.payload) {
                    Ok(resync) => resync_tx.send_modify(|(count, reason)| {
                        *count += 1;
                        *reason = resync.reason;
                    }),
                    Err(err) => tracing::warn!(%err, "ignoring an undecodable resync"),
                }
            }
        });
        let mut connection_changes = nats.connections.clone();
        let connections_at_sync = *connection_changes.borrow_and_update();
        let resyncs_at_sync = resyncs.borrow().0;
        Ok(Self {
            max_chunk: chunk_limit(nats.client.max_payload()),
            connections_at_sync,
            connection_changes,
            resyncs_at_sync,
            nats,
            subjects,
            config,
            epoch: 0,
            seq: 0,
            acks,
            resyncs,
            pending: ItemEncoder::default(),
            pending_since: None,
            held: false,
            stats,
            ledger,
            _listeners: stop.drop_guard(),
        })
    }

    /// Opens a new epoch: asks the applier where the target is, retrying until it answers.
    ///
    /// # Errors
    /// [`SendError::Cancelled`] when `cancel` fires first.
    pub async fn sync(
        &mut self,
        open_snapshot: Option<u64>,
        cancel: &CancellationToken,
    ) -> Result<SyncReply, SendError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            // Epochs grow across restarts: the applier treats older ones as stale.
            let epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                .max(self.epoch + 1);
            let request = SyncRequest {
                epoch,
                open_snapshot,
            };
            let payload = encode_control(&request)
                .map_err(|e| SendError::Restart(format!("encoding a sync request: {e}")))?;
            let connections = *self.nats.connections.borrow();
            let resyncs_before = self.resyncs.borrow().0;
            let answer = tokio::select! {
                _ = cancel.cancelled() => return Err(SendError::Cancelled),
                a = self.nats.client.request(self.subjects.sync.clone(), payload.into()) => a,
            };
            match answer.map_err(|e| e.to_string()).and_then(|m| {
                super::codec::decode_control::<SyncReply>(&m.payload).map_err(|e| e.to_string())
            }) {
                Ok(reply) if reply.epoch == epoch => {
                    if self.epoch != 0 {
                        self.stats.resyncs.fetch_add(1, Relaxed);
                    }
                    if let Ok(mut ledger) = self.ledger.lock() {
                        ledger.begin_epoch(epoch);
                    }
                    if let ResumePoint::Binlog { position } = &reply.resume {
                        self.stats.set_executed(position);
                    }
                    // The server's INFO has arrived by now (a request went through); before it,
                    // the client knows only a default limit.
                    self.max_chunk = chunk_limit(self.nats.client.max_payload());
                    self.epoch = epoch;
                    self.seq = 0;
                    self.pending.clear(self.keep_capacity());
                    self.pending_since = None;
                    self.held = false;
                    self.connections_at_sync = connections;
                    self.resyncs_at_sync = resyncs_before;
                    tracing::info!(epoch, resume = ?reply.resume, "synced with the applier");
                    return Ok(reply);
                }
                Ok(reply) => {
                    tracing::warn!(expected = epoch, got = reply.epoch, "stale sync reply")
                }
                Err(err) => tracing::info!(%err, "the applier does not answer yet; retrying"),
            }
            if !backoff.wait(cancel).await {
                return Err(SendError::Cancelled);
            }
        }
    }

    /// Queues an item; sends what is due. An item given by value is dropped as soon as it is
    /// encoded, before its frames go out, so a large row is not held twice while it is published.
    ///
    /// # Errors
    /// [`SendError`]: the epoch is over, or the task is stopping.
    pub async fn send(
        &mut self,
        item: impl Borrow<Item>,
        cancel: &CancellationToken,
    ) -> Result<(), SendError> {
        self.check_epoch()?;
        if self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        let boundary = matches!(
            item.borrow(),
            Item::Commit { .. }
                | Item::Heartbeat { .. }
                | Item::SnapshotChunk { .. }
                | Item::SnapshotEnd { .. }
                | Item::SnapshotBegin { .. }
        );
        self.pending
            .push(item.borrow())
            .map_err(|e| SendError::Restart(format!("encoding an item: {e}")))?;
        // The pending bytes go out in frames of `max_chunk`, in order: the frame this item ends in.
        let frame =
            self.seq + 1 + (self.pending.pending().saturating_sub(1) / self.max_chunk) as u64;
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.sent(item.borrow(), frame, crate::stats::wall_secs());
        }
        drop(item);
        if self.pending.pending() >= self.max_chunk {
            while self.pending.pending() >= self.max_chunk {
                self.stats.sends_by_size.fetch_add(1, Relaxed);
                self.publish_next(self.max_chunk, cancel).await?;
            }
            self.pending.compact(self.keep_capacity());
            if self.pending.is_empty() {
                self.pending_since = None;
                self.held = false;
            }
        }
        if boundary && self.pending.pending() >= self.config.group_max_size {
            if self.in_flight() == 0 {
                self.stats.sends_by_size.fetch_add(1, Relaxed);
                self.flush(cancel).await?;
            } else {
                self.held = true;
            }
        } else if boundary && self.flush_due() {
            self.stats.sends_by_timeout.fetch_add(1, Relaxed);
            self.flush(cancel).await?;
        }
        Ok(())
    }

    /// Frames published and not yet acknowledged.
    fn in_flight(&self) -> u64 {
        self.unacknowledged(*self.acks.borrow())
    }

    /// Frames published and not covered by `ack` (one of an older epoch covers none).
    fn unacknowledged(&self, ack: Ack) -> u64 {
        let acked = if ack.epoch == self.epoch { ack.seq } else { 0 };
        self.seq.saturating_sub(acked)
    }

    /// Resolves when an acknowledgement arrives while a batch is held; never otherwise (a
    /// resync or reconnect is noticed by the next send).
    pub async fn window_moved(&mut self) {
        if !self.held || self.pending.is_empty() || self.acks.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the pending batch has waited `GroupTimeout`.
    pub fn flush_due(&self) -> bool {
        self.pending_since
            .is_some_and(|since| since.elapsed() >= self.config.group_timeout)
    }

    /// When the pending batch becomes due, if there is one.
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.pending_since
            .map(|since| since + self.config.group_timeout)
    }

    /// Sends everything pending.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub async fn flush(&mut self, cancel: &CancellationToken) -> Result<(), SendError> {
        // Nothing is due any more, even when nothing is pending (published by size): a deadline
        // left behind would fire again and again.
        self.held = false;
        self.pending_since = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        // Less than a frame is pending: `send` publishes whole frames as soon as they fill.
        while !self.pending.is_empty() {
            self.publish_next(self.max_chunk, cancel).await?;
        }
        self.pending.compact(self.keep_capacity());
        Ok(())
    }

    /// Buffer worth keeping between items: a frame being filled and an item that overflows it.
    fn keep_capacity(&self) -> usize {
        2 * self.max_chunk
    }

    fn check_epoch(&self) -> Result<(), SendError> {
        if self.epoch == 0 {
            return Err(SendError::Restart("no epoch: sync first".into()));
        }
        if *self.nats.connections.borrow() != self.connections_at_sync {
            return Err(SendError::Restart("NATS reconnected".into()));
        }
        let (resyncs, reason) = &*self.resyncs.borrow();
        if *resyncs != self.resyncs_at_sync {
            return Err(SendError::Restart(format!("the applier asked: {reason}")));
        }
        Ok(())
    }

    /// Publishes the next chunk of at most `max` pending bytes as one frame, once the window
    /// lets it go.
    async fn publish_next(
        &mut self,
        max: usize,
        cancel: &CancellationToken,
    ) -> Result<(), SendError> {
        self.wait_for_window(cancel).await?;
        self.seq += 1;
        // Handed out now: should the publish fail, the epoch ends and the stream starts afresh.
        let frame = self.pending.frame(
            FrameHeader {
                epoch: self.epoch,
                seq: self.seq,
            },
            max,
        );
        let len = frame.len() as u64;
        self.nats
            .client
            .publish(self.subjects.data.clone(), frame.into())
            .await
            .map_err(|e| SendError::Restart(format!("publishing: {e}")))?;
        self.stats.record_out_msg(len);
        Ok(())
    }

    /// Waits until fewer than `window` frames are unacknowledged.
    async fn wait_for_window(&mut self, cancel: &CancellationToken) -> Result<(), SendError> {
        let started = Instant::now();
        loop {
            self.check_epoch()?;
            let ack = *self.acks.borrow_and_update();
            let in_flight = self.unacknowledged(ack);
            self.stats.set_backlog(in_flight, self.config.window);
            if in_flight < self.config.window {
                self.stats.waited(Wait::Peer, started.elapsed());
                return Ok(());
            }
            if started.elapsed() >= STALL_TIMEOUT {
                return Err(SendError::Restart(format!(
                    "no acknowledgement for {}s",
                    STALL_TIMEOUT.as_secs()
                )));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(SendError::Cancelled),
                _ = self.acks.changed() => {}
                _ = self.resyncs.changed() => {}
                _ = self.connection_changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

impl Drop for Sender {
    /// The epoch ends with the sender: what it did not get acknowledged will be read again.
    fn drop(&mut self) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.begin_epoch(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_fits_the_server_limit_and_is_never_empty() {
        for max_payload in [0, 1, 4096, 1 << 20, 64 << 20] {
            let chunk = chunk_limit(max_payload);
            assert!(chunk > 0);
            assert!(chunk + FRAME_HEADER_LEN <= max_payload.max(4096));
        }
        assert!(chunk_limit(1 << 20) > (1 << 20) - 128);
    }
}
