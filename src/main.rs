//! `dtle`: the one dtle-rs executable.
//!
//! Each subcommand is a thin edge over the library crates: `jobs` (the job model), `driver` (the
//! Src and Dest tasks) and `gateway` (the HTTP API). Errors are reported here, once, with anyhow;
//! the libraries return typed errors.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// dtle-rs: MySQL/MariaDB change-data-capture replication (snapshot + binlog) between servers.
#[derive(Parser, Debug)]
#[command(name = "dtle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent: the dtle 2.x HTTP API, the embedded orchestrator and the tasks.
    Agent(cmd::agent::AgentArgs),
    /// Work with job files (dtle JSON, Nomad JSON or Nomad HCL).
    #[command(subcommand)]
    Job(cmd::job::JobCommand),
    /// Run one task of a job in the foreground (the task API on the command line).
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Subcommand, Debug)]
enum TaskCommand {
    /// Run the Src or Dest task of a job until Ctrl-C or SIGTERM.
    Run(cmd::task::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match &cli.command {
        Command::Agent(args) => cmd::agent::log_level(args).unwrap_or_else(|| "info".into()),
        _ => "info".into(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DTLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Agent(args) => cmd::agent::run(args),
        Command::Job(job) => cmd::job::run(job),
        Command::Task(TaskCommand::Run(args)) => cmd::task::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dtle: {err:#}");
            ExitCode::FAILURE
        }
    }
}
