//! The seam between the applier's rules ([`super::apply`]) and the target server (`target`).
//!
//! Everything the rules need of a target is a method here: statements with parameters, the
//! transaction brackets, schema changes, the target's own view of a table, and the position
//! tables. The rules never see a connection, so they can be unit-tested against a recording
//! executor that fails on demand (see the tests in [`super::apply`]).

pub use super::position::Stored;
use crate::change::{ChunkProgress, Ddl, Gtid, SourcePosition};
use crate::error::TaskError;
use jobs::GtidSet;

/// A failed statement: the error to report, and the server's error code when the server raised
/// it (the rules react to a few codes: a duplicate key, a schema change already applied).
#[derive(Debug)]
pub struct ExecError {
    /// The server error code, if the server answered with an error.
    pub code: Option<u16>,
    /// The classified error, with what was being done.
    pub error: TaskError,
}

impl From<ExecError> for TaskError {
    fn from(err: ExecError) -> Self {
        err.error
    }
}

/// What the target says of one of its tables: the applier must never write generated columns,
/// and can find rows by a unique key the source's binlog does not describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetTable {
    /// Generated columns (VIRTUAL and STORED/PERSISTENT), by name.
    pub generated: Vec<String>,
    /// Unique keys whose columns are all NOT NULL, primary key first, then by fewest columns:
    /// each as its column names.
    pub unique_keys: Vec<Vec<String>>,
    /// Unique indexes of any kind (nullable ones included).
    pub unique_indexes: usize,
    /// Columns of an integer type (TINYINT .. BIGINT), which compare as their values.
    pub integer_columns: Vec<String>,
    /// Whether triggers fire on the table, or foreign keys tie it to another (either way): its
    /// rows must then change in the source's order.
    pub ordered: bool,
}

/// The phase recorded with a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A snapshot is being copied.
    Snapshot,
    /// The binlog is being applied.
    Binlog,
}

impl Phase {
    /// The name stored in `dtle.job_position.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::Binlog => "binlog",
        }
    }
}

/// A target the applier writes to, for one job.
///
/// Statements run on one session, in order; `begin`/`commit`/`rollback` bracket a transaction.
/// Methods that write a position table do so inside the open transaction if there is one.
#[allow(async_fn_in_trait)] // used generically within the crate, never as `dyn`
pub trait Executor {
    /// Runs a statement without parameters.
    async fn run(&mut self, statement: &str) -> Result<(), ExecError>;

    /// Runs a statement with parameters; returns the number of rows it changed.
    async fn exec(
        &mut self,
        statement: String,
        params: Vec<mysql_async::Value>,
        context: &str,
    ) -> Result<u64, ExecError>;

    /// Runs `statements` statements sent as one text batch (`;`-separated, values as literals),
    /// in order, stopping at the first that fails; returns the rows each one changed.
    ///
    /// # Errors
    /// The index of the statement that failed, and its error.
    async fn pipeline(
        &mut self,
        sql: &[u8],
        statements: usize,
    ) -> Result<Vec<u64>, (usize, ExecError)>;

    /// The largest text batch the target accepts (its `max_allowed_packet`, less a margin).
    fn max_text(&self) -> usize;

    /// Runs a schema change in its schema and the connection character set of DDL text.
    async fn run_ddl(&mut self, ddl: &Ddl) -> Result<(), ExecError>;

    /// The target's view of `schema`.`table`; `None` when the table does not exist.
    async fn describe(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Option<TargetTable>, TaskError>;

    /// Reads the job's stored position.
    async fn read_position(&mut self) -> Result<Stored, TaskError>;

    /// Per target table, the position its snapshot copy reflects (while a catch-up is due).
    async fn read_copies(&mut self) -> Result<Vec<(String, GtidSet)>, TaskError>;

    /// Writes the job's position.
    async fn write_position(
        &mut self,
        phase: Phase,
        snapshot_id: Option<u64>,
        position: &SourcePosition,
    ) -> Result<(), TaskError>;

    /// Marks a schema change's GTID as possibly applied, before running it.
    async fn mark_pending_ddl(&mut self, gtid: &Gtid) -> Result<(), TaskError>;

    /// Records a snapshot chunk's progress.
    async fn write_progress(
        &mut self,
        progress: &ChunkProgress,
        target_table: &str,
        copied_at: Option<&GtidSet>,
    ) -> Result<(), TaskError>;

    /// Forgets the snapshot's progress rows.
    async fn clear_progress(&mut self) -> Result<(), TaskError>;

    /// Whether the session still answers.
    async fn is_alive(&mut self) -> bool;
}
