//! What both tasks need of a MySQL/MariaDB server: connecting with the job's settings, quoting
//! identifiers, and retrying what may heal.

pub mod params;
pub mod quote;

use crate::error::{classify_mysql, TaskError};
use jobs::ConnectionConfig;
use mysql_async::prelude::Queryable;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Largest packet the client accepts: rows and binlog events up to MySQL's own limit.
const MAX_ALLOWED_PACKET: usize = 1 << 30;

/// Which flavour of server: the binlog protocol and GTID format differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB (GTIDs as domain-server-seq).
    MariaDb,
    /// MySQL (GTIDs as uuid:n).
    MySql,
}

/// Connection options for `config`, for TCP only. Sessions are set to UTC, so TIMESTAMP values
/// read and written as text mean the same instant on both servers.
pub fn opts(config: &ConnectionConfig) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(Some(config.password.expose().to_owned()))
        .prefer_socket(false)
        .max_allowed_packet(Some(MAX_ALLOWED_PACKET))
        .stmt_cache_size(256)
        .init(vec!["SET time_zone = '+00:00'".to_owned()])
        .into()
}

/// `host:port`, for messages (never the password).
pub fn address(config: &ConnectionConfig) -> String {
    format!("{}@{}:{}", config.user, config.host, config.port)
}

/// How long to keep trying what may heal before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before giving up (at least 1).
    pub attempts: u32,
    /// First delay; doubles up to `max_delay`.
    pub first_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails definitely, or the attempts are used up.
    ///
    /// # Errors
    /// The last error; a transient one is reported with the number of attempts.
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        mut op: F,
    ) -> Result<T, TaskError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TaskError>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_transient() && attempt < self.attempts.max(1) => {
                    tracing::warn!(%err, attempt, "{what} failed; retrying in {delay:?}");
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(err),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                Err(err) if err.is_transient() => {
                    return Err(TaskError::Transient(format!(
                        "{err} (gave up after {attempt} attempts)"
                    )))
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Opens one connection to `config`'s server.
///
/// # Errors
/// Classified: wrong password is definite, an unreachable server transient.
pub async fn connect(
    config: &ConnectionConfig,
    role: &str,
) -> Result<mysql_async::Conn, TaskError> {
    let context = format!("connecting to the {role} server {}", address(config));
    let connecting = mysql_async::Conn::new(opts(config));
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(classify_mysql(context, &err)),
        Err(_) => Err(TaskError::transient(context, "no answer within 10 s")),
    }
}

/// Reads the server's flavour and version.
///
/// # Errors
/// Classified MySQL errors.
pub async fn flavor(conn: &mut mysql_async::Conn) -> Result<(Flavor, String), TaskError> {
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| classify_mysql("reading the server version", &e))?;
    let version = version.unwrap_or_default();
    let flavor = if version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Ok((flavor, version))
}
