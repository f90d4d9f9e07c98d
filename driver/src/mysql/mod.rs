//! What both tasks need of a MySQL/MariaDB server: connecting with the job's settings (TLS as
//! its `SslMode` says, [`tls`]) and quoting identifiers.
//!
//! Every connection a task opens goes through [`connect`]: queries, snapshot readers, the binlog
//! stream and the applier's, so the job's TLS settings hold for all of them.

pub mod literal;
pub mod params;
pub mod quote;
pub mod tls;

use crate::error::{classify_mysql, codes, server_code, DefiniteCause, TaskError};
use jobs::ConnectionConfig;
use mysql_async::prelude::Queryable;
use std::time::Duration;

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

/// Connection options for `config` without TLS, for TCP only. Sessions are set to UTC, so
/// TIMESTAMP values read and written as text mean the same instant on both servers.
pub fn opts(config: &ConnectionConfig) -> mysql_async::Opts {
    opts_with(config, None)
}

/// As [`opts`], with `ssl` (none: no TLS).
fn opts_with(config: &ConnectionConfig, ssl: Option<mysql_async::SslOpts>) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(Some(config.password.expose().to_owned()))
        .prefer_socket(false)
        .max_allowed_packet(Some(MAX_ALLOWED_PACKET))
        .stmt_cache_size(256)
        .init(vec!["SET time_zone = '+00:00'".to_owned()])
        .ssl_opts(ssl)
        .into()
}

/// `host:port`, for messages (never the password).
pub fn address(config: &ConnectionConfig) -> String {
    format!("{}@{}:{}", config.user, config.host, config.port)
}

/// Opens one connection to `config`'s server, with TLS as its `SslMode` says.
///
/// # Errors
/// Classified: wrong password, a TLS file that cannot be used and a refused certificate are
/// definite, an unreachable server transient.
pub async fn connect(
    config: &ConnectionConfig,
    role: &str,
) -> Result<mysql_async::Conn, TaskError> {
    let context = format!("connecting to the {role} server {}", address(config));
    tls::check_files(&config.ssl).map_err(|cause| TaskError::definite(&context, cause))?;
    let mut attempt = tls::first_attempt(&config.ssl);
    // At most one retry: PREFERRED without TLS, or VERIFY_CA against the certificate's name.
    for _ in 0..2 {
        let connecting =
            mysql_async::Conn::new(opts_with(config, tls::ssl_opts(&config.ssl, &attempt)));
        let err = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(err)) => err,
            Err(_) => return Err(TaskError::transient(context, "no answer within 10 s")),
        };
        match tls::after_failure(&config.ssl, &config.host, &attempt, &err) {
            tls::Next::Retry(next) => {
                tracing::debug!(?next, %err, "connecting again");
                attempt = next;
            }
            tls::Next::Refused(cause) => return Err(TaskError::definite(context, cause)),
            tls::Next::Unrelated => {
                let denied = server_code(&err) == Some(codes::ACCESS_DENIED);
                let hint = tls::access_denied_hint(&attempt).filter(|_| denied);
                return Err(match hint {
                    Some(hint) => TaskError::definite(
                        context,
                        DefiniteCause::AccessDenied(format!("{}; {hint}", describe(&err))),
                    ),
                    None => classify_mysql(context, &err),
                });
            }
        }
    }
    Err(TaskError::transient(
        context,
        "the TLS handshake failed twice",
    ))
}

/// A server error as [`classify_mysql`] words it.
fn describe(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Server(server) => {
            format!("{} (MySQL error {})", server.message, server.code)
        }
        other => other.to_string(),
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
