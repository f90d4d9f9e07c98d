//! Where in the source's history a change comes from.

use jobs::{GtidSet, MariaDbGtid, ServerUuid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One source transaction's GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gtid {
    /// MariaDB: domain-server-sequence.
    MariaDb(MariaDbGtid),
    /// MySQL: server UUID and transaction number.
    MySql {
        /// Originating server.
        uuid: ServerUuid,
        /// Transaction number on that server.
        gno: u64,
    },
}

impl Gtid {
    /// Whether `set` already holds this transaction.
    pub fn is_in(&self, set: &GtidSet) -> bool {
        match self {
            Gtid::MariaDb(g) => set.contains_mariadb(g),
            Gtid::MySql { uuid, gno } => set.contains_mysql(uuid, *gno),
        }
    }

    /// Adds this transaction to `set` (which must be of the same family).
    pub fn add_to(&self, set: &mut GtidSet) {
        match self {
            Gtid::MariaDb(g) => set.add_mariadb(*g),
            Gtid::MySql { uuid, gno } => set.add_mysql_interval(*uuid, *gno, *gno),
        }
    }

    /// A set holding just this transaction.
    pub fn to_set(&self) -> GtidSet {
        let mut set = match self {
            Gtid::MariaDb(_) => GtidSet::MariaDb(Default::default()),
            Gtid::MySql { .. } => GtidSet::MySql(Default::default()),
        };
        self.add_to(&mut set);
        set
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MariaDb(g) => write!(f, "{g}"),
            Gtid::MySql { uuid, gno } => write!(f, "{uuid}:{gno}"),
        }
    }
}

/// The target schema holding the applier's position tables: never replicated, whatever a job
/// says, so that a job between two dtle-rs targets cannot copy another job's positions.
pub const POSITION_SCHEMA: &str = "dtle";

/// A point in the source's binlog: the GTID set executed up to it (when the server has GTIDs)
/// and the binlog file and offset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Transactions executed up to this point.
    pub gtid_set: Option<GtidSet>,
    /// Binlog file name (empty when unknown).
    pub file: String,
    /// Offset in that file of the next event.
    pub pos: u64,
    /// Where a restart must read the binlog from, when that is before `gtid_set`: an XA
    /// transaction prepared earlier and not yet committed or rolled back has its rows at its
    /// `XA PREPARE`, which a restart from `gtid_set` would never see again. `None`: from
    /// `gtid_set`.
    #[serde(default)]
    pub resume_from: Option<GtidSet>,
}

impl SourcePosition {
    /// The GTID set a restart reads the binlog from.
    pub fn restart_set(&self) -> Option<&GtidSet> {
        self.resume_from.as_ref().or(self.gtid_set.as_ref())
    }
}

impl fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.gtid_set, self.file.is_empty()) {
            (Some(set), true) => write!(f, "{set}"),
            (Some(set), false) => write!(f, "{set} ({}:{})", self.file, self.pos),
            (None, _) => write!(f, "{}:{}", self.file, self.pos),
        }
    }
}
