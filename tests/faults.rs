//! Crashes in the middle of a stream of single-row and multi-row transactions: kill -9 of either
//! task, a nats-server restart, a target MariaDB restart. Afterwards the target equals the source
//! and the position table holds every source transaction's GTID exactly once.
//!
//! These tests restart shared servers, so they run one at a time.

mod support;

use mysql_async::prelude::Queryable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Writes `txns` transactions to `schema`.`w`: every third one a multi-row transaction with
/// inserts, an update and a delete, the others single-row inserts. Counts what it committed.
async fn writer(schema: String, txns: u64, committed: Arc<AtomicU64>) {
    let mut conn = connect(SRC_PORT).await;
    let mut next_id = 1_000u64;
    for i in 0..txns {
        let result = if i % 3 == 0 {
            let ids: Vec<u64> = (0..5).map(|k| next_id + k).collect();
            next_id += 5;
            let sql = format!(
                "START TRANSACTION;
                 INSERT INTO `{schema}`.w (id, v, n) VALUES ({}, 'a', 1), ({}, 'b', 2), ({}, 'c', 3), ({}, 'd', 4), ({}, 'e', 5);
                 UPDATE `{schema}`.w SET v = CONCAT(v, '+'), n = n * 10 WHERE id IN ({}, {});
                 DELETE FROM `{schema}`.w WHERE id = {};
                 COMMIT",
                ids[0], ids[1], ids[2], ids[3], ids[4], ids[0], ids[1], ids[2]
            );
            conn.query_drop(sql).await
        } else {
            let id = next_id;
            next_id += 1;
            conn.exec_drop(
                format!("INSERT INTO `{schema}`.w (id, v, n) VALUES (?, 'single', ?)"),
                (id, i),
            )
            .await
        };
        result.expect("the source accepts the write");
        committed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sets up `schema`, starts both tasks, waits for the snapshot, then runs the writer while
/// `fault` strikes once a third of the transactions are in; checks the outcome.
async fn stream_with_fault<F, Fut>(job: &str, schema: &str, fault: F)
where
    F: FnOnce(Task, Task, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = (Task, Task)>,
{
    let _serial = SERIAL.lock().await;
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.w (id BIGINT PRIMARY KEY, v VARCHAR(20), n BIGINT);
             INSERT INTO `{schema}`.w VALUES (1, 'seed', 0), (2, 'seed', 0)"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let dest = Task::start("dest", &file);
    let src = Task::start("src", &file);
    converge(schema, "w", "id", Duration::from_secs(60)).await;

    const TXNS: u64 = 600;
    let committed = Arc::new(AtomicU64::new(0));
    let writing = tokio::spawn(writer(schema.to_owned(), TXNS, committed.clone()));
    while committed.load(Ordering::SeqCst) < TXNS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_dest, _src) = fault(dest, src, file).await;
    writing.await.expect("writer finished");
    converge(schema, "w", "id", Duration::from_secs(120)).await;
    // Every transaction after the snapshot is one GTID row, none twice.
    let mut deadline = 50;
    loop {
        let recorded = gtids_recorded_once(job).await;
        if recorded == TXNS || deadline == 0 {
            assert_eq!(recorded, TXNS, "GTIDs recorded for {job}");
            break;
        }
        deadline -= 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_src_task_loses_and_repeats_nothing() {
    stream_with_fault(
        "fault_kill_src",
        "e2e_fault_src",
        |dest, mut src, file| async move {
            src.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            (dest, Task::start("src", &file))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_dest_task_loses_and_repeats_nothing() {
    stream_with_fault(
        "fault_kill_dest",
        "e2e_fault_dest",
        |mut dest, src, file| async move {
            dest.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            (Task::start("dest", &file), src)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_server_restart_loses_and_repeats_nothing() {
    stream_with_fault(
        "fault_nats",
        "e2e_fault_nats",
        |dest, src, _file| async move {
            tokio::task::spawn_blocking(|| restart_service("nats"))
                .await
                .expect("restart");
            (dest, src)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_restart_loses_and_repeats_nothing() {
    stream_with_fault(
        "fault_target",
        "e2e_fault_target",
        |dest, src, _file| async move {
            tokio::task::spawn_blocking(|| restart_service("dst"))
                .await
                .expect("restart");
            (dest, src)
        },
    )
    .await;
}
