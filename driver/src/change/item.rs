//! The items of a change stream.

use super::{SourcePosition, TableDef, Value};
use crate::change::Gtid;
use serde::{Deserialize, Serialize};

/// One element of the stream from the extractor to the applier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// Defines table `id` for the rows that follow.
    Table(TableDef),
    /// A consistent snapshot starts; its rows reflect exactly the source at `position`.
    SnapshotBegin {
        /// Identifies this snapshot; progress recorded on the target refers to it.
        snapshot_id: u64,
        /// The source position the snapshot was taken at; the binlog follows from here.
        position: SourcePosition,
        /// Rows the source's statistics estimate for all tables (progress and ETA).
        rows_estimated: u64,
    },
    /// Rows of one snapshot chunk of one table, and how far the table's copy has come.
    SnapshotChunk {
        /// Table id of the rows.
        table: u32,
        /// The rows, in key order.
        rows: Vec<Vec<Value>>,
        /// Progress to record together with these rows.
        progress: ChunkProgress,
    },
    /// Every table has been copied; the binlog follows from `binlog_from`.
    SnapshotEnd {
        /// The snapshot that ended.
        snapshot_id: u64,
        /// Where the binlog starts: the snapshot's position, or an earlier one when tables copied
        /// by an earlier snapshot were kept. Each table skips what its own copy already holds.
        binlog_from: SourcePosition,
    },
    /// A source transaction begins.
    Begin(TxnMeta),
    /// A row changed, inside a transaction.
    Row(RowChange),
    /// A schema change, inside a transaction (DDL is a transaction of its own in the binlog; during
    /// the snapshot, the statements that create schemas and tables).
    Ddl(Ddl),
    /// The current transaction ends; `position` is the source position just after it.
    Commit {
        /// Where the source is after this transaction.
        position: SourcePosition,
    },
    /// No change, but the source advanced (filtered transactions, idle heartbeats): lets the
    /// applier record progress and measure lag.
    Heartbeat {
        /// Where the source is.
        position: SourcePosition,
        /// 0: the extractor is at the end of the binlog (the source sent its idle heartbeat), so
        /// an applier that has applied everything before this item is caught up. Otherwise the
        /// source time (seconds since the epoch) of the filtered events this heartbeat stands
        /// for. (Heartbeat events carry 0 in their header, so extractors before this meaning was
        /// written down already sent 0 for them: the wire format did not change.)
        timestamp: u32,
    },
    /// Inside a source transaction whose schema change brought tables into the job: the
    /// `SnapshotChunk`s that follow copy them from a snapshot at `position`, so the applier skips
    /// their binlog changes up to there. Applied only with the transaction (not when it was
    /// applied before).
    TableCopy {
        /// Identifies the copy's snapshot in the progress records.
        snapshot_id: u64,
        /// The source position the copy reflects.
        position: SourcePosition,
        /// The target tables copied (`schema.table`).
        tables: Vec<String>,
    },
}

/// What is known of a source transaction when it begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    /// Its GTID, when the source has GTIDs.
    pub gtid: Option<Gtid>,
    /// Source commit time, seconds since the epoch (for lag).
    pub timestamp: u32,
}

/// One row change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    /// Table id (see [`Item::Table`]).
    pub table: u32,
    /// What happened to the row.
    pub kind: RowKind,
}

/// Insert, update or delete, with the row images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowKind {
    /// A new row.
    Insert(Vec<Value>),
    /// A row changed from `before` to `after`.
    Update {
        /// The row as it was.
        before: Vec<Value>,
        /// The row as it is now.
        after: Vec<Value>,
    },
    /// A row removed.
    Delete(Vec<Value>),
}

/// A DDL statement to run on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ddl {
    /// The default schema to run it in (`USE`), already renamed.
    pub schema: Option<String>,
    /// The statement, with schema and table names already renamed.
    pub statement: String,
    /// The target tables it changes, as `schema.table` (empty for database statements).
    pub tables: Vec<String>,
}

/// How far the snapshot of one table has come, recorded on the target with its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkProgress {
    /// The snapshot the chunk belongs to.
    pub snapshot_id: u64,
    /// Source table, `schema.table`.
    pub source_table: String,
    /// Key of the last row copied (None when the table has no key and is read in one pass).
    pub last_key: Option<Vec<Value>>,
    /// Rows of this table copied so far, this chunk included.
    pub rows_done: u64,
    /// Whether this chunk is the table's last.
    pub table_done: bool,
}
