//! Task errors, split by what should happen next.
//!
//! - [`TaskError::Definite`]: retrying cannot help (bad credentials, a purged start position, a
//!   missing table, a server setting replication needs). The task stops and reports the message;
//!   an orchestrator must not restart it (Nomad: FATAL).
//! - [`TaskError::Transient`]: the world may heal (a lost connection, a deadlock, a NATS restart).
//!   The task retries with backoff; when it gives up, an orchestrator restarts it (Nomad: RETRY).
//!
//! A definite error carries its [`DefiniteCause`], which says what to fix. MySQL errors are
//! classified by server error code ([`codes`], one table) in [`classify_mysql`], never by
//! message text.

use std::fmt;

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Retrying cannot help; fix the cause (the message names it) and restart the job.
    #[error("{0}")]
    Definite(Definite),
    /// Retrying may help.
    #[error("{0}")]
    Transient(String),
}

/// A definite error: what was being done, and the cause the user must fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definite {
    /// What was being done (may be empty).
    pub context: String,
    /// Why it cannot work.
    pub cause: DefiniteCause,
}

impl fmt::Display for Definite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(f, "{}", self.cause)
        } else {
            write!(f, "{}: {}", self.context, self.cause)
        }
    }
}

/// The causes retrying cannot cure, each naming what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefiniteCause {
    /// Wrong user or password, or a privilege missing: fix the job's credentials or grants.
    #[error("{0}")]
    AccessDenied(String),
    /// The position to read from is not in the source's binlog (purged, or never there): start
    /// the job afresh (a new snapshot) or from a position the source has.
    #[error("{0}")]
    BinlogPurged(String),
    /// A schema or table the job needs does not exist.
    #[error("{0}")]
    MissingTable(String),
    /// A server setting replication needs has another value.
    #[error("{setting} is {actual}, but replication needs {expected}")]
    InvalidSystemSetting {
        /// The setting (`binlog_format`, ...).
        setting: String,
        /// The value needed.
        expected: String,
        /// The value found.
        actual: String,
    },
    /// The change stream or a stored position cannot be read: corrupt, or from another version.
    #[error("{0}")]
    CorruptStream(String),
    /// The target no longer matches the source (a row the source inserts is already there).
    #[error("{0}")]
    Diverged(String),
    /// A schema change the job cannot replicate.
    #[error("{0}")]
    UnsupportedSchemaChange(String),
    /// A column whose values dtle-rs cannot read from the binlog.
    #[error("{0}")]
    UnsupportedColumn(String),
    /// The job's configuration cannot work with these servers.
    #[error("{0}")]
    BadConfig(String),
}

impl TaskError {
    /// A definite error with `context` in front of its cause.
    pub fn definite(context: impl fmt::Display, cause: DefiniteCause) -> Self {
        TaskError::Definite(Definite {
            context: context.to_string(),
            cause,
        })
    }

    /// A definite error that needs no context besides its cause.
    pub fn because(cause: DefiniteCause) -> Self {
        Self::definite("", cause)
    }

    /// A transient error with `context` in front of the cause.
    pub fn transient(context: impl fmt::Display, cause: impl fmt::Display) -> Self {
        TaskError::Transient(format!("{context}: {cause}"))
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, TaskError::Transient(_))
    }

    /// The cause of a definite error.
    pub fn cause(&self) -> Option<&DefiniteCause> {
        match self {
            TaskError::Definite(definite) => Some(&definite.cause),
            TaskError::Transient(_) => None,
        }
    }
}

/// MySQL/MariaDB server error codes this crate reacts to, in one place; every other server error
/// is transient (lost connections, deadlocks, lock waits, shutdowns, too many connections).
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

    /// Errors a schema change raises when it has already been applied: database exists (1007),
    /// database missing (1008), table exists (1050), unknown table (1051), unknown column
    /// (1054), duplicate column (1060), duplicate key name (1061), cannot drop column or key
    /// (1091), no such table (1146).
    pub const SCHEMA_CHANGE_ALREADY_APPLIED: &[u16] =
        &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146];

    /// The definite cause a server error code stands for; `None`: transient.
    pub fn definite_cause(code: u16, message: String) -> Option<super::DefiniteCause> {
        use super::DefiniteCause::*;
        match code {
            ACCESS_DENIED | DBACCESS_DENIED | SPECIFIC_ACCESS_DENIED => Some(AccessDenied(message)),
            BAD_DB | NO_SUCH_TABLE => Some(MissingTable(message)),
            MASTER_FATAL_READING_BINLOG => Some(BinlogPurged(message)),
            _ => None,
        }
    }
}

/// Classifies a mysql_async error, with `context` saying what was being done.
pub fn classify_mysql(context: impl fmt::Display, err: &mysql_async::Error) -> TaskError {
    match err {
        mysql_async::Error::Server(server) => {
            let cause = format!("{} (MySQL error {})", server.message, server.code);
            match codes::definite_cause(server.code, cause.clone()) {
                Some(definite) => TaskError::definite(context, definite),
                None => TaskError::transient(context, cause),
            }
        }
        mysql_async::Error::Io(io) => TaskError::transient(context, io),
        mysql_async::Error::Driver(driver) => TaskError::transient(context, driver),
        mysql_async::Error::Url(url) => {
            TaskError::definite(context, DefiniteCause::BadConfig(url.to_string()))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_map_to_causes_and_messages_keep_their_context() {
        let err = TaskError::definite(
            "connecting to the source server",
            codes::definite_cause(1045, "Access denied (MySQL error 1045)".into()).expect("1045"),
        );
        assert!(matches!(err.cause(), Some(DefiniteCause::AccessDenied(_))));
        assert_eq!(
            err.to_string(),
            "connecting to the source server: Access denied (MySQL error 1045)"
        );
        assert!(matches!(
            codes::definite_cause(1236, String::new()),
            Some(DefiniteCause::BinlogPurged(_))
        ));
        assert_eq!(codes::definite_cause(1213, "deadlock".into()), None);
        let setting = TaskError::because(DefiniteCause::InvalidSystemSetting {
            setting: "binlog_format".into(),
            expected: "ROW".into(),
            actual: "STATEMENT".into(),
        });
        assert_eq!(
            setting.to_string(),
            "binlog_format is STATEMENT, but replication needs ROW"
        );
        assert!(!setting.is_transient());
    }
}
