//! A source table's definition as the target must create it: `SHOW CREATE TABLE`, repaired where
//! MariaDB prints it wrong.
//!
//! MariaDB 10.11 prints the members of an ENUM or SET column that hold 4-byte characters as `?`,
//! in `SHOW CREATE TABLE` and `information_schema` alike, whatever the session's character set
//! (its dictionary text is utf8mb3); the stored values are right. A table created from that text
//! would hold `?` where the source holds the character. So when a utf8mb4 ENUM/SET column's
//! members print with `?`, its real members are read back through a temporary one-column copy
//! (`CREATE TEMPORARY TABLE ... AS SELECT col ... LIMIT 0`, which takes the column's definition
//! from the table itself, not from its text): one row per member, inserted by index (ENUM) or by
//! bit (SET), read as raw bytes. The member list in the text is then replaced by the real one.

use super::Stop;
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql::quote;
use mysql_async::prelude::Queryable;

/// A table's `SHOW CREATE TABLE`, `None` when it does not exist.
///
/// # Errors
/// Classified MySQL errors.
pub async fn show_create(
    conn: &mut mysql_async::Conn,
    schema: &str,
    table: &str,
) -> Result<Option<String>, Stop> {
    let row: Result<Option<(Vec<u8>, Vec<u8>)>, _> = conn
        .query_first(format!("SHOW CREATE TABLE {}", quote::table(schema, table)))
        .await;
    match row {
        Ok(row) => Ok(row.map(|(_, create)| String::from_utf8_lossy(&create).into_owned())),
        Err(err) if crate::error::server_code(&err) == Some(crate::error::codes::NO_SUCH_TABLE) => {
            Ok(None)
        }
        Err(err) => Err(Stop::Failed(classify_mysql(
            format!("reading the definition of {schema}.{table}"),
            &err,
        ))),
    }
}

/// `create` (the table's `SHOW CREATE TABLE`) with the real members of every utf8mb4 ENUM/SET
/// column MariaDB printed with `?`. `probe` is a connection the temporary copies can live on.
///
/// # Errors
/// Classified MySQL errors; a user who may not create temporary tables gets a definite error
/// saying what to do.
pub async fn repair_members(
    probe: &mut mysql_async::Conn,
    schema: &str,
    table: &str,
    create: String,
) -> Result<String, Stop> {
    if !create.contains('?') {
        return Ok(create);
    }
    let context = format!("reading the ENUM/SET members of {schema}.{table}");
    let q = |e: mysql_async::Error| Stop::Failed(classify_mysql(&context, &e));
    let suspects: Vec<(String, String, String)> = probe
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND DATA_TYPE IN ('enum', 'set') \
             AND CHARACTER_SET_NAME = 'utf8mb4' AND COLUMN_TYPE LIKE '%?%'",
            (schema, table),
        )
        .await
        .map_err(q)?;
    let mut create = create;
    for (column, data_type, column_type) in suspects {
        let Some(printed) = members(&column_type) else {
            continue;
        };
        let real = read_members(probe, schema, table, &column, &data_type, printed.len())
            .await
            .map_err(|e| {
                Stop::Failed(TaskError::definite(
                    &context,
                    DefiniteCause::BadConfig(format!(
                        "{e}; MariaDB prints the 4-byte characters of column {column}'s members \
                         as '?', so dtle-rs reads them through a temporary table: grant CREATE \
                         TEMPORARY TABLES to the job's source user, or create the table on the \
                         target yourself and set SkipCreateDbTable"
                    )),
                ))
            })?;
        create = replace_members(&create, &column, &data_type, &real).unwrap_or(create);
    }
    Ok(create)
}

/// The members of `column`, in order, from a temporary one-column copy of it.
async fn read_members(
    probe: &mut mysql_async::Conn,
    schema: &str,
    table: &str,
    column: &str,
    data_type: &str,
    count: usize,
) -> Result<Vec<Vec<u8>>, mysql_async::Error> {
    // In the table's own schema: a temporary table needs one, and the job may read it.
    let copy = &quote::table(schema, "dtle_members_probe");
    probe
        .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {copy}"))
        .await?;
    probe
        .query_drop(format!(
            "CREATE TEMPORARY TABLE {copy} AS SELECT {} FROM {} LIMIT 0",
            quote::ident(column),
            quote::table(schema, table)
        ))
        .await?;
    let set = data_type.eq_ignore_ascii_case("set");
    let values: Vec<String> = (0..count)
        .map(|i| {
            if set {
                format!("({})", 1u64 << i.min(63))
            } else {
                format!("({})", i + 1)
            }
        })
        .collect();
    let result = async {
        probe
            .query_drop(format!("INSERT INTO {copy} VALUES {}", values.join(", ")))
            .await?;
        probe
            .query_drop("SET character_set_results = binary")
            .await?;
        let ordered = format!(
            "SELECT {c} FROM {copy} ORDER BY {c} + 0",
            c = quote::ident(column)
        );
        probe.query::<Vec<u8>, _>(ordered).await
    }
    .await;
    let _ = probe
        .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {copy}"))
        .await;
    result
}

/// The quoted members of `enum('a','b')` / `set(...)`, unescaped; `None` if it is not that.
fn members(column_type: &str) -> Option<Vec<String>> {
    let open = column_type.find('(')?;
    let mut out = Vec::new();
    let mut chars = column_type[open + 1..].chars().peekable();
    loop {
        match chars.next()? {
            '\'' => {
                let mut member = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            member.push('\'');
                        }
                        '\'' => break,
                        '\\' => member.push(chars.next()?),
                        c => member.push(c),
                    }
                }
                out.push(member);
            }
            ',' | ' ' => {}
            ')' => return Some(out),
            _ => return None,
        }
    }
}

/// `create` with `column`'s member list replaced by `real`; `None` if the column's definition
/// cannot be found in it.
fn replace_members(
    create: &str,
    column: &str,
    data_type: &str,
    real: &[Vec<u8>],
) -> Option<String> {
    let head = format!(
        "{} {}(",
        quote::ident(column),
        data_type.to_ascii_lowercase()
    );
    let start = create.find(&head)? + head.len() - 1;
    // The member list ends at the first ')' outside quotes.
    let mut quoted = false;
    let mut end = None;
    let bytes = create.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if quoted && bytes.get(i + 1) == Some(&b'\'') => i += 1,
            b'\'' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            b')' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let end = end?;
    let list: Vec<String> = real
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
        })
        .collect();
    Some(format!(
        "{}({}){}",
        &create[..start],
        list.join(","),
        &create[end + 1..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lists_parse_and_are_replaced_exactly() {
        assert_eq!(
            members("enum('a','?','it''s','x,y')"),
            Some(vec!["a".into(), "?".into(), "it's".into(), "x,y".into()])
        );
        assert_eq!(members("set('')"), Some(vec![String::new()]));
        assert_eq!(members("int(11)"), None);
        let create = "CREATE TABLE `t` (\n  `e` enum('a','?','))') DEFAULT NULL,\n  `s` set('?') NOT NULL\n)";
        let fixed = replace_members(
            create,
            "e",
            "enum",
            &["a".into(), "😀".as_bytes().to_vec(), b"))".to_vec()],
        )
        .expect("found");
        assert_eq!(
            fixed,
            "CREATE TABLE `t` (\n  `e` enum('a','😀','))') DEFAULT NULL,\n  `s` set('?') NOT NULL\n)"
        );
        let fixed =
            replace_members(&fixed, "s", "set", &["it's 🚀".as_bytes().to_vec()]).expect("found");
        assert!(
            fixed.ends_with("`s` set('it''s 🚀') NOT NULL\n)"),
            "{fixed}"
        );
        assert_eq!(replace_members(create, "missing", "enum", &[]), None);
    }
}
