//! The orchestrator's task lifecycles under paused time, with a stand-in for the driver: stop,
//! purge, pause, update and shutdown return only once the tasks' futures have ended, and give
//! a task that ignores cancellation up after `kill_timeout`.

use super::*;
use driver::error::TaskError;
use driver::task::TaskContext;
use jobs::JobSpec;
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

fn job(name: &str, chunk_size: u64) -> ParsedJob {
    let text = format!(
        r#"{{"Name": "{name}", "Tasks": [
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
