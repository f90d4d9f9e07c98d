//! The plugin's tasks: task id to the running task (a tokio task running
//! [`crate::task::run`]), in this process's memory only.
//!
//! What is committed when:
//! - [`Registry::start`] inserts the task and spawns it at once, so a StartTask that answered
//!   has a task in the registry; a second start with a live id is refused;
//! - the task's [`Completion`] is set exactly once, when `task::run` returns (or panics), and
//!   never changes after; WaitTask, StopTask and InspectTask read it through a watch channel;
//! - a pause ([`Registry::set_paused`]) stops the running `task::run` but not the task: it stays
//!   in the table, RUNNING to Nomad, with no completion, and a resume runs it again (from the
//!   target's position, like any restart);
//! - [`Registry::remove`] is the only way out (DestroyTask): a task that exited stays visible
//!   (InspectTask EXITED, WaitTask answers at once) until it is destroyed.
//!
//! The table lives in this process's memory only: after the process dies the client's
//! RecoverTask re-creates each task from its handle's `driver_state` ([`super::task_spec`]), and
//! paused if [`super::pause_marks`] says so.

use super::job_handoff;
use super::task_spec::TaskJob;
use crate::error::TaskError;
use crate::retry::RetryPolicy;
use crate::stats::TaskStats;
use crate::task::TaskContext;
use crate::transport::security::NatsSecurity;
use jobs::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// How a task ended, as WaitTask reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// 0 stopped or finished cleanly, 1 gave up on a transient error, 2 a definite error.
    pub exit_code: i32,
    /// The error's text; empty on success.
    pub err: String,
    /// When it ended.
    pub at: SystemTime,
}

impl Completion {
    fn of(result: &Result<(), TaskError>) -> Self {
        let (exit_code, err) = match result {
            Ok(()) => (0, String::new()),
            Err(e) if e.is_transient() => (1, e.to_string()),
            Err(e) => (2, e.to_string()),
        };
        Completion {
            exit_code,
            err,
            at: SystemTime::now(),
        }
    }
}

/// One task of the registry.
#[derive(Debug, Clone)]
pub struct RunningTask {
    pub id: String,
    /// The Nomad task name (`Src`/`Dest` as the user wrote it).
    pub name: String,
    pub alloc_id: String,
    pub role: Role,
    pub cancel: CancellationToken,
    pub stats: Arc<TaskStats>,
    pub started_at: SystemTime,
    /// `None` while running.
    pub completion: watch::Receiver<Option<Completion>>,
    /// Whether the task is paused (SignalTask).
    pub control: Arc<watch::Sender<bool>>,
    /// The token of the current run (a child of `cancel`), cancelled to pause.
    current: Arc<Mutex<CancellationToken>>,
}

impl RunningTask {
    /// The completion, if the task has ended.
    pub fn completed(&self) -> Option<Completion> {
        self.completion.borrow().clone()
    }

    /// Waits until the task has ended.
    pub async fn wait(&self) -> Completion {
        let mut rx = self.completion.clone();
        let result = rx.wait_for(Option::is_some).await.map(|c| c.clone());
        match result {
            Ok(Some(c)) => c,
            // The sender is dropped only after sending.
            _ => Completion {
                exit_code: 2,
                err: "the task vanished without an exit result".into(),
                at: SystemTime::now(),
            },
        }
    }

    /// Waits up to `timeout` for the end; `None` when it has not come.
    pub async fn wait_timeout(&self, timeout: Duration) -> Option<Completion> {
        tokio::time::timeout(timeout, self.wait()).await.ok()
    }
}

/// What a signal asks of a dtle task: `Some(true)` pause, `Some(false)` resume. dtle tasks are
/// not processes; SIGSTOP/SIGCONT (with or without `SIG`, any case, or `pause`/`resume`) map to
/// pausing and resuming the replication, anything else is refused.
pub fn pause_signal(signal: &str) -> Option<bool> {
    let name = signal.trim().to_ascii_uppercase();
    match name.strip_prefix("SIG").unwrap_or(&name) {
        "STOP" | "TSTP" | "PAUSE" => Some(true),
        "CONT" | "RESUME" => Some(false),
        _ => None,
    }
}

/// A task's life event, for TaskEvents.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
    pub at: SystemTime,
    pub message: String,
}

/// What to start.
pub struct StartRequest {
    pub id: String,
    pub name: String,
    pub alloc_id: String,
    pub role: Role,
    pub job: TaskJob,
    /// The job a Src hands over to a Dest that asks for it ([`super::job_handoff`]).
    pub hand_over: Option<serde_json::Value>,
    pub nats_url: String,
    /// The NATS credentials and TLS (from the plugin config; never kept in a task handle).
    pub nats_security: NatsSecurity,
    /// Start paused (a task recovered after it was paused): it waits for a resume.
    pub paused: bool,
}

/// The task table.
#[derive(Debug)]
pub struct Registry {
    tasks: Mutex<HashMap<String, RunningTask>>,
    events: broadcast::Sender<TaskEvent>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            tasks: Mutex::default(),
            events: broadcast::channel(256).0,
        }
    }
}

impl Registry {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningTask>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task with this id.
    pub fn get(&self, id: &str) -> Option<RunningTask> {
        self.table().get(id).cloned()
    }

    /// The tasks of one allocation.
    pub fn by_alloc(&self, alloc_id: &str) -> Vec<RunningTask> {
        self.table()
            .values()
            .filter(|task| task.alloc_id == alloc_id)
            .cloned()
            .collect()
    }

    /// Subscribes to task events from now on.
    pub fn events(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn emit(&self, task: &RunningTask, message: String) {
        let _ = self.events.send(TaskEvent {
            task_id: task.id.clone(),
            alloc_id: task.alloc_id.clone(),
            task_name: task.name.clone(),
            at: SystemTime::now(),
            message,
        });
    }

    /// Inserts and spawns the task. Returns `false` (and starts nothing) when the id is taken.
    pub fn start(self: &Arc<Self>, request: StartRequest) -> bool {
        let StartRequest {
            id,
            name,
            alloc_id,
            role,
            job,
            hand_over,
            nats_url,
            nats_security,
            paused,
        } = request;
        let (done_tx, done_rx) = watch::channel(None);
        let task = RunningTask {
            id: id.clone(),
            name,
            alloc_id,
            role,
            cancel: CancellationToken::new(),
            stats: Arc::new(TaskStats::default()),
            started_at: SystemTime::now(),
            completion: done_rx,
            control: Arc::new(watch::channel(paused).0),
            current: Arc::default(),
        };
        {
            let mut table = self.table();
            if table.contains_key(&id) {
                return false;
            }
            table.insert(id.clone(), task.clone());
        }
        let job_name = match &job {
            TaskJob::Spec(spec) => spec.name.clone(),
            TaskJob::FromSrc { job_name } => job_name.clone(),
        };
        self.emit(&task, format!("dtle {role} task started (job {job_name})"));
        if let Some(whole) = hand_over {
            tokio::spawn(job_handoff::serve(
                nats_url.clone(),
                nats_security.clone(),
                job_name,
                whole,
                task.stats.clone(),
                task.cancel.child_token(),
            ));
        }
        let registry = Arc::clone(self);
        tokio::spawn(async move {
            let completion = registry
                .run_until_done(&task, job, nats_url, nats_security)
                .await;
            let message = match completion.exit_code {
                0 => format!("dtle {role} task stopped"),
                _ => format!("dtle {role} task failed: {}", completion.err),
            };
            registry.emit(&task, message);
            let _ = done_tx.send(Some(completion));
        });
        true
    }

    /// Runs the task, again after each resume, until it is stopped or ends on its own.
    async fn run_until_done(
        &self,
        task: &RunningTask,
        job: TaskJob,
        nats_url: String,
        nats_security: NatsSecurity,
    ) -> Completion {
        let spec = match job {
            TaskJob::Spec(spec) => *spec,
            TaskJob::FromSrc { job_name } => {
                let fetched = job_handoff::fetch(
                    &nats_url,
                    &nats_security,
                    &job_name,
                    task.stats.clone(),
                    &task.cancel,
                )
                .await;
                match fetched {
                    Ok(Some(spec)) => {
                        self.emit(
                            task,
                            format!(
                                "dtle {} task got job {job_name} from its Src task",
                                task.role
                            ),
                        );
                        spec
                    }
                    Ok(None) => return Completion::of(&Ok(())),
                    Err(err) => return Completion::of(&Err(err)),
                }
            }
        };
        let mut control = task.control.subscribe();
        loop {
            tokio::select! {
                _ = control.wait_for(|paused| !paused) => {}
                () = task.cancel.cancelled() => {}
            }
            if task.cancel.is_cancelled() {
                return Completion::of(&Ok(()));
            }
            let run = task.cancel.child_token();
            *task.current.lock().unwrap_or_else(|p| p.into_inner()) = run.clone();
            let ctx = TaskContext {
                nats_url: nats_url.clone(),
                nats_security: nats_security.clone(),
                cancel: run,
                stats: task.stats.clone(),
                retry: RetryPolicy::default(),
            };
            let (spec, role) = (spec.clone(), task.role);
            let inner = tokio::spawn(async move { crate::task::run(&spec, role, ctx).await });
            let result = inner.await;
            if task.cancel.is_cancelled() {
                return Completion::of(&Ok(()));
            }
            if *task.control.borrow() {
                continue; // paused while running: wait for the resume
            }
            return match result {
                Ok(result) => Completion::of(&result),
                Err(join) => Completion {
                    exit_code: 2,
                    err: format!("the task panicked: {join}"),
                    at: SystemTime::now(),
                },
            };
        }
    }

    /// Pauses (the running task is stopped, the entry stays; WaitTask keeps waiting) or resumes
    /// (the task runs again from the target's position). Returns whether anything changed.
    pub fn set_paused(&self, task: &RunningTask, paused: bool) -> bool {
        let changed = task.control.send_if_modified(|p| {
            let changed = *p != paused;
            *p = paused;
            changed
        });
        if changed {
            if paused {
                task.current
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .cancel();
            }
            let what = if paused { "paused" } else { "resumed" };
            self.emit(task, format!("dtle {} task {what}", task.role));
        }
        changed
    }

    /// Removes a task from the table (it must have ended, or be cancelled by the caller).
    pub fn remove(&self, id: &str) -> Option<RunningTask> {
        self.table().remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::pause_signal;

    #[test]
    fn stop_and_cont_pause_and_resume() {
        for s in ["SIGSTOP", "stop", "SIGTSTP", "pause"] {
            assert_eq!(pause_signal(s), Some(true), "{s}");
        }
        for s in ["SIGCONT", "cont", "Resume"] {
            assert_eq!(pause_signal(s), Some(false), "{s}");
        }
        for s in ["", "SIGKILL", "SIGINT", "SIGSTOPPED"] {
            assert_eq!(pause_signal(s), None, "{s}");
        }
    }
}
