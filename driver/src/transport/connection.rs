//! Connecting to NATS, and noticing when the connection was re-established.
//!
//! async-nats reconnects by itself, but whatever was in flight while it was away is gone. Both
//! tasks watch the connection count: a new connection means a new sync (see [`super::protocol`]).
//!
//! Every connection after the first is counted in the task's `reconnects`, dtle's
//! `MsgStat.Reconnects` (which dtle took from its NATS client's statistics). The transport's own
//! restarts (resyncs) are another thing, counted apart.

use crate::stats::TaskStats;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A NATS connection for one task.
#[derive(Clone)]
pub struct NatsConnection {
    /// The client; cheap to clone.
    pub client: async_nats::Client,
    /// Counts connections: 1 after the first, +1 at every reconnect.
    pub connections: watch::Receiver<u64>,
}

/// Connects to `url`, retrying until the server answers; reconnects forever afterwards, counting
/// reconnections in `stats`.
///
/// # Errors
/// Only a malformed URL or options; an unreachable server is waited for.
pub async fn connect(
    url: &str,
    name: &str,
    stats: Arc<TaskStats>,
) -> Result<NatsConnection, async_nats::ConnectError> {
    let (tx, rx) = watch::channel(0u64);
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        .event_callback(move |event| {
            let tx = tx.clone();
            let stats = stats.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        connected(&tx, &stats);
                        tracing::info!("connected to NATS");
                    }
                    async_nats::Event::Disconnected => tracing::warn!("NATS connection lost"),
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
        });
    let client = options.connect(url).await?;
    Ok(NatsConnection {
        client,
        connections: rx,
    })
}

/// Counts a connection; every one after the first is a reconnection.
fn connected(connections: &watch::Sender<u64>, stats: &TaskStats) {
    connections.send_modify(|n| *n += 1);
    if *connections.borrow() > 1 {
        stats.reconnects.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_connection_is_no_reconnection() {
        let stats = TaskStats::default();
        let (tx, rx) = watch::channel(0u64);
        connected(&tx, &stats);
        assert_eq!((*rx.borrow(), stats.reconnects.load(Relaxed)), (1, 0));
        connected(&tx, &stats);
        connected(&tx, &stats);
        assert_eq!((*rx.borrow(), stats.reconnects.load(Relaxed)), (3, 2));
    }
}
