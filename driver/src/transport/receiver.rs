//! The applier's end: sync requests, frames checked for epoch and order, items reassembled.
//!
//! Frames of an older epoch are dropped silently (they were in flight when the extractor synced).
//! A frame of a newer epoch than the last sync, or a gap in the sequence, means something was lost:
//! the receiver asks for a resync and ignores frames until the next sync. Acknowledgements are sent
//! only by the applier, after it has processed every item of a frame.

use super::codec::{
    decode_control, decode_frame, encode_control, CodecError, FrameHeader, ItemDecoder,
};
use super::connection::NatsConnection;
use super::protocol::{Ack, ResumePoint, Resync, Subjects, SyncReply, SyncRequest};
use crate::change::Item;
use crate::stats::TaskStats;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What arrived.
pub enum Incoming {
    /// The extractor opens an epoch; answer with [`Receiver::accept_sync`].
    Sync {
        /// The request.
        request: SyncRequest,
        /// Where the answer goes.
        reply_to: async_nats::Subject,
    },
    /// A frame whose items are now available from [`Receiver::next_item`]; acknowledge it with
    /// [`Receiver::ack`] once they are processed.
    Frame(FrameHeader),
}

/// Why receiving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The stream from the extractor is corrupt or of another version.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The NATS subscription ended (the client was closed).
    #[error("the NATS subscription ended")]
    Closed,
    /// NATS refused a publish.
    #[error("NATS publish failed: {0}")]
    Publish(String),
}

/// Receives one job's item stream.
pub struct Receiver {
    nats: NatsConnection,
    subjects: Subjects,
    sync_sub: async_nats::Subscriber,
    data_sub: async_nats::Subscriber,
    /// The epoch of the last sync, and whether its stream is still intact.
    epoch: Option<u64>,
    intact: bool,
    expected_seq: u64,
    decoder: ItemDecoder,
    /// Connection count at the last sync: a reconnect loses frames, so it breaks the epoch.
    connections_at_sync: u64,
    /// This receiver's own view of the connection count, kept across waits: a watch receiver
    /// wakes for every value it has not marked seen, so a fresh clone per wait (whose copy of the
    /// count was never marked seen) would wake at once, every time, and spin.
    connection_changes: watch::Receiver<u64>,
    last_resync: Option<Instant>,
    stats: Arc<TaskStats>,
}

impl Receiver {
    /// Subscribes to the sync and data subjects of a job.
    ///
    /// # Errors
    /// When NATS refuses the subscriptions.
    pub async fn new(
        nats: NatsConnection,
        subjects: Subjects,
        stats: Arc<TaskStats>,
    ) -> Result<Self, async_nats::SubscribeError> {
        let sync_sub = nats.client.subscribe(subjects.sync.clone()).await?;
        let data_sub = nats.client.subscribe(subjects.data.clone()).await?;
        let mut connection_changes = nats.connections.clone();
        let connections_at_sync = *connection_changes.borrow_and_update();
        Ok(Self {
            connections_at_sync,
            connection_changes,
            nats,
            subjects,
            sync_sub,
            data_sub,
            epoch: None,
            intact: false,
            expected_seq: 1,
            decoder: ItemDecoder::default(),
            last_resync: None,
            stats,
        })
    }

    /// Waits for the next sync request or intact frame.
    ///
    /// # Errors
    /// [`ReceiveError`].
    pub async fn next(&mut self) -> Result<Incoming, ReceiveError> {
        loop {
            tokio::select! {
                message = self.sync_sub.next() => {
                    let message = message.ok_or(ReceiveError::Closed)?;
                    let Some(reply_to) = message.reply else { continue };
                    match decode_control::<SyncRequest>(&message.payload) {
                        Ok(request) => return Ok(Incoming::Sync { request, reply_to }),
                        Err(err) => tracing::warn!(%err, "ignoring an undecodable sync request"),
                    }
                }
                message = self.data_sub.next() => {
                    let message = message.ok_or(ReceiveError::Closed)?;
                    self.stats.record_in_msg(message.payload.len() as u64);
                    if let Some(header) = self.accept_frame(&message.payload).await? {
                        return Ok(Incoming::Frame(header));
                    }
                }
                _ = self.connection_changes.changed() => {
                    let connections = *self.connection_changes.borrow_and_update();
                    if self.intact && connections != self.connections_at_sync {
                        self.broken("NATS reconnected").await?;
                    }
                }
            }
        }
    }

    async fn accept_frame(&mut self, payload: &[u8]) -> Result<Option<FrameHeader>, ReceiveError> {
        let (header, chunk) = decode_frame(payload)?;
        match self.epoch {
            Some(epoch) if header.epoch < epoch => return Ok(None),
            Some(epoch) if header.epoch == epoch && self.intact => {
                if header.seq != self.expected_seq {
                    let reason = format!(
                        "frame {} arrived where {} was expected",
                        header.seq, self.expected_seq
                    );
                    self.broken(&reason).await?;
                    return Ok(None);
                }
            }
            Some(epoch) if header.epoch == epoch => return Ok(None),
            _ => {
                self.broken("frames of an epoch this applier has not synced")
                    .await?;
                return Ok(None);
            }
        }
        self.expected_seq += 1;
        self.decoder.feed(chunk);
        Ok(Some(header))
    }

    /// Marks the epoch broken and asks the extractor for a resync (at most once a second).
    async fn broken(&mut self, reason: &str) -> Result<(), ReceiveError> {
        self.intact = false;
        if self
            .last_resync
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        self.last_resync = Some(Instant::now());
        tracing::warn!(reason, "asking the extractor to resync");
        let payload = encode_control(&Resync {
            epoch: self.epoch.unwrap_or(0),
            reason: reason.to_owned(),
        })?;
        self.nats
            .client
            .publish(self.subjects.resync.clone(), payload.into())
            .await
            .map_err(|e| ReceiveError::Publish(e.to_string()))
    }

    /// Breaks the current epoch and asks the extractor to sync again (the applier could not apply
    /// what it received and rolled back).
    ///
    /// # Errors
    /// When the request cannot be published.
    pub async fn request_resync(&mut self, reason: &str) -> Result<(), ReceiveError> {
        self.last_resync = None;
        self.broken(reason).await
    }

    /// The next complete item of the current frame(s), if any.
    ///
    /// # Errors
    /// A corrupt stream.
    pub fn next_item(&mut self) -> Result<Option<Item>, ReceiveError> {
        Ok(self.decoder.next_item()?)
    }

    /// Answers a sync: from now on only frames of `epoch` are accepted, from seq 1.
    ///
    /// # Errors
    /// When the answer cannot be published.
    pub async fn accept_sync(
        &mut self,
        reply_to: async_nats::Subject,
        epoch: u64,
        resume: ResumePoint,
    ) -> Result<(), ReceiveError> {
        self.epoch = Some(epoch);
        self.intact = true;
        self.expected_seq = 1;
        self.decoder = ItemDecoder::default();
        self.connections_at_sync = *self.nats.connections.borrow();
        let payload = encode_control(&SyncReply { epoch, resume })?;
        self.nats
            .client
            .publish(reply_to, payload.into())
            .await
            .map_err(|e| ReceiveError::Publish(e.to_string()))
    }

    /// Acknowledges every frame up to `header`.
    ///
    /// # Errors
    /// When the acknowledgement cannot be published.
    pub async fn ack(&mut self, header: FrameHeader) -> Result<(), ReceiveError> {
        let payload = encode_control(&Ack {
            epoch: header.epoch,
            seq: header.seq,
        })?;
        self.nats
            .client
            .publish(self.subjects.ack.clone(), payload.into())
            .await
            .map_err(|e| ReceiveError::Publish(e.to_string()))
    }
}
