//! Size: a snapshot of 1,000,000 rows while writes continue, and a 200 MB transaction that must
//! replicate with each task's peak RSS under 300 MB. Run one at a time: they load the test bed.

mod support;

use mysql_async::prelude::Queryable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Peak resident set of a process, from /proc (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_row_snapshot_under_concurrent_writes() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("large_snapshot", "e2e_large");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.big (id INT PRIMARY KEY, k INT, v VARCHAR(40), d DATETIME(3));
             INSERT INTO `{schema}`.big SELECT seq, seq % 1000, CONCAT('row-', seq), '2024-01-01' + INTERVAL seq SECOND
               FROM `{schema}`.seq_1_to_1000000"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, r#""ChunkSize": 5000,"#));
    let _dest = Task::start("dest", &file);
    let started = Instant::now();
    let _src = Task::start("src", &file);

    // Writes all over the key range while the snapshot is copied.
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    let schema_name = schema.to_owned();
    let writer = tokio::spawn(async move {
        let mut conn = connect(SRC_PORT).await;
        let mut i: u64 = 0;
        while !writer_stop.load(Ordering::SeqCst) {
            let id = (i * 7919) % 1_000_000 + 1;
            let sql = match i % 4 {
                0 => format!("UPDATE `{schema_name}`.big SET v = CONCAT('upd-', {i}) WHERE id = {id}"),
                1 => format!("DELETE FROM `{schema_name}`.big WHERE id = {id}"),
                2 => format!(
                    "INSERT INTO `{schema_name}`.big VALUES ({}, 0, 'new', NOW(3))",
                    1_000_000 + i
                ),
                _ => format!(
                    "START TRANSACTION; UPDATE `{schema_name}`.big SET k = k + 1 WHERE id BETWEEN {id} AND {}; COMMIT",
                    id + 20
                ),
            };
            conn.query_drop(sql).await.expect("write");
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        i
    });
    // Let the writes run through most of the copy.
    let mut dst = connect(DST_PORT).await;
    loop {
        let done: Option<u64> = dst
            .exec_first(
                "SELECT rows_done FROM dtle.snapshot_progress WHERE job_name = ?",
                (job,),
            )
            .await
            .unwrap_or(None);
        let phase: Option<String> = dst
            .exec_first(
                "SELECT phase FROM dtle.job_position WHERE job_name = ?",
                (job,),
            )
            .await
            .unwrap_or(None);
        if done.unwrap_or(0) > 700_000 || phase.as_deref() == Some("binlog") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the snapshot is stuck"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.expect("writer");
    assert!(writes > 100, "only {writes} writes during the snapshot");
    converge(schema, "big", "id", Duration::from_secs(600)).await;
    eprintln!(
        "1,000,000-row snapshot with {writes} concurrent writes converged in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mb_transaction_replicates_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("large_txn", "e2e_large_txn");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, pad VARCHAR(1100))"),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let dest = Task::start("dest", &file);
    let src = Task::start("src", &file);
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    // One transaction of 200,000 rows of 1,000 bytes: about 200 MB of row data in the binlog.
    exec(
        SRC_PORT,
        &format!(
            "INSERT INTO `{schema}`.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM `{schema}`.seq_1_to_200000"
        ),
    )
    .await;
    converge(schema, "t", "id", Duration::from_secs(600)).await;
    let limit = 300 * 1024 * 1024;
    for (name, task) in [("src", &src), ("dest", &dest)] {
        let peak = peak_rss(task.pid());
        eprintln!("{name} peak RSS: {} MB", peak / (1024 * 1024));
        assert!(peak > 0, "no RSS reading for {name}");
        assert!(peak < limit, "{name} peaked at {} MB", peak / (1024 * 1024));
    }
    assert_eq!(gtids_recorded_once(job).await, 1);
}
