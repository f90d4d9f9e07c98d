//! `dtle task run`: one task of a job in the foreground, until Ctrl-C or SIGTERM.
//!
//! This is the task API on the command line: what the agent's embedded orchestrator and the
//! Nomad plugin run in-process, runnable by hand (and by the end-to-end tests, which kill it).

use anyhow::Context;
use clap::{Args, ValueEnum};
use driver::retry::RetryPolicy;
use driver::stats::{TaskStats, Wait};
use driver::task::TaskContext;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// The extractor (snapshot + binlog reader).
    Src,
    /// The applier.
    Dest,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Which task of the job.
    #[arg(long)]
    role: RoleArg,
    /// The job file (dtle JSON, Nomad JSON or Nomad HCL).
    job: PathBuf,
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:8193", env = "DTLE_NATS")]
    nats: String,
    /// Attempts at a transient failure before the task gives up.
    #[arg(long, default_value_t = 6)]
    retries: u32,
    /// NATS credentials and TLS.
    #[command(flatten)]
    nats_security: super::nats::NatsArgs,
}

/// Logs the task's counters every [`REPORT_EVERY`], and once more when it stops: what a user
/// running a task by hand (or a benchmark) reads for its progress and where its time goes.
async fn report(stats: Arc<TaskStats>, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    ticks.tick().await;
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            _ = cancel.cancelled() => true,
        };
        let s = stats.snapshot();
        let waited = |on: Wait| s.waited_us[on as usize] / 1000;
        tracing::info!(
            stage = %s.stage,
            rows_read = s.rows_read,
            txns_read = s.txns_read,
            rows_applied = s.rows_applied,
            txns_applied = s.txns_applied,
            target_commits = s.target_commits,
            waited_source_ms = waited(Wait::Source),
            waited_target_ms = waited(Wait::Target),
            waited_peer_ms = waited(Wait::Peer),
            "counters"
        );
        if last {
            return;
        }
    }
}

/// How often `task run` logs its counters.
const REPORT_EVERY: Duration = Duration::from_secs(10);

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let parsed =
        jobs::parse_job(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.job.display()))?;
    for warning in &parsed.warnings {
        tracing::warn!(%warning, "job");
    }
    let role = match args.role {
        RoleArg::Src => jobs::Role::Src,
        RoleArg::Dest => jobs::Role::Dest,
    };
    let nats_security =
        super::nats::security(&args.nats_security, None).context("the NATS settings")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            super::shutdown_signal().await;
            tracing::info!("stopping");
            stop.cancel();
        });
        let stats = Arc::new(TaskStats::default());
        tokio::spawn(report(stats.clone(), cancel.clone()));
        let ctx = TaskContext {
            nats_url: args.nats,
            nats_security,
            cancel,
            stats,
            retry: RetryPolicy {
                attempts: args.retries,
                first_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(8),
            },
        };
        driver::task::run(&parsed.spec, role, ctx).await
    });
    // Let connections close (and log) before the verdict, so the verdict is the last line.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            // One line naming the cause; the exit code tells definite (2) from transient (1).
            eprintln!("dtle: {role} task failed: {err}");
            Ok(if err.is_transient() {
                ExitCode::FAILURE
            } else {
                ExitCode::from(2)
            })
        }
    }
}
