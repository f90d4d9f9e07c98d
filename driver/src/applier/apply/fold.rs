//! Folding a group's row changes into their net effect per row, for tables where that is exact.
//!
//! # When
//! A table is folded when its rows are found by a key of integer columns that is its only unique
//! index on the target, and no trigger or foreign key ties it to anything (`Resolved::fold`,
//! decided against the target's own definition). The order in which such a table's rows change
//! inside one target transaction is then invisible: a key's final row depends on no other key's,
//! no constraint can fail half-way, and nothing observes the steps between. Integer keys compare
//! as their values, so two keys are the same row exactly when the server thinks so (a string key
//! could be equal under its collation while its bytes differ).
//!
//! # How
//! For each key touched, the fold keeps whether the row existed before the group first changed
//! it (that change was an update or a delete) and the row as it is now, if any. A flush writes,
//! per table: `DELETE ... WHERE key IN (...)` for rows that existed and are gone; a multi-row
//! `INSERT` for rows that did not exist (a duplicate key means the target differs, as it always
//! did); `INSERT ... ON DUPLICATE KEY UPDATE` of every column for rows that existed and still do.
//! A few statements per table replace several per source transaction, and the server parses a
//! fraction of the text. An update of a row the target lacks now inserts it where it used to
//! change nothing (with a warning): the target ends equal to the source either way.
//!
//! The fold is flushed when its group closes (before a schema change or a snapshot chunk too) and
//! when it holds [`FOLD_BYTES`] of rows, so a huge transaction stays bounded; what it flushes is
//! in the same target transaction as the rest of the group, so each source transaction still
//! commits whole and exactly once.

use super::group::Check;
use super::{Applier, Executor, Resolved};
use crate::applier::statements;
use crate::change::{RowKind, Value};
use crate::error::TaskError;
use crate::mysql::literal;
use std::collections::HashMap;
use std::sync::Arc;

/// Row data a fold holds at most before it is flushed.
const FOLD_BYTES: usize = 8 << 20;
/// Rows per statement of a flush at most.
const ROWS_PER_STATEMENT: usize = 1000;

/// A row's key: its key columns' integer values.
type Key = Vec<i128>;

/// A key's net change in the group.
#[derive(Debug)]
struct Net {
    /// The row existed before the group changed it.
    existed: bool,
    /// The row now; `None` when it is gone.
    now: Option<Vec<Value>>,
}

/// One table's folded changes.
struct Table {
    table: Arc<Resolved>,
    name: Arc<str>,
    rows: HashMap<Key, Net>,
}

/// The folded changes of the open group, per table in the order they were first changed.
#[derive(Default)]
pub(super) struct Fold {
    tables: Vec<Table>,
    bytes: usize,
}

impl Fold {
    /// Folds a change of a row of `table`; gives it back when its key is not made of integers
    /// (the table's definition said it would be: the change is then applied as it is).
    fn add(&mut self, table: &Arc<Resolved>, name: &Arc<str>, kind: RowKind) -> Option<RowKind> {
        let columns = &table.def.key;
        let (before, after, size) = match &kind {
            RowKind::Insert(row) => (None, Some(key(columns, row)), size(row)),
            RowKind::Update { before, after } => (
                Some(key(columns, before)),
                Some(key(columns, after)),
                size(after),
            ),
            RowKind::Delete(row) => (Some(key(columns, row)), None, 0),
        };
        if matches!(before, Some(None)) || matches!(after, Some(None)) {
            return Some(kind);
        }
        let (before, after) = (before.flatten(), after.flatten());
        let index = match self
            .tables
            .iter()
            .position(|t| Arc::ptr_eq(&t.table, table))
        {
            Some(i) => i,
            None => {
                self.tables.push(Table {
                    table: table.clone(),
                    name: name.clone(),
                    rows: HashMap::new(),
                });
                self.tables.len() - 1
            }
        };
        let rows = &mut self.tables[index].rows;
        self.bytes += size + 64;
        let same = before.is_some() && before == after;
        if let (Some(k), false) = (before, same) {
            // The row's key is gone (deleted, or changed by an update).
            rows.entry(k)
                .or_insert(Net {
                    existed: true,
                    now: None,
                })
                .now = None;
        }
        if let Some(k) = after {
            let now = match kind {
                RowKind::Insert(row) | RowKind::Update { after: row, .. } => row,
                RowKind::Delete(_) => return None,
            };
            // An update of the same key found the row there; any other write of a key the group
            // has not seen (an insert, an update's new key) did not.
            rows.entry(k)
                .or_insert(Net {
                    existed: same,
                    now: None,
                })
                .now = Some(now);
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// The integer values of `row`'s key columns; `None` if one is not an integer.
fn key(columns: &[usize], row: &[Value]) -> Option<Key> {
    columns
        .iter()
        .map(|&c| match row.get(c) {
            Some(Value::Int(n)) => Some(i128::from(*n)),
            Some(Value::UInt(n)) => Some(i128::from(*n)),
            _ => None,
        })
        .collect()
}

/// `rows` cut into statements of at most [`ROWS_PER_STATEMENT`] rows and `limit` bytes of
/// literals (a larger row alone).
fn statements_of(rows: impl IntoIterator<Item = Vec<Value>>, limit: usize) -> Vec<Vec<Vec<Value>>> {
    let mut statements = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let size = literal::row_max_len(&row);
        if !chunk.is_empty() && (chunk.len() >= ROWS_PER_STATEMENT || bytes + size > limit) {
            statements.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(row);
    }
    if !chunk.is_empty() {
        statements.push(chunk);
    }
    statements
}

fn size(row: &[Value]) -> usize {
    row.iter().map(Value::size_hint).sum()
}

impl<E: Executor> Applier<E> {
    /// Folds a row change of a folded table; gives it back when it must be applied as it is.
    ///
    /// # Errors
    /// As [`Applier::flush_fold`], when the fold is full.
    pub(super) async fn fold(
        &mut self,
        table: &Arc<Resolved>,
        name: &Arc<str>,
        kind: RowKind,
    ) -> Result<Option<RowKind>, TaskError> {
        self.open_group();
        if let Some(kind) = self.folded.add(table, name, kind) {
            return Ok(Some(kind));
        }
        if self.folded.bytes >= FOLD_BYTES {
            self.flush_fold().await?;
        }
        Ok(None)
    }

    /// Writes the folded changes into the group.
    ///
    /// # Errors
    /// As [`Applier::push_statement`].
    pub(super) async fn flush_fold(&mut self) -> Result<(), TaskError> {
        if self.folded.is_empty() {
            return Ok(());
        }
        let fold = std::mem::take(&mut self.folded);
        let limit = self.exec.max_text() / super::TEXT_SHARE;
        for Table { table, name, rows } in fold.tables {
            let mut rows: Vec<(Key, Net)> = rows.into_iter().collect();
            // Key order: deterministic, and kind to the target's B-tree.
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let gone: Vec<Key> = rows
                .iter()
                .filter(|(_, n)| n.existed && n.now.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            for keys in gone.chunks(ROWS_PER_STATEMENT) {
                let check = Check::Changed(name.clone(), keys.len() as u64);
                self.push_statement(check, |text| {
                    statements::delete_keys_into(text, &table.def, keys)
                })
                .await?;
            }
            let (new, kept): (Vec<_>, Vec<_>) = rows
                .into_iter()
                .filter_map(|(_, n)| Some((n.existed, n.now?)))
                .partition(|(existed, _)| !existed);
            for (rows, upsert) in [(new, false), (kept, true)] {
                for chunk in statements_of(rows.into_iter().map(|(_, row)| row), limit) {
                    let check = if upsert {
                        Check::Nothing
                    } else {
                        Check::Inserted(name.clone())
                    };
                    self.push_statement(check, |text| {
                        if upsert {
                            statements::upsert_into(text, &table.def, chunk)
                        } else {
                            statements::insert_into(text, &table.def, chunk, false)
                        }
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Forgets what the fold holds (the group is rolled back).
    pub(super) fn drop_fold(&mut self) {
        self.folded = Fold::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{ColumnDef, TableDef};

    fn table() -> Arc<Resolved> {
        Arc::new(Resolved {
            def: TableDef {
                id: 1,
                schema: "s".into(),
                name: "t".into(),
                columns: ["id", "v"]
                    .iter()
                    .map(|n| ColumnDef {
                        name: (*n).into(),
                        nullable: false,
                        float: false,
                    })
                    .collect(),
                key: vec![0],
            },
            project: None,
            fold: true,
        })
    }

    fn row(id: i64, v: i64) -> Vec<Value> {
        vec![Value::Int(id), Value::Int(v)]
    }

    fn net(fold: &Fold, id: i128) -> Option<(bool, Option<Vec<Value>>)> {
        fold.tables[0]
            .rows
            .get(&vec![id])
            .map(|n| (n.existed, n.now.clone()))
    }

    #[test]
    fn each_key_keeps_whether_it_existed_and_its_last_row() {
        let (t, name) = (table(), Arc::<str>::from("s.t"));
        let mut fold = Fold::default();
        let changes = [
            RowKind::Insert(row(1, 1)),
            RowKind::Update {
                before: row(1, 1),
                after: row(1, 2),
            },
            RowKind::Delete(row(2, 0)),
            RowKind::Insert(row(2, 5)),
            RowKind::Update {
                before: row(3, 0),
                after: row(4, 0),
            },
            RowKind::Insert(row(5, 0)),
            RowKind::Delete(row(5, 0)),
        ];
        for change in changes {
            assert!(fold.add(&t, &name, change).is_none());
        }
        assert_eq!(net(&fold, 1), Some((false, Some(row(1, 2)))));
        assert_eq!(net(&fold, 2), Some((true, Some(row(2, 5)))));
        assert_eq!(net(&fold, 3), Some((true, None)));
        assert_eq!(net(&fold, 4), Some((false, Some(row(4, 0)))));
        assert_eq!(
            net(&fold, 5),
            Some((false, None)),
            "inserted and deleted: nothing to write"
        );
    }

    #[test]
    fn statements_are_cut_by_rows_and_by_bytes() {
        let sizes = |rows: Vec<Vec<Value>>, limit| -> Vec<usize> {
            statements_of(rows, limit).iter().map(Vec::len).collect()
        };
        let small: Vec<Vec<Value>> = (0..2500).map(|i| row(i, 0)).collect();
        assert_eq!(sizes(small, usize::MAX), [1000, 1000, 500]);
        let wide = |n: usize| vec![Value::Bytes(vec![b'x'; n])];
        // Each literal at most 2 x 40 + 2 bytes: two fit in 170, and a row over the limit goes alone.
        let rows = vec![wide(40), wide(40), wide(40), wide(500), wide(1)];
        assert_eq!(sizes(rows, 170), [2, 1, 1, 1]);
    }

    #[test]
    fn a_key_that_is_not_an_integer_is_given_back() {
        let (t, name) = (table(), Arc::<str>::from("s.t"));
        let mut fold = Fold::default();
        let odd = RowKind::Insert(vec![Value::Bytes(b"x".to_vec()), Value::Int(1)]);
        assert!(fold.add(&t, &name, odd).is_some());
        assert!(fold.is_empty());
    }
}
