//! One module per subcommand group.

pub mod agent;
pub mod job;
pub mod task;
