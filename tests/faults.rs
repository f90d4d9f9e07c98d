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

/// Waits until `committed` has grown by `more` transactions: the writer goes on while a task is
/// down.
async fn writes_go_on(committed: &AtomicU64, more: u64) {
    let target = committed.load(Ordering::SeqCst) + more;
    eventually(
        &format!("{more} more source transactions"),
        Duration::from_secs(60),
        || async {
            match committed.load(Ordering::SeqCst) {
                n if n >= target => Ok(()),
                n => Err(format!("{n} of {target} committed")),
            }
        },
    )
    .await;
}

/// Sets up `schema`, starts both tasks, waits for the snapshot, then runs the writer while
/// `fault` strikes once a third of the transactions are in; checks the outcome. `fault` gets the
/// writer's count of committed transactions.
async fn stream_with_fault<F, Fut>(job: &str, schema: &str, fault: F)
where
    F: FnOnce(Task, Task, std::path::PathBuf, Arc<AtomicU64>) -> Fut,
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
    writes_go_on(&committed, TXNS / 3).await;
    let (_dest, _src) = fault(dest, src, file, committed).await;
    writing.await.expect("writer finished");
    converge(schema, "w", "id", Duration::from_secs(120)).await;
    // Every transaction after the snapshot is one GTID row, none twice.
    eventually(
        &format!("GTIDs recorded for {job}"),
        Duration::from_secs(5),
        || async {
            match gtids_recorded_once(job).await {
                TXNS => Ok(()),
                recorded => Err(format!("{recorded} recorded, {TXNS} expected")),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_src_task_loses_and_repeats_nothing() {
    stream_with_fault(
        "fault_kill_src",
        "e2e_fault_src",
        |dest, mut src, file, committed| async move {
            src.kill();
            writes_go_on(&committed, 50).await;
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
        |mut dest, src, file, committed| async move {
            dest.kill();
            writes_go_on(&committed, 50).await;
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
        |dest, src, _file, _committed| async move {
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
        |dest, src, _file, _committed| async move {
            tokio::task::spawn_blocking(|| restart_service("dst"))
                .await
                .expect("restart");
            (dest, src)
        },
    )
    .await;
}

/// Waits until `job`'s snapshot has copied table `a` and is under way in table `b`.
async fn a_copied_and_b_under_way(job: &str) {
    eventually(
        "table a copied and b under way",
        Duration::from_secs(120),
        || async {
            let mut dst = connect(DST_PORT).await;
            let rows: Vec<(String, u64, i64)> = dst
                .exec(
                    "SELECT source_table, rows_done, done FROM dtle.snapshot_progress WHERE job_name = ?",
                    (job,),
                )
                .await
                .unwrap_or_default();
            let a_done = rows.iter().any(|(t, _, d)| t.ends_with(".a") && *d == 1);
            let b_started = rows
                .iter()
                .any(|(t, n, d)| t.ends_with(".b") && *n > 0 && *d == 0);
            if a_done && b_started {
                Ok(())
            } else {
                Err(format!("the snapshot did not reach table b: {rows:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extractor_killed_mid_snapshot_keeps_the_tables_it_finished() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("fault_snapshot_src", "e2e_fault_snapshot");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.a (id INT PRIMARY KEY, v INT);
             CREATE TABLE `{schema}`.b (id INT PRIMARY KEY, v INT);
             CREATE TABLE `{schema}`.c (id INT PRIMARY KEY, v INT);
             INSERT INTO `{schema}`.a SELECT seq, 0 FROM `{schema}`.seq_1_to_50000;
             INSERT INTO `{schema}`.b SELECT seq, 0 FROM `{schema}`.seq_1_to_300000;
             INSERT INTO `{schema}`.c SELECT seq, 0 FROM `{schema}`.seq_1_to_50000"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, r#""ChunkSize": 500,"#));
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    // Writes to every table throughout.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer_stop = stop.clone();
    let writer_written = written.clone();
    let writer_schema = schema.to_owned();
    let writer = tokio::spawn(async move {
        let mut conn = connect(SRC_PORT).await;
        let mut i = 0u64;
        while !writer_stop.load(Ordering::SeqCst) {
            let table = ["a", "b", "c"][(i % 3) as usize];
            let id = (i * 7919) % 50_000 + 1;
            conn.query_drop(format!(
                "UPDATE `{writer_schema}`.{table} SET v = v + 1 WHERE id = {id}; \
                 INSERT INTO `{writer_schema}`.{table} VALUES ({}, 1)",
                1_000_000 + i
            ))
            .await
            .expect("write");
            i += 1;
            writer_written.store(i, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    // Kill the extractor once table a is complete and b is under way.
    a_copied_and_b_under_way(job).await;
    src.kill();
    let src = Task::start("src", &file);
    eventually(
        "progress after the restart",
        Duration::from_secs(120),
        || async {
            let log = src.log_text();
            if log.contains("snapshot applied") || log.contains("table copied") {
                Ok(())
            } else {
                Err("no table copied yet".to_owned())
            }
        },
    )
    .await;
    // The writes go on a while longer alongside the resumed snapshot.
    let at_progress = written.load(Ordering::SeqCst);
    eventually("more writes", Duration::from_secs(60), || async {
        match written.load(Ordering::SeqCst) {
            n if n >= at_progress + 300 => Ok(()),
            n => Err(format!("{} writes since", n - at_progress)),
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    for table in ["a", "b", "c"] {
        converge(schema, table, "id", Duration::from_secs(180)).await;
    }
    let log = src.log_text();
    assert!(
        log.contains(&format!("kept from an earlier snapshot table={schema}.a")),
        "table a should not be copied again:\n{log}"
    );
    assert!(
        !log.contains(&format!("table copied table={schema}.a")),
        "{log}"
    );
    gtids_recorded_once(job).await;
}

/// Tables copied at different positions (after a resumed snapshot), then the target restarts
/// while the binlog catches up: the applier must read back, per table, what each copy already
/// holds, or it applies a copied table's changes a second time (a duplicate key stops the job;
/// a keyless table gets its rows twice).
#[tokio::test(flavor = "multi_thread")]
async fn a_target_restart_during_the_catch_up_neither_stops_nor_duplicates() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("fault_catch_up", "e2e_fault_catch_up");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.a (id INT PRIMARY KEY, v INT);
             CREATE TABLE `{schema}`.b (id INT PRIMARY KEY, v INT);
             CREATE TABLE `{schema}`.k (id INT, v INT);
             INSERT INTO `{schema}`.a SELECT seq, 0 FROM `{schema}`.seq_1_to_20000;
             INSERT INTO `{schema}`.b SELECT seq, 0 FROM `{schema}`.seq_1_to_300000;
             INSERT INTO `{schema}`.k SELECT seq, 0 FROM `{schema}`.seq_1_to_20000"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, r#""ChunkSize": 500,"#));
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    a_copied_and_b_under_way(job).await;
    src.kill();
    // Changes after table a's copy: a's must be applied in the catch-up, b's and k's are held
    // by their new copies and must be skipped.
    let mut conn = connect(SRC_PORT).await;
    for i in 0..4000u64 {
        conn.query_drop(format!(
            "BEGIN; INSERT INTO `{schema}`.a VALUES ({id}, 1); INSERT INTO `{schema}`.b VALUES ({id}, 1); \
             INSERT INTO `{schema}`.k VALUES ({id}, 1); COMMIT",
            id = 1_000_000 + i
        ))
        .await
        .expect("write");
    }
    let _src = Task::start("src", &file);
    eventually("the catch-up begins", Duration::from_secs(180), || async {
        let phase = job_phase(job).await;
        let applied: Option<u64> = first_value(
            DST_PORT,
            &format!("SELECT COUNT(*) FROM `{schema}`.a WHERE id > 1000000"),
        )
        .await;
        match (phase.as_deref(), applied) {
            (Some("binlog"), Some(n)) if n > 0 && n < 4000 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    restart_service("dst");
    for table in ["a", "b"] {
        converge(schema, table, "id", Duration::from_secs(180)).await;
    }
    converge(schema, "k", "id, v", Duration::from_secs(60)).await;
    gtids_recorded_once(job).await;
}

/// A table an earlier snapshot copied only in part is recreated from the definition at the new
/// snapshot's point, not emptied under its old definition: here a column was added and another
/// dropped while the extractor was down.
#[tokio::test(flavor = "multi_thread")]
async fn a_partly_copied_table_is_recreated_with_the_definition_at_the_new_snapshot() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("fault_recreate", "e2e_fault_recreate");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.a (id INT PRIMARY KEY, v INT);
             CREATE TABLE `{schema}`.b (id INT PRIMARY KEY, v INT, gone INT);
             INSERT INTO `{schema}`.a SELECT seq, 0 FROM `{schema}`.seq_1_to_20000;
             INSERT INTO `{schema}`.b SELECT seq, 0, 1 FROM `{schema}`.seq_1_to_300000"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, r#""ChunkSize": 500,"#));
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    eventually("table b under way", Duration::from_secs(120), || async {
        let rows: Option<u64> = first_value(
            DST_PORT,
            &format!(
                "SELECT rows_done FROM dtle.snapshot_progress WHERE job_name = '{job}' \
                 AND source_table = '{schema}.b' AND done = 0 AND rows_done > 0"
            ),
        )
        .await;
        rows.map(|_| ()).ok_or_else(|| "not yet".to_owned())
    })
    .await;
    src.kill();
    exec(
        SRC_PORT,
        &format!(
            "ALTER TABLE `{schema}`.b ADD COLUMN extra INT DEFAULT 7, DROP COLUMN gone;
             INSERT INTO `{schema}`.b VALUES (1000001, 1, 8)"
        ),
    )
    .await;
    let _src = Task::start("src", &file);
    eventually(
        "source and target equal",
        Duration::from_secs(180),
        || async { same_schema(schema).await },
    )
    .await;
    gtids_recorded_once(job).await;
}

/// Counts the GTID rows the target holds for `job` (each group commits many at once).
async fn gtids_committed(job: &str) -> u64 {
    let mut dst = connect(DST_PORT).await;
    dst.exec_first(
        "SELECT COUNT(*) FROM dtle.gtid_executed WHERE job_name = ?",
        (job,),
    )
    .await
    .expect("query")
    .unwrap_or(0)
}

/// A backlog applied in groups of many transactions, the Dest killed three times while groups are
/// being applied: a keyed table (whose changes are folded per row), a keyless one with duplicate
/// rows, and one with a second unique key (both applied statement by statement) all end equal to
/// the source, with every transaction's GTID recorded once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_dest_mid_group_loses_and_repeats_nothing() {
    const TXNS: u64 = 4000;
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("fault_mid_group", "e2e_fault_group");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.k (id INT PRIMARY KEY, v INT, pad VARCHAR(100));
             CREATE TABLE `{schema}`.nk (a INT, b VARCHAR(10));
             CREATE TABLE `{schema}`.u (id INT PRIMARY KEY, code INT NOT NULL, UNIQUE KEY (code));
             INSERT INTO `{schema}`.u VALUES (1, 1), (2, 2), (3, 3);
             CREATE PROCEDURE `{schema}`.fill(n INT) BEGIN
               DECLARE i INT DEFAULT 0;
               WHILE i < n DO
                 START TRANSACTION;
                 INSERT INTO `{schema}`.k VALUES (i, i, REPEAT('p', 80));
                 UPDATE `{schema}`.k SET v = v + 1 WHERE id = i DIV 2;
                 DELETE FROM `{schema}`.k WHERE id = i - 5 AND i % 4 = 0;
                 INSERT INTO `{schema}`.nk VALUES (i % 7, 'dup');
                 DELETE FROM `{schema}`.nk WHERE a = (i + 3) % 7 LIMIT 1;
                 UPDATE `{schema}`.u SET code = -code WHERE id = 1 + i % 3;
                 COMMIT;
                 SET i = i + 1;
               END WHILE;
             END"
        ),
    )
    .await;
    let file = write_job(
        job,
        &job_json(job, schema, r#""GtidExecutedRetention": 1000000,"#),
    );
    let mut dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    in_binlog_phase(job, Duration::from_secs(60)).await;
    dest.kill();
    exec(SRC_PORT, &format!("CALL `{schema}`.fill({TXNS})")).await;
    for kill in 0..3 {
        let before = gtids_committed(job).await;
        dest = Task::start("dest", &file);
        // Killed as soon as a group more has committed: the next one is under way.
        eventually(
            &format!("a group commits before kill {kill}"),
            Duration::from_secs(120),
            || async {
                match gtids_committed(job).await {
                    n if n > before => Ok(()),
                    n => Err(format!("{n} GTIDs committed, {before} before")),
                }
            },
        )
        .await;
        dest.kill();
    }
    assert!(
        gtids_committed(job).await < TXNS,
        "the kills should land before the backlog is applied: make it larger"
    );
    let _dest = Task::start("dest", &file);
    for (table, order) in [("k", "id"), ("nk", "a, b"), ("u", "id")] {
        converge(schema, table, order, Duration::from_secs(180)).await;
    }
    eventually(
        &format!("GTIDs recorded for {job}"),
        Duration::from_secs(30),
        || async {
            match gtids_recorded_once(job).await {
                TXNS => Ok(()),
                recorded => Err(format!("{recorded} recorded, {TXNS} expected")),
            }
        },
    )
    .await;
}

/// Four tables copied at once (their chunks interleaved, each table on its own target session),
/// then the Dest task is killed with several tables part-way: the restarted applier reads each
/// table's progress and the copy goes on from there, every table exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_dest_killed_mid_snapshot_resumes_every_table_from_its_own_progress() {
    let _serial = SERIAL.lock().await;
    let (job, schema) = ("fault_snapshot_dest", "e2e_fault_snapshot_dest");
    reset(schema, job).await;
    let tables = ["a", "b", "c", "d"];
    for (i, table) in tables.iter().enumerate() {
        exec(
            SRC_PORT,
            &format!(
                "CREATE TABLE `{schema}`.{table} (id INT AUTO_INCREMENT PRIMARY KEY, \
                 v VARBINARY(40), f DOUBLE, e ENUM('1', '0', 'x'), b BIT(5));
                 INSERT INTO `{schema}`.{table} (id, v, f, e, b) SELECT seq, \
                 IF(seq % 7 = 0, NULL, CONCAT(CHAR(seq % 256), '\\t\\n\\\\N', seq)), \
                 seq / 3, 1 + seq % 3, seq % 32 FROM `{schema}`.seq_1_to_{}",
                60_000 + 10_000 * i
            ),
        )
        .await;
    }
    let file = write_job(job, &job_json(job, schema, r#""ChunkSize": 500,"#));
    let mut dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    eventually(
        "several tables part-way",
        Duration::from_secs(120),
        || async {
            let mut dst = connect(DST_PORT).await;
            let rows: Vec<(String, u64, i64)> = dst
                .exec(
                    "SELECT source_table, rows_done, done FROM dtle.snapshot_progress WHERE job_name = ?",
                    (job,),
                )
                .await
                .unwrap_or_default();
            let part_way = rows.iter().filter(|(_, n, d)| *n > 0 && *d == 0).count();
            if part_way >= 2 {
                Ok(())
            } else {
                Err(format!("not yet two tables part-way: {rows:?}"))
            }
        },
    )
    .await;
    dest.kill();
    let _dest = Task::start("dest", &file);
    for table in tables {
        converge(schema, table, "id", Duration::from_secs(180)).await;
    }
    gtids_recorded_once(job).await;
}
