//! The task API: the one way a task runs, whoever asks (the embedded orchestrator, the Nomad
//! plugin, or `dtle task` on the command line).

use crate::error::{DefiniteCause, TaskError};
use crate::retry::RetryPolicy;
use crate::stats::TaskStats;
use crate::transport::connection::{self, ConnectFailure, Endpoint};
use crate::transport::protocol::Subjects;
use crate::transport::receiver::Receiver;
use crate::transport::security::NatsSecurity;
use crate::transport::sender::{Sender, SenderConfig};
use jobs::{JobSpec, Role};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a task needs besides its job.
#[derive(Clone)]
pub struct TaskContext {
    /// NATS server URL, e.g. `nats://127.0.0.1:8193`.
    pub nats_url: String,
    /// Credentials and TLS for the NATS server (none by default).
    pub nats_security: NatsSecurity,
    /// Fires to stop the task (it then returns `Ok`).
    pub cancel: CancellationToken,
    /// The task's counters, shared with whoever shows them.
    pub stats: Arc<TaskStats>,
    /// How long transient failures are retried inside the task.
    pub retry: RetryPolicy,
}

/// Runs the `role` task of `spec` until it is cancelled or fails.
///
/// # Errors
/// A [`TaskError`]: definite (do not restart) or transient (restart with backoff).
pub async fn run(spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
    let span = tracing::info_span!("task", job = %spec.name, job_id = %spec.id, task = %role);
    // The throughput is measured on a timer while the task runs, never by whoever reads it.
    let sampler = Sampler(tokio::spawn(crate::stats::sample_throughput_every(
        ctx.stats.clone(),
        crate::stats::THROUGHPUT_PERIOD,
    )));
    let stats = ctx.stats.clone();
    let result = run_task(spec, role, ctx).instrument(span).await;
    drop(sampler);
    stats.throughput_stopped();
    result
}

/// The throughput timer of a running task; stops with it (even if the task's future is dropped).
struct Sampler(tokio::task::JoinHandle<()>);

impl Drop for Sampler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_task(spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
    let name = format!("dtle {} {role}", spec.name);
    let endpoint = Endpoint {
        url: &ctx.nats_url,
        security: &ctx.nats_security,
        job: &spec.name,
        name: &name,
    };
    let nats = match connection::connect(&endpoint, ctx.stats.clone(), &ctx.cancel).await {
        Ok(nats) => nats,
        Err(ConnectFailure::Cancelled) => return Ok(()),
        Err(ConnectFailure::Refused(why)) => {
            return Err(TaskError::definite(
                format!("connecting to NATS at {}", ctx.nats_url),
                DefiniteCause::BadConfig(why),
            ))
        }
    };
    let subjects = Subjects::for_job(&spec.name);
    let watched = nats.clone();
    let work = async move {
        match role {
            Role::Src => {
                let extract = &spec.src.extract;
                let sender = Sender::new(
                    nats,
                    subjects,
                    SenderConfig {
                        window: extract.repl_chan_buffer_size.max(1),
                        group_max_size: usize::try_from(extract.group_max_size)
                            .unwrap_or(usize::MAX),
                        group_timeout: Duration::from_millis(extract.group_timeout_ms),
                    },
                    ctx.stats.clone(),
                )
                .await
                .map_err(|e| TaskError::transient("subscribing on NATS", e))?;
                crate::extractor::run(spec, sender, ctx.stats, ctx.retry, ctx.cancel).await
            }
            Role::Dest => {
                let receiver = Receiver::new(nats, subjects, ctx.stats.clone())
                    .await
                    .map_err(|e| TaskError::transient("subscribing on NATS", e))?;
                crate::applier::run(spec, receiver, ctx.stats, ctx.retry, ctx.cancel).await
            }
        }
    };
    // A refusal by the server (credentials revoked, a subject this task's NATS user may not use)
    // ends the task: nothing it sends or awaits would get through. Its work is dropped as a
    // stopped task's is (the target commits nothing half-done).
    tokio::select! {
        result = work => result,
        why = watched.refusal() => Err(TaskError::definite(
            "using NATS",
            DefiniteCause::BadConfig(why),
        )),
    }
}

/// Deletes a job's position rows on its target, so that posting it again starts afresh.
///
/// # Errors
/// When the target cannot be reached or the rows cannot be deleted.
pub async fn forget_position(spec: &JobSpec) -> Result<(), TaskError> {
    let mut conn = crate::mysql::connect(&spec.dest.connection, "target").await?;
    crate::applier::position::forget(&mut conn, &spec.name).await
}
