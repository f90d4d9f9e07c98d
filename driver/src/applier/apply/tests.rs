//! Each rule against a recording executor that fails on demand.

use super::*;
use crate::applier::executor::ExecError;
use crate::applier::executor::{Stored, TargetTable};
use crate::change::{ChunkProgress, ColumnDef, TableDef};
use jobs::MariaDbGtid;
use std::sync::atomic::Ordering::Relaxed;

/// Records every call as a line; fails calls whose line starts with a scripted prefix.
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
    fail: Vec<(String, u16)>,
    stored: Option<Stored>,
    copies: Vec<(String, GtidSet)>,
    tables: HashMap<String, TargetTable>,
    /// The text limit; 0 for a large one.
    max_text: usize,
}

/// A text statement as a log line: the position tables' statements in short (`gtids 0-1-5
/// 0-1-6`, `position binlog 0-1-6`), others verbatim.
fn summary(statement: &str) -> String {
    let values = |s: &str| -> Vec<Vec<String>> {
        let Some((_, rest)) = s.split_once("VALUES (") else {
            return Vec::new();
        };
        let rest = rest.split(") ON DUPLICATE").next().unwrap_or(rest);
        rest.trim_end_matches(')')
            .split("), (")
            .map(|t| {
                t.split(", ")
                    .map(|v| v.trim_matches('\'').to_owned())
                    .collect()
            })
            .collect()
    };
    if statement.starts_with("INSERT INTO `dtle`.`gtid_executed`") {
        let gtids: Vec<String> = values(statement)
            .into_iter()
            .map(|v| format!("{}-{}", v[1], v[2]))
            .collect();
        return format!("gtids {}", gtids.join(" "));
    }
    if statement.starts_with("INSERT INTO `dtle`.`job_position`") {
        let v = &values(statement)[0];
        return format!("position {} {}", v[1], v[3]);
    }
    statement.to_owned()
}

impl Recorder {
    fn call(&mut self, line: String) -> Result<(), ExecError> {
        let failing = self
            .fail
            .iter()
            .position(|(p, _)| line.starts_with(p.as_str()));
        self.log.push(line.clone());
        match failing {
            Some(i) => {
                let (_, code) = self.fail.remove(i);
                Err(ExecError {
                    code: Some(code),
                    error: TaskError::Transient(format!("{line} failed with {code}")),
                })
            }
            None => Ok(()),
        }
    }
}

impl Executor for Recorder {
    async fn pipeline(
        &mut self,
        sql: &[u8],
        statements: usize,
    ) -> Result<Vec<u64>, (usize, ExecError)> {
        let text = String::from_utf8(sql.to_vec()).expect("test statements are UTF-8");
        // Test values never hold a semicolon.
        let parts: Vec<&str> = text.split(';').collect();
        assert_eq!(parts.len(), statements, "{text}");
        let mut changed = Vec::new();
        for (i, part) in parts.into_iter().enumerate() {
            self.call(summary(part)).map_err(|e| (i, e))?;
            changed.push(1);
        }
        Ok(changed)
    }
    fn max_text(&self) -> usize {
        if self.max_text == 0 {
            1 << 20
        } else {
            self.max_text
        }
    }
    async fn run(&mut self, statement: &str) -> Result<(), ExecError> {
        self.call(statement.to_owned())
    }
    async fn exec(
        &mut self,
        statement: String,
        _params: Vec<mysql_async::Value>,
        _context: &str,
    ) -> Result<u64, ExecError> {
        self.call(statement).map(|()| 1)
    }
    async fn run_ddl(&mut self, ddl: &Ddl) -> Result<(), ExecError> {
        self.call(format!("DDL {}", ddl.statement))
    }
    async fn describe(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Option<TargetTable>, TaskError> {
        Ok(self.tables.get(&format!("{schema}.{table}")).cloned())
    }
    async fn read_position(&mut self) -> Result<Stored, TaskError> {
        Ok(self.stored.clone().unwrap_or(Stored {
            resume: ResumePoint::Fresh,
            pending_ddl: None,
        }))
    }
    async fn read_copies(&mut self) -> Result<Vec<(String, GtidSet)>, TaskError> {
        Ok(self.copies.clone())
    }
    async fn write_position(
        &mut self,
        phase: Phase,
        _snapshot_id: Option<u64>,
        position: &SourcePosition,
    ) -> Result<(), TaskError> {
        Ok(self.call(format!("position {} {position}", phase.as_str()))?)
    }
    async fn mark_pending_ddl(&mut self, gtid: &Gtid) -> Result<(), TaskError> {
        Ok(self.call(format!("pending {gtid}"))?)
    }
    async fn write_progress(
        &mut self,
        progress: &ChunkProgress,
        target_table: &str,
        _copied_at: Option<&GtidSet>,
    ) -> Result<(), TaskError> {
        Ok(self.call(format!("progress {} {target_table}", progress.rows_done))?)
    }
    async fn clear_progress(&mut self) -> Result<(), TaskError> {
        Ok(self.call("clear progress".into())?)
    }
    async fn is_alive(&mut self) -> bool {
        true
    }
}

fn set(text: &str) -> GtidSet {
    GtidSet::parse(text).expect("gtid set")
}

fn gtid(seq: u64) -> Gtid {
    Gtid::MariaDb(MariaDbGtid {
        domain: 0,
        server: 1,
        seq,
    })
}

fn at(seq: u64) -> SourcePosition {
    SourcePosition {
        gtid_set: Some(set(&format!("0-1-{seq}"))),
        file: String::new(),
        pos: 0,
        resume_from: None,
    }
}

fn table(id: u32, name: &str, columns: &[&str], key: Vec<usize>) -> Item {
    Item::Table(TableDef {
        id,
        schema: "s".into(),
        name: name.into(),
        columns: columns
            .iter()
            .map(|c| ColumnDef {
                name: (*c).into(),
                nullable: false,
                float: false,
            })
            .collect(),
        key,
    })
}

fn begin(seq: u64) -> Item {
    Item::Begin(TxnMeta {
        gtid: Some(gtid(seq)),
        timestamp: 0,
    })
}

fn insert(table: u32, values: &[i64]) -> Item {
    Item::Row(RowChange {
        table,
        kind: RowKind::Insert(values.iter().map(|&v| Value::Int(v)).collect()),
    })
}

fn commit(seq: u64) -> Item {
    Item::Commit { position: at(seq) }
}

/// An applier that has synced at binlog position `0-1-<executed>`.
async fn applier(executed: u64, recorder: Recorder) -> Applier<Recorder> {
    let mut recorder = recorder;
    recorder.stored.get_or_insert(Stored {
        resume: ResumePoint::Binlog {
            position: at(executed),
        },
        pending_ddl: None,
    });
    let settings = Settings {
        job: "j".into(),
        foreign_key_checks: true,
        gtid_retention: 1000,
    };
    let mut applier = Applier::new(recorder, settings, Arc::new(TaskStats::default()));
    applier.read_position().await.expect("sync");
    applier.exec.log.clear();
    applier
}

/// Applies `items` as one frame.
async fn feed(applier: &mut Applier<Recorder>, items: Vec<Item>) -> Result<(), TaskError> {
    for item in items {
        applier.apply(item).await?;
    }
    applier.end_of_frame().await
}

#[tokio::test]
async fn an_executed_gtid_is_skipped_whole() {
    let mut a = applier(10, Recorder::default()).await;
    let items = vec![
        table(1, "t", &["id"], vec![0]),
        begin(9),
        insert(1, &[1]),
        commit(9),
    ];
    feed(&mut a, items).await.expect("applies");
    assert!(a.exec.log.is_empty(), "{:?}", a.exec.log);
    feed(&mut a, vec![begin(11), insert(1, &[2]), commit(11)])
        .await
        .expect("applies");
    assert_eq!(
        a.exec.log,
        [
            "START TRANSACTION",
            "INSERT INTO `s`.`t` (`id`) VALUES (2)",
            "gtids 0-1-11",
            "position binlog 0-1-11",
            "COMMIT"
        ]
    );
}

#[tokio::test]
async fn a_table_whose_copy_holds_the_transaction_is_skipped_until_passed() {
    let recorder = Recorder {
        copies: vec![("s.copied_late".into(), set("0-1-50"))],
        ..Recorder::default()
    };
    // The catch-up is read back at the sync, as after a reconnect or restart.
    let mut a = applier(40, recorder).await;
    let items = vec![
        table(1, "copied_late", &["id"], vec![0]),
        table(2, "other", &["id"], vec![0]),
        begin(45),
        insert(1, &[1]),
        insert(2, &[1]),
        commit(45),
    ];
    feed(&mut a, items).await.expect("applies");
    let inserts: Vec<&String> = a
        .exec
        .log
        .iter()
        .filter(|l| l.starts_with("INSERT"))
        .collect();
    assert_eq!(inserts, ["INSERT INTO `s`.`other` (`id`) VALUES (1)"]);
    a.exec.log.clear();
    feed(&mut a, vec![begin(50), insert(1, &[2]), commit(50)])
        .await
        .expect("applies");
    assert!(
        a.exec.log.contains(&"clear progress".to_owned()),
        "{:?}",
        a.exec.log
    );
    assert!(!a.exec.log.iter().any(|l| l.starts_with("INSERT")));
    a.exec.log.clear();
    feed(&mut a, vec![begin(51), insert(1, &[3]), commit(51)])
        .await
        .expect("applies");
    assert!(a
        .exec
        .log
        .iter()
        .any(|l| l.starts_with("INSERT INTO `s`.`copied_late`")));
}

#[tokio::test]
async fn a_duplicate_gtid_is_rolled_back_not_committed() {
    let recorder = Recorder {
        fail: vec![("gtids 0-1-11".into(), codes::DUP_ENTRY)],
        ..Recorder::default()
    };
    let mut a = applier(10, recorder).await;
    let items = vec![
        table(1, "t", &["id"], vec![0]),
        begin(11),
        insert(1, &[1]),
        commit(11),
    ];
    feed(&mut a, items)
        .await
        .expect("a duplicate is not an error");
    assert_eq!(a.exec.log.last().map(String::as_str), Some("ROLLBACK"));
    assert!(!a.exec.log.iter().any(|l| l == "COMMIT"));
    assert_eq!(a.stats.txns_applied.load(Relaxed), 0);
}

#[tokio::test]
async fn a_pending_ddl_runs_again_and_accepts_already_done() {
    let ddl = || {
        Item::Ddl(Ddl {
            schema: Some("s".into()),
            statement: "CREATE TABLE t (id INT)".into(),
            tables: vec!["s.t".into()],
        })
    };
    let recorder = Recorder {
        stored: Some(Stored {
            resume: ResumePoint::Binlog { position: at(6) },
            pending_ddl: Some("0-1-7".into()),
        }),
        fail: vec![("DDL CREATE TABLE".into(), 1050)],
        ..Recorder::default()
    };
    let mut a = applier(6, recorder).await;
    feed(&mut a, vec![begin(7), ddl(), commit(7)])
        .await
        .expect("the pending DDL's 'already exists' is accepted");
    assert!(a.exec.log.iter().any(|l| l == "position binlog 0-1-7"));
    // Another DDL failing the same way is a real error.
    a.exec.fail.push(("DDL CREATE TABLE".into(), 1050));
    let err = feed(&mut a, vec![begin(8), ddl(), commit(8)])
        .await
        .expect_err("not pending: the error stands");
    assert!(err.to_string().contains("1050"), "{err}");
}

#[tokio::test]
async fn a_begin_while_open_is_a_resync_never_a_commit() {
    let mut a = applier(10, Recorder::default()).await;
    let items = vec![table(1, "t", &["id"], vec![0]), begin(11), insert(1, &[1])];
    feed(&mut a, items).await.expect("applies");
    let err = a.apply(begin(12)).await.expect_err("a lost commit");
    assert!(err.is_transient(), "{err}");
    a.rollback().await;
    assert!(!a
        .exec
        .log
        .iter()
        .any(|l| l == "COMMIT" || l.starts_with("gtids")));
    assert_eq!(a.exec.log.last().map(String::as_str), Some("ROLLBACK"));
}

#[tokio::test]
async fn generated_columns_are_never_written_and_a_unique_key_finds_rows() {
    let mut recorder = Recorder::default();
    recorder.tables.insert(
        "s.t".into(),
        TargetTable {
            generated: vec!["g".into()],
            unique_keys: vec![vec!["u".into()]],
            ..TargetTable::default()
        },
    );
    let mut a = applier(10, recorder).await;
    let update = Item::Row(RowChange {
        table: 1,
        kind: RowKind::Update {
            before: vec![Value::Int(1), Value::Int(2), Value::Int(3)],
            after: vec![Value::Int(1), Value::Int(5), Value::Int(6)],
        },
    });
    let items = vec![
        table(1, "t", &["u", "v", "g"], vec![]),
        begin(11),
        insert(1, &[1, 2, 3]),
        update,
        commit(11),
    ];
    feed(&mut a, items).await.expect("applies");
    assert!(a
        .exec
        .log
        .contains(&"INSERT INTO `s`.`t` (`u`, `v`) VALUES (1, 2)".to_owned()));
    assert!(a
        .exec
        .log
        .contains(&"UPDATE `s`.`t` SET `u` = 1, `v` = 5 WHERE `u` = 1".to_owned()));
}

#[tokio::test]
async fn consecutive_transactions_commit_as_one_group_with_the_last_position() {
    let mut a = applier(10, Recorder::default()).await;
    let items = vec![
        table(1, "t", &["id"], vec![0]),
        begin(11),
        insert(1, &[1]),
        commit(11),
        begin(12),
        insert(1, &[2]),
        commit(12),
        begin(13),
        commit(13),
    ];
    feed(&mut a, items).await.expect("applies");
    assert_eq!(
        a.exec.log,
        [
            "START TRANSACTION",
            "INSERT INTO `s`.`t` (`id`) VALUES (1)",
            "INSERT INTO `s`.`t` (`id`) VALUES (2)",
            "gtids 0-1-11 0-1-12 0-1-13",
            "position binlog 0-1-13",
            "COMMIT"
        ]
    );
    assert_eq!(a.stats.txns_applied.load(Relaxed), 3);
    assert_eq!(a.stats.target_commits.load(Relaxed), 1);
}

#[tokio::test]
async fn a_failed_group_is_replayed_one_transaction_at_a_time() {
    let recorder = Recorder {
        fail: vec![("INSERT INTO `s`.`t` (`id`) VALUES (2)".into(), 1213)],
        ..Recorder::default()
    };
    let mut a = applier(10, recorder).await;
    let frame = || {
        vec![
            table(1, "t", &["id"], vec![0]),
            begin(11),
            insert(1, &[1]),
            commit(11),
            begin(12),
            insert(1, &[2]),
            commit(12),
        ]
    };
    let err = feed(&mut a, frame()).await.expect_err("a deadlock");
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        a.current_gtid(),
        "0-1-12",
        "the failing statement's transaction"
    );
    // The loop: rollback, resync, replay alone.
    let alone = a.group_size();
    assert_eq!(alone, 2, "the transactions the failed group held");
    a.rollback().await;
    a.read_position().await.expect("sync");
    a.replay_alone(alone);
    a.exec.log.clear();
    feed(&mut a, frame()).await.expect("applies");
    let commits = a.exec.log.iter().filter(|l| *l == "COMMIT").count();
    assert_eq!(commits, 2, "{:?}", a.exec.log);
    assert!(!a.exec.log.iter().any(|l| l.contains("0-1-11 0-1-12")));
}

#[tokio::test]
async fn a_duplicate_gtid_in_a_group_of_several_is_replayed_not_skipped() {
    let recorder = Recorder {
        fail: vec![("gtids 0-1-11 0-1-12".into(), codes::DUP_ENTRY)],
        ..Recorder::default()
    };
    let mut a = applier(10, recorder).await;
    let items = vec![
        table(1, "t", &["id"], vec![0]),
        begin(11),
        insert(1, &[1]),
        commit(11),
        begin(12),
        insert(1, &[2]),
        commit(12),
    ];
    let err = feed(&mut a, items)
        .await
        .expect_err("which transaction was applied before is not known yet");
    assert!(err.is_transient(), "{err}");
    assert_eq!(a.stats.txns_applied.load(Relaxed), 0);
}

#[tokio::test]
async fn a_row_too_large_for_text_is_bound_in_order_with_the_batch() {
    let recorder = Recorder {
        max_text: 400,
        ..Recorder::default()
    };
    let mut a = applier(10, recorder).await;
    let big = Item::Row(RowChange {
        table: 1,
        kind: RowKind::Insert(vec![Value::Int(2), Value::Bytes(vec![b'x'; 300])]),
    });
    let items = vec![
        table(1, "t", &["id", "b"], vec![0]),
        begin(11),
        Item::Row(RowChange {
            table: 1,
            kind: RowKind::Delete(vec![Value::Int(1), Value::Null]),
        }),
        big,
        commit(11),
    ];
    feed(&mut a, items).await.expect("applies");
    assert_eq!(
        a.exec.log,
        [
            "START TRANSACTION",
            "DELETE FROM `s`.`t` WHERE `id` = 1",
            "INSERT INTO `s`.`t` (`id`, `b`) VALUES (?, ?)",
            "gtids 0-1-11",
            "position binlog 0-1-11",
            "COMMIT"
        ]
    );
}

#[tokio::test]
async fn a_foldable_tables_changes_commit_as_their_net_effect() {
    let mut recorder = Recorder::default();
    recorder.tables.insert(
        "s.t".into(),
        TargetTable {
            unique_keys: vec![vec!["id".into()]],
            unique_indexes: 1,
            integer_columns: vec!["id".into(), "v".into()],
            ..TargetTable::default()
        },
    );
    let mut a = applier(10, recorder).await;
    let change = |kind| Item::Row(RowChange { table: 1, kind });
    let row = |id: i64, v: i64| vec![Value::Int(id), Value::Int(v)];
    let items = vec![
        table(1, "t", &["id", "v"], vec![0]),
        begin(11),
        change(RowKind::Update {
            before: row(1, 1),
            after: row(1, 2),
        }),
        change(RowKind::Delete(row(2, 0))),
        change(RowKind::Insert(row(2, 9))),
        change(RowKind::Delete(row(3, 0))),
        commit(11),
        begin(12),
        change(RowKind::Insert(row(7, 7))),
        change(RowKind::Update {
            before: row(1, 2),
            after: row(1, 3),
        }),
        commit(12),
    ];
    feed(&mut a, items).await.expect("applies");
    assert_eq!(
        a.exec.log,
        [
            "START TRANSACTION",
            "DELETE FROM `s`.`t` WHERE `id` IN (3)",
            "INSERT INTO `s`.`t` (`id`, `v`) VALUES (7, 7)",
            "INSERT INTO `s`.`t` (`id`, `v`) VALUES (1, 3), (2, 9) \
             ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)",
            "gtids 0-1-11 0-1-12",
            "position binlog 0-1-12",
            "COMMIT"
        ]
    );
    assert_eq!(a.stats.rows_applied.load(Relaxed), 6);
}

#[tokio::test]
async fn tables_with_another_unique_index_or_ties_are_not_folded() {
    for target in [
        TargetTable {
            unique_keys: vec![vec!["id".into()]],
            unique_indexes: 2,
            integer_columns: vec!["id".into()],
            ..TargetTable::default()
        },
        TargetTable {
            unique_keys: vec![vec!["id".into()]],
            unique_indexes: 1,
            integer_columns: vec!["id".into()],
            ordered: true,
            ..TargetTable::default()
        },
        TargetTable {
            unique_keys: vec![vec!["id".into()]],
            unique_indexes: 1,
            ..TargetTable::default()
        },
    ] {
        let mut recorder = Recorder::default();
        recorder.tables.insert("s.t".into(), target);
        let mut a = applier(10, recorder).await;
        let items = vec![
            table(1, "t", &["id"], vec![0]),
            begin(11),
            Item::Row(RowChange {
                table: 1,
                kind: RowKind::Delete(vec![Value::Int(1)]),
            }),
            commit(11),
        ];
        feed(&mut a, items).await.expect("applies");
        assert_eq!(a.exec.log[1], "DELETE FROM `s`.`t` WHERE `id` = 1");
    }
}
