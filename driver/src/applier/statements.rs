//! SQL for row changes. Identifiers are always quoted; values go to a [`Sink`]: either bound as
//! parameters of a prepared statement ([`Prepared`]) or written as exact literals into a text
//! batch ([`Text`], see `mysql::literal`). One builder serves both, so the two forms cannot drift.
//!
//! Rows are found by the table's key (`WHERE k1 = ? AND k2 = ?`); a table without one is matched
//! on every column with NULL-safe equality and `LIMIT 1`, so of two identical rows exactly one is
//! changed, as on the source.

use crate::change::{TableDef, Value};
use crate::mysql::{literal, params::into_param, quote};

/// Most rows in one multi-row INSERT (and at most 65,535 parameters, the protocol's limit).
pub const MAX_BATCH_ROWS: usize = 500;

/// Where a statement's text and values go.
pub trait Sink {
    /// Appends SQL text.
    fn sql(&mut self, text: &str);
    /// Appends a value, moved.
    fn value(&mut self, value: Value);
}

/// A statement with `?` placeholders and its parameters.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The statement.
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<mysql_async::Value>,
}

impl Sink for Prepared {
    fn sql(&mut self, text: &str) {
        self.sql.push_str(text);
    }
    fn value(&mut self, value: Value) {
        self.sql.push('?');
        self.params.push(into_param(value));
    }
}

/// Statement text with values as literals, appended to a batch.
pub struct Text<'a>(pub &'a mut Vec<u8>);

impl Sink for Text<'_> {
    fn sql(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }
    fn value(&mut self, value: Value) {
        literal::push(self.0, &value);
    }
}

/// `INSERT INTO t (cols) VALUES (...), ...` of `rows`; `REPLACE` when `replace`.
pub fn insert_into(
    sink: &mut impl Sink,
    def: &TableDef,
    rows: impl IntoIterator<Item = Vec<Value>>,
    replace: bool,
) {
    sink.sql(if replace {
        "REPLACE INTO "
    } else {
        "INSERT INTO "
    });
    sink.sql(&quote::table(&def.schema, &def.name));
    sink.sql(" (");
    for (i, c) in def.columns.iter().enumerate() {
        if i > 0 {
            sink.sql(", ");
        }
        sink.sql(&quote::ident(&c.name));
    }
    sink.sql(") VALUES ");
    for (r, row) in rows.into_iter().enumerate() {
        sink.sql(if r == 0 { "(" } else { ", (" });
        for (i, value) in row.into_iter().enumerate() {
            if i > 0 {
                sink.sql(", ");
            }
            sink.value(value);
        }
        sink.sql(")");
    }
}

/// `UPDATE t SET ... WHERE <row>`.
pub fn update_into(sink: &mut impl Sink, def: &TableDef, before: Vec<Value>, after: Vec<Value>) {
    sink.sql("UPDATE ");
    sink.sql(&quote::table(&def.schema, &def.name));
    sink.sql(" SET ");
    for (i, (c, value)) in def.columns.iter().zip(after).enumerate() {
        if i > 0 {
            sink.sql(", ");
        }
        sink.sql(&quote::ident(&c.name));
        sink.sql(" = ");
        sink.value(value);
    }
    matching(sink, def, before);
}

/// `DELETE FROM t WHERE <row>`.
pub fn delete_into(sink: &mut impl Sink, def: &TableDef, before: Vec<Value>) {
    sink.sql("DELETE FROM ");
    sink.sql(&quote::table(&def.schema, &def.name));
    matching(sink, def, before);
}

/// `INSERT INTO t (cols) VALUES (...), ... ON DUPLICATE KEY UPDATE c = VALUES(c), ...` of `rows`:
/// each row written whole whether or not it is there (for a table whose only unique index is
/// its key, see `apply::fold`).
pub fn upsert_into(sink: &mut impl Sink, def: &TableDef, rows: Vec<Vec<Value>>) {
    insert_into(sink, def, rows, false);
    sink.sql(" ON DUPLICATE KEY UPDATE ");
    let mut set: Vec<&str> = def
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !def.key.contains(i))
        .map(|(_, c)| c.name.as_str())
        .collect();
    if set.is_empty() {
        // Every column is in the key: a row that is there is already right.
        set.extend(def.key.first().map(|&k| def.columns[k].name.as_str()));
    }
    for (i, name) in set.into_iter().enumerate() {
        if i > 0 {
            sink.sql(", ");
        }
        let column = quote::ident(name);
        sink.sql(&format!("{column} = VALUES({column})"));
    }
}

/// `DELETE FROM t WHERE k IN (...)` (or `(k1 = .. AND k2 = ..) OR ...` for a key of several
/// columns) of rows found by integer `keys`.
pub fn delete_keys_into(sink: &mut impl Sink, def: &TableDef, keys: &[Vec<i128>]) {
    sink.sql("DELETE FROM ");
    sink.sql(&quote::table(&def.schema, &def.name));
    sink.sql(" WHERE ");
    let names: Vec<String> = def
        .key
        .iter()
        .map(|&k| quote::ident(&def.columns[k].name))
        .collect();
    if let [name] = names.as_slice() {
        sink.sql(name);
        sink.sql(" IN (");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                sink.sql(", ");
            }
            sink.sql(&key.first().copied().unwrap_or_default().to_string());
        }
        sink.sql(")");
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        sink.sql(if i == 0 { "(" } else { " OR (" });
        for (j, (name, value)) in names.iter().zip(key).enumerate() {
            if j > 0 {
                sink.sql(" AND ");
            }
            sink.sql(&format!("{name} = {value}"));
        }
        sink.sql(")");
    }
}

/// ` WHERE <condition that finds row>`.
fn matching(sink: &mut impl Sink, def: &TableDef, row: Vec<Value>) {
    sink.sql(" WHERE ");
    if !def.key.is_empty() {
        let mut row: Vec<Option<Value>> = row.into_iter().map(Some).collect();
        for (i, &k) in def.key.iter().enumerate() {
            if i > 0 {
                sink.sql(" AND ");
            }
            sink.sql(&quote::ident(&def.columns[k].name));
            sink.sql(" = ");
            sink.value(row.get_mut(k).and_then(Option::take).unwrap_or(Value::Null));
        }
        return;
    }
    for (i, (c, value)) in def.columns.iter().zip(row).enumerate() {
        if i > 0 {
            sink.sql(" AND ");
        }
        sink.sql(&quote::ident(&c.name));
        sink.sql(" <=> ");
        sink.value(value);
    }
    sink.sql(" LIMIT 1");
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

    fn text(build: impl FnOnce(&mut Text<'_>)) -> String {
        let mut buf = Vec::new();
        build(&mut Text(&mut buf));
        String::from_utf8(buf).expect("UTF-8")
    }

    #[test]
    fn statements_quote_names_and_bind_values() {
        let mut insert_two = Prepared::default();
        let rows = vec![
            vec![Value::Int(1), Value::Null],
            vec![Value::Int(2), Value::Null],
        ];
        insert_into(&mut insert_two, &def(vec![0]), rows, false);
        assert_eq!(
            insert_two.sql,
            "INSERT INTO `s`.`t` (`id`, `v``x`) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(insert_two.params.len(), 4);
        let mut up = Prepared::default();
        update_into(
            &mut up,
            &def(vec![0]),
            vec![Value::Int(1), Value::Null],
            vec![Value::Int(2), Value::Null],
        );
        assert_eq!(
            up.sql,
            "UPDATE `s`.`t` SET `id` = ?, `v``x` = ? WHERE `id` = ?"
        );
        assert_eq!(up.params.len(), 3);
        assert_eq!(
            up.params[2],
            mysql_async::Value::Int(1),
            "the key's value comes last"
        );
        let mut del = Prepared::default();
        delete_into(&mut del, &def(vec![]), vec![Value::Int(1), Value::Null]);
        assert_eq!(
            del.sql,
            "DELETE FROM `s`.`t` WHERE `id` <=> ? AND `v``x` <=> ? LIMIT 1"
        );
        assert_eq!(del.params.len(), 2);
    }

    #[test]
    fn folded_rows_are_written_whole_and_deleted_by_key() {
        let rows = vec![vec![Value::Int(1), Value::Int(7)]];
        assert_eq!(
            text(|t| upsert_into(t, &def(vec![0]), rows)),
            "INSERT INTO `s`.`t` (`id`, `v``x`) VALUES (1, 7) \
             ON DUPLICATE KEY UPDATE `v``x` = VALUES(`v``x`)"
        );
        assert_eq!(
            text(|t| delete_keys_into(t, &def(vec![0]), &[vec![1], vec![-2]])),
            "DELETE FROM `s`.`t` WHERE `id` IN (1, -2)"
        );
        assert_eq!(
            text(|t| delete_keys_into(t, &def(vec![0, 1]), &[vec![1, 2], vec![3, 4]])),
            "DELETE FROM `s`.`t` WHERE (`id` = 1 AND `v``x` = 2) OR (`id` = 3 AND `v``x` = 4)"
        );
    }

    #[test]
    fn text_statements_carry_literals_where_prepared_ones_have_placeholders() {
        let rows = vec![vec![Value::Int(1), Value::Bytes(b"it's".to_vec())]];
        assert_eq!(
            text(|t| insert_into(t, &def(vec![0]), rows, true)),
            "REPLACE INTO `s`.`t` (`id`, `v``x`) VALUES (1, 'it\\'s')"
        );
        assert_eq!(
            text(|t| update_into(
                t,
                &def(vec![0]),
                vec![Value::Int(1), Value::Null],
                vec![Value::Int(2), Value::Null]
            )),
            "UPDATE `s`.`t` SET `id` = 2, `v``x` = NULL WHERE `id` = 1"
        );
        assert_eq!(
            text(|t| delete_into(t, &def(vec![]), vec![Value::Int(1), Value::Null])),
            "DELETE FROM `s`.`t` WHERE `id` <=> 1 AND `v``x` <=> NULL LIMIT 1"
        );
    }
}
