//! The embedded orchestrator's history feed and stop with savepoint, under paused time, with a
//! stand-in for the driver that fails or "replicates" (sets the positions and counters a real
//! task would).

use super::*;
use crate::orchestrator::history::SAMPLE_EVERY;
use driver::change::SourcePosition;
use driver::error::{DefiniteCause, TaskError};
use driver::task::TaskContext;
use jobs::JobSpec;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the stand-in does with a task.
#[derive(Clone)]
enum Script {
    /// Sets the position and counters of a running task, then runs until cancelled.
    Replicate,
    /// Fails for good with this message.
    Fail(String),
    /// Fails transiently the first time, then replicates.
    FailOnce(String),
}

struct Scripted {
    src: Script,
    dest: Script,
    runs: AtomicUsize,
}

fn position(gtid: &str) -> SourcePosition {
    SourcePosition {
        gtid_set: Some(jobs::GtidSet::parse(gtid).expect("a GTID set")),
        file: "bin.000003".into(),
        pos: 1234,
        resume_from: None,
    }
}

#[async_trait::async_trait]
impl TaskRunner for Scripted {
    async fn run(&self, _spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        let script = match role {
            Role::Src => &self.src,
            Role::Dest => &self.dest,
        };
        match script {
            Script::Fail(message) => {
                return Err(TaskError::definite(
                    "connecting",
                    DefiniteCause::AccessDenied(message.clone()),
                ))
            }
            Script::FailOnce(message) if run < 2 => {
                return Err(TaskError::transient("applying", message));
            }
            _ => {}
        }
        use std::sync::atomic::Ordering::Relaxed;
        match role {
            Role::Src => {
                ctx.stats.rows_read.store(10, Relaxed);
                ctx.stats.rows_applied.store(10, Relaxed);
                ctx.stats.txns_applied.store(5, Relaxed);
                ctx.stats.set_executed(&position("0-1-10"));
            }
            Role::Dest => {
                ctx.stats.rows_applied.store(12, Relaxed);
                ctx.stats.txns_applied.store(6, Relaxed);
                ctx.stats.set_position(&position("0-1-12"));
            }
        }
        ctx.cancel.cancelled().await;
        Ok(())
    }
}

fn orchestrator(dir: &tempfile::TempDir, src: Script, dest: Script) -> EmbeddedOrchestrator {
    let config = EmbeddedConfig {
        state_dir: dir.path().to_owned(),
        nats_url: "nats://127.0.0.1:1".into(),
        node_name: "test".into(),
        datacenter: "dc1".into(),
        http_addr: "127.0.0.1:1".into(),
        restart: RestartPolicy {
            delay: Duration::from_millis(100),
            ..RestartPolicy::default()
        },
        task_retry: RetryPolicy::default(),
        kill_timeout: Duration::from_secs(10),
    };
    let runner = Arc::new(Scripted {
        src,
        dest,
        runs: AtomicUsize::new(0),
    });
    EmbeddedOrchestrator::start_with(config, runner).expect("orchestrator")
}

fn job() -> ParsedJob {
    let text = r#"{"Name": "j", "Tasks": [
      {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "s"}],
        "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "hunter22"}}},
      {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u"}}}]}"#;
    jobs::parse_job(text).expect("a valid job")
}

/// Lets paused time run until `check` holds of the job's history.
async fn until(o: &EmbeddedOrchestrator, what: &str, check: impl Fn(&JobHistory) -> bool) {
    for _ in 0..600 {
        if o.history("j").await.is_ok_and(|h| check(&h)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:?}", o.history("j").await);
}

#[tokio::test(start_paused = true)]
async fn checkpoints_are_sampled_and_a_savepoint_stop_records_what_the_dest_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = orchestrator(&dir, Script::Replicate, Script::Replicate);
    o.register(job()).await.expect("register");
    until(&o, "a sampled checkpoint", |h| h.checkpoints_total == 1).await;
    let h = o.history("j").await.expect("history");
    let first = h.latest_checkpoint().expect("checkpoint").clone();
    assert_eq!(
        first.gtid_set.as_deref(),
        Some("0-1-10"),
        "the Src's executed"
    );
    assert_eq!((first.rows_since_previous, first.savepoint), (10, false));
    assert_eq!(h.table_rules, ["s.*"]);
    assert_eq!(h.vertices[&Role::Dest].write_records, 12);
    // Unmoved: no second checkpoint.
    tokio::time::sleep(SAMPLE_EVERY * 3).await;
    assert_eq!(o.history("j").await.expect("history").checkpoints_total, 1);

    let savepoint = o.stop_with_savepoint("j").await.expect("savepoint");
    assert!(savepoint.savepoint);
    assert_eq!(savepoint.gtid_set.as_deref(), Some("0-1-12"), "the Dest's");
    assert_eq!(
        (savepoint.binlog_file.as_str(), savepoint.binlog_pos),
        ("bin.000003", 1234)
    );
    assert_eq!(savepoint.rows_since_previous, 2);
    assert!(
        savepoint.duration_ms >= 1000,
        "the Dest was idle for a second"
    );
    assert_eq!(o.job("j").await.expect("job").status, "dead");
    let h = o.history("j").await.expect("history");
    assert_eq!(h.state, JobState::SavepointDone);
    for alloc in o.allocations("j").await.expect("allocations") {
        assert_eq!(alloc.task_state.state, "dead");
    }
    assert!(matches!(
        o.stop_with_savepoint("j").await,
        Err(OrchestratorError::Conflict(_))
    ));

    // Posted again: a restore of the savepoint.
    o.register(job()).await.expect("register again");
    let h = o.history("j").await.expect("history");
    assert_eq!(h.state, JobState::Running);
    let restore = h.last_restore.expect("restored");
    assert_eq!(
        (restore.checkpoint_id, restore.savepoint),
        (savepoint.id, true)
    );
    o.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_fails_the_job_with_its_error_and_no_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = orchestrator(
        &dir,
        Script::Fail("Access denied (password hunter22)".into()),
        Script::Replicate,
    );
    o.register(job()).await.expect("register");
    until(&o, "the job fails", |h| h.state == JobState::Failed).await;
    let h = o.history("j").await.expect("history");
    assert_eq!(h.exceptions.len(), 1);
    let e = &h.exceptions[0];
    assert_eq!((e.task, e.restarted), (Role::Src, false));
    assert!(e.message.contains("Access denied (password *)"), "{e:?}");
    let text = serde_json::to_string(&h).expect("json");
    assert!(!text.contains("hunter22"), "{text}");
    assert!(h.last_error.is_some_and(|m| !m.contains("hunter22")));
    assert!(h.finished_ms.is_some());
    // A stop neither makes it canceled nor takes a savepoint of it.
    assert!(matches!(
        o.stop_with_savepoint("j").await,
        Err(OrchestratorError::Conflict(_))
    ));
    o.stop("j", true, false).await.expect("purge");
    let h = o.history("j").await.expect("kept after the purge");
    assert_eq!((h.state, h.purged), (JobState::Failed, true));
    assert_eq!(o.histories().await.expect("histories").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restart_cause_is_an_exception_of_a_job_that_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = orchestrator(
        &dir,
        Script::Replicate,
        Script::FailOnce("lost connection".into()),
    );
    o.register(job()).await.expect("register");
    until(&o, "a restart cause", |h| h.exceptions_total >= 1).await;
    until(&o, "a checkpoint", |h| h.checkpoints_total >= 1).await;
    let h = o.history("j").await.expect("history");
    assert_eq!(h.state, JobState::Running);
    assert!(h.exceptions.iter().all(|e| e.restarted));
    o.pause("j").await.expect("pause");
    assert_eq!(
        o.history("j").await.expect("history").state,
        JobState::Paused
    );
    o.resume("j").await.expect("resume");
    let h = o.history("j").await.expect("history");
    assert_eq!(h.state, JobState::Running);
    assert_eq!(h.restores_total, 1, "resumed from the checkpoint");
    o.stop("j", false, false).await.expect("stop");
    assert_eq!(
        o.history("j").await.expect("history").state,
        JobState::Canceled
    );
}

#[tokio::test(start_paused = true)]
async fn the_history_survives_the_agents_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let o = orchestrator(&dir, Script::Replicate, Script::Replicate);
        o.register(job()).await.expect("register");
        until(&o, "a checkpoint", |h| h.checkpoints_total == 1).await;
        o.shutdown().await;
    }
    let o = orchestrator(&dir, Script::Replicate, Script::Replicate);
    let h = o.history("j").await.expect("read back");
    assert_eq!(h.state, JobState::Running);
    assert_eq!(h.checkpoints_total, 1);
    assert_eq!(
        h.restores_total, 1,
        "the restart resumes from the checkpoint"
    );
    assert!(h
        .transitions
        .back()
        .is_some_and(|t| t.message.contains("agent restarted")));
    o.shutdown().await;
}
