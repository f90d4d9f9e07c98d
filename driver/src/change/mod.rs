//! The change model: what the extractor produces, the transport carries and the applier applies.
//!
//! It is the contract between the two tasks, and nothing from mysql_async crosses it. The extractor
//! emits a stream of [`Item`]s: table definitions, snapshot chunks, and source transactions as
//! `Begin`, row changes or DDL, then `Commit` carrying the source position reached. A transaction
//! is a sequence of items rather than one value so that a transaction of any size streams through
//! in bounded memory.

pub mod civil;
mod item;
mod position;
mod table;
mod value;
mod wire;

pub use item::{ChunkProgress, Ddl, Item, RowChange, RowKind, TxnMeta};
pub use position::{Gtid, SourcePosition, POSITION_SCHEMA};
pub use table::{ColumnDef, TableDef};
pub use value::Value;
