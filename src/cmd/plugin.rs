//! Plugin mode: `dtle` started by a Nomad client (the magic cookie is in its environment).
//!
//! Logs go to stderr only, without colours (the client relays each line into its own log); the
//! protocol itself lives in `driver::plugin`. After the client restarts and reattaches, stderr may
//! be a dead pipe: a log line that cannot be written is dropped. (tracing-subscriber would
//! otherwise report the failed write with `eprintln!`, which panics on that very pipe.)

use std::process::ExitCode;

/// Sets up logging and serves Nomad's plugin protocol until the client shuts the plugin down.
pub fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DTLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .log_internal_errors(false)
        .init();
    driver::plugin::run()
}
