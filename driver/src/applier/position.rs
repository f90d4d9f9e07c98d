//! The position tables on the target: what makes resume exact.
//!
//! - `dtle.gtid_executed (job_name, source_id, gno)`: one row per source transaction applied,
//!   inserted in the same target transaction as its rows. The primary key makes a second
//!   application impossible (it would fail with a duplicate key and roll back), and the table
//!   shows every applied GTID exactly once.
//! - `dtle.job_position (job_name, ...)`: the job's phase and the source position everything up to
//!   which is applied (including transactions that touched nothing replicated), updated in the same
//!   transactions. The extractor resumes from here.
//! - `dtle.snapshot_progress (job_name, source_table, ...)`: during a snapshot, each table's last
//!   copied key, updated with each chunk's rows.
//!
//! A DDL statement commits implicitly, so it cannot share a transaction with its position: its
//! GTID is first recorded as `pending_ddl`, then the statement runs, then the position is recorded.
//! After a crash in between, the statement is run again and "already done" errors are accepted
//! for that one GTID.

use crate::change::{Gtid, SourcePosition, Value};
use crate::error::{classify_mysql, TaskError};
use crate::mysql::literal;
use crate::transport::protocol::{ResumePoint, TableProgress};
use jobs::GtidSet;
use mysql_async::prelude::Queryable;

const CREATE: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS `dtle`",
    "CREATE TABLE IF NOT EXISTS `dtle`.`gtid_executed` (
        job_name VARCHAR(64) NOT NULL,
        source_id VARCHAR(64) NOT NULL,
        gno BIGINT UNSIGNED NOT NULL,
        applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (job_name, source_id, gno)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS `dtle`.`job_position` (
        job_name VARCHAR(64) NOT NULL PRIMARY KEY,
        phase VARCHAR(16) NOT NULL,
        snapshot_id BIGINT UNSIGNED NULL,
        gtid_set LONGTEXT NULL,
        binlog_file VARCHAR(512) NOT NULL DEFAULT '',
        binlog_pos BIGINT UNSIGNED NOT NULL DEFAULT 0,
        pending_ddl VARCHAR(128) NULL,
        resume_gtid_set LONGTEXT NULL,
        updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS `dtle`.`snapshot_progress` (
        job_name VARCHAR(64) NOT NULL,
        source_table VARCHAR(200) NOT NULL,
        snapshot_id BIGINT UNSIGNED NOT NULL,
        last_key LONGBLOB NULL,
        rows_done BIGINT UNSIGNED NOT NULL,
        done TINYINT NOT NULL,
        target_table VARCHAR(200) NULL,
        copied_at LONGTEXT NULL,
        PRIMARY KEY (job_name, source_table)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// Columns added after the tables were first created: (table, column, definition).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("snapshot_progress", "target_table", "VARCHAR(200) NULL"),
    ("snapshot_progress", "copied_at", "LONGTEXT NULL"),
    ("job_position", "resume_gtid_set", "LONGTEXT NULL"),
];

/// Creates the position tables if they are missing.
///
/// # Errors
/// Classified MySQL errors (a user without CREATE privilege on `dtle` is definite).
pub async fn ensure_tables(conn: &mut mysql_async::Conn) -> Result<(), TaskError> {
    for statement in CREATE {
        conn.query_drop(*statement)
            .await
            .map_err(|e| classify_mysql("creating the position tables in schema dtle", &e))?;
    }
    for (table, column, definition) in ADDED_COLUMNS {
        let present: Option<String> = conn
            .exec_first(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = 'dtle' AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                (table, column),
            )
            .await
            .map_err(|e| classify_mysql("checking the position tables", &e))?;
        if present.is_none() {
            conn.query_drop(format!(
                "ALTER TABLE `dtle`.`{table}` ADD COLUMN `{column}` {definition}"
            ))
            .await
            .map_err(|e| classify_mysql("upgrading the position tables", &e))?;
        }
    }
    Ok(())
}

/// A stored position that cannot be read back.
fn corrupt(context: &str, what: String) -> TaskError {
    TaskError::definite(context, crate::error::DefiniteCause::CorruptStream(what))
}

/// What the target holds for a job, as read at a sync.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Where the extractor should continue.
    pub resume: ResumePoint,
    /// A DDL statement's GTID that may or may not have run.
    pub pending_ddl: Option<String>,
}

/// Reads the job's position.
///
/// # Errors
/// Classified MySQL errors; unreadable stored values are definite.
pub async fn read(conn: &mut mysql_async::Conn, job: &str) -> Result<Stored, TaskError> {
    let ctx = "reading the job's position from dtle.job_position";
    type Row = (
        String,
        Option<u64>,
        Option<String>,
        String,
        u64,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .exec_first(
            "SELECT phase, snapshot_id, gtid_set, binlog_file, binlog_pos, pending_ddl, \
             resume_gtid_set FROM `dtle`.`job_position` WHERE job_name = ?",
            (job,),
        )
        .await
        .map_err(|e| classify_mysql(ctx, &e))?;
    let Some((phase, snapshot_id, gtid_set, file, pos, pending_ddl, resume_from)) = row else {
        return Ok(Stored {
            resume: ResumePoint::Fresh,
            pending_ddl: None,
        });
    };
    let parse = |text: Option<String>, column: &str| {
        text.filter(|g| !g.trim().is_empty())
            .map(|g| GtidSet::parse(&g))
            .transpose()
            .map_err(|e| corrupt(ctx, format!("stored {column}: {e}")))
    };
    let position = SourcePosition {
        gtid_set: parse(gtid_set, "gtid_set")?,
        file,
        pos,
        resume_from: parse(resume_from, "resume_gtid_set")?,
    };
    let resume = if phase == "snapshot" {
        let tables = read_progress(conn, job).await?;
        ResumePoint::Snapshot {
            snapshot_id: snapshot_id.unwrap_or(0),
            position,
            tables: tables.into_iter().map(|(progress, _)| progress).collect(),
        }
    } else {
        ResumePoint::Binlog { position }
    };
    Ok(Stored {
        resume,
        pending_ddl,
    })
}

/// Every table's snapshot progress for `job`, with the target table it was copied into.
///
/// # Errors
/// Classified MySQL errors; unreadable stored values are definite.
pub async fn read_progress(
    conn: &mut mysql_async::Conn,
    job: &str,
) -> Result<Vec<(TableProgress, Option<String>)>, TaskError> {
    let ctx = "reading snapshot progress from dtle.snapshot_progress";
    type ProgressRow = (
        String,
        u64,
        Option<Vec<u8>>,
        u64,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<ProgressRow> = conn
        .exec(
            "SELECT source_table, snapshot_id, last_key, rows_done, done, target_table, copied_at \
             FROM `dtle`.`snapshot_progress` WHERE job_name = ?",
            (job,),
        )
        .await
        .map_err(|e| classify_mysql(ctx, &e))?;
    rows.into_iter()
        .map(
            |(source_table, snapshot_id, last_key, rows_done, done, target_table, copied_at)| {
                let last_key = last_key
                    .map(|bytes| rmp_serde::from_slice::<Vec<Value>>(&bytes))
                    .transpose()
                    .map_err(|e| corrupt(ctx, format!("stored last_key: {e}")))?;
                let copied_at = copied_at
                    .filter(|g| !g.trim().is_empty())
                    .map(|g| GtidSet::parse(&g))
                    .transpose()
                    .map_err(|e| corrupt(ctx, format!("stored copied_at: {e}")))?;
                Ok((
                    TableProgress {
                        snapshot_id,
                        source_table,
                        last_key,
                        rows_done,
                        done: done != 0,
                        copied_at,
                    },
                    target_table,
                ))
            },
        )
        .collect()
}

/// Writes the job's position (inside the caller's transaction, or autocommitted).
///
/// # Errors
/// MySQL errors, unclassified (the caller decides).
pub async fn write(
    conn: &mut mysql_async::Conn,
    job: &str,
    phase: &str,
    snapshot_id: Option<u64>,
    position: &SourcePosition,
) -> Result<(), mysql_async::Error> {
    let mut sql = Vec::new();
    push_write(&mut sql, job, phase, snapshot_id, position);
    conn.query_drop(sql).await
}

/// Appends the statement that records `position` as the job's, in `phase`; it also clears a
/// pending schema change, which the position now covers.
pub fn push_write(
    buf: &mut Vec<u8>,
    job: &str,
    phase: &str,
    snapshot_id: Option<u64>,
    position: &SourcePosition,
) {
    let text = |g: &Option<GtidSet>| {
        g.as_ref()
            .map_or(Value::Null, |g| text_value(&g.to_string()))
    };
    let values = [
        text_value(job),
        text_value(phase),
        snapshot_id.map_or(Value::Null, Value::UInt),
        text(&position.gtid_set),
        text_value(&position.file),
        Value::UInt(position.pos),
        text(&position.resume_from),
    ];
    buf.extend_from_slice(
        b"INSERT INTO `dtle`.`job_position` (job_name, phase, snapshot_id, gtid_set, binlog_file, \
          binlog_pos, resume_gtid_set) VALUES (",
    );
    push_values(buf, &values);
    buf.extend_from_slice(
        b") ON DUPLICATE KEY UPDATE phase = VALUES(phase), snapshot_id = VALUES(snapshot_id), \
          gtid_set = VALUES(gtid_set), binlog_file = VALUES(binlog_file), \
          binlog_pos = VALUES(binlog_pos), pending_ddl = NULL, \
          resume_gtid_set = VALUES(resume_gtid_set)",
    );
}

/// Appends the statement that records `gtids` as applied (a duplicate key means one of them was
/// applied before); false, appending nothing, when there are none.
pub fn push_record_gtids<'a>(
    buf: &mut Vec<u8>,
    job: &str,
    gtids: impl IntoIterator<Item = &'a Gtid>,
) -> bool {
    let mut first = true;
    for gtid in gtids {
        buf.extend_from_slice(if first {
            b"INSERT INTO `dtle`.`gtid_executed` (job_name, source_id, gno) VALUES (".as_slice()
        } else {
            b"), (".as_slice()
        });
        first = false;
        let (source_id, gno) = source_and_gno(gtid);
        push_values(
            buf,
            &[text_value(job), text_value(&source_id), Value::UInt(gno)],
        );
    }
    if !first {
        buf.push(b')');
    }
    !first
}

fn text_value(text: &str) -> Value {
    Value::Bytes(text.as_bytes().to_vec())
}

fn push_values(buf: &mut Vec<u8>, values: &[Value]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b", ");
        }
        literal::push(buf, value);
    }
}

/// Appends the statement that deletes the `gtid_executed` rows of `gtid`'s source server more
/// than `keep` transactions older than it (the position itself is in `job_position`); false,
/// appending nothing, when there are none.
pub fn push_compact_gtids(buf: &mut Vec<u8>, job: &str, gtid: &Gtid, keep: u64) -> bool {
    let (source_id, gno) = source_and_gno(gtid);
    let Some(below) = gno.checked_sub(keep) else {
        return false;
    };
    buf.extend_from_slice(b"DELETE FROM `dtle`.`gtid_executed` WHERE job_name = ");
    literal::push_bytes(buf, job.as_bytes());
    buf.extend_from_slice(b" AND source_id = ");
    literal::push_bytes(buf, source_id.as_bytes());
    buf.extend_from_slice(format!(" AND gno <= {below}").as_bytes());
    true
}

fn source_and_gno(gtid: &Gtid) -> (String, u64) {
    match gtid {
        Gtid::MariaDb(g) => (format!("{}-{}", g.domain, g.server), g.seq),
        Gtid::MySql { uuid, gno } => (uuid.to_string(), *gno),
    }
}

/// Marks a DDL statement's GTID as possibly applied (autocommitted, before the statement).
///
/// # Errors
/// MySQL errors.
pub async fn mark_pending_ddl(
    conn: &mut mysql_async::Conn,
    job: &str,
    gtid: &Gtid,
) -> Result<(), mysql_async::Error> {
    conn.exec_drop(
        "UPDATE `dtle`.`job_position` SET pending_ddl = ? WHERE job_name = ?",
        (gtid.to_string(), job),
    )
    .await
}

/// Records a snapshot chunk's progress (inside the caller's transaction).
///
/// # Errors
/// MySQL errors.
pub async fn write_progress(
    conn: &mut mysql_async::Conn,
    job: &str,
    progress: &crate::change::ChunkProgress,
    target_table: &str,
    copied_at: Option<&GtidSet>,
) -> Result<(), mysql_async::Error> {
    let last_key = progress
        .last_key
        .as_ref()
        .and_then(|k| rmp_serde::to_vec(k).ok());
    conn.exec_drop(
        "INSERT INTO `dtle`.`snapshot_progress` \
         (job_name, source_table, snapshot_id, last_key, rows_done, done, target_table, copied_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE snapshot_id = VALUES(snapshot_id), \
         last_key = VALUES(last_key), rows_done = VALUES(rows_done), done = VALUES(done), \
         target_table = VALUES(target_table), copied_at = VALUES(copied_at)",
        mysql_async::Params::Positional(vec![
            job.into(),
            progress.source_table.as_str().into(),
            progress.snapshot_id.into(),
            last_key.into(),
            progress.rows_done.into(),
            progress.table_done.into(),
            target_table.into(),
            copied_at.map(ToString::to_string).into(),
        ]),
    )
    .await
}

/// Forgets a finished snapshot's progress (inside the caller's transaction).
///
/// # Errors
/// MySQL errors.
pub async fn clear_progress(
    conn: &mut mysql_async::Conn,
    job: &str,
) -> Result<(), mysql_async::Error> {
    conn.exec_drop(
        "DELETE FROM `dtle`.`snapshot_progress` WHERE job_name = ?",
        (job,),
    )
    .await
}

/// Deletes every position row of `job` (autocommitted), when its user asks to start afresh.
///
/// # Errors
/// Classified MySQL errors.
pub async fn forget(conn: &mut mysql_async::Conn, job: &str) -> Result<(), TaskError> {
    ensure_tables(conn).await?;
    for table in ["gtid_executed", "job_position", "snapshot_progress"] {
        conn.exec_drop(
            format!("DELETE FROM `dtle`.`{table}` WHERE job_name = ?"),
            (job,),
        )
        .await
        .map_err(|e| classify_mysql(format!("deleting the job's rows from dtle.{table}"), &e))?;
    }
    Ok(())
}
