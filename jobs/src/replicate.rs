//! `ReplicateDoDb` / `ReplicateIgnoreDb`: reading and checking the schema and table rules.
//!
//! Each entry names schemas exactly (`TableSchema`) or by a regular expression matched against the
//! whole name (`TableSchemaRegex`), never both; the same holds for tables (`TableName` /
//! `TableRegex`). A rename may use the regex's capture groups (`rename${1}`); a rename that refers
//! to a group its entry cannot capture (no regex, or a group the regex does not have) is an error,
//! since it would silently map every table to a literal `${1}`. Column maps pair `ColumnMapFrom[i]`
//! with `ColumnMapTo[i]`, so both lists must have the same length.

use crate::diagnostic::Diagnostics;
use crate::read::ObjectReader;
use crate::spec::{ColumnMap, NameMatch, Pattern, SchemaRule, TableRule};

/// Which list the entries come from: renames and column maps only make sense in `ReplicateDoDb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleList {
    Do,
    Ignore,
}

/// Fields dtle 2.x had in these entries that dtle-rs reads no more, with why.
const LEGACY_SCHEMA_FIELDS: &[(&str, &str)] = &[
    (
        "TableSchemaScope",
        "dtle 2.x field, not used: TableSchema or TableSchemaRegex alone decides the scope",
    ),
    (
        "TableSchemaRenameRegex",
        "dtle 2.x field, not used: TableSchemaRename takes capture groups (${1}) directly",
    ),
];
const LEGACY_TABLE_FIELDS: &[(&str, &str)] = &[
    (
        "TableRenameRegex",
        "dtle 2.x field, not used: TableRename takes capture groups (${1}) directly",
    ),
    (
        "TableSchema",
        "not used here: a table belongs to the schema of its ReplicateDoDb entry",
    ),
    (
        "TableSchemaRename",
        "not used here: set TableSchemaRename on the ReplicateDoDb entry",
    ),
];

/// Reads the list under `key` (`ReplicateDoDb` or `ReplicateIgnoreDb`) of a task config.
pub(crate) fn read_rules(
    config: &mut ObjectReader<'_>,
    key: &str,
    list: RuleList,
    diags: &mut Diagnostics,
) -> Vec<SchemaRule> {
    config
        .objects(key, diags)
        .into_iter()
        .filter_map(|entry| read_schema_rule(entry, list, diags))
        .collect()
}

fn read_schema_rule(
    mut entry: ObjectReader<'_>,
    list: RuleList,
    diags: &mut Diagnostics,
) -> Option<SchemaRule> {
    let schema = read_name_match(&mut entry, "TableSchema", "TableSchemaRegex", diags);
    let rename = read_rename(
        &mut entry,
        "TableSchemaRename",
        "TableSchemaRegex",
        schema.as_ref(),
        list,
        diags,
    );
    let tables: Vec<TableRule> = entry
        .objects("Tables", diags)
        .into_iter()
        .filter_map(|table| read_table_rule(table, list, diags))
        .collect();
    finish(entry, LEGACY_SCHEMA_FIELDS, diags);
    Some(SchemaRule {
        schema: schema?,
        rename,
        tables,
    })
}

fn read_table_rule(
    mut entry: ObjectReader<'_>,
    list: RuleList,
    diags: &mut Diagnostics,
) -> Option<TableRule> {
    let table = read_name_match(&mut entry, "TableName", "TableRegex", diags);
    let rename = read_rename(
        &mut entry,
        "TableRename",
        "TableRegex",
        table.as_ref(),
        list,
        diags,
    );
    let where_clause = entry
        .string("Where", diags)
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty());
    if where_clause.is_some() && list == RuleList::Ignore {
        diags.warning(
            &entry.field_path("Where"),
            "has no effect in ReplicateIgnoreDb: the whole table is ignored",
        );
    }
    if let Some(text) = &where_clause {
        if let Err(why) = crate::where_clause::parse(text) {
            diags.error(
                &entry.field_path("Where"),
                format!("{text:?} is not a filter dtle-rs can evaluate: {why}"),
            );
        }
    }
    let column_map = read_column_map(&mut entry, list, diags);
    finish(entry, LEGACY_TABLE_FIELDS, diags);
    Some(TableRule {
        table: table?,
        rename,
        where_clause,
        column_map,
    })
}

/// Reads the exact-name field or the regex field; exactly one must be given.
fn read_name_match(
    entry: &mut ObjectReader<'_>,
    name_key: &str,
    regex_key: &str,
    diags: &mut Diagnostics,
) -> Option<NameMatch> {
    let name = entry.string(name_key, diags).filter(|s| !s.is_empty());
    let regex = entry.string(regex_key, diags).filter(|s| !s.is_empty());
    match (name, regex) {
        (Some(name), None) => Some(NameMatch::Exact(name)),
        (None, Some(source)) => match Pattern::new(&source) {
            Ok(pattern) => Some(NameMatch::Regex(pattern)),
            Err(err) => {
                diags.error(
                    &entry.field_path(regex_key),
                    format!(
                        "invalid regular expression {source:?}: {}",
                        one_line(&err.to_string())
                    ),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            diags.error(
                entry.path(),
                format!("give {name_key} or {regex_key}, not both"),
            );
            None
        }
        (None, None) => {
            diags.error(
                entry.path(),
                format!("{name_key} or {regex_key} is required"),
            );
            None
        }
    }
}

/// Reads a rename and checks that every capture group it refers to exists.
fn read_rename(
    entry: &mut ObjectReader<'_>,
    rename_key: &str,
    regex_key: &str,
    matched: Option<&NameMatch>,
    list: RuleList,
    diags: &mut Diagnostics,
) -> Option<String> {
    let rename = entry.string(rename_key, diags).filter(|s| !s.is_empty())?;
    let path = entry.field_path(rename_key);
    if list == RuleList::Ignore {
        diags.warning(
            &path,
            "has no effect in ReplicateIgnoreDb: nothing is copied",
        );
        return None;
    }
    let references = capture_references(&rename);
    match matched {
        Some(NameMatch::Regex(pattern)) => {
            let regex = pattern.regex();
            for reference in &references {
                let exists = match reference.parse::<usize>() {
                    Ok(index) => index < regex.captures_len(),
                    Err(_) => regex.capture_names().flatten().any(|n| n == reference),
                };
                if !exists {
                    diags.error(
                        &path,
                        format!(
                            "{rename:?} refers to capture group ${{{reference}}}, but {regex_key} {:?} has {} capture group(s)",
                            pattern.as_str(),
                            regex.captures_len() - 1
                        ),
                    );
                }
            }
        }
        Some(NameMatch::Exact(_)) => {
            if let Some(reference) = references.first() {
                diags.error(
                    &path,
                    format!(
                        "{rename:?} refers to capture group ${{{reference}}}, but there is no {regex_key} to capture it (a rename without a regex is taken literally)"
                    ),
                );
            }
        }
        None => {}
    }
    Some(rename)
}

/// The capture groups a rename template refers to, in the regex crate's syntax: `$1`, `${1}`,
/// `$name`, `${name}`; `$$` is a literal dollar.
fn capture_references(template: &str) -> Vec<String> {
    let mut references = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                references.push(braced[..end].to_owned());
                rest = &braced[end + 1..];
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                references.push(rest[..end].to_owned());
            }
            rest = &rest[end..];
        }
    }
    references
}

fn read_column_map(
    entry: &mut ObjectReader<'_>,
    list: RuleList,
    diags: &mut Diagnostics,
) -> Option<ColumnMap> {
    let from = entry.strings("ColumnMapFrom", diags);
    let to = entry.strings("ColumnMapTo", diags);
    let from_path = entry.field_path("ColumnMapFrom");
    let to_path = entry.field_path("ColumnMapTo");
    if from.is_empty() && to.is_empty() {
        return None;
    }
    if list == RuleList::Ignore {
        diags.warning(
            &from_path,
            "column maps have no effect in ReplicateIgnoreDb",
        );
        return None;
    }
    let mut ok = true;
    for (path, columns) in [(&from_path, &from), (&to_path, &to)] {
        for (i, column) in columns.iter().enumerate() {
            if column.trim().is_empty() {
                diags.error(&path.index(i), "empty column name");
                ok = false;
            } else if columns[..i].contains(column) {
                diags.error(&path.index(i), format!("column {column:?} is listed twice"));
                ok = false;
            }
        }
    }
    let to = if from.is_empty() {
        diags.error(
            &to_path,
            "ColumnMapTo needs ColumnMapFrom: the source columns are paired with these in order",
        );
        return None;
    } else if to.is_empty() {
        diags.warning(
            &from_path,
            "ColumnMapFrom without ColumnMapTo is deprecated in dtle: the columns keep their names",
        );
        from.clone()
    } else if to.len() != from.len() {
        diags.error(
            &to_path,
            format!(
                "has {} column(s) but ColumnMapFrom has {}: they are paired in order, so the lengths must be equal",
                to.len(),
                from.len()
            ),
        );
        return None;
    } else {
        to
    };
    ok.then_some(ColumnMap { from, to })
}

/// Reports the fields of an entry nobody read: legacy ones with why, others as unknown.
fn finish(entry: ObjectReader<'_>, legacy: &[(&str, &str)], diags: &mut Diagnostics) {
    diags.keep_leftovers(entry.finish(), legacy);
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_references_follow_the_regex_crate_syntax() {
        assert_eq!(capture_references("rename${1}"), vec!["1"]);
        assert_eq!(capture_references("$1_$name-x"), vec!["1_", "name"]);
        assert_eq!(capture_references("cost$$5"), Vec::<String>::new());
        assert_eq!(capture_references("plain"), Vec::<String>::new());
        assert_eq!(capture_references("${a}${b}"), vec!["a", "b"]);
    }

    #[test]
    fn renames_expand_captures_of_whole_name_matches() {
        let pattern = Pattern::new(r"(\w*)src(\w*)").unwrap();
        assert_eq!(
            pattern.rename("test1src", "rename${1}").as_deref(),
            Some("renametest1")
        );
        assert_eq!(pattern.rename("cust", "rename${1}"), None);
        let shard = Pattern::new(r"(\w*)Shard(\w*)").unwrap();
        assert!(shard.is_full_match("test1Shard"));
        assert!(!shard.is_full_match("customer"));
        assert!(!Pattern::new("a").unwrap().is_full_match("ab"));
    }
}
