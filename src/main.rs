//! `dtle`: the one dtle-rs executable.
//!
//! Each subcommand is a thin edge over the library crates: `jobs` (the job model), `driver` (the
//! Src and Dest tasks, and plugin mode for Nomad) and `gateway` (the HTTP API). Errors are
//! reported here, once, with anyhow; the libraries return typed errors. Started by a Nomad client
//! (its magic cookie in the environment), `dtle` serves the plugin protocol instead of a command.

mod cmd;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// dtle-rs: MySQL/MariaDB change-data-capture replication (snapshot + binlog) between servers.
#[derive(Parser, Debug)]
#[command(name = "dtle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent: the dtle 2.x HTTP API, the embedded orchestrator and the tasks; or, with
    /// --nomad-addr, the API in front of a Nomad cluster.
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
    // mysql_async pools up to 128 buffers and keeps each up to 4 MiB, which one large row can
    // fill: keep at most 256 KiB per pooled buffer (measured: the Dest of a 1 GiB transaction
    // peaked at 112 MiB instead of 178). Set before any thread starts; a user's value wins.
    if std::env::var_os("MYSQL_ASYNC_BUFFER_SIZE_CAP").is_none() {
        std::env::set_var("MYSQL_ASYNC_BUFFER_SIZE_CAP", "262144");
    }
    // Started by a Nomad client as a task-driver plugin: no arguments, the cookie in the env.
    if std::env::var_os(driver::plugin::handshake::MAGIC_COOKIE_KEY).is_some() {
        return cmd::plugin::run();
    }
    let command = Cli::command();
    let matches = command.clone().get_matches();
    if let Err(err) = cmd::refuse_secrets_on_command_line(&command, &matches) {
        eprintln!("dtle: {err}");
        return ExitCode::from(2);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let default_level = match &cli.command {
        Command::Agent(args) => cmd::agent::log_level(args).unwrap_or_else(|| "info".into()),
        _ => "info".into(),
    };
    // The agent also keeps each job's lines in a file of its own (SeaTunnel's `/logs`).
    let job_logs = match &cli.command {
        Command::Agent(args) => {
            cmd::agent::job_log_dir(args).map(gateway::joblog::JobLogLayer::new)
        }
        _ => None,
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_env("DTLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(job_logs)
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
