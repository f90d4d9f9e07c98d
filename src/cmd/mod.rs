//! One module per subcommand group.

pub mod job;
pub mod task;
