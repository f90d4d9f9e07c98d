//! The target server as an [`Executor`]: one session (raw bytes in and out, UTC, the job's
//! foreign-key setting) and the job's position tables.

use super::executor::{ExecError, Executor, Phase, Stored, TargetTable};
use super::position;
use crate::change::{ChunkProgress, Ddl, Gtid, SourcePosition};
use crate::error::{classify_mysql, codes, server_code, TaskError};
use crate::mysql::{self, quote};
use jobs::{GtidSet, JobSpec};
use mysql_async::prelude::Queryable;

/// One session on the target, for one job.
pub(super) struct MySqlTarget {
    conn: mysql_async::Conn,
    job: String,
    max_text: usize,
}

fn failed(context: impl std::fmt::Display, err: &mysql_async::Error) -> ExecError {
    ExecError {
        code: server_code(err),
        error: classify_mysql(context, err),
    }
}

impl MySqlTarget {
    /// Connects, creates the position tables if needed and sets the session up.
    ///
    /// # Errors
    /// Classified MySQL errors.
    pub(super) async fn connect(spec: &JobSpec) -> Result<Self, TaskError> {
        let mut conn = mysql::connect(&spec.dest.connection, "target").await?;
        position::ensure_tables(&mut conn).await?;
        let setup = format!(
            "SET NAMES binary, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
             SESSION foreign_key_checks = {}",
            u8::from(spec.dest.apply.foreign_key_checks)
        );
        conn.query_drop(setup)
            .await
            .map_err(|e| classify_mysql("setting up the target session", &e))?;
        let max_packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| classify_mysql("reading the target's max_allowed_packet", &e))?;
        Ok(Self {
            conn,
            job: spec.name.clone(),
            max_text: text_limit(max_packet.unwrap_or(1 << 20)),
        })
    }
}

impl Executor for MySqlTarget {
    async fn run(&mut self, statement: &str) -> Result<(), ExecError> {
        self.conn
            .query_drop(statement)
            .await
            .map_err(|e| failed(format!("running {statement}"), &e))
    }

    async fn exec(
        &mut self,
        statement: String,
        params: Vec<mysql_async::Value>,
        context: &str,
    ) -> Result<u64, ExecError> {
        self.conn
            .exec_drop(statement, params)
            .await
            .map_err(|e| failed(context, &e))?;
        Ok(self.conn.affected_rows())
    }

    async fn pipeline(
        &mut self,
        sql: &[u8],
        statements: usize,
    ) -> Result<Vec<u64>, (usize, ExecError)> {
        let context = |i: usize| format!("running statement {} of a batch of {statements}", i + 1);
        let mut result = self
            .conn
            .query_iter(sql)
            .await
            .map_err(|e| (0, failed(context(0), &e)))?;
        let mut changed = Vec::with_capacity(statements);
        loop {
            // The counts of the statement whose result is current; if that result is an error,
            // reading on reports it.
            let rows = result.affected_rows();
            if result.is_empty() {
                changed.push(rows);
                return Ok(changed);
            }
            let at = changed.len();
            result
                .collect::<mysql_async::Row>()
                .await
                .map_err(|e| (at, failed(context(at), &e)))?;
            changed.push(rows);
        }
    }

    fn max_text(&self) -> usize {
        self.max_text
    }

    async fn run_ddl(&mut self, ddl: &Ddl) -> Result<(), ExecError> {
        // DDL text is UTF-8 (names, defaults, comments); row values are raw bytes.
        self.run("SET NAMES utf8mb4").await?;
        if let Some(schema) = &ddl.schema {
            if let Err(err) = self
                .conn
                .query_drop(format!("USE {}", quote::ident(schema)))
                .await
            {
                if server_code(&err) != Some(codes::BAD_DB) {
                    return Err(failed("choosing the schema change's schema", &err));
                }
            }
        }
        let result = self.conn.query_drop(&ddl.statement).await;
        self.run("SET NAMES binary").await?;
        result.map_err(|e| failed(format!("applying {:?}", ddl.statement), &e))
    }

    async fn describe(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Option<TargetTable>, TaskError> {
        let context = format!("reading the target's definition of {schema}.{table}");
        let described: Vec<(String, String, String, String)> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, IS_NULLABLE, IS_GENERATED, DATA_TYPE \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (schema, table),
            )
            .await
            .map_err(|e| classify_mysql(&context, &e))?;
        if described.is_empty() {
            return Ok(None);
        }
        let integer_columns = described
            .iter()
            .filter(|(_, _, _, t)| {
                ["tinyint", "smallint", "mediumint", "int", "bigint"]
                    .contains(&t.to_ascii_lowercase().as_str())
            })
            .map(|(name, ..)| name.clone())
            .collect();
        let columns: Vec<(String, String, String)> = described
            .into_iter()
            .map(|(name, nullable, generated, _)| (name, nullable, generated))
            .collect();
        let tied: Option<(u64, u64)> = self
            .conn
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS \
                   WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?), \
                 (SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                   WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) \
                      OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?))",
                (schema, table, schema, table, schema, table),
            )
            .await
            .map_err(|e| classify_mysql(&context, &e))?;
        let indexes: Vec<(String, String)> = self
            .conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                (schema, table),
            )
            .await
            .map_err(|e| classify_mysql(&context, &e))?;
        let mut described = target_table(&columns, &indexes);
        described.integer_columns = integer_columns;
        described.ordered = tied.is_none_or(|(triggers, keys)| triggers + keys > 0);
        Ok(Some(described))
    }

    async fn read_position(&mut self) -> Result<Stored, TaskError> {
        position::read(&mut self.conn, &self.job).await
    }

    async fn read_copies(&mut self) -> Result<Vec<(String, GtidSet)>, TaskError> {
        Ok(position::read_progress(&mut self.conn, &self.job)
            .await?
            .into_iter()
            .filter_map(|(progress, target)| Some((target?, progress.copied_at?)))
            .collect())
    }

    async fn write_position(
        &mut self,
        phase: Phase,
        snapshot_id: Option<u64>,
        position: &SourcePosition,
    ) -> Result<(), TaskError> {
        position::write(
            &mut self.conn,
            &self.job,
            phase.as_str(),
            snapshot_id,
            position,
        )
        .await
        .map_err(|e| classify_mysql("recording the position", &e))
    }

    async fn mark_pending_ddl(&mut self, gtid: &Gtid) -> Result<(), TaskError> {
        position::mark_pending_ddl(&mut self.conn, &self.job, gtid)
            .await
            .map_err(|e| classify_mysql("recording a pending schema change", &e))
    }

    async fn write_progress(
        &mut self,
        progress: &ChunkProgress,
        target_table: &str,
        copied_at: Option<&GtidSet>,
    ) -> Result<(), TaskError> {
        position::write_progress(&mut self.conn, &self.job, progress, target_table, copied_at)
            .await
            .map_err(|e| classify_mysql("recording snapshot progress", &e))
    }

    async fn clear_progress(&mut self) -> Result<(), TaskError> {
        position::clear_progress(&mut self.conn, &self.job)
            .await
            .map_err(|e| classify_mysql("finishing the catch-up after the snapshot", &e))
    }

    async fn is_alive(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }
}

/// The largest text batch for a server accepting `max_packet` bytes: a quarter of it, so that a
/// batch and the statement that overflows it stay far below the limit; between 64 KiB and 16 MiB.
fn text_limit(max_packet: u64) -> usize {
    (max_packet / 4).clamp(64 << 10, 16 << 20) as usize
}

/// A table's generated columns and usable unique keys, from `(name, IS_NULLABLE,
/// IS_GENERATED)` per column and `(index, column)` per unique index column (primary key first).
fn target_table(columns: &[(String, String, String)], indexes: &[(String, String)]) -> TargetTable {
    let generated = columns
        .iter()
        .filter(|(_, _, generated)| generated.eq_ignore_ascii_case("ALWAYS"))
        .map(|(name, _, _)| name.clone())
        .collect::<Vec<_>>();
    let not_null = |column: &str| {
        columns
            .iter()
            .any(|(name, nullable, _)| name == column && nullable.eq_ignore_ascii_case("NO"))
    };
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for (index, column) in indexes {
        match keys.iter_mut().find(|(name, _)| name == index) {
            Some((_, cols)) => cols.push(column.clone()),
            None => keys.push((index.clone(), vec![column.clone()])),
        }
    }
    let unique_indexes = keys.len();
    let mut unique_keys: Vec<(bool, Vec<String>)> = keys
        .into_iter()
        .filter(|(_, cols)| {
            cols.iter()
                .all(|c| not_null(c) && !generated.iter().any(|g| g == c))
        })
        .map(|(name, cols)| (name == "PRIMARY", cols))
        .collect();
    unique_keys.sort_by_key(|(primary, cols)| (!primary, cols.len()));
    TargetTable {
        generated,
        unique_keys: unique_keys.into_iter().map(|(_, cols)| cols).collect(),
        unique_indexes,
        ..TargetTable::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn usable_keys_are_unique_not_null_and_not_generated() {
        let columns = [
            (s("a"), s("NO"), s("NEVER")),
            (s("b"), s("YES"), s("NEVER")),
            (s("c"), s("NO"), s("NEVER")),
            (s("d"), s("NO"), s("NEVER")),
            (s("g"), s("NO"), s("ALWAYS")),
        ];
        let indexes = [
            (s("ab"), s("a")),
            (s("ab"), s("b")),
            (s("cd"), s("c")),
            (s("cd"), s("d")),
            (s("c_only"), s("c")),
            (s("on_g"), s("g")),
        ];
        let table = target_table(&columns, &indexes);
        assert_eq!(table.generated, vec![s("g")]);
        assert_eq!(
            table.unique_keys,
            vec![vec![s("c")], vec![s("c"), s("d")]],
            "nullable and generated keys are not usable; fewest columns first"
        );
        let with_pk = target_table(&columns, &[(s("PRIMARY"), s("a")), (s("x"), s("c"))]);
        assert_eq!(with_pk.unique_keys[0], vec![s("a")]);
    }
}
