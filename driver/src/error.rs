//! Task errors, split by what should happen next.
//!
//! - [`TaskError::Definite`]: retrying cannot help (bad credentials, a purged start position, a
//!   missing table, a server setting replication needs). The task stops and reports the message;
//!   an orchestrator must not restart it (Nomad: FATAL).
//! - [`TaskError::Transient`]: the world may heal (a lost connection, a deadlock, a NATS restart).
//!   The task retries with backoff; when it gives up, an orchestrator restarts it (Nomad: RETRY).
//!
//! MySQL errors are classified by server error code in [`classify_mysql`], never by message text.

use std::fmt;

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Retrying cannot help; fix the cause (the message names it) and restart the job.
    #[error("{0}")]
    Definite(String),
    /// Retrying may help.
    #[error("{0}")]
    Transient(String),
}

impl TaskError {
    /// A definite error with `context` in front of the cause.
    pub fn definite(context: impl fmt::Display, cause: impl fmt::Display) -> Self {
        TaskError::Definite(format!("{context}: {cause}"))
    }

    /// A transient error with `context` in front of the cause.
    pub fn transient(context: impl fmt::Display, cause: impl fmt::Display) -> Self {
        TaskError::Transient(format!("{context}: {cause}"))
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, TaskError::Transient(_))
    }
}

/// MySQL/MariaDB server error codes this crate reacts to; every other server error is transient
/// (lost connections, deadlocks, lock waits, shutdowns, too many connections).
pub mod codes {
    /// Access denied to a database.
    pub const DBACCESS_DENIED: u16 = 1044;
    /// Wrong user or password.
    pub const ACCESS_DENIED: u16 = 1045;
    /// Unknown database.
    pub const BAD_DB: u16 = 1049;
    /// Duplicate key.
    pub const DUP_ENTRY: u16 = 1062;
    /// Unknown table.
    pub const NO_SUCH_TABLE: u16 = 1146;
    /// A privilege is missing.
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// The binlog (or GTID) asked for is not on the server any more, or another fatal replication error.
    pub const MASTER_FATAL_READING_BINLOG: u16 = 1236;
}

/// Classifies a mysql_async error, with `context` saying what was being done.
pub fn classify_mysql(context: impl fmt::Display, err: &mysql_async::Error) -> TaskError {
    use codes::*;
    match err {
        mysql_async::Error::Server(server) => {
            let cause = format!("{} (MySQL error {})", server.message, server.code);
            match server.code {
                ACCESS_DENIED
                | DBACCESS_DENIED
                | SPECIFIC_ACCESS_DENIED
                | BAD_DB
                | NO_SUCH_TABLE
                | MASTER_FATAL_READING_BINLOG => TaskError::definite(context, cause),
                _ => TaskError::transient(context, cause),
            }
        }
        mysql_async::Error::Io(io) => TaskError::transient(context, io),
        mysql_async::Error::Driver(driver) => TaskError::transient(context, driver),
        mysql_async::Error::Url(url) => TaskError::definite(context, url),
        mysql_async::Error::Other(other) => TaskError::transient(context, other),
    }
}

/// The server error code, if `err` came from the server.
pub fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}
