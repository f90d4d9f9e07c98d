//! Stream tables and how their rows are written on the target: the definition the binlog gives,
//! resolved once against the target's own (generated columns left out, the key that finds a row,
//! and whether a group's changes may be folded, see [`super::fold`]).

use crate::applier::executor::TargetTable;
use crate::change::{TableDef, Value};
use std::sync::Arc;

/// A stream table and, once resolved against the target, how to write it.
pub(super) struct Table {
    pub(super) def: TableDef,
    /// `schema.table`, as stats and the catch-up name it (made once, not per row).
    pub(super) name: Arc<str>,
    pub(super) resolved: Option<Arc<Resolved>>,
}

/// How rows of a table are written: statements are built from `def` (written columns only, and
/// the key that finds a row), and each row is cut down to those columns by `project`.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) def: TableDef,
    /// Index in the stream's row of each written column; `None` when every column is written.
    pub(super) project: Option<Vec<usize>>,
    /// Its changes in a group are folded into their net effect per row (see [`super::fold`]).
    pub(super) fold: bool,
}

impl Resolved {
    /// `row` cut down to the written columns.
    pub(super) fn row(&self, mut row: Vec<Value>) -> Vec<Value> {
        match &self.project {
            None => row,
            Some(columns) => columns
                .iter()
                .map(|&i| {
                    row.get_mut(i)
                        .map_or(Value::Null, |v| std::mem::replace(v, Value::Null))
                })
                .collect(),
        }
    }
}

/// The written columns and row-finding key of `def` on a target table described by `target`.
pub(super) fn resolve(def: TableDef, target: TargetTable) -> Resolved {
    let written: Vec<usize> = (0..def.columns.len())
        .filter(|&i| !target.generated.contains(&def.columns[i].name))
        .collect();
    let position_of = |name: &str| written.iter().position(|&i| def.columns[i].name == name);
    let stream_key: Option<Vec<usize>> = def
        .key
        .iter()
        .map(|&k| written.iter().position(|&i| i == k))
        .collect();
    let key = match stream_key {
        Some(key) if !key.is_empty() => key,
        _ => target
            .unique_keys
            .iter()
            .find_map(|cols| {
                cols.iter()
                    .map(|c| position_of(c))
                    .collect::<Option<Vec<_>>>()
            })
            .unwrap_or_default(),
    };
    let project = (written.len() != def.columns.len()).then(|| written.clone());
    let columns: Vec<_> = written.iter().map(|&i| def.columns[i].clone()).collect();
    let key_names: Vec<String> = key.iter().map(|&k| columns[k].name.clone()).collect();
    let fold = !key.is_empty()
        && !target.ordered
        && target.unique_indexes == 1
        && target.unique_keys.first() == Some(&key_names)
        && key_names.iter().all(|k| target.integer_columns.contains(k));
    Resolved {
        def: TableDef {
            columns,
            key,
            ..def
        },
        project,
        fold,
    }
}
