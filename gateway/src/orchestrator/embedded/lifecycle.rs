//! Task lifecycles the orchestrator can wait for: what "stopped" means, and how a stop is
//! awaited (Vector's begin, complete, force; Nomad's `kill_timeout`).
//!
//! # What a run is, and when it has ended
//! Every start of an allocation's task is one *run*: its supervisor future (the driver task and
//! the restarts after its transient failures), spawned on the orchestrator's [`TaskTracker`].
//! For as long as that future lives it holds the only token of the run's own tracker, so the
//! run has *ended* exactly when the future has returned or been dropped: the driver task has
//! returned, its connections are dropped, and the applier has rolled back what it had open (it
//! does so before it returns on cancellation). Nothing weaker counts as stopped: not a cancelled
//! token, not a status word in the allocation. Any number of callers may wait for the same end.
//!
//! # Stopping
//! 1. **Begin**: every run being stopped is cancelled at once, so they wind down in parallel.
//! 2. **Complete**: the caller awaits the end of every run, all under one deadline.
//! 3. **Force**: a run still alive at the deadline is *detached*: the caller reports it as
//!    killed (with a warning) and stops waiting. Its cancellation token stays cancelled, so the
//!    supervisor never restarts it; it ends whenever its future next returns, and the agent's
//!    shutdown, which waits for every run spawned on the tracker, bounds it once more.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One run of a task: the means to cancel it and to learn when it has ended. Cheap to clone;
/// every clone sees the same run.
#[derive(Clone, Debug)]
pub struct RunHandle {
    /// Fires to ask the run to stop; a child of the orchestrator's root token, so the agent's
    /// shutdown cancels every run.
    cancel: CancellationToken,
    /// Closed from the start and tracking one token, held by the run's future: it is empty
    /// exactly when the run has ended, and `wait` resolves then.
    ended: TaskTracker,
}

impl RunHandle {
    /// The handle of a run that never started: ended already, and never asked to stop.
    pub fn idle() -> Self {
        let ended = TaskTracker::new();
        ended.close();
        Self {
            cancel: CancellationToken::new(),
            ended,
        }
    }

    /// Spawns a run on `tasks`: `run` gets the run's cancellation token (a child of `parent`)
    /// and returns the future to run.
    pub fn spawn<F>(
        tasks: &TaskTracker,
        parent: &CancellationToken,
        run: impl FnOnce(CancellationToken) -> F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = parent.child_token();
        let ended = TaskTracker::new();
        let alive = ended.token();
        ended.close();
        let future = run(cancel.clone());
        tasks.spawn(async move {
            // Dropped with the future, whether it returns or the runtime drops it.
            let _alive = alive;
            future.await;
        });
        Self { cancel, ended }
    }

    /// Asks the run to stop (begin); it ends on its own time.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the run's future has returned (or was dropped).
    pub fn has_ended(&self) -> bool {
        self.ended.is_empty()
    }

    /// Resolves once the run has ended.
    pub async fn ended(&self) {
        self.ended.wait().await;
    }
}

/// How the stop of one run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run ended within the timeout.
    Ended,
    /// The run was still alive at the deadline and is left detached (cancelled, never
    /// restarted, no longer waited for).
    Detached,
}

/// Cancels every run (begin), waits until all have ended (complete) or `timeout` has passed
/// (force), and tells for each run, labelled by its `K`, which way it went.
pub async fn stop_all<K>(runs: Vec<(K, RunHandle)>, timeout: Duration) -> Vec<(K, Outcome)> {
    for (_, run) in &runs {
        run.cancel();
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (_, run) in &runs {
        // One deadline for all: the runs wind down in parallel, so waiting for them in turn
        // takes as long as the slowest.
        if tokio::time::timeout_at(deadline, run.ended())
            .await
            .is_err()
        {
            break;
        }
    }
    runs.into_iter()
        .map(|(label, run)| {
            let outcome = if run.has_ended() {
                Outcome::Ended
            } else {
                Outcome::Detached
            };
            (label, outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Sets its flag when dropped: the run's future is gone.
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A run that takes `linger` to wind down after it is cancelled, or ignores cancellation
    /// when `linger` is `None`; its flag is set once its future is gone.
    fn run(tasks: &TaskTracker, linger: Option<Duration>) -> (RunHandle, Arc<AtomicBool>) {
        let gone = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(gone.clone());
        let handle = RunHandle::spawn(tasks, &CancellationToken::new(), |cancel| async move {
            let _guard = guard;
            match linger {
                Some(linger) => {
                    cancel.cancelled().await;
                    tokio::time::sleep(linger).await;
                }
                None => std::future::pending::<()>().await,
            }
        });
        (handle, gone)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_returns_once_every_run_has_ended() {
        let tasks = TaskTracker::new();
        let (slow, slow_gone) = run(&tasks, Some(Duration::from_secs(3)));
        let (quick, quick_gone) = run(&tasks, Some(Duration::ZERO));
        assert!(!slow.has_ended() && !slow.is_cancelled());
        let start = tokio::time::Instant::now();
        let outcomes = stop_all(
            vec![("slow", slow.clone()), ("quick", quick)],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            outcomes,
            [("slow", Outcome::Ended), ("quick", Outcome::Ended)]
        );
        assert!(slow_gone.load(Ordering::SeqCst) && quick_gone.load(Ordering::SeqCst));
        assert!(slow.is_cancelled() && slow.has_ended());
        // Paused time: only the slow run's lingering passed, not the whole timeout.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_ignores_cancellation_is_detached_at_the_deadline() {
        let tasks = TaskTracker::new();
        let (stubborn, stubborn_gone) = run(&tasks, None);
        let (polite, polite_gone) = run(&tasks, Some(Duration::from_secs(1)));
        let start = tokio::time::Instant::now();
        let outcomes = stop_all(
            vec![("stubborn", stubborn.clone()), ("polite", polite)],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            outcomes,
            [("stubborn", Outcome::Detached), ("polite", Outcome::Ended)]
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(polite_gone.load(Ordering::SeqCst));
        assert!(
            !stubborn_gone.load(Ordering::SeqCst),
            "detached, not dropped"
        );
        assert!(stubborn.is_cancelled() && !stubborn.has_ended());
        // The tracker still counts it, so a shutdown would wait for it (bounded) once more.
        assert_eq!(tasks.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiter_sees_the_same_end() {
        let tasks = TaskTracker::new();
        let (handle, gone) = run(&tasks, Some(Duration::from_secs(2)));
        handle.cancel();
        let (a, b) = (handle.clone(), handle.clone());
        tokio::join!(a.ended(), b.ended());
        assert!(gone.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_handle_has_ended_already() {
        let idle = RunHandle::idle();
        assert!(idle.has_ended() && !idle.is_cancelled());
        let outcomes = stop_all(vec![((), idle)], Duration::from_secs(1)).await;
        assert_eq!(outcomes, [((), Outcome::Ended)]);
    }

    #[test]
    fn a_run_dropped_by_its_runtime_counts_as_ended() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let tasks = TaskTracker::new();
        let (handle, gone) = runtime.block_on(async {
            let started = run(&tasks, None);
            tokio::task::yield_now().await;
            started
        });
        assert!(!handle.has_ended());
        // The agent's last resort: the runtime shuts down and drops the unfinished future.
        drop(runtime);
        assert!(handle.has_ended() && gone.load(Ordering::SeqCst));
        assert!(tasks.is_empty());
    }
}
