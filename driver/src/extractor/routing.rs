//! Which source tables a job replicates, and under which target names.
//!
//! dtle's rules: system schemas are never replicated; an empty `ReplicateDoDb` means every other
//! schema; an entry names schemas (exactly or by a regex over the whole name) and optionally
//! tables of them; `ReplicateIgnoreDb` wins over `ReplicateDoDb` (an entry without tables ignores
//! the whole schema). Renames come from the entry that matched. The same routing is applied to the
//! snapshot and to the binlog, so both phases agree on every table.

use jobs::{ColumnMap, ExtractConfig, NameMatch, SchemaRule, TableRule};

/// Schemas no job replicates: the server's own, and dtle-rs's position schema.
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    crate::change::POSITION_SCHEMA,
];

/// Where one source table goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Target schema.
    pub schema: String,
    /// Target table.
    pub table: String,
    /// Only rows for which this SQL condition holds.
    pub where_clause: Option<String>,
    /// Source columns to copy and their target names.
    pub column_map: Option<ColumnMap>,
}

impl Route {
    /// The target table as `schema.table`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// The job's routing rules.
#[derive(Debug, Clone)]
pub struct Routing {
    do_db: Vec<SchemaRule>,
    ignore_db: Vec<SchemaRule>,
}

impl Routing {
    /// The rules of a job.
    pub fn new(config: &ExtractConfig) -> Self {
        Self {
            do_db: config.replicate_do_db.clone(),
            ignore_db: config.replicate_ignore_db.clone(),
        }
    }

    /// The target name of source schema `schema`, if any of its tables (or the schema itself) is
    /// replicated.
    pub fn schema(&self, schema: &str) -> Option<String> {
        if SYSTEM_SCHEMAS.contains(&schema.to_ascii_lowercase().as_str()) {
            return None;
        }
        if self
            .ignore_db
            .iter()
            .any(|rule| rule.tables.is_empty() && rule.schema.matches(schema))
        {
            return None;
        }
        if self.do_db.is_empty() {
            return Some(schema.to_owned());
        }
        self.do_db
            .iter()
            .find(|rule| rule.schema.matches(schema))
            .map(|rule| rename_schema(rule, schema))
    }

    /// Where source table `schema`.`table` goes, if it is replicated.
    pub fn route(&self, schema: &str, table: &str) -> Option<Route> {
        let target_schema = self.schema(schema)?;
        let ignored = self.ignore_db.iter().any(|rule| {
            rule.schema.matches(schema) && rule.tables.iter().any(|t| t.table.matches(table))
        });
        if ignored {
            return None;
        }
        if self.do_db.is_empty() {
            return Some(Route {
                schema: target_schema,
                table: table.to_owned(),
                where_clause: None,
                column_map: None,
            });
        }
        for rule in self.do_db.iter().filter(|r| r.schema.matches(schema)) {
            if rule.tables.is_empty() {
                return Some(Route {
                    schema: rename_schema(rule, schema),
                    table: table.to_owned(),
                    where_clause: None,
                    column_map: None,
                });
            }
            if let Some(t) = rule.tables.iter().find(|t| t.table.matches(table)) {
                return Some(Route {
                    schema: rename_schema(rule, schema),
                    table: rename_table(t, table),
                    where_clause: t.where_clause.clone(),
                    column_map: t.column_map.clone(),
                });
            }
        }
        None
    }
}

fn rename_schema(rule: &SchemaRule, schema: &str) -> String {
    rename(&rule.schema, rule.rename.as_deref(), schema)
}

fn rename_table(rule: &TableRule, table: &str) -> String {
    rename(&rule.table, rule.rename.as_deref(), table)
}

fn rename(matched: &NameMatch, rename: Option<&str>, name: &str) -> String {
    match (matched, rename) {
        (_, None) => name.to_owned(),
        (NameMatch::Exact(_), Some(to)) => to.to_owned(),
        (NameMatch::Regex(pattern), Some(to)) => {
            pattern.rename(name, to).unwrap_or_else(|| name.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(job: &str) -> Routing {
        let spec = jobs::parse_job(job).expect("valid job").spec;
        Routing::new(&spec.src.extract)
    }

    fn job(do_db: &str, ignore_db: &str) -> String {
        format!(
            r#"{{"Name": "t", "Tasks": [
              {{"Type": "Src", "Config": {{"ReplicateDoDb": {do_db}, "ReplicateIgnoreDb": {ignore_db},
                "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u"}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u"}}}}}}]}}"#
        )
    }

    #[test]
    fn empty_do_db_means_everything_but_system_schemas() {
        let r = routing(&job("[]", "[]"));
        assert!(r.route("shop", "orders").is_some());
        assert!(r.route("mysql", "user").is_none());
        assert!(r.route("dtle", "gtid_executed").is_none());
    }

    #[test]
    fn ignore_wins_over_do_as_dtle_documents() {
        let r = routing(&job(
            r#"[{"TableSchema": "db1"}]"#,
            r#"[{"TableSchema": "db1", "Tables": [{"TableName": "tb1"}]}]"#,
        ));
        assert!(r.route("db1", "tb2").is_some());
        assert!(r.route("db1", "tb1").is_none());
        let r = routing(&job(
            r#"[{"TableSchema": "db1", "Tables": [{"TableName": "tb1"}]}]"#,
            r#"[{"TableSchema": "db1"}]"#,
        ));
        assert!(r.route("db1", "tb1").is_none());
        assert!(r.schema("db1").is_none());
    }

    #[test]
    fn renames_use_the_matching_entry() {
        let r = routing(&job(
            r#"[{"TableSchemaRegex": "(\\w*)src(\\w*)", "TableSchemaRename": "rename${1}"},
                {"TableSchema": "demo", "Tables": [{"TableRegex": "(\\w*)Shard(\\w*)", "TableRename": "${1}Rename"}]}]"#,
            "[]",
        ));
        assert_eq!(r.schema("test1src").as_deref(), Some("renametest1"));
        assert!(r.schema("cust").is_none());
        let route = r.route("demo", "test2Shard").unwrap();
        assert_eq!(
            (route.schema.as_str(), route.table.as_str()),
            ("demo", "test2Rename")
        );
        assert!(r.route("demo", "customer").is_none());
    }
}
