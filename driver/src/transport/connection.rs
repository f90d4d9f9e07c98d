//! Connecting to NATS with the task's credentials and TLS ([`NatsSecurity`]), waiting for a
//! server that is not up yet, refusing for good when the server refuses us, and noticing when
//! the connection was re-established.
//!
//! # The first connection
//! The client is not left to retry the first connection on its own (async-nats's
//! `retry_on_initial_connect` retries an authorization violation forever, silently). Each
//! attempt is made here and its failure classified:
//! - nothing listens, a timeout, a name that does not resolve: the server may come; wait with
//!   backoff (as long as the task is not cancelled);
//! - an authorization violation, a failed NKey signature, a certificate the CA does not vouch for,
//!   a TLS setup that cannot work, a bad URL: [`ConnectFailure::Refused`], with what to fix.
//!   Waiting cannot cure these; the task stops with a definite error.
//!
//! # Afterwards
//! async-nats reconnects by itself, but whatever was in flight while it was away is gone. Both
//! tasks watch the connection count: a new connection means a new sync (see [`super::protocol`]).
//! A refusal after the first connection (the credentials were revoked, a reconnect is refused, or
//! the server answers a subscribe or publish with a permissions violation: the NATS user may not
//! use this job's subjects) is logged as an error and published on [`NatsConnection::refused`];
//! the task ends on it ([`crate::task`]).
//!
//! Every connection after the first is counted in the task's `reconnects`, dtle's
//! `MsgStat.Reconnects` (which dtle took from its NATS client's statistics). The transport's own
//! restarts (resyncs) are another thing, counted apart.

use super::security::{inbox_prefix, NatsSecurity};
use crate::retry::Backoff;
use crate::stats::TaskStats;
use crate::tls::{rustls_cause, Refusal};
use async_nats::{ConnectErrorKind, ServerError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A NATS connection for one task.
#[derive(Clone)]
pub struct NatsConnection {
    /// The client; cheap to clone.
    pub client: async_nats::Client,
    /// Counts connections: 1 after the first, +1 at every reconnect.
    pub connections: watch::Receiver<u64>,
    /// Set when the server refuses this client after the first connection (credentials,
    /// permissions): what it said and what to fix.
    pub refused: watch::Receiver<Option<String>>,
}

impl NatsConnection {
    /// Resolves with the server's refusal once there is one; never otherwise.
    pub async fn refusal(&self) -> String {
        let mut refused = self.refused.clone();
        let reason = match refused.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// Why a task could not connect to NATS.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// The server refused this client or the settings cannot work: waiting cannot help.
    #[error("{0}")]
    Refused(String),
    /// The task was stopped while waiting for the server.
    #[error("stopped while waiting for the NATS server")]
    Cancelled,
}

/// Where and as whom a task connects.
pub struct Endpoint<'a> {
    /// The server's URL, e.g. `tls://127.0.0.1:8194`.
    pub url: &'a str,
    /// The credentials and TLS settings.
    pub security: &'a NatsSecurity,
    /// The job whose subjects (and inboxes, [`inbox_prefix`]) the connection uses.
    pub job: &'a str,
    /// The connection's name, as nats-server shows it (`dtle <job> <task>`).
    pub name: &'a str,
}

/// Connects to `endpoint`, waiting (with backoff, until `cancel` fires) while no server answers;
/// reconnects forever afterwards, counting reconnections in `stats`.
///
/// # Errors
/// [`ConnectFailure::Refused`] when the server refuses the credentials or the TLS settings
/// cannot work; [`ConnectFailure::Cancelled`] when `cancel` fires first.
pub async fn connect(
    endpoint: &Endpoint<'_>,
    stats: Arc<TaskStats>,
    cancel: &CancellationToken,
) -> Result<NatsConnection, ConnectFailure> {
    let (tx, rx) = watch::channel(0u64);
    let (refused_tx, refused_rx) = watch::channel(None::<String>);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut waited = false;
    loop {
        let (tx, stats, refused_tx) = (tx.clone(), stats.clone(), refused_tx.clone());
        let url = endpoint.url.to_owned();
        let options = async_nats::ConnectOptions::new()
            .name(endpoint.name)
            .custom_inbox_prefix(inbox_prefix(endpoint.job))
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)))
            .event_callback(move |event| {
                let (tx, stats, refused_tx, url) =
                    (tx.clone(), stats.clone(), refused_tx.clone(), url.clone());
                async move {
                    if let Some(reason) = refusal(&event, &url) {
                        tracing::error!(%reason, "NATS refused this task");
                        refused_tx.send_if_modified(|current| {
                            let first = current.is_none();
                            if first {
                                *current = Some(reason);
                            }
                            first
                        });
                        return;
                    }
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
        let options = endpoint.security.apply(options).map_err(|e| {
            ConnectFailure::Refused(format!("the NATS credentials cannot be used: {e}"))
        })?;
        let attempt = tokio::select! {
            () = cancel.cancelled() => return Err(ConnectFailure::Cancelled),
            attempt = options.connect(endpoint.url) => attempt,
        };
        let err = match attempt {
            Ok(client) => {
                if waited {
                    tracing::info!(url = endpoint.url, "the NATS server answers now");
                }
                return Ok(NatsConnection {
                    client,
                    connections: rx,
                    refused: refused_rx,
                });
            }
            Err(err) => err,
        };
        if let Some(reason) = refused(&err, endpoint) {
            return Err(ConnectFailure::Refused(reason));
        }
        if !waited {
            tracing::warn!(url = endpoint.url, %err, "no NATS server answers yet; waiting");
            waited = true;
        } else {
            tracing::debug!(url = endpoint.url, %err, "no NATS server answers yet");
        }
        if !backoff.wait(cancel).await {
            return Err(ConnectFailure::Cancelled);
        }
    }
}

/// What a failed first connection means, when waiting cannot cure it.
fn refused(err: &async_nats::ConnectError, endpoint: &Endpoint<'_>) -> Option<String> {
    let (url, using) = (endpoint.url, endpoint.security.describe());
    match err.kind() {
        ConnectErrorKind::AuthorizationViolation => Some(format!(
            "the NATS server at {url} refused the credentials (authorization violation; this \
             task used {using}): check the NATS user, password, token, NKey seed or credentials \
             file configured for dtle"
        )),
        ConnectErrorKind::Authentication => Some(format!(
            "connecting to the NATS server at {url}: signing its challenge failed ({err}): check \
             the NKey seed or credentials file"
        )),
        ConnectErrorKind::ServerParse => Some(format!(
            "{url:?} is not a NATS server URL ({err}); write it as nats://host:port or \
             tls://host:port"
        )),
        ConnectErrorKind::Tls => Some(format!(
            "TLS to the NATS server at {url} cannot be set up ({err}): check the CA, client \
             certificate and key files"
        )),
        _ => rustls_cause(err).map(|tls| {
            let why = match Refusal::of(tls) {
                Refusal::UntrustedIssuer => {
                    "its certificate is not signed by an authority this task trusts: set the NATS \
                     CA file to the CA that signed it"
                        .to_owned()
                }
                Refusal::NameMismatch { presented } => format!(
                    "its certificate is valid for {} only: connect by one of those names",
                    presented.join(", ")
                ),
                Refusal::Expired => "its certificate has expired or is not valid yet".to_owned(),
                Refusal::Other(what) => {
                    format!("{what} (does the server speak TLS? with require_tls it must)")
                }
            };
            format!("TLS to the NATS server at {url} refused ({using}): {why}")
        }),
    }
}

/// What an event after the first connection means, when it is a refusal.
fn refusal(event: &async_nats::Event, url: &str) -> Option<String> {
    let refused_credentials = format!(
        "the NATS server at {url} refused the credentials (authorization violation): check the \
         NATS settings configured for dtle"
    );
    match event {
        async_nats::Event::ServerError(ServerError::AuthorizationViolation) => {
            Some(refused_credentials)
        }
        async_nats::Event::ServerError(ServerError::Other(text))
            if text
                .to_ascii_lowercase()
                .starts_with("permissions violation") =>
        {
            Some(format!(
                "the NATS server at {url} refused: {text}; the NATS user of this task may use \
                 its own job's subjects only (dtle.<job>.> and _INBOX.dtle.<job>.>, see \
                 docs/security.md)"
            ))
        }
        // A reconnect refused: the client words it as the connection error's kind.
        async_nats::Event::ClientError(async_nats::ClientError::Other(text))
            if *text == ConnectErrorKind::AuthorizationViolation.to_string()
                || *text == ConnectErrorKind::Authentication.to_string() =>
        {
            Some(refused_credentials)
        }
        _ => None,
    }
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

    #[test]
    fn refusals_are_told_from_other_events() {
        let url = "tls://127.0.0.1:8194";
        let permissions = async_nats::Event::ServerError(ServerError::Other(
            "Permissions Violation for Subscription to \"dtle.b.data\"".into(),
        ));
        let said = refusal(&permissions, url).expect("a refusal");
        assert!(
            said.contains("dtle.b.data") && said.contains("docs/security.md"),
            "{said}"
        );
        let reconnect = async_nats::Event::ClientError(async_nats::ClientError::Other(
            ConnectErrorKind::AuthorizationViolation.to_string(),
        ));
        assert!(refusal(&reconnect, url).is_some());
        assert!(refusal(&async_nats::Event::Disconnected, url).is_none());
        assert!(refusal(
            &async_nats::Event::ServerError(ServerError::Other("Stale Connection".into())),
            url
        )
        .is_none());
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_and_an_absent_server_waited_for() {
        let security = NatsSecurity::default();
        let stats = Arc::new(TaskStats::default());
        let cancel = CancellationToken::new();
        let endpoint = Endpoint {
            url: "nats://[not a url",
            security: &security,
            job: "j",
            name: "test",
        };
        let err = connect(&endpoint, stats.clone(), &cancel)
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, ConnectFailure::Refused(_)), "{err}");
        // Nothing listens on port 1: waited for until cancelled.
        let endpoint = Endpoint {
            url: "nats://127.0.0.1:1",
            ..endpoint
        };
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            stop.cancel();
        });
        let err = connect(&endpoint, stats, &cancel)
            .await
            .err()
            .expect("cancelled");
        assert!(matches!(err, ConnectFailure::Cancelled), "{err}");
    }
}
