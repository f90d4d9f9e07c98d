//! SQL for row changes. Values are always parameters; identifiers are always quoted.
//!
//! Rows are found by the table's key (`WHERE k1 = ? AND k2 = ?`); a table without one is matched
//! on every column with NULL-safe equality and `LIMIT 1`, so of two identical rows exactly one is
//! changed, as on the source.

use crate::change::{TableDef, Value};
use crate::mysql::{params::into_param, quote};

/// Most rows in one multi-row INSERT (and at most 65,535 parameters, the protocol's limit).
pub const MAX_BATCH_ROWS: usize = 500;

/// `INSERT INTO t (cols) VALUES (...), ...` for `rows` rows; `REPLACE` when `replace`.
pub fn insert(def: &TableDef, rows: usize, replace: bool) -> String {
    let columns: Vec<String> = def.columns.iter().map(|c| quote::ident(&c.name)).collect();
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    format!(
        "{} INTO {} ({}) VALUES {}",
        if replace { "REPLACE" } else { "INSERT" },
        quote::table(&def.schema, &def.name),
        columns.join(", "),
        vec![one; rows].join(", ")
    )
}

/// Rows of an insert as parameters, their values moved.
pub fn insert_params(rows: impl IntoIterator<Item = Vec<Value>>) -> Vec<mysql_async::Value> {
    rows.into_iter()
        .flat_map(|row| row.into_iter().map(into_param))
        .collect()
}

/// `UPDATE t SET ... WHERE <row>` and its parameters.
pub fn update(
    def: &TableDef,
    before: Vec<Value>,
    after: Vec<Value>,
) -> (String, Vec<mysql_async::Value>) {
    let set: Vec<String> = def
        .columns
        .iter()
        .map(|c| format!("{} = ?", quote::ident(&c.name)))
        .collect();
    let mut params: Vec<mysql_async::Value> = after.into_iter().map(into_param).collect();
    let (condition, limit) = matching(def, before, &mut params);
    (
        format!(
            "UPDATE {} SET {} WHERE {condition}{limit}",
            quote::table(&def.schema, &def.name),
            set.join(", ")
        ),
        params,
    )
}

/// `DELETE FROM t WHERE <row>` and its parameters.
pub fn delete(def: &TableDef, before: Vec<Value>) -> (String, Vec<mysql_async::Value>) {
    let mut params = Vec::new();
    let (condition, limit) = matching(def, before, &mut params);
    (
        format!(
            "DELETE FROM {} WHERE {condition}{limit}",
            quote::table(&def.schema, &def.name)
        ),
        params,
    )
}

/// The condition that finds `row`, appending its parameters.
fn matching(
    def: &TableDef,
    row: Vec<Value>,
    params: &mut Vec<mysql_async::Value>,
) -> (String, &'static str) {
    if !def.key.is_empty() {
        let mut row: Vec<Option<Value>> = row.into_iter().map(Some).collect();
        let terms: Vec<String> = def
            .key
            .iter()
            .map(|&k| {
                let value = row.get_mut(k).and_then(Option::take).unwrap_or(Value::Null);
                params.push(into_param(value));
                format!("{} = ?", quote::ident(&def.columns[k].name))
            })
            .collect();
        return (terms.join(" AND "), "");
    }
    let terms: Vec<String> = def
        .columns
        .iter()
        .zip(row)
        .map(|(c, v)| {
            params.push(into_param(v));
            format!("{} <=> ?", quote::ident(&c.name))
        })
        .collect();
    (terms.join(" AND "), " LIMIT 1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ColumnDef;

    fn def(key: Vec<usize>) -> TableDef {
        TableDef {
            id: 1,
            schema: "s".into(),
            name: "t".into(),
            columns: ["id", "v`x"]
                .iter()
                .map(|n| ColumnDef {
                    name: (*n).into(),
                    nullable: true,
                    float: false,
                })
                .collect(),
            key,
        }
    }

    #[test]
    fn statements_quote_names_and_bind_values() {
        assert_eq!(
            insert(&def(vec![0]), 2, false),
            "INSERT INTO `s`.`t` (`id`, `v``x`) VALUES (?, ?), (?, ?)"
        );
        let (sql, params) = update(
            &def(vec![0]),
            vec![Value::Int(1), Value::Null],
            vec![Value::Int(2), Value::Null],
        );
        assert_eq!(
            sql,
            "UPDATE `s`.`t` SET `id` = ?, `v``x` = ? WHERE `id` = ?"
        );
        assert_eq!(params.len(), 3);
        assert_eq!(
            params[2],
            mysql_async::Value::Int(1),
            "the key's value comes last"
        );
        let (sql, params) = delete(&def(vec![]), vec![Value::Int(1), Value::Null]);
        assert_eq!(
            sql,
            "DELETE FROM `s`.`t` WHERE `id` <=> ? AND `v``x` <=> ? LIMIT 1"
        );
        assert_eq!(params.len(), 2);
    }
}
