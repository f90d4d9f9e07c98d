//! The plugin killed with SIGKILL and its tasks recovered from their handles, as a restarted
//! Nomad client does.

use crate::harness::*;
use crate::support;
use driver::plugin::api::{AllocationStats, API_ADDR_ATTRIBUTE};
use driver::plugin::proto::drivers::{FingerprintRequest, TaskState};
use driver::plugin::proto::structs::attribute::Value as AttrValue;
use rmpv::Value;
use std::time::Duration;

#[tokio::test]
async fn recovers_tasks_from_driver_state_after_kill_9() {
    let (schema, job) = ("e2e_plugin_recover", "e2e_plugin_recover");
    table_t(schema, job, "(1, 'first')").await;
    let (mut first, mut driver) = configured_plugin().await;
    let handles = [
        start(&mut driver, task_config(job, "Dest", schema)).await,
        start(&mut driver, task_config(job, "Src", schema)).await,
    ];
    for i in 2..=20 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'before kill')"),
        )
        .await;
    }
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;

    // SIGKILL, then rows written while no task runs.
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    for i in 21..=40 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'while down')"),
        )
        .await;
    }

    // A new plugin, and the handles as a restarted client reloads them: no task config bytes,
    // no task_id in the request.
    let (_second, mut driver) = configured_plugin().await;
    // Twice: the second finds the task running.
    let ids = recover_reloaded(&mut driver, &handles, 2).await;
    for i in 41..=60 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'after recovery')"),
        )
        .await;
    }
    support::converge(schema, "t", "id", Duration::from_secs(120)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    for id in &ids {
        assert_eq!(state_of(&mut driver, id).await, TaskState::Running);
    }
    stop_wait_destroy(&mut driver, [&ids[1], &ids[0]]).await;
}

/// The plugin's stats API, as `dtle agent` reads it.
fn api_stats(api: &str, alloc_id: &str) -> (u16, serde_json::Value) {
    support::http(
        "GET",
        &format!("http://{api}/v1/plugin/allocation/{alloc_id}/stats"),
        None,
    )
}

#[tokio::test]
async fn a_pause_outlives_kill_9_and_the_stats_api_reports_it() {
    let (schema, job) = ("e2e_plugin_paused_kill", "e2e_plugin_paused_kill");
    table_t(schema, job, "(1, 'first')").await;
    let data_dir = support::scratch("plugin_paused_kill");
    let _ = std::fs::remove_dir_all(data_dir.join("paused"));
    let dir = Value::from(data_dir.to_str().expect("a UTF-8 path"));
    let api = format!("127.0.0.1:{}", free_loopback_port());

    let (mut first, mut driver) = configured_plugin_with(dir.clone(), Value::from(&*api)).await;
    let fingerprint = driver
        .fingerprint(FingerprintRequest {})
        .await
        .expect("Fingerprint")
        .into_inner()
        .message()
        .await
        .expect("a message")
        .expect("the first fingerprint");
    assert_eq!(
        fingerprint.attributes[API_ADDR_ATTRIBUTE].value,
        Some(AttrValue::StringVal(api.clone())),
        "the fingerprint publishes where the stats API listens"
    );
    let handles = [
        start(&mut driver, task_config(job, "Dest", schema)).await,
        start(&mut driver, task_config(job, "Src", schema)).await,
    ];
    let alloc = handles[0].config.as_ref().expect("echoed").alloc_id.clone();
    let src_id = handles[1].config.as_ref().expect("echoed").id.clone();
    for i in 2..=5 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'running')"),
        )
        .await;
    }
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;

    let (status, body) = api_stats(&api, &alloc);
    assert_eq!(status, 200, "{body}");
    let stats: AllocationStats = serde_json::from_value(body).expect("the API's shape");
    assert_eq!(stats.alloc_id, alloc);
    assert_eq!(stats.tasks["Src"].task_id, src_id);
    assert!(!stats.tasks["Src"].paused);
    let dest = &stats.tasks["Dest"].stats;
    assert!(
        dest.rows_applied + dest.snapshot_rows_done >= 5,
        "the Dest's counters: {dest:?}"
    );
    assert_eq!(api_stats(&api, "no-such-alloc").0, 404);

    signal(&mut driver, &src_id, "SIGSTOP").await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (6, 'while paused')"),
    )
    .await;

    // A new plugin on the same data_dir, the handles as a restarted client reloads them.
    let (_second, mut driver) = configured_plugin_with(dir, Value::from(&*api)).await;
    let ids = recover_reloaded(&mut driver, &handles, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(target_rows(schema).await, 5, "replicated while paused");
    assert_eq!(state_of(&mut driver, &src_id).await, TaskState::Running);
    let (status, body) = api_stats(&api, &alloc);
    assert_eq!(status, 200, "{body}");
    let stats: AllocationStats = serde_json::from_value(body).expect("the API's shape");
    assert!(stats.tasks["Src"].paused, "recovered paused");
    assert!(!stats.tasks["Dest"].paused);

    signal(&mut driver, &src_id, "SIGCONT").await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    stop_wait_destroy(&mut driver, [&ids[1], &ids[0]]).await;
    let marks = std::fs::read_dir(data_dir.join("paused"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    assert_eq!(marks, 0, "pause marks left after DestroyTask");
}
