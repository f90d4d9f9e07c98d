//! The conversation between the tasks over NATS, and its subjects.
//!
//! # Subjects (per job; job names are validated to be subject tokens)
//! - `dtle.<job>.sync` (request/reply, Src → Dest): the extractor opens an epoch; the applier
//!   rolls back anything uncommitted and replies with what the target has committed.
//! - `dtle.<job>.data` (Src → Dest): frames of the epoch's item stream (see [`super::codec`]).
//! - `dtle.<job>.ack` (Dest → Src): the last frame fully processed, which opens the window, and
//!   tells the extractor that every transaction committing in it is on the target (the Src's
//!   executed counts, position and lag: [`super::ledger`]).
//! - `dtle.<job>.resync` (Dest → Src): the applier lost the thread (a gap, a stale epoch, its own
//!   restart) and asks for a new sync.
//! - `dtle.<job>.job` (request/reply, Dest → Src): on Nomad, a Dest task whose config names no
//!   target asks its Src for the whole job (`crate::plugin::job_handoff`).
//!
//! # Why this is exact
//! The applier owns the position: it commits every source transaction together with its GTID on
//! the target. Every sync starts the extractor afresh from what the applier reports as committed,
//! so whatever was lost in flight (a NATS restart, a killed task) is simply sent again, and the
//! applier skips any transaction whose GTID it already holds. No acknowledgement needs to be
//! durable; NATS may lose anything.

use crate::change::{SourcePosition, Value};
use serde::{Deserialize, Serialize};

/// The NATS subjects of one job.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// Sync requests.
    pub sync: String,
    /// Data frames.
    pub data: String,
    /// Acknowledgements.
    pub ack: String,
    /// Resync requests.
    pub resync: String,
    /// Requests for the job, from a Dest task started without its target.
    pub job: String,
}

impl Subjects {
    /// The subjects of job `name` (a validated job name: letters, digits, `_`, `-`).
    pub fn for_job(name: &str) -> Self {
        let base = format!("dtle.{name}");
        Self {
            sync: format!("{base}.sync"),
            data: format!("{base}.data"),
            ack: format!("{base}.ack"),
            resync: format!("{base}.resync"),
            job: format!("{base}.job"),
        }
    }
}

/// Src → Dest: "I start epoch `epoch`; where are you?"
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The new epoch; frames of any other epoch are stale from now on.
    pub epoch: u64,
    /// The snapshot the extractor holds open, if any (it can resume that snapshot's chunks).
    pub open_snapshot: Option<u64>,
}

/// Dest → Src: what the target has committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncReply {
    /// The epoch this answers.
    pub epoch: u64,
    /// Where to continue from.
    pub resume: ResumePoint,
}

/// What the target holds for this job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResumePoint {
    /// Nothing yet: start as the job says (a snapshot, or its Gtid/AutoGtid/BinlogFile).
    Fresh,
    /// A snapshot was under way.
    Snapshot {
        /// Which snapshot.
        snapshot_id: u64,
        /// The source position it was taken at.
        position: SourcePosition,
        /// How far each table got (in this snapshot or an older one).
        tables: Vec<TableProgress>,
    },
    /// The binlog phase: continue after this position.
    Binlog {
        /// Everything up to here is committed on the target.
        position: SourcePosition,
    },
}

/// One table's snapshot progress as committed on the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProgress {
    /// The snapshot that wrote it: an older snapshot's progress means the table holds rows that a
    /// new snapshot must replace (truncate first).
    pub snapshot_id: u64,
    /// Source table, `schema.table`.
    pub source_table: String,
    /// Key of the last row committed.
    pub last_key: Option<Vec<Value>>,
    /// Rows committed.
    pub rows_done: u64,
    /// Whether the table is complete.
    pub done: bool,
    /// The source position the table's rows reflect (its snapshot's), once known.
    pub copied_at: Option<jobs::GtidSet>,
}

/// Dest → Src: frames up to `seq` of `epoch` are processed (applied and committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The epoch.
    pub epoch: u64,
    /// The last frame processed.
    pub seq: u64,
}

/// Dest → Src: "start a new epoch".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// The epoch the applier last accepted (0: none since it started).
    pub epoch: u64,
    /// Why, for the logs.
    pub reason: String,
}
