//! Snapshot then binlog, through `dtle task run` against the test bed: every column type, schema
//! changes mid-stream, and a large copy under concurrent writes. Each test ends by comparing
//! source and target (CHECKSUM TABLE and every row).

mod support;

use std::time::Duration;
use support::*;

const MATRIX: &str = "
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), dec0 DECIMAL(10,0), f FLOAT, d DOUBLE,
  b1 BIT(1), b8 BIT(8), b64 BIT(64),
  c CHAR(10), vc VARCHAR(100), tx TEXT,
  c_l1 CHAR(10) CHARACTER SET latin1, vc_l1 VARCHAR(100) CHARACTER SET latin1, tx_l1 TEXT CHARACTER SET latin1,
  bn BINARY(8), vb VARBINARY(20), bl BLOB, lb LONGBLOB,
  js JSON,
  dt DATE, tm TIME, tm6 TIME(6), dtt DATETIME, dtt6 DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  y YEAR, e ENUM('a','b','é'), st SET('x','y','z'),
  u UUID, ip6 INET6, ip4 INET4
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Rows with extremes, NULLs, 4-byte characters, latin1, trailing zero bytes and zero dates.
fn matrix_rows(first_id: i32) -> String {
    let a = first_id;
    format!("
INSERT INTO types VALUES
({a}, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
 -9223372036854775808, 18446744073709551615,
 '-12345678901234567890123456789012345.123456789012345678901234567890', -9999999999,
 -3.40282e38, -1.7976931348623157e308,
 b'1', b'10101010', b'1111111111111111111111111111111111111111111111111111111111111111',
 'ab ', '😀 4-byte ✓', REPEAT('日本語', 1000),
 'café', 'naïve façade', 'Ünïcödé',
 x'0102000000000000', x'00ff0000', x'000000', x'cafe0000',
 '{{\"k\": [1, 2.5, \"😀\"], \"n\": null}}',
 '0000-00-00', '-838:59:59', '838:59:58.999999', '0000-00-00 00:00:00', '9999-12-31 23:59:59.999999',
 '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999',
 0, 'é', 'x,z',
 '123e4567-e89b-12d3-a456-426614174000', '2001:db8::ff00:42:8329', '192.168.0.1'),
({b}, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
 '12345678901234567890123456789012345.000000000000000000000000000001', 9999999999,
 1.17549e-38, 2.2250738585072014e-308,
 b'0', b'0', b'0',
 '', '', '', '', '', '',
 x'0000000000000000', x'', x'', x'',
 '[]',
 '2024-02-29', '00:00:00', '-00:00:00.000001', '2024-02-29 12:34:56', '1000-01-01 00:00:00.000001',
 NULL, '2024-01-01 12:00:00.5',
 2155, 'a', '',
 '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0'),
({c}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        b = a + 1,
        c = a + 2
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_column_type_survives_snapshot_and_binlog() {
    let (job, schema) = ("types_matrix", "e2e_types");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "SET SESSION sql_mode = ''; USE {schema}; {MATRIX}; {}; \
             INSERT INTO types (id, lb) VALUES (10, REPEAT(x'00ff', 10 * 1024 * 1024))",
            matrix_rows(1)
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    converge(schema, "types", "id", Duration::from_secs(60)).await;

    // The same values again, now through the binlog; then updates and deletes of each kind.
    exec(
        SRC_PORT,
        &format!(
            "SET SESSION sql_mode = ''; USE {schema}; {}; \
             INSERT INTO types (id, lb) VALUES (20, REPEAT(x'ff00', 10 * 1024 * 1024)); \
             UPDATE types SET vc = CONCAT(vc, '🚀'), mi = mi + 1, ts6 = NULL, e = 'b' WHERE id IN (1, 101); \
             UPDATE types SET id = id + 1000 WHERE id = 102; \
             DELETE FROM types WHERE id = 2",
            matrix_rows(101)
        ),
    )
    .await;
    converge(schema, "types", "id", Duration::from_secs(60)).await;
    assert!(gtids_recorded_once(job).await >= 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_mid_stream_keep_the_target_equal() {
    let (job, schema) = ("ddl_stream", "e2e_ddl");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema}; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10)); \
             INSERT INTO a VALUES (1, 'one'), (2, 'two'); \
             CREATE TABLE nokey (x INT, y VARCHAR(5)); INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL)"
        ),
    )
    .await;
    let file = write_job(job, &job_json(job, schema, ""));
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    converge(schema, "a", "id", Duration::from_secs(60)).await;
    exec(
        SRC_PORT,
        &format!(
            "USE {schema};
             ALTER TABLE a ADD COLUMN n INT DEFAULT 5;
             INSERT INTO a VALUES (3, 'three', 7);
             ALTER TABLE a MODIFY COLUMN v VARCHAR(50);
             UPDATE a SET v = REPEAT('x', 40) WHERE id = 1;
             ALTER TABLE a DROP COLUMN n;
             INSERT INTO a VALUES (4, 'four');
             CREATE TABLE b (id BIGINT UNSIGNED PRIMARY KEY, t TEXT);
             INSERT INTO b VALUES (1, 'b1'), (18446744073709551615, 'max');
             RENAME TABLE b TO b2;
             INSERT INTO b2 VALUES (2, 'after rename');
             CREATE TABLE gone (id INT PRIMARY KEY);
             INSERT INTO gone VALUES (1);
             DROP TABLE gone;
             DELETE FROM nokey WHERE x = 1 LIMIT 1;
             UPDATE nokey SET y = 'z' WHERE x = 2;
             TRUNCATE TABLE a;
             INSERT INTO a VALUES (9, 'nine')"
        ),
    )
    .await;
    converge(schema, "a", "id", Duration::from_secs(60)).await;
    converge(schema, "b2", "id", Duration::from_secs(30)).await;
    converge(schema, "nokey", "x, y", Duration::from_secs(30)).await;
    let mut dst = connect(DST_PORT).await;
    use mysql_async::prelude::Queryable;
    let gone: Option<String> = dst
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ('gone', 'b')",
            (schema,),
        )
        .await
        .expect("query");
    assert_eq!(
        gone, None,
        "dropped and renamed tables are gone on the target"
    );
    gtids_recorded_once(job).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_created_and_renamed_by_regex_follow_the_source() {
    let job = "ddl_databases";
    for schema in ["e2e_rx_one", "e2e_rx_two"] {
        exec(SRC_PORT, &format!("DROP DATABASE IF EXISTS {schema}")).await;
    }
    for schema in ["e2e_rx_one_copy", "e2e_rx_two_copy"] {
        exec(DST_PORT, &format!("DROP DATABASE IF EXISTS {schema}")).await;
    }
    reset("e2e_rx_one", job).await;
    exec(SRC_PORT, "CREATE TABLE e2e_rx_one.t (id INT PRIMARY KEY)").await;
    let text = job_json(job, "unused", "").replace(
        r#"[{"TableSchema": "unused"}]"#,
        r#"[{"TableSchemaRegex": "e2e_rx_(\\w+)", "TableSchemaRename": "e2e_rx_${1}_copy"}]"#,
    );
    let file = write_job(job, &text);
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    exec(SRC_PORT, "INSERT INTO e2e_rx_one.t VALUES (1), (2)").await;
    exec(
        SRC_PORT,
        "CREATE DATABASE e2e_rx_two; CREATE TABLE e2e_rx_two.u (id INT PRIMARY KEY, s VARCHAR(5));
         INSERT INTO e2e_rx_two.u VALUES (1, 'a'); CREATE DATABASE e2e_rx_unrelated_x_y",
    )
    .await;
    // Source and target names differ here, so compare through the copies.
    eventually(
        "the renamed databases arrive",
        Duration::from_secs(60),
        || async {
            let one: Option<u64> =
                first_value(DST_PORT, "SELECT COUNT(*) FROM e2e_rx_one_copy.t").await;
            let two: Option<String> =
                first_value(DST_PORT, "SELECT s FROM e2e_rx_two_copy.u WHERE id = 1").await;
            (one == Some(2) && two.as_deref() == Some("a"))
                .then_some(())
                .ok_or(format!("{one:?} {two:?}"))
        },
    )
    .await;
    exec(
        SRC_PORT,
        "DROP DATABASE e2e_rx_two; DROP DATABASE e2e_rx_unrelated_x_y",
    )
    .await;
    eventually("DROP DATABASE arrives", Duration::from_secs(30), || async {
        let left: Option<String> = first_value(
            DST_PORT,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'e2e_rx_two_copy'",
        )
        .await;
        left.map_or(Ok(()), |s| Err(format!("{s} is still there")))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_gtid_and_gtid_start_without_a_snapshot() {
    let (job, schema) = ("start_auto", "e2e_start_auto");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT); INSERT INTO {schema}.t VALUES (1, 1)"),
    )
    .await;
    // The target already has the table (AutoGtid copies no rows and creates no table).
    exec(DST_PORT, &format!("CREATE DATABASE {schema}; CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT); INSERT INTO {schema}.t VALUES (1, 1)")).await;
    let file = write_job(job, &job_json(job, schema, r#""AutoGtid": true,"#));
    let _dest = Task::start("dest", &file);
    let src = Task::start("src", &file);
    // Wait until the applier has recorded a position, then write.
    eventually(
        "a position is recorded",
        Duration::from_secs(30),
        || async {
            if job_phase(job).await.is_some() {
                return Ok(());
            }
            exec(SRC_PORT, "FLUSH LOGS").await; // any event makes the extractor report its position
            Err(format!("no position recorded:\n{}", src.log_text()))
        },
    )
    .await;
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (2, 2); UPDATE {schema}.t SET v = 10 WHERE id = 1"),
    )
    .await;
    converge(schema, "t", "id", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_where_filter_selects_the_same_rows_in_snapshot_and_binlog() {
    use mysql_async::prelude::Queryable;
    let (job, schema) = ("where_filter", "e2e_where");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, a INT, s VARCHAR(10));
             INSERT INTO {schema}.t SELECT seq, seq, CONCAT('r', seq) FROM {schema}.seq_1_to_10"
        ),
    )
    .await;
    let text = job_json(job, schema, "").replace(
        &format!(r#"[{{"TableSchema": "{schema}"}}]"#),
        &format!(r#"[{{"TableSchema": "{schema}", "Tables": [{{"TableName": "t", "Where": "a < 5 AND s LIKE 'r%'"}}]}}]"#),
    );
    let file = write_job(job, &text);
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    exec(
        SRC_PORT,
        &format!(
            "INSERT INTO {schema}.t VALUES (11, 2, 'r11'), (12, 7, 'r12'), (13, 1, 'x13');
             UPDATE {schema}.t SET a = 8 WHERE id = 3;
             UPDATE {schema}.t SET a = 1 WHERE id = 9;
             UPDATE {schema}.t SET s = 'r1-new' WHERE id = 1;
             DELETE FROM {schema}.t WHERE id = 4"
        ),
    )
    .await;
    let expected_sql =
        format!("SELECT id, a, s FROM {schema}.t WHERE a < 5 AND s LIKE 'r%' ORDER BY id");
    let mut src = connect(SRC_PORT).await;
    let expected: Vec<(i32, i32, String)> = src.query(&expected_sql).await.expect("source rows");
    assert_eq!(
        expected.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 9, 11],
        "the scenario itself"
    );
    eventually(
        "the target holds the filtered rows",
        Duration::from_secs(60),
        || async {
            let mut dst = connect(DST_PORT).await;
            let got: Vec<(i32, i32, String)> = dst
                .query(format!("SELECT id, a, s FROM {schema}.t ORDER BY id"))
                .await
                .unwrap_or_default();
            if got == expected {
                Ok(())
            } else {
                Err(format!("target {got:?}, expected {expected:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gtid_executed_keeps_only_the_newest_rows_per_source() {
    use mysql_async::prelude::Queryable;
    let (job, schema) = ("gtid_retention", "e2e_retention");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY)"),
    )
    .await;
    let file = write_job(
        job,
        &job_json(job, schema, r#""GtidExecutedRetention": 50,"#),
    );
    let _dest = Task::start("dest", &file);
    let _src = Task::start("src", &file);
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let mut src = connect(SRC_PORT).await;
    for i in 0..200 {
        src.exec_drop(format!("INSERT INTO {schema}.t VALUES (?)"), (i,))
            .await
            .expect("insert");
    }
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    eventually(
        "gtid_executed keeps only the newest rows",
        Duration::from_secs(30),
        || async {
            let mut dst = connect(DST_PORT).await;
            let (rows, low, high): (u64, Option<u64>, Option<u64>) = dst
                .exec_first(
                    "SELECT COUNT(*), MIN(gno), MAX(gno) FROM dtle.gtid_executed WHERE job_name = ?",
                    (job,),
                )
                .await
                .expect("query")
                .expect("row");
            // Compaction runs every tenth of the retention: between 50 and 55 rows, the newest.
            if (50..=55).contains(&rows) && high.zip(low).is_some_and(|(h, l)| h - l + 1 == rows)
            {
                Ok(())
            } else {
                Err(format!("{rows} rows, gno {low:?}..{high:?}"))
            }
        },
    )
    .await;
    gtids_recorded_once(job).await;
}
