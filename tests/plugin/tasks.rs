//! Src and Dest through StartTask, WaitTask, StopTask, DestroyTask and SignalTask, replicating
//! through the test bed.

use crate::harness::*;
use crate::support;
use driver::plugin::proto::drivers::{
    DestroyTaskRequest, SignalTaskRequest, StartTaskRequest, StopTaskRequest, TaskEventsRequest,
    TaskState, TaskStatsRequest, WaitTaskRequest,
};
use rmpv::Value;
use std::time::Duration;

#[tokio::test]
async fn runs_src_and_dest_through_start_wait_stop_destroy() {
    let (schema, job) = ("e2e_plugin_repl", "e2e_plugin_repl");
    table_t(schema, job, "(1, 'before')").await;
    let (_plugin, mut driver) = configured_plugin().await;
    let mut events = driver
        .task_events(TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();

    // A Src without a source is refused with the job model's words.
    let mut bad = task_config(job, "Src", schema);
    bad.msgpack_driver_config = cty_task(vec![("DestType", Value::from("mysql"))]);
    let err = driver
        .start_task(StartTaskRequest { task: Some(bad) })
        .await
        .expect_err("no source");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("Src task needs"),
        "{}",
        err.message()
    );

    let dest = start(&mut driver, task_config(job, "Dest", schema)).await;
    let src = start(&mut driver, task_config(job, "Src", schema)).await;
    assert_eq!(dest.state, TaskState::Running as i32);
    assert_eq!(dest.version, 1);
    assert!(!src.driver_state.is_empty());
    let (dest_id, src_id) = (
        dest.config.expect("echoed").id,
        src.config.expect("echoed").id,
    );
    let event = tokio::time::timeout(WAIT, events.message())
        .await
        .expect("an event")
        .expect("the stream")
        .expect("open");
    assert_eq!(event.task_id, dest_id);

    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (2, 'after')"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    for id in [&dest_id, &src_id] {
        assert_eq!(state_of(&mut driver, id).await, TaskState::Running);
    }

    let mut stats = driver
        .task_stats(TaskStatsRequest {
            task_id: src_id.clone(),
            collection_interval: None,
        })
        .await
        .expect("TaskStats")
        .into_inner();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), stats.message())
            .await
            .expect("stats every second")
            .expect("the stream")
            .expect("open")
            .stats
            .expect("stats");
        assert_eq!(message.id, src_id);
        assert!(message.timestamp.is_some());
        let usage = message.agg_resource_usage.expect("usage");
        assert!(usage.memory.expect("memory").rss > 0);
    }

    let err = driver
        .destroy_task(DestroyTaskRequest {
            task_id: src_id.clone(),
            force: false,
        })
        .await
        .expect_err("running");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    stop_wait_destroy(&mut driver, [&src_id, &dest_id]).await;

    let unknown = "no-such-alloc/Src/00000000".to_owned();
    let err = driver
        .wait_task(WaitTaskRequest {
            task_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = driver
        .stop_task(StopTaskRequest {
            task_id: unknown.clone(),
            timeout: None,
            signal: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = driver
        .task_stats(TaskStatsRequest {
            task_id: unknown,
            collection_interval: None,
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn runs_a_job_whose_tasks_share_one_whole_job_config() {
    let (schema, job) = ("e2e_plugin_shared", "e2e_plugin_shared");
    table_t(schema, job, "(1, 'a'), (2, 'b'), (3, 'c')").await;
    let (_plugin, mut driver) = configured_plugin().await;
    let dest = start(&mut driver, whole_job_config(job, "dest", schema)).await;
    let src = start(&mut driver, whole_job_config(job, "SRC", schema)).await;
    support::exec(
        support::SRC_PORT,
        &format!("UPDATE `{schema}`.t SET v = 'changed' WHERE id = 2"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    let ids = [
        src.config.expect("echoed").id,
        dest.config.expect("echoed").id,
    ];
    stop_wait_destroy(&mut driver, [&ids[0], &ids[1]]).await;
}

#[tokio::test]
async fn sigstop_pauses_and_sigcont_resumes_a_task() {
    let (schema, job) = ("e2e_plugin_pause", "e2e_plugin_pause");
    table_t(schema, job, "(1, 'a')").await;
    let (_plugin, mut driver) = configured_plugin().await;
    let dest = start(&mut driver, task_config(job, "Dest", schema)).await;
    let src = start(&mut driver, task_config(job, "Src", schema)).await;
    let ids = [
        src.config.expect("echoed").id,
        dest.config.expect("echoed").id,
    ];
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;

    let err = driver
        .signal_task(SignalTaskRequest {
            task_id: ids[0].clone(),
            signal: "SIGHUP".into(),
        })
        .await
        .expect_err("not a pause or resume");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    signal(&mut driver, &ids[0], "SIGSTOP").await;
    let waiting = wait_in_background(&driver, &ids[0]);
    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (2, 'while paused')"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(target_rows(schema).await, 1, "replicated while paused");
    assert_eq!(state_of(&mut driver, &ids[0]).await, TaskState::Running);
    assert!(
        !waiting.is_finished(),
        "WaitTask answered for a paused task"
    );
    waiting.abort();

    signal(&mut driver, &ids[0], "SIGCONT").await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    stop_wait_destroy(&mut driver, [&ids[0], &ids[1]]).await;
}

/// dtle 4's sample job: the Src task has the whole job, the Dest task only `DestType`.
#[tokio::test]
async fn a_dest_with_dest_type_alone_runs_the_job_its_src_hands_over() {
    let (schema, job) = ("e2e_plugin_handoff", "e2e_plugin_handoff");
    table_t(schema, job, "(1, 'a'), (2, 'b')").await;
    let (_plugin, mut driver) = configured_plugin().await;
    let mut dest = task_config(job, "dest", schema);
    dest.msgpack_driver_config = cty_task(vec![("DestType", Value::from("mysql"))]);
    let dest = start(&mut driver, dest).await;
    let dest_id = dest.config.expect("echoed").id;
    // The Dest waits, running, until a Src answers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state_of(&mut driver, &dest_id).await, TaskState::Running);

    let src = start(&mut driver, whole_job_config(job, "src", schema)).await;
    let src_id = src.config.expect("echoed").id;
    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (3, 'after start')"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    support::in_binlog_phase(job, Duration::from_secs(60)).await;
    support::exec(
        support::SRC_PORT,
        &format!("UPDATE `{schema}`.t SET v = 'in the binlog' WHERE id = 1"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    stop_wait_destroy(&mut driver, [&src_id, &dest_id]).await;
}
