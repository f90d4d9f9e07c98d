//! Jobs that cannot run end their task with one line naming the cause, and leave nothing
//! half-applied on the target. Definite causes exit with status 2, transient ones (after their
//! retries) with 1.

mod support;

use mysql_async::prelude::Queryable;
use std::time::Duration;
use support::*;

/// Nothing of `job` reached the target: no position, no schema.
async fn nothing_applied(job: &str, schema: &str) {
    let mut dst = connect(DST_PORT).await;
    let position: Option<String> = dst
        .exec_first(
            "SELECT phase FROM dtle.job_position WHERE job_name = ?",
            (job,),
        )
        .await
        .unwrap_or(None);
    assert_eq!(position, None, "{job} recorded a position");
    let schema_found: Option<String> = dst
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (schema,),
        )
        .await
        .expect("query");
    assert_eq!(schema_found, None, "{schema} was created on the target");
}

fn assert_one_line(last: &str, expected: &[&str]) {
    assert!(last.starts_with("dtle: Src task failed: "), "{last}");
    for part in expected {
        assert!(last.contains(part), "{last:?} does not mention {part:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_named_and_definite() {
    let (job, schema) = ("err_password", "e2e_err_password");
    reset(schema, job).await;
    let text = job_json(job, schema, "").replacen(PASSWORD, "not-the-password", 1);
    let file = write_job(job, &text);
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    let (code, last) = src.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{last}");
    assert_one_line(
        &last,
        &[
            "connecting to the source server dtle@127.0.0.1:3307",
            "Access denied",
        ],
    );
    assert!(
        !src.log_text().contains("not-the-password"),
        "the password was logged"
    );
    nothing_applied(job, schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_host_is_named_after_its_retries() {
    let (job, schema) = ("err_unreachable", "e2e_err_unreachable");
    reset(schema, job).await;
    let text = job_json(job, schema, "").replacen(&SRC_PORT.to_string(), "1", 1);
    let file = write_job(job, &text);
    let mut src = Task::start_with("src", &file, &["--retries", "2"]);
    let (code, last) = src.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{last}");
    assert_one_line(
        &last,
        &[
            "connecting to the source server dtle@127.0.0.1:1",
            "gave up after 2 attempts",
        ],
    );
    nothing_applied(job, schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_in_replicate_do_db_is_named() {
    let (job, schema) = ("err_missing_table", "e2e_err_missing");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.present (id INT PRIMARY KEY)"),
    )
    .await;
    let text = job_json(job, schema, "").replace(
        &format!(r#"[{{"TableSchema": "{schema}"}}]"#),
        &format!(r#"[{{"TableSchema": "{schema}", "Tables": [{{"TableName": "present"}}, {{"TableName": "absent"}}]}}]"#),
    );
    let file = write_job(job, &text);
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    let (code, last) = src.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{last}");
    assert_one_line(
        &last,
        &[&format!(
            "ReplicateDoDb names table {schema}.absent, which the source does not have"
        )],
    );
    nothing_applied(job, schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purged_start_gtid_is_named_and_definite() {
    let (job, schema) = ("err_purged", "e2e_err_purged");
    reset(schema, job).await;
    // Make sure the oldest binlog no longer holds sequence 1 of domain 0. MariaDB keeps a file
    // until its binlog checkpoint has moved on, so purging may take a few tries.
    exec(SRC_PORT, "FLUSH BINARY LOGS").await;
    eventually(
        "only the newest binlog is left",
        Duration::from_secs(20),
        || async {
            let mut src = connect(SRC_PORT).await;
            let logs: Vec<mysql_async::Row> =
                src.query("SHOW BINARY LOGS").await.expect("binary logs");
            let names: Vec<String> = logs.iter().map(|r| r.get(0).expect("name")).collect();
            if names.len() == 1 {
                return Ok(());
            }
            let newest = names.last().expect("a binlog").clone();
            src.query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
                .await
                .expect("purge");
            Err(format!("could not purge: {names:?}"))
        },
    )
    .await;
    let text = job_json(job, schema, r#""Gtid": "0-1-1","#);
    let file = write_job(job, &text);
    let _dest = Task::start("dest", &file);
    let mut task = Task::start("src", &file);
    let (code, last) = task.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{last}");
    assert_one_line(&last, &["no longer has the binlog", "1236"]);
    nothing_applied(job, schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_column_is_named_and_definite_before_anything_is_copied() {
    let (job, schema) = ("err_compressed", "e2e_err_compressed");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, body TEXT COMPRESSED)"),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    let (code, last) = src.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{last}");
    assert_one_line(
        &last,
        &["column body is COMPRESSED", "e2e_err_compressed.t"],
    );
    nothing_applied(job, schema).await;
}
