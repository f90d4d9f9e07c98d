//! The dtle-rs task driver: the **Src** task (extractor: consistent snapshot, then the binlog) and
//! the **Dest** task (applier into MySQL/MariaDB), linked by NATS.
//!
//! # Map
//! - [`change`]: the change model both tasks share (items, rows, values, positions);
//! - [`transport`]: frames over NATS, flow control, the sync protocol that makes resume exact;
//! - [`stats`]: the counters the API shows.

pub mod applier;
pub mod change;
pub mod error;
pub mod extractor;
pub mod mysql;
pub mod stats;
pub mod task;
pub mod transport;
