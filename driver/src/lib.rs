//! The dtle-rs task driver: the **Src** task (extractor: consistent snapshot, then the binlog) and
//! the **Dest** task (applier into MySQL/MariaDB), linked by NATS.
//!
//! # Map
//! - [`task`]: the one way to run a task, whoever asks (the agent, `dtle task run`);
//! - [`extractor`]: the Src task: snapshot, binlog, decoding, routing, filters, DDL;
//! - [`applier`]: the Dest task: statements, the position tables that make resume exact;
//! - [`change`]: the change model both tasks share (items, rows, values, positions);
//! - [`transport`]: frames over NATS, flow control, the sync protocol;
//! - [`mysql`]: connecting (TLS as the job's `SslMode` says), quoting, parameters; [`tls`]: TLS
//!   files checked and TLS refusals told apart; [`retry`]: backoff for what may heal;
//!   [`error`]: definite vs transient;
//! - [`stats`]: the counters the API shows;
//! - [`plugin`]: plugin mode, Nomad's task-driver protocol over gRPC (adapts it to the task API).

pub mod applier;
pub mod change;
pub mod error;
pub mod extractor;
pub mod mysql;
pub mod plugin;
pub mod retry;
pub mod stats;
pub mod task;
pub mod tls;
pub mod transport;
