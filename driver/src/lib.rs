//! The dtle-rs task driver: the **Src** task (extractor: consistent snapshot, then the binlog) and
//! the **Dest** task (applier into MySQL/MariaDB), linked by NATS, and the adapter that lets a
//! Nomad client run them through its task-driver plugin protocol.
//!
//! Tasks are built from a validated [`jobs::JobSpec`]. The replication engine itself is being
//! built (issue "Replication engine"); this crate holds no task yet.
