//! Table definitions and schema changes: the target's tables equal the source's (`SHOW CREATE
//! TABLE`, charsets and collations included) and hold the same rows, through the snapshot and
//! through every kind of schema change, in whole-schema and table-list jobs.

mod support;

use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

/// Waits until every table of `schema` is equal on both sides (definitions and rows).
async fn converges(schema: &str) {
    eventually(&format!("{schema} equal on both sides"), WAIT, || async {
        same_schema(schema).await
    })
    .await;
}

/// Writes a marker row and waits until the target has it: everything before it is applied.
async fn caught_up(schema: &str) {
    marker_arrives(schema, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn definitions_generated_columns_unique_keys_and_duplicate_rows() {
    let (job, schema) = ("schema_defs", "e2e_defs");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema};
             CREATE TABLE charsets (
               id INT PRIMARY KEY,
               a VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_german1_ci,
               b TEXT CHARACTER SET utf8mb3 COLLATE utf8mb3_bin,
               c CHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT 'x',
               d VARBINARY(10), e ENUM('ä','b') CHARACTER SET latin1
             ) DEFAULT CHARSET=latin1 COMMENT='charsets ✓';
             CREATE TABLE gen (
               id INT PRIMARY KEY, a INT,
               v INT AS (a * 2) VIRTUAL,
               p INT AS (a + 1) PERSISTENT,
               s VARCHAR(20) AS (CONCAT('x', a)) STORED,
               KEY (p)
             );
             CREATE TABLE uniq (u VARCHAR(20) NOT NULL, v INT, note VARCHAR(20), UNIQUE KEY (u));
             CREATE TABLE nokey (a INT, b VARCHAR(10));
             INSERT INTO charsets VALUES (1, 'Müller', 'x', 'ü', x'00ff', 'ä');
             INSERT INTO gen (id, a) VALUES (1, 1), (2, 2), (3, NULL);
             INSERT INTO uniq VALUES ('k1', 1, 'one'), ('k2', 2, 'two');
             INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, NULL)"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    in_binlog_phase(job, WAIT).await;
    converges(schema).await;

    // A table whose only key is UNIQUE NOT NULL is found by that key in the binlog phase: an
    // update reaches a target row whose other columns differ, which a full-row match would miss.
    exec(
        DST_PORT,
        &format!("UPDATE {schema}.uniq SET note = 'drifted' WHERE u = 'k1'"),
    )
    .await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema};
             UPDATE uniq SET v = 10 WHERE u = 'k1';
             DELETE FROM uniq WHERE u = 'k2';
             INSERT INTO uniq VALUES ('k3', 3, 'three');
             INSERT INTO gen (id, a) VALUES (4, 4);
             UPDATE gen SET a = a + 10 WHERE id IN (1, 3);
             DELETE FROM gen WHERE id = 2;
             INSERT INTO charsets VALUES (2, 'Straße', REPEAT('ü', 100), 'ß', x'00', 'b');
             DELETE FROM nokey WHERE a = 1 LIMIT 1;
             UPDATE nokey SET b = 'y' WHERE a = 1 LIMIT 1;
             INSERT INTO nokey VALUES (2, NULL);
             DELETE FROM nokey WHERE a = 2 AND b IS NULL LIMIT 1"
        ),
    )
    .await;
    caught_up(schema).await;
    converges(schema).await;
    let note: Option<String> = first_value(
        DST_PORT,
        &format!("SELECT note FROM {schema}.uniq WHERE u = 'k1'"),
    )
    .await;
    assert_eq!(
        note.as_deref(),
        Some("one"),
        "the update found its row by the unique key"
    );
}

/// The schema changes both kinds of job must follow, and the rows written between them.
const CHANGES: &str = "
    CREATE TABLE c LIKE a;
    INSERT INTO c VALUES (1, 'like');
    CREATE TABLE d AS SELECT id, v FROM a WHERE id <= 2;
    INSERT INTO d VALUES (100, 'after select');
    RENAME TABLE c TO c2;
    INSERT INTO c2 VALUES (2, 'renamed');
    ALTER TABLE d ADD COLUMN z INT DEFAULT 3, RENAME TO d2;
    INSERT INTO d2 (id, v) VALUES (101, 'altered');
    TRUNCATE TABLE a;
    INSERT INTO a VALUES (9, 'after truncate')";

const BASE: &str = "
    CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three')";

#[tokio::test(flavor = "multi_thread")]
async fn like_select_rename_alter_rename_and_truncate_in_a_whole_schema_job() {
    let (job, schema) = ("schema_ddl_all", "e2e_ddl_all");
    reset(schema, job).await;
    exec(SRC_PORT, &format!("USE {schema}; {BASE}")).await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    in_binlog_phase(job, WAIT).await;
    exec(SRC_PORT, &format!("USE {schema}; {CHANGES}")).await;
    caught_up(schema).await;
    converges(schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_in_a_table_list_job_including_renames_across_the_list() {
    let (job, schema) = ("schema_ddl_list", "e2e_ddl_list");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema}; {BASE};
             CREATE TABLE outside (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO outside VALUES (1, 'not listed')"
        ),
    )
    .await;
    // Tables created later are listed by a pattern (a missing table named outright is an error).
    let job_text = job_json(job, schema, "").replace(
        &format!(r#"[{{"TableSchema": "{schema}"}}]"#),
        &format!(
            r#"[{{"TableSchema": "{schema}", "Tables": [{{"TableRegex": "^(a|c|c2|d|d2|marker|swapped|leaving_to_be)$"}}]}}]"#
        ),
    );
    assert!(job_text.contains("leaving_to_be"), "the job lists tables");
    let file = write_job(job, &job_text);
    let _dest = Task::start("dest", &file);
    let mut src = Task::start("src", &file);
    in_binlog_phase(job, WAIT).await;
    exec(SRC_PORT, &format!("USE {schema}; {CHANGES}")).await;
    caught_up(schema).await;
    for table in ["a", "c2", "d2"] {
        let mut s = connect(SRC_PORT).await;
        let mut d = connect(DST_PORT).await;
        same_rows(&mut s, &mut d, schema, table)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // Renames across the list. Into it (an online schema change's swap): the target gets the
    // table as the source has it, rows included. Out of it: the target keeps the rows under the
    // new name, no longer replicated. Neither stops the job.
    exec(
        SRC_PORT,
        &format!(
            "USE {schema};
             CREATE TABLE ghost LIKE a;
             INSERT INTO ghost SELECT id, CONCAT(v, ' (new)') FROM a;
             INSERT INTO ghost VALUES (50, 'only in ghost');
             RENAME TABLE a TO a_old, ghost TO a;
             INSERT INTO a VALUES (51, 'after the swap');
             RENAME TABLE outside TO swapped;
             UPDATE swapped SET v = 'listed now';
             ALTER TABLE c2 ADD COLUMN w INT, RENAME TO leaving;
             INSERT INTO leaving (id, v) VALUES (77, 'not replicated')"
        ),
    )
    .await;
    caught_up(schema).await;
    for table in ["a", "swapped"] {
        let mut s = connect(SRC_PORT).await;
        let mut d = connect(DST_PORT).await;
        same_rows(&mut s, &mut d, schema, table)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let left: Option<u64> = first_value(
        DST_PORT,
        &format!("SELECT COUNT(*) FROM {schema}.leaving WHERE id = 77"),
    )
    .await;
    assert_eq!(
        left,
        Some(0),
        "a table that left the job is not replicated any more"
    );
    let kept: Option<u64> =
        first_value(DST_PORT, &format!("SELECT COUNT(*) FROM {schema}.leaving")).await;
    assert_eq!(
        kept,
        Some(2),
        "a table that left the job keeps its rows on the target"
    );
    assert!(
        src.is_running(),
        "the Src task stopped:\n{}",
        src.log_text()
    );
    let log = src.log_text();
    assert!(
        !log.contains("cannot replicate a schema change"),
        "the job refused a schema change:\n{log}"
    );
    src.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_racing_the_snapshot_leave_the_target_equal() {
    let (job, schema) = ("schema_race", "e2e_race");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "SET SESSION max_recursive_iterations = 100000; USE {schema};
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
             INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
               SELECT i, REPEAT('v', 30) FROM n"
        ),
    )
    .await;
    // Schema changes and writes while the job opens its snapshot and copies: whichever side of
    // the snapshot point each lands on, the target must end as the source.
    let racer = {
        let schema = schema.to_owned();
        tokio::spawn(async move {
            let mut conn = connect(SRC_PORT).await;
            for i in 0..60 {
                // A column that comes and goes: rows logged with it cannot be applied to a
                // table defined without it, and the other way round.
                let statements = format!(
                    "ALTER TABLE {schema}.t ADD COLUMN c INT DEFAULT {i};
                     INSERT INTO {schema}.t (id, v) VALUES ({}, 'raced');
                     UPDATE {schema}.t SET v = 'changed', c = {i} WHERE id = {};
                     ALTER TABLE {schema}.t DROP COLUMN c;
                     INSERT INTO {schema}.t (id, v) VALUES ({}, 'raced')",
                    100_000 + 2 * i,
                    1 + i * 300,
                    100_001 + 2 * i,
                );
                mysql_async::prelude::Queryable::query_drop(&mut conn, statements)
                    .await
                    .expect("racing writes");
            }
        })
    };
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    racer.await.expect("racer");
    in_binlog_phase(job, WAIT).await;
    caught_up(schema).await;
    converges(schema).await;
}

/// A schema change that commits after the snapshot's point but before the snapshot holds the
/// table's metadata lock, made to happen every time: the Src is held at table `a`'s lock (another
/// session has `a` locked) while `b` changes. Read after the change, `b`'s definition would lack
/// a column the binlog's rows before the change still carry; the snapshot must notice and open
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_change_between_the_snapshot_point_and_its_lock_reopens_the_snapshot() {
    let (job, schema) = ("schema_race_forced", "e2e_race_forced");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema};
             CREATE TABLE a (id INT PRIMARY KEY);
             CREATE TABLE b (id INT PRIMARY KEY, v INT, gone INT);
             INSERT INTO a VALUES (1); INSERT INTO b VALUES (1, 1, 1)"
        ),
    )
    .await;
    let mut locker = connect(SRC_PORT).await;
    mysql_async::prelude::Queryable::query_drop(
        &mut locker,
        format!("LOCK TABLES {schema}.a WRITE"),
    )
    .await
    .expect("lock a");
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let src = Task::start("src", &file);
    // The snapshot is open (its point taken) and waits for `a`'s metadata lock.
    eventually("the snapshot waits for table a", WAIT, || async {
        let waiting: Option<u64> = first_value(
            SRC_PORT,
            &format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE \
                 'Waiting for table metadata lock%' AND INFO LIKE 'SELECT 1 FROM `{schema}`.`a`%'"
            ),
        )
        .await;
        match waiting {
            Some(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?}\n{}", src.log_text())),
        }
    })
    .await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema}; INSERT INTO b VALUES (2, 2, 2); ALTER TABLE b DROP COLUMN gone;
             INSERT INTO b VALUES (3, 3)"
        ),
    )
    .await;
    mysql_async::prelude::Queryable::query_drop(&mut locker, "UNLOCK TABLES")
        .await
        .expect("unlock");
    in_binlog_phase(job, WAIT).await;
    caught_up(schema).await;
    converges(schema).await;
    assert!(
        src.log_text()
            .contains("a schema change raced the snapshot"),
        "the race was not seen:\n{}",
        src.log_text()
    );
}
