//! Source transactions as units on the target: XA transactions apply once at their commit (and
//! never when rolled back, even across a restart of the Src task between prepare and commit),
//! and a 60,000-row transaction becomes visible on the target all at once.

mod support;

use mysql_async::prelude::Queryable;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

async fn count(port: u16, sql: &str) -> u64 {
    first_value::<u64>(port, sql).await.unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread")]
async fn xa_commit_applies_once_and_xa_rollback_never_reaches_the_target() {
    let (job, schema) = ("xa_once", "e2e_xa");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("USE {schema}; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (0, 'snapshot')"),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    in_binlog_phase(job, WAIT).await;

    let mut xa = connect(SRC_PORT).await;
    xa.query_drop(format!(
        "XA START 'committed'; INSERT INTO {schema}.t VALUES (1, 'xa'), (2, 'xa'); \
         UPDATE {schema}.t SET v = 'xa-updated' WHERE id = 0; XA END 'committed'; XA PREPARE 'committed'"
    ))
    .await
    .expect("prepare");
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (10, 'between')"),
    )
    .await;
    xa.query_drop("XA COMMIT 'committed'")
        .await
        .expect("commit");
    xa.query_drop(format!(
        "XA START 'undone'; INSERT INTO {schema}.t VALUES (3, 'never'); XA END 'undone'; \
         XA PREPARE 'undone'; XA ROLLBACK 'undone'"
    ))
    .await
    .expect("rollback");

    // Prepared while the Src task is killed and restarted; committed after.
    xa.query_drop(format!(
        "XA START 'across'; INSERT INTO {schema}.t VALUES (4, 'across a restart'); \
         XA END 'across'; XA PREPARE 'across'"
    ))
    .await
    .expect("prepare");
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (11, 'after prepare')"),
    )
    .await;
    eventually("the row after the prepare is applied", WAIT, || async {
        match count(
            DST_PORT,
            &format!("SELECT COUNT(*) FROM {schema}.t WHERE id = 11"),
        )
        .await
        {
            1 => Ok(()),
            n => Err(format!("{n} rows")),
        }
    })
    .await;
    src.kill();
    let _src = Task::start("src", &file);
    xa.query_drop("XA COMMIT 'across'").await.expect("commit");
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (12, 'marker')"),
    )
    .await;
    eventually("the marker row is applied", WAIT, || async {
        match count(
            DST_PORT,
            &format!("SELECT COUNT(*) FROM {schema}.t WHERE id = 12"),
        )
        .await
        {
            1 => Ok(()),
            n => Err(format!("{n} rows")),
        }
    })
    .await;
    same_schema(schema).await.expect("source and target equal");
    assert_eq!(
        count(
            DST_PORT,
            &format!("SELECT COUNT(*) FROM {schema}.t WHERE id IN (1, 2, 4)")
        )
        .await,
        3
    );
    assert_eq!(
        count(
            DST_PORT,
            &format!("SELECT COUNT(*) FROM {schema}.t WHERE id = 3")
        )
        .await,
        0,
        "a rolled-back XA transaction reached the target"
    );
    gtids_recorded_once(job).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_60000_row_transaction_is_one_target_transaction() {
    let (job, schema) = ("big_txn", "e2e_big_txn");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema}; CREATE TABLE t (id INT PRIMARY KEY, v INT, pad VARCHAR(100)); \
             CREATE TABLE keyless (v INT, pad VARCHAR(100))"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    in_binlog_phase(job, WAIT).await;

    // Every count the target shows while the transactions apply: only "before" and "after".
    let watch = |sql: String, done: u64| async move {
        let mut seen = BTreeSet::new();
        let mut conn = connect(DST_PORT).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let n: u64 = conn
                .query_first(&sql)
                .await
                .ok()
                .flatten()
                .unwrap_or(u64::MAX);
            seen.insert(n);
            if n == done || std::time::Instant::now() > deadline {
                return seen;
            }
        }
    };
    let insert = tokio::spawn(watch(format!("SELECT COUNT(*) FROM {schema}.t"), 60_000));
    exec(
        SRC_PORT,
        &format!(
            "SET SESSION max_recursive_iterations = 100000; USE {schema}; BEGIN; \
             INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) \
             SELECT i, 0, REPEAT('p', 50) FROM n; COMMIT"
        ),
    )
    .await;
    let seen = insert.await.expect("watcher");
    assert_eq!(
        seen,
        BTreeSet::from([0, 60_000]),
        "the target showed part of the 60,000-row insert"
    );

    let update = tokio::spawn(watch(
        format!("SELECT COUNT(*) FROM {schema}.t WHERE v = 1"),
        60_000,
    ));
    exec(
        SRC_PORT,
        &format!(
            "USE {schema}; BEGIN; UPDATE t SET v = 1; \
             INSERT INTO keyless SELECT v, pad FROM t; COMMIT"
        ),
    )
    .await;
    let seen = update.await.expect("watcher");
    assert_eq!(
        seen,
        BTreeSet::from([0, 60_000]),
        "the target showed part of the 60,000-row update"
    );
    let delete = tokio::spawn(watch(
        format!("SELECT 60000 - COUNT(*) FROM {schema}.t"),
        60_000,
    ));
    exec(SRC_PORT, &format!("USE {schema}; DELETE FROM t")).await;
    let seen = delete.await.expect("watcher");
    assert_eq!(seen, BTreeSet::from([0, 60_000]));
    same_schema(schema).await.expect("source and target equal");
}
