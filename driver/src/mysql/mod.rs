//! What both tasks need of a MySQL/MariaDB server: connecting with the job's settings and quoting
//! identifiers.

pub mod literal;
pub mod params;
pub mod quote;

use crate::error::{classify_mysql, TaskError};
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
