//! The orchestrator's task lifecycles under paused time, with a stand-in for the driver: stop,
//! purge, pause, update and shutdown return only once the tasks' futures have ended, and give
//! a task that ignores cancellation up after `kill_timeout`.

use super::*;
use crate::orchestrator::{Orchestrator, Watched};
use driver::error::TaskError;
use driver::task::TaskContext;
use jobs::{JobSpec, ParsedJob};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant as VirtualInstant;

const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stand-in's runs did, per role (`0` Src, `1` Dest).
#[derive(Default)]
struct Counters {
    started: [AtomicUsize; 2],
    /// Runs whose future is gone (counted by a drop guard, so a dropped future counts too).
    ended: [AtomicUsize; 2],
    live: [AtomicUsize; 2],
    /// The most runs of one role alive at once.
    most_live: [AtomicUsize; 2],
}

impl Counters {
    fn started(&self) -> usize {
        self.started.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    fn ended(&self) -> usize {
        self.ended.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    fn most_live(&self) -> [usize; 2] {
        [0, 1].map(|i| self.most_live[i].load(Ordering::SeqCst))
    }
}

/// Counts a run as ended when dropped.
struct EndGuard(Arc<Counters>, usize);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.live[self.1].fetch_sub(1, Ordering::SeqCst);
        self.0.ended[self.1].fetch_add(1, Ordering::SeqCst);
    }
}

/// A task that runs until cancelled, then takes `linger` to wind down; with `linger` `None` it
/// ignores cancellation.
struct StandIn {
    counters: Arc<Counters>,
    linger: Mutex<Option<Duration>>,
}

impl StandIn {
    fn new(linger: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            counters: Arc::default(),
            linger: Mutex::new(linger),
        })
    }
}

#[async_trait::async_trait]
impl TaskRunner for StandIn {
    async fn run(&self, _spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
        let i = match role {
            Role::Src => 0,
            Role::Dest => 1,
        };
        let c = &self.counters;
        c.started[i].fetch_add(1, Ordering::SeqCst);
        let live = c.live[i].fetch_add(1, Ordering::SeqCst) + 1;
        c.most_live[i].fetch_max(live, Ordering::SeqCst);
        let _end = EndGuard(c.clone(), i);
        let linger = *self.linger.lock().expect("lock");
        match linger {
            Some(linger) => {
                ctx.cancel.cancelled().await;
                tokio::time::sleep(linger).await;
            }
            None => std::future::pending::<()>().await,
        }
        Ok(())
    }
}

fn orchestrator(dir: &tempfile::TempDir, runner: Arc<StandIn>) -> EmbeddedOrchestrator {
    let config = EmbeddedConfig {
        state_dir: dir.path().to_owned(),
        nats_url: "nats://127.0.0.1:1".into(),
        node_name: "test".into(),
        datacenter: "dc1".into(),
        http_addr: "127.0.0.1:1".into(),
        restart: RestartPolicy::default(),
        task_retry: RetryPolicy::default(),
        kill_timeout: KILL_TIMEOUT,
    };
    EmbeddedOrchestrator::start_with(config, runner).expect("orchestrator")
}

/// A job with its `ID` given, so that posting it again with another chunk size updates it.
fn job(name: &str, chunk_size: u64) -> ParsedJob {
    let text = format!(
        r#"{{"ID": "{name}", "Name": "{name}", "Tasks": [
          {{"Type": "Src", "Config": {{"ChunkSize": {chunk_size},
            "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "p"}}}}}},
          {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u"}}}}}}]}}"#
    );
    jobs::parse_job(&text).expect("a valid job")
}

/// Lets the spawned runs get going until `started` runs have begun (paused time moves on by
/// itself while everything waits).
async fn until_started(runner: &StandIn, started: usize) {
    for _ in 0..1000 {
        if runner.counters.started() >= started {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "{started} runs did not start; {} did",
        runner.counters.started()
    );
}

/// The kinds and messages of the last event of each of `id`'s allocations, and their states.
async fn last_events(o: &EmbeddedOrchestrator, id: &str) -> Vec<(String, String, String)> {
    o.allocations(id)
        .await
        .expect("allocations")
        .into_iter()
        .map(|a| {
            let last = a.task_state.events.last().expect("an event").clone();
            (a.task_state.state, last.kind, last.message)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stop_returns_only_after_the_tasks_have_ended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(3)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    let start = VirtualInstant::now();
    o.stop("j", false, false).await.expect("stop");
    assert_eq!(
        runner.counters.ended(),
        2,
        "stop returned before the tasks ended"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    for (state, kind, message) in last_events(&o, "j").await {
        assert_eq!(
            (state.as_str(), kind.as_str(), message.as_str()),
            ("dead", "Killed", "Task killed: the job was stopped")
        );
    }
    assert_eq!(o.job("j").await.expect("job").status, "dead");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_cancellation_is_given_up_after_the_kill_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(None);
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    let start = VirtualInstant::now();
    o.stop("j", false, false).await.expect("stop");
    assert_eq!(start.elapsed(), KILL_TIMEOUT);
    assert_eq!(runner.counters.ended(), 0, "left detached, not dropped");
    for (state, kind, message) in last_events(&o, "j").await {
        assert_eq!((state.as_str(), kind.as_str()), ("dead", "Killed"));
        assert_eq!(
            message,
            "Task killed: the job was stopped; it did not end within 10s and was left detached"
        );
    }
    // The shutdown waits for the detached runs once more, as long again, and names them.
    let start = VirtualInstant::now();
    let left = o.shutdown().await;
    assert_eq!(start.elapsed(), KILL_TIMEOUT);
    assert_eq!(left, ["j.Src", "j.Dest"]);
}

#[tokio::test(start_paused = true)]
async fn an_update_starts_the_new_tasks_only_after_the_old_ones_ended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(2)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    let registered = o.register(job("j", 500)).await.expect("update");
    assert!(registered.changed);
    assert_eq!(runner.counters.ended(), 2, "the old runs ended first");
    until_started(&runner, 4).await;
    assert_eq!(
        runner.counters.most_live(),
        [1, 1],
        "never two runs of one task"
    );
    let kinds: Vec<String> = o
        .allocations("j")
        .await
        .expect("allocations")
        .into_iter()
        .flat_map(|a| a.task_state.events.into_iter().map(|e| e.kind))
        .collect();
    assert_eq!(
        kinds,
        ["Received", "Started", "Killed", "Received", "Started"].repeat(2)
    );
    o.stop("j", true, false).await.expect("purge");
}

#[tokio::test(start_paused = true)]
async fn a_purge_waits_for_the_tasks_then_forgets_the_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(1)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    o.stop("j", true, false).await.expect("purge");
    assert_eq!(runner.counters.ended(), 2);
    assert!(matches!(
        o.job("j").await,
        Err(OrchestratorError::JobNotFound(_))
    ));
    assert!(!dir.path().join("jobs/j.json").exists());
}

#[tokio::test(start_paused = true)]
async fn a_pause_waits_for_the_tasks_and_a_resume_starts_them_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(1)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    o.pause("j").await.expect("pause");
    assert_eq!(runner.counters.ended(), 2);
    assert_eq!(o.job("j").await.expect("job").status, "paused");
    for (state, kind, _) in last_events(&o, "j").await {
        assert_eq!((state.as_str(), kind.as_str()), ("dead", "Paused"));
    }
    o.resume("j").await.expect("resume");
    until_started(&runner, 4).await;
    assert_eq!(runner.counters.most_live(), [1, 1]);
    assert_eq!(o.shutdown().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_waits_for_every_task_and_starts_none_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(4)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("a", 100)).await.expect("register");
    o.register(job("b", 100)).await.expect("register");
    until_started(&runner, 4).await;
    let start = VirtualInstant::now();
    assert_eq!(o.shutdown().await, Vec::<String>::new());
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert_eq!(runner.counters.ended(), 4);
    // The jobs stay as they were, to be restored by the next start.
    assert_eq!(o.job("a").await.expect("job").status, "running");
    o.register(job("c", 100)).await.expect("register");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        runner.counters.started(),
        4,
        "nothing starts after the shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn indexes_grow_with_every_change_and_wake_the_watchers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(1)));
    let o = orchestrator(&dir, runner.clone());
    o.register(job("j", 100)).await.expect("register");
    until_started(&runner, 2).await;
    let record = o.job("j").await.expect("job");
    let job_index = o
        .wait_index(Watched::Job("j"), 0, Duration::ZERO)
        .await
        .expect("index");
    assert_eq!(job_index, record.modify_index);
    let allocs = o.allocations("j").await.expect("allocations");
    assert!(allocs.iter().all(|a| a.create_index == record.create_index));
    assert!(
        allocs.iter().all(|a| a.modify_index > a.create_index),
        "they started"
    );

    // Nothing changes: the wait ends with the same index.
    let start = VirtualInstant::now();
    let same = o
        .wait_index(Watched::Job("j"), job_index, Duration::from_secs(16))
        .await;
    assert_eq!(same.expect("index"), job_index);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(16) && waited <= Duration::from_secs(17),
        "{waited:?}"
    );

    // A pause wakes a watcher of the job and one of its allocations.
    let alloc_index = o
        .wait_index(Watched::Allocations("j"), 0, Duration::ZERO)
        .await
        .expect("index");
    let watcher = {
        let o = o.clone();
        tokio::spawn(async move {
            let job = o.wait_index(Watched::Job("j"), job_index, Duration::from_secs(300));
            let allocs = o.wait_index(
                Watched::Allocations("j"),
                alloc_index,
                Duration::from_secs(300),
            );
            (job.await, allocs.await)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    o.pause("j").await.expect("pause");
    let (job, allocs) = watcher.await.expect("watcher");
    assert!(job.expect("index") > job_index);
    assert!(allocs.expect("index") > alloc_index);
    let paused = o.job("j").await.expect("job");
    assert!(paused.modify_index > record.modify_index);
    assert_eq!(paused.job_modify_index, record.job_modify_index);

    // Released (the agent is shutting down), a wait ends at once.
    let waiting = {
        let o = o.clone();
        tokio::spawn(async move {
            let index = o.wait_index(Watched::Jobs, u64::MAX - 1, Duration::from_secs(300));
            (index.await, VirtualInstant::now())
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let released = VirtualInstant::now();
    o.release_watchers();
    let (_, answered) = waiting.await.expect("watcher");
    assert_eq!(answered, released);

    // A purge is a change of the list; the index survives a restart.
    let list = o
        .wait_index(Watched::Jobs, 0, Duration::ZERO)
        .await
        .expect("index");
    o.stop("j", true, false).await.expect("purge");
    let after = o
        .wait_index(Watched::Jobs, 0, Duration::ZERO)
        .await
        .expect("index");
    assert!(after > list);
    assert_eq!(o.shutdown().await, Vec::<String>::new());
    let again = orchestrator(&dir, runner);
    let restarted = again.wait_index(Watched::Jobs, 0, Duration::ZERO).await;
    assert_eq!(restarted.expect("index"), after);
}

#[tokio::test(start_paused = true)]
async fn a_job_posted_without_id_never_replaces_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = StandIn::new(Some(Duration::from_secs(1)));
    let o = orchestrator(&dir, runner.clone());
    let without_id = |chunk_size: u64| {
        let mut parsed = job("j", chunk_size);
        parsed.explicit_id = false;
        parsed
    };
    o.register(without_id(100)).await.expect("register");
    let again = o.register(without_id(100)).await.expect("the same job");
    assert!(!again.changed);
    assert!(matches!(
        o.register(without_id(500)).await,
        Err(OrchestratorError::Conflict(_))
    ));
    let mut renamed = job("k", 100);
    renamed.spec.name = "j".into();
    assert!(matches!(
        o.register(renamed).await,
        Err(OrchestratorError::Conflict(_))
    ));
    assert!(o.register(job("j", 500)).await.expect("update").changed);
    assert_eq!(o.jobs().await.expect("jobs").len(), 1);
}
