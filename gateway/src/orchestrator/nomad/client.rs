//! The HTTP client for Nomad's API and for the dtle plugin's stats API on Nomad's nodes.
//!
//! Every Nomad request carries the configured ACL token in `X-Nomad-Token` and the configured
//! `region` and `namespace` as query parameters; requests to a plugin carry neither (the token is
//! Nomad's secret, not the node's). Path segments (job and allocation IDs) are percent-encoded.
//!
//! A failed call is a [`CallError`] saying who was called and what happened; [`CallError::into_error`]
//! turns one from Nomad into the gateway's [`OrchestratorError`] with a message that says what
//! to do: 404 becomes the caller's "not found", 403 the ACL token's refusal, 400 a rejected
//! request, other statuses `Nomad answered <status>: <body>`, no connection or no answer in time
//! `cannot reach Nomad at <address>: <cause>`. A blocking query ([`NomadClient::blocking_index`])
//! is Nomad's own (`?index=&wait=`), its answer's `X-Nomad-Index` read. Reads (GET) are tried again, with a short backoff,
//! when Nomad cannot be reached or answers 5xx (a leader election answers 500 for a moment);
//! writes are sent once. Bodies are logged by length only: job bodies hold passwords.

use crate::orchestrator::OrchestratorError;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// The header Nomad reads the ACL token from.
pub const TOKEN_HEADER: &str = "X-Nomad-Token";
/// The header Nomad answers a query's index in.
pub const INDEX_HEADER: &str = "X-Nomad-Index";

/// Attempts at a read that may heal (Nomad unreachable or answering 5xx).
const READ_ATTEMPTS: u32 = 3;
/// The first delay between them; doubles.
const READ_FIRST_DELAY: Duration = Duration::from_millis(200);
/// Longest error body quoted in a message.
const MAX_QUOTED: usize = 2000;
/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where Nomad is and how to talk to it.
#[derive(Clone)]
pub struct ClientConfig {
    /// Nomad's HTTP address, e.g. `http://127.0.0.1:4646`.
    pub address: String,
    /// The region requests go to (`?region=`); `None`: the agent's own.
    pub region: Option<String>,
    /// The namespace of the jobs (`?namespace=`); `None`: Nomad's `default`.
    pub namespace: Option<String>,
    /// The ACL token (`X-Nomad-Token`), when ACLs are on.
    pub token: Option<String>,
    /// How long one request may take, answer included.
    pub timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("address", &self.address)
            .field("region", &self.region)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "*"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a call failed, and whom it was made to.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection, or no answer in time.
    #[error("cannot reach {peer}: {cause}")]
    Unreachable {
        /// `Nomad at <address>` or `the dtle plugin at <address>`.
        peer: String,
        /// What went wrong, root cause included.
        cause: String,
    },
    /// An answer with an error status.
    #[error("{peer} answered {status}: {body}")]
    Status {
        /// As above.
        peer: String,
        /// The HTTP status.
        status: StatusCode,
        /// Its body (Nomad's are plain text), trimmed and shortened.
        body: String,
    },
    /// An answer that is not what the API documents.
    #[error("{peer} answered what the gateway cannot read: {cause}")]
    Unreadable {
        /// As above.
        peer: String,
        /// The decoder's message.
        cause: String,
    },
}

impl CallError {
    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed.
    fn may_heal(&self) -> bool {
        match self {
            CallError::Unreachable { .. } => true,
            CallError::Status { status, .. } => status.is_server_error(),
            CallError::Unreadable { .. } => false,
        }
    }

    /// The gateway's error for a failed Nomad call; `not_found` is what a 404 means here.
    pub fn into_error(self, not_found: impl FnOnce() -> OrchestratorError) -> OrchestratorError {
        match self {
            CallError::Status { status, .. } if status == StatusCode::NOT_FOUND => not_found(),
            CallError::Status { status, body, .. } if status == StatusCode::FORBIDDEN => {
                OrchestratorError::Forbidden(format!(
                    "Nomad refused the ACL token: {body}. Give the agent a token whose policy \
                     allows this (`token` in the agent config's nomad section, or NOMAD_TOKEN)"
                ))
            }
            CallError::Status { status, body, .. } if status == StatusCode::BAD_REQUEST => {
                OrchestratorError::Rejected(format!("Nomad refused the request: {body}"))
            }
            CallError::Status { status, body, .. } => {
                OrchestratorError::Upstream(format!("Nomad answered {}: {body}", status.as_u16()))
            }
            unreachable @ CallError::Unreachable { .. } => OrchestratorError::Unavailable(format!(
                "{unreachable}; check the agent's Nomad address and that Nomad is running"
            )),
            unreadable @ CallError::Unreadable { .. } => {
                OrchestratorError::Upstream(unreadable.to_string())
            }
        }
    }
}

/// Nomad's HTTP API, and the plugins' stats APIs; cheap to clone.
#[derive(Clone, Debug)]
pub struct NomadClient {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
}

impl NomadClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`OrchestratorError::Internal`] when the address is not an http(s) URL or the HTTP client
    /// cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self, OrchestratorError> {
        let base = Url::parse(config.address.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                OrchestratorError::Internal(format!(
                    "the Nomad address {:?} is not an http:// or https:// URL",
                    config.address
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            .timeout(config.timeout)
            .user_agent(concat!("dtle-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OrchestratorError::Internal(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, base, config })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `GET` a Nomad path (its segments, each encoded), with `query` besides region and
    /// namespace; tried again while it may heal.
    ///
    /// # Errors
    /// The last attempt's [`CallError`].
    pub async fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value, CallError> {
        let mut delay = READ_FIRST_DELAY;
        let mut attempt = 1;
        loop {
            match self.nomad(Method::GET, segments, query, None).await {
                Err(err) if err.may_heal() && attempt < READ_ATTEMPTS => {
                    tracing::debug!(%err, attempt, ?delay, "Nomad read failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `POST` a JSON body to a Nomad path, once.
    ///
    /// # Errors
    /// As [`Self::get`], without a second attempt.
    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, CallError> {
        self.nomad(Method::POST, segments, &[], Some(body)).await
    }

    /// `DELETE` a Nomad path, once.
    ///
    /// # Errors
    /// As [`Self::post`].
    pub async fn delete(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Value, CallError> {
        self.nomad(Method::DELETE, segments, query, None).await
    }

    /// `GET http://<api_addr>/<segments>` from a dtle plugin: no token, no region or namespace.
    ///
    /// # Errors
    /// As [`Self::post`], naming the plugin.
    pub async fn plugin_get(&self, api_addr: &str, segments: &[&str]) -> Result<Value, CallError> {
        let peer = format!("the dtle plugin at {api_addr}");
        let mut url =
            Url::parse(&format!("http://{api_addr}/")).map_err(|e| CallError::Unreachable {
                peer: peer.clone(),
                cause: format!("not a host:port ({e})"),
            })?;
        extend(&mut url, segments);
        let request = self.http.get(url);
        send(request, &peer).await
    }

    /// Nomad's blocking query on a path: waits (in Nomad) until the index of what it reads is
    /// above `min_index` or `wait` has passed, and returns the answer's `X-Nomad-Index`. A 404
    /// (a job that is not there) answers with the index too.
    ///
    /// # Errors
    /// As [`Self::post`].
    pub async fn blocking_index(
        &self,
        segments: &[&str],
        min_index: u64,
        wait: Duration,
    ) -> Result<u64, CallError> {
        let index = min_index.to_string();
        let wait_text = format!("{}ms", wait.as_millis());
        let query: &[(&str, &str)] = if min_index == 0 {
            &[]
        } else {
            &[("index", &index), ("wait", &wait_text)]
        };
        let (request, peer) = self.request(Method::GET, segments, query, None);
        // Nomad adds up to wait/16 to spread wake-ups.
        let request = request.timeout(self.config.timeout + wait + wait / 16);
        let response = request.send().await.map_err(|e| CallError::Unreachable {
            peer: peer.clone(),
            cause: cause(&e),
        })?;
        let status = response.status();
        let header = response
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return header.ok_or_else(|| CallError::Unreadable {
                peer,
                cause: format!("no {INDEX_HEADER} header"),
            });
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(CallError::Status {
            peer,
            status,
            body: quoted(&bytes),
        })
    }

    async fn nomad(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let (request, peer) = self.request(method, segments, query, body);
        send(request, &peer).await
    }

    /// A request to a Nomad path, and who it goes to.
    fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (reqwest::RequestBuilder, String) {
        let mut url = self.base.clone();
        extend(&mut url, segments);
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
            if let Some(region) = self.config.region.as_deref().filter(|r| !r.is_empty()) {
                pairs.append_pair("region", region);
            }
            if let Some(ns) = self.config.namespace.as_deref().filter(|n| !n.is_empty()) {
                pairs.append_pair("namespace", ns);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        tracing::debug!(%method, path = url.path(), "Nomad request");
        let mut request = self.http.request(method, url);
        if let Some(token) = self.config.token.as_deref().filter(|t| !t.is_empty()) {
            request = request.header(TOKEN_HEADER, token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let peer = format!("Nomad at {}", self.config.address.trim());
        (request, peer)
    }
}

/// Appends path segments, encoded, to `url`.
fn extend(url: &mut Url, segments: &[&str]) {
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
}

async fn send(request: reqwest::RequestBuilder, peer: &str) -> Result<Value, CallError> {
    let response = request.send().await.map_err(|e| CallError::Unreachable {
        peer: peer.to_owned(),
        cause: cause(&e),
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| CallError::Unreachable {
        peer: peer.to_owned(),
        cause: format!("the answer was cut off: {}", cause(&e)),
    })?;
    tracing::debug!(
        peer,
        status = status.as_u16(),
        bytes = bytes.len(),
        "answer"
    );
    if !status.is_success() {
        return Err(CallError::Status {
            peer: peer.to_owned(),
            status,
            body: quoted(&bytes),
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::Unreadable {
        peer: peer.to_owned(),
        cause: format!("not JSON ({e})"),
    })
}

/// A reqwest error with its causes, e.g. `error sending request ...: tcp connect error:
/// Connection refused (os error 111)`, or what a timeout means.
fn cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer in time (the request timed out)".to_owned();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// An error body as quoted in a message: trimmed, at most [`MAX_QUOTED`] characters.
fn quoted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address: &str) -> ClientConfig {
        ClientConfig {
            address: address.into(),
            region: None,
            namespace: None,
            token: Some("secret-token".into()),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_address_must_be_an_http_url_and_the_token_is_never_printed() {
        assert!(NomadClient::new(config("127.0.0.1:4646")).is_err());
        assert!(NomadClient::new(config("ftp://x")).is_err());
        let client = NomadClient::new(config("http://127.0.0.1:4646/")).expect("valid");
        assert!(!format!("{client:?}").contains("secret-token"));
    }

    #[test]
    fn segments_are_encoded_and_long_bodies_shortened() {
        let mut url = Url::parse("http://h:1/prefix/").expect("url");
        extend(&mut url, &["v1", "job", "a b/c"]);
        assert_eq!(url.as_str(), "http://h:1/prefix/v1/job/a%20b%2Fc");
        assert_eq!(quoted(b"  job not found\n"), "job not found");
        assert_eq!(quoted(b""), "(empty body)");
        assert!(quoted("x".repeat(5000).as_bytes()).ends_with('…'));
    }

    #[test]
    fn statuses_become_the_gateways_errors() {
        let status = |code: u16, body: &str| CallError::Status {
            peer: "Nomad at http://n".into(),
            status: StatusCode::from_u16(code).expect("status"),
            body: body.into(),
        };
        let not_found = || OrchestratorError::JobNotFound("j".into());
        assert!(matches!(
            status(404, "job not found").into_error(not_found),
            OrchestratorError::JobNotFound(_)
        ));
        let forbidden = status(403, "Permission denied").into_error(not_found);
        assert!(matches!(forbidden, OrchestratorError::Forbidden(_)));
        assert!(forbidden
            .to_string()
            .starts_with("Nomad refused the ACL token: Permission denied."));
        let failed = status(500, "rpc error: No cluster leader").into_error(not_found);
        assert_eq!(
            failed.to_string(),
            "Nomad answered 500: rpc error: No cluster leader"
        );
        assert!(matches!(
            status(400, "bad job").into_error(not_found),
            OrchestratorError::Rejected(_)
        ));
        let down = CallError::Unreachable {
            peer: "Nomad at http://127.0.0.1:1".into(),
            cause: "Connection refused".into(),
        }
        .into_error(not_found);
        assert!(matches!(down, OrchestratorError::Unavailable(_)));
        assert!(down
            .to_string()
            .starts_with("cannot reach Nomad at http://127.0.0.1:1: Connection refused"));
    }
}
