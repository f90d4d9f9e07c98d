//! The normalised job: what the rest of dtle-rs runs, whichever shape the user wrote.
//!
//! dtle users describe one replication job in one of several shapes (dtle 2.x JSON with a
//! `ConnectionConfig` per task, the later shape with `SrcConnectionConfig`/`DestConnectionConfig` on
//! the Src task, Nomad JSON, Nomad HCL). The front-ends in this crate turn each of them into the same
//! [`JobSpec`]: connection settings are on the task that uses them, extractor settings on
//! [`ExtractConfig`], applier settings on [`ApplyConfig`], and every default filled in. A `JobSpec`
//! is always valid: it is only built when validation found no error.
//!
//! Passwords are held in [`Password`], whose `Debug` and `Display` print `*`. It serialises in plain
//! text because the orchestrator must persist jobs to restart them; anything shown to a user goes
//! through [`JobSpec::redacted`] first.

use crate::gtid::GtidSet;
use crate::sql_filter::SqlFilter;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated replication job: one Src task, one Dest task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job's ID: `ID` if the user gave one (Nomad jobs always have one), else the name. Jobs
    /// with the same ID are the same job: posting it again updates it.
    pub id: String,
    /// The job's name: letters, digits, `_` and `-`, at most 64 characters, because it becomes part
    /// of NATS subjects and the key of the target's position table.
    pub name: String,
    /// dtle's `Failover`: whether the orchestrator may move the job to another node after a failure.
    pub failover: bool,
    /// Nomad datacenters the tasks may run in (dtle's default `["dc1"]`).
    pub datacenters: Vec<String>,
    /// Nomad region (dtle's default `global`).
    pub region: String,
    /// The extractor: snapshot and binlog reader on the source server.
    pub src: SrcTask,
    /// The applier into the target server.
    pub dest: DestTask,
    /// Orchestrator settings the job model does not interpret (Nomad's `restart`, `reschedule`,
    /// `resources`, `constraint`, ...), kept as written so a Nomad orchestrator can pass them on.
    pub orchestrator_settings: Vec<KeptField>,
    /// Fields nobody recognised, or recognised but unused by dtle-rs. Kept as written (and reported as
    /// warnings when the job was parsed), never silently dropped.
    pub unrecognised: Vec<KeptField>,
}

/// A field of the submitted document kept as written, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptField {
    /// Its path in the submitted document, e.g. `Tasks[0].Config.NatsAddr`.
    pub path: String,
    /// Its value as written (HCL converted to JSON).
    pub value: serde_json::Value,
    /// The task it was written for, when it sits in a Nomad group or task whose role is known
    /// (so an orchestrator can apply a group's `restart` to that task alone); `None` at the job's
    /// level and for fields outside Nomad's stanzas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// Which of the job's two tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// The extractor, reading the source server.
    Src,
    /// The applier, writing the target server.
    Dest,
}

impl Role {
    /// dtle's spelling: `Src` or `Dest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Src => "Src",
            Role::Dest => "Dest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task should run: dtle's `NodeName`/`NodeID`, or a Nomad constraint on
/// `${node.unique.name}`/`${node.unique.id}`. Empty means any node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Run on the node with this name.
    pub node_name: Option<String>,
    /// Run on the node with this ID.
    pub node_id: Option<String>,
}

/// The Src task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrcTask {
    /// Where the task runs.
    pub placement: Placement,
    /// The source server.
    pub connection: ConnectionConfig,
    /// What to read and how.
    pub extract: ExtractConfig,
}

/// The Dest task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestTask {
    /// Where the task runs.
    pub placement: Placement,
    /// The target server.
    pub connection: ConnectionConfig,
    /// How to apply.
    pub apply: ApplyConfig,
}

/// How to reach a MySQL/MariaDB server (dtle's `ConnectionConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionConfig {
    /// Host name or address; never empty.
    pub host: String,
    /// TCP port, 1-65535 (dtle accepted a number or a numeric string).
    pub port: u16,
    /// User name; never empty.
    pub user: String,
    /// The user's password (may be empty).
    pub password: Password,
    /// Connection character set (default `utf8mb4`).
    pub charset: String,
    /// Whether and how the connection is encrypted and the server verified (`SslMode`, `SslCa`,
    /// `SslCert`, `SslKey`; dtle-rs's additions, absent from jobs stored before them).
    #[serde(default)]
    pub ssl: SslConfig,
}

/// TLS to a server, as MySQL's client options say it (`--ssl-mode`, `--ssl-ca`, `--ssl-cert`,
/// `--ssl-key`). The files are paths on the node the task runs on; the job model does no I/O, so
/// the task checks that they can be read when it connects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SslConfig {
    /// How much TLS the connection needs (default [`SslMode::Disabled`], dtle's behaviour).
    pub mode: SslMode,
    /// PEM file of the certificate authorities that may have signed the server's certificate
    /// (`SslCa`); used by [`SslMode::VerifyCa`] and [`SslMode::VerifyIdentity`], which trust a
    /// built-in set of public authorities without it.
    pub ca: Option<String>,
    /// PEM file of the client certificate (chain) presented to the server (`SslCert`); given
    /// together with [`SslConfig::key`].
    pub cert: Option<String>,
    /// PEM file of the client certificate's private key (`SslKey`).
    pub key: Option<String>,
}

/// MySQL's `--ssl-mode` values, from the weakest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SslMode {
    /// No TLS (`DISABLED`): what dtle did, so the default.
    #[default]
    Disabled,
    /// TLS when the server offers it, plain otherwise; the certificate is not verified
    /// (`PREFERRED`).
    Preferred,
    /// TLS or no connection; the certificate is not verified (`REQUIRED`).
    Required,
    /// TLS, with the server's certificate signed by a trusted authority; its name is not checked
    /// (`VERIFY_CA`).
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate is valid for the host the job names
    /// (`VERIFY_IDENTITY`).
    VerifyIdentity,
}

impl SslMode {
    /// Every mode, from the weakest.
    pub const ALL: [SslMode; 5] = [
        SslMode::Disabled,
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ];

    /// MySQL's spelling: `DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    /// Reads MySQL's spelling, in any case.
    pub fn parse(text: &str) -> Option<SslMode> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(text))
    }

    /// Whether the server's certificate is checked against the authorities.
    pub fn verifies_certificate(self) -> bool {
        self >= SslMode::VerifyCa
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A password: printed as `*` by `Debug` and `Display`, so it cannot reach a log by accident.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// What dtle shows in place of a password.
    pub const MASK: &'static str = "*";

    /// Wraps a plain-text password.
    pub fn new(plain: impl Into<String>) -> Self {
        Self(plain.into())
    }

    /// The plain text, for the one place that needs it: opening a connection.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

/// Where the extractor starts, from dtle's `Gtid`, `GtidStart`, `AutoGtid` and
/// `BinlogFile`/`BinlogPos` (at most one of them may be given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartPosition {
    /// None given (`Gtid = ""`): a consistent snapshot, then the binlog from the snapshot's point.
    Snapshot,
    /// `Gtid`: no snapshot; the binlog after this set of already-executed transactions.
    AfterExecuted(GtidSet),
    /// `GtidStart`: no snapshot; the binlog from this transaction on.
    FromGtid(GtidSet),
    /// `AutoGtid`: no snapshot; the binlog from the source's current position.
    Current,
    /// `BinlogFile`/`BinlogPos`: no snapshot; the binlog from this file and offset.
    BinlogFile {
        /// Binlog file name, as `SHOW MASTER STATUS` prints it.
        file: String,
        /// Byte offset in that file (dtle's default 4, the first event).
        pos: u64,
    },
}

/// The extractor's settings (dtle's Src-side config fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractConfig {
    /// Schemas and tables to replicate; empty means every non-system schema.
    pub replicate_do_db: Vec<SchemaRule>,
    /// Schemas and tables to leave out; they win over `replicate_do_db`.
    pub replicate_ignore_db: Vec<SchemaRule>,
    /// Where reading starts.
    pub start: StartPosition,
    /// Rows per snapshot chunk (dtle's `ChunkSize`, default 2000).
    pub chunk_size: u64,
    /// Batches the extractor may send ahead of the applier's acknowledgements
    /// (`ReplChanBufferSize`, default 32).
    pub repl_chan_buffer_size: u64,
    /// A batch is sent once it holds this many bytes (`GroupMaxSize`, default 1: at once).
    pub group_max_size: u64,
    /// A batch is sent at the latest this many milliseconds after its first transaction
    /// (`GroupTimeout`, default 100).
    pub group_timeout_ms: u64,
    /// Drop target tables before the snapshot creates them (`DropTableIfExists`).
    pub drop_table_if_exists: bool,
    /// Neither create schemas nor tables on the target (`SkipCreateDbTable`).
    pub skip_create_db_table: bool,
    /// Also replicate grants, procedures and functions (`ExpandSyntaxSupport`).
    pub expand_syntax_support: bool,
    /// Stop after the snapshot, with no binlog phase (`SkipIncrementalCopy`).
    pub skip_incremental_copy: bool,
    /// Skip the pre-flight privilege checks (`SkipPrivilegeCheck`).
    pub skip_privilege_check: bool,
    /// Kinds of statements not to replicate (`SqlFilter`).
    pub sql_filter: SqlFilter,
    /// `net_write_timeout` for the source session, in seconds (`SlaveNetWriteTimeout`, default 28800).
    pub net_write_timeout_s: u64,
    /// Largest snapshot message, in bytes (`DumpEntryLimit`, default 64 MiB).
    pub dump_entry_limit: u64,
}

/// The applier's settings (dtle's Dest-side config fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyConfig {
    /// Transactions applied at once (`ParallelWorkers`, default 1).
    pub parallel_workers: u64,
    /// Use the source's commit-order dependency information for parallel apply
    /// (`UseMySQLDependency`, default true); otherwise compute write sets.
    pub use_mysql_dependency: bool,
    /// Write-set history kept for dependency tracking (`DependencyHistorySize`, default 2500).
    pub dependency_history_size: u64,
    /// `foreign_key_checks` on the target during the binlog phase (`ForeignKeyChecks`, default true);
    /// always off during the snapshot.
    pub foreign_key_checks: bool,
    /// Times a failed transaction is retried before the task stops (`RetryTxLimit`, default 3).
    pub retry_tx_limit: u64,
    /// Apply each transaction under the source's own GTID (`SetGtidNext`, default false).
    pub set_gtid_next: bool,
    /// Rows of `dtle.gtid_executed` kept per source server (`GtidExecutedRetention`, a dtle-rs
    /// setting, default 100,000): older ones are deleted, since `dtle.job_position` already holds
    /// the executed set; the rows kept let a user audit recent transactions.
    pub gtid_executed_retention: u64,
}

/// Which schemas a [`SchemaRule`] or tables a [`TableRule`] match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameMatch {
    /// Exactly this name (`TableSchema`, `TableName`).
    Exact(String),
    /// Every name this regular expression matches in full (`TableSchemaRegex`, `TableRegex`).
    Regex(Pattern),
}

impl NameMatch {
    /// Whether `name` is matched.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Exact(exact) => exact == name,
            NameMatch::Regex(pattern) => pattern.is_full_match(name),
        }
    }
}

/// A regular expression known to compile. Compared and serialised by its source text.
#[derive(Clone)]
pub struct Pattern {
    /// As written; used for renames, where `$1` refers to its groups.
    regex: regex::Regex,
    /// The same, anchored at both ends: dtle matches whole schema and table names.
    whole: regex::Regex,
}

impl Pattern {
    /// Compiles `source`.
    ///
    /// # Errors
    /// The regex crate's description of what is wrong with it.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            regex: regex::Regex::new(source)?,
            whole: regex::Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The compiled expression, as written.
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// Whether the whole of `name` matches.
    pub fn is_full_match(&self, name: &str) -> bool {
        self.whole.is_match(name)
    }

    /// `template` with `$1`/`${name}` replaced from this pattern's captures in `name`; `None` if the
    /// pattern does not match the whole of `name`.
    pub fn rename(&self, name: &str, template: &str) -> Option<String> {
        let captures = self.whole.captures(name)?;
        let mut out = String::new();
        captures.expand(template, &mut out);
        Some(out)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Pattern::new(&source).map_err(serde::de::Error::custom)
    }
}

/// One entry of `ReplicateDoDb` or `ReplicateIgnoreDb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRule {
    /// The schemas this entry is about.
    pub schema: NameMatch,
    /// The target schema's name (`TableSchemaRename`); with a regex it may use `$1`/`${name}`.
    pub rename: Option<String>,
    /// The tables of those schemas; empty means all of them.
    pub tables: Vec<TableRule>,
}

/// One entry of a [`SchemaRule`]'s `Tables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRule {
    /// The tables this entry is about.
    pub table: NameMatch,
    /// The target table's name (`TableRename`); with a regex it may use `$1`/`${name}`.
    pub rename: Option<String>,
    /// Only rows for which this SQL condition holds (`Where`).
    pub where_clause: Option<String>,
    /// Which source columns go to which target columns (`ColumnMapFrom`/`ColumnMapTo`).
    pub column_map: Option<ColumnMap>,
}

/// Source columns and the target columns they are written to, pairwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap {
    /// Source columns, in order (`ColumnMapFrom`).
    pub from: Vec<String>,
    /// Target columns, same length (`ColumnMapTo`).
    pub to: Vec<String>,
}
