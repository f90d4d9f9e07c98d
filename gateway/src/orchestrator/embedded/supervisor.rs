//! Running one task through the driver's task API, restarting it after transient failures.
//!
//! # Restart policy
//! Like Nomad's `restart` stanza in `delay` mode: after a transient failure the task waits `delay`
//! (doubling up to `max_delay`) and starts again, at most `attempts` times within `interval`; more
//! failures than that, or one definite failure (bad credentials, purged binlog), and the task is
//! dead and failed. A task the user stops is killed, not failed. Every step is a task event.

use super::super::{now_ns, rfc3339, Allocation, TaskEvent};
use driver::error::TaskError;
use driver::retry::RetryPolicy;
use driver::stats::TaskStats;
use driver::task::TaskContext;
use driver::transport::security::NatsSecurity;
use jobs::{JobSpec, Role};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most events kept per task (the oldest are dropped).
const MAX_EVENTS: usize = 50;

/// When and how often a failed task is restarted.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// Restarts allowed within `interval`.
    pub attempts: u32,
    /// The window `attempts` is counted in.
    pub interval: Duration,
    /// First delay before a restart.
    pub delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            attempts: 10,
            interval: Duration::from_secs(30 * 60),
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// How a task is run: [`DriverRunner`] in the agent, a stand-in in the orchestrator's tests.
#[async_trait::async_trait]
pub trait TaskRunner: Send + Sync {
    /// Runs the `role` task of `spec` until `ctx.cancel` fires (it then returns `Ok`) or it
    /// fails.
    ///
    /// # Errors
    /// A [`TaskError`]: definite (not restarted) or transient (restarted with backoff).
    async fn run(&self, spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError>;
}

/// The driver's task API, the one way a real task runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverRunner;

#[async_trait::async_trait]
impl TaskRunner for DriverRunner {
    async fn run(&self, spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
        driver::task::run(spec, role, ctx).await
    }
}

/// RFC 3339 UTC time of now.
pub fn now_rfc3339() -> String {
    rfc3339(now_ns())
}

/// Marks an allocation that will not be started: stopped, failed, with `message` as a setup
/// failure (a job whose passwords this agent cannot open).
pub fn refuse_start(alloc: &mut Allocation, message: &str) {
    alloc.desired_status = "stop".into();
    alloc.client_status = "failed".into();
    alloc.task_state.state = "dead".into();
    alloc.task_state.failed = true;
    push_event(alloc, "Setup Failure", message, message, Duration::ZERO);
}

/// Adds an event to an allocation.
pub fn push_event(
    alloc: &mut Allocation,
    kind: &str,
    message: &str,
    driver_error: &str,
    delay: Duration,
) {
    let events = &mut alloc.task_state.events;
    events.push(TaskEvent {
        kind: kind.to_owned(),
        time: now_ns(),
        message: message.to_owned(),
        driver_error: driver_error.to_owned(),
        restart_delay: delay.as_nanos() as u64,
        driver_message: String::new(),
        kill_timeout: 0,
        exit_code: 0,
    });
    if events.len() > MAX_EVENTS {
        let extra = events.len() - MAX_EVENTS;
        events.drain(..extra);
    }
    alloc.modify_time = now_ns();
}

/// What a supervised task needs.
pub struct Supervised {
    /// The job.
    pub spec: JobSpec,
    /// The allocation record to keep current.
    pub alloc: Arc<Mutex<Allocation>>,
    /// The task's counters.
    pub stats: Arc<TaskStats>,
    /// Fires when the user stops or pauses the job.
    pub cancel: CancellationToken,
    /// The NATS server.
    pub nats_url: String,
    /// The credentials and TLS for it.
    pub nats_security: NatsSecurity,
    /// Restarts.
    pub policy: RestartPolicy,
    /// Retries inside the task.
    pub retry: RetryPolicy,
    /// Called after each change of the allocation, to persist it.
    pub on_change: Arc<dyn Fn() + Send + Sync>,
    /// What runs the task.
    pub runner: Arc<dyn TaskRunner>,
}

/// Runs the task until it is stopped, finishes, or fails for good. Once `task.cancel` has fired
/// it starts nothing more and returns as soon as the running task does.
pub async fn supervise(task: Supervised) {
    let role = task.alloc.lock().map(|a| a.role).unwrap_or(Role::Src);
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let mut backoff = driver::retry::Backoff::new(task.policy.delay, task.policy.max_delay);
    loop {
        if task.cancel.is_cancelled() {
            return;
        }
        update(&task, |a| {
            a.client_status = "running".into();
            a.task_state.state = "running".into();
            a.task_state.started_at = Some(now_rfc3339());
            push_event(a, "Started", "Task started by client", "", Duration::ZERO);
        });
        let ctx = TaskContext {
            nats_url: task.nats_url.clone(),
            nats_security: task.nats_security.clone(),
            cancel: task.cancel.clone(),
            stats: task.stats.clone(),
            retry: task.retry.clone(),
        };
        let result = task.runner.run(&task.spec, role, ctx).await;
        if task.cancel.is_cancelled() {
            // The caller records why (stopped, paused, updated).
            return;
        }
        match result {
            Ok(()) => {
                update(&task, |a| {
                    a.client_status = "complete".into();
                    a.task_state.state = "dead".into();
                    a.task_state.finished_at = Some(now_rfc3339());
                    push_event(
                        a,
                        "Terminated",
                        "Task finished (the snapshot is copied; SkipIncrementalCopy)",
                        "",
                        Duration::ZERO,
                    );
                });
                return;
            }
            Err(err) if err.is_transient() => {
                let now = Instant::now();
                recent.push_back(now);
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > task.policy.interval)
                {
                    recent.pop_front();
                }
                if recent.len() as u32 > task.policy.attempts {
                    fail(
                        &task,
                        &format!(
                            "{err} (more than {} restarts within {:?})",
                            task.policy.attempts, task.policy.interval
                        ),
                    );
                    return;
                }
                let message = err.to_string();
                let delay = backoff.next_delay();
                update(&task, |a| {
                    a.task_state.restarts += 1;
                    a.task_state.state = "pending".into();
                    a.client_status = "pending".into();
                    push_event(
                        a,
                        "Restarting",
                        "Task failed; restarting after a delay",
                        &message,
                        delay,
                    );
                });
                if !driver::retry::sleep(delay, &task.cancel).await {
                    return;
                }
            }
            Err(err) => {
                fail(&task, &err.to_string());
                return;
            }
        }
    }
}

fn fail(task: &Supervised, error: &str) {
    tracing::error!(%error, "task failed");
    update(task, |a| {
        a.client_status = "failed".into();
        a.task_state.state = "dead".into();
        a.task_state.failed = true;
        a.task_state.finished_at = Some(now_rfc3339());
        push_event(
            a,
            "Terminated",
            "Task failed and will not be restarted",
            error,
            Duration::ZERO,
        );
        if let Some(event) = a.task_state.events.last_mut() {
            event.exit_code = 1;
        }
    });
}

fn update(task: &Supervised, change: impl FnOnce(&mut Allocation)) {
    if let Ok(mut alloc) = task.alloc.lock() {
        change(&mut alloc);
    }
    (task.on_change)();
}
