//! A [`JobSpec`] written back as dtle 2.x task configs, for the API's job views.
//!
//! The result always uses the 2.x shape (a `ConnectionConfig` per task), whatever shape the job
//! arrived in, and every field with its effective value (defaults filled in). Render a
//! [`JobSpec::redacted`] job: this module copies passwords as they are.

use crate::spec::{
    ApplyConfig, ColumnMap, ConnectionConfig, ExtractConfig, JobSpec, NameMatch, Placement,
    SchemaRule, SslMode, StartPosition, TableRule,
};
use serde_json::{json, Map, Value};

/// The job's tasks as dtle 2.x `Tasks` entries: `[{Type, Driver, NodeID, NodeName, Config}]`.
pub fn dtle_tasks(spec: &JobSpec) -> Vec<Value> {
    vec![
        task(
            "Src",
            &spec.src.placement,
            src_config(&spec.src.extract, &spec.src.connection),
        ),
        task(
            "Dest",
            &spec.dest.placement,
            dest_config(&spec.dest.apply, &spec.dest.connection),
        ),
    ]
}

fn task(kind: &str, placement: &Placement, config: Value) -> Value {
    json!({
        "Type": kind,
        "Driver": "MySQL",
        "NodeID": placement.node_id.clone().unwrap_or_default(),
        "NodeName": placement.node_name.clone().unwrap_or_default(),
        "Config": config,
    })
}

/// dtle's five fields; the TLS fields (dtle-rs's own) only for a connection that uses TLS, so a
/// job without them renders as dtle rendered it.
fn connection(c: &ConnectionConfig) -> Value {
    let mut out = Map::new();
    out.insert("Host".into(), json!(c.host));
    out.insert("Port".into(), json!(c.port));
    out.insert("User".into(), json!(c.user));
    out.insert("Password".into(), json!(c.password.expose()));
    out.insert("Charset".into(), json!(c.charset));
    let ssl = &c.ssl;
    if ssl.mode != SslMode::Disabled {
        out.insert("SslMode".into(), json!(ssl.mode.as_str()));
        for (key, file) in [
            ("SslCa", &ssl.ca),
            ("SslCert", &ssl.cert),
            ("SslKey", &ssl.key),
        ] {
            if let Some(file) = file {
                out.insert(key.into(), json!(file));
            }
        }
    }
    Value::Object(out)
}

fn src_config(e: &ExtractConfig, c: &ConnectionConfig) -> Value {
    let mut config = Map::new();
    config.insert("ReplicateDoDb".into(), rules(&e.replicate_do_db));
    config.insert("ReplicateIgnoreDb".into(), rules(&e.replicate_ignore_db));
    let (gtid, gtid_start, auto, file, pos) = match &e.start {
        StartPosition::Snapshot => (String::new(), String::new(), false, String::new(), 0),
        StartPosition::AfterExecuted(set) => {
            (set.to_string(), String::new(), false, String::new(), 0)
        }
        StartPosition::FromGtid(set) => (String::new(), set.to_string(), false, String::new(), 0),
        StartPosition::Current => (String::new(), String::new(), true, String::new(), 0),
        StartPosition::BinlogFile { file, pos } => {
            (String::new(), String::new(), false, file.clone(), *pos)
        }
    };
    config.insert("Gtid".into(), json!(gtid));
    config.insert("GtidStart".into(), json!(gtid_start));
    config.insert("AutoGtid".into(), json!(auto));
    config.insert("BinlogFile".into(), json!(file));
    config.insert("BinlogPos".into(), json!(pos));
    config.insert("ChunkSize".into(), json!(e.chunk_size));
    config.insert("ReplChanBufferSize".into(), json!(e.repl_chan_buffer_size));
    config.insert("GroupMaxSize".into(), json!(e.group_max_size));
    config.insert("GroupTimeout".into(), json!(e.group_timeout_ms));
    config.insert("DropTableIfExists".into(), json!(e.drop_table_if_exists));
    config.insert("SkipCreateDbTable".into(), json!(e.skip_create_db_table));
    config.insert("ExpandSyntaxSupport".into(), json!(e.expand_syntax_support));
    config.insert("SkipIncrementalCopy".into(), json!(e.skip_incremental_copy));
    config.insert("SkipPrivilegeCheck".into(), json!(e.skip_privilege_check));
    config.insert(
        "SqlFilter".into(),
        json!(e
            .sql_filter
            .0
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()),
    );
    config.insert("SlaveNetWriteTimeout".into(), json!(e.net_write_timeout_s));
    config.insert("DumpEntryLimit".into(), json!(e.dump_entry_limit));
    config.insert("ConnectionConfig".into(), connection(c));
    Value::Object(config)
}

fn dest_config(a: &ApplyConfig, c: &ConnectionConfig) -> Value {
    json!({
        "ParallelWorkers": a.parallel_workers,
        "UseMySQLDependency": a.use_mysql_dependency,
        "DependencyHistorySize": a.dependency_history_size,
        "ForeignKeyChecks": a.foreign_key_checks,
        "RetryTxLimit": a.retry_tx_limit,
        "SetGtidNext": a.set_gtid_next,
        "GtidExecutedRetention": a.gtid_executed_retention,
        "ConnectionConfig": connection(c),
    })
}

fn rules(rules: &[SchemaRule]) -> Value {
    Value::Array(rules.iter().map(schema_rule).collect())
}

fn name_fields(out: &mut Map<String, Value>, matched: &NameMatch, exact: &str, regex: &str) {
    match matched {
        NameMatch::Exact(name) => out.insert(exact.into(), json!(name)),
        NameMatch::Regex(pattern) => out.insert(regex.into(), json!(pattern.as_str())),
    };
}

fn schema_rule(rule: &SchemaRule) -> Value {
    let mut out = Map::new();
    name_fields(&mut out, &rule.schema, "TableSchema", "TableSchemaRegex");
    if let Some(rename) = &rule.rename {
        out.insert("TableSchemaRename".into(), json!(rename));
    }
    out.insert(
        "Tables".into(),
        Value::Array(rule.tables.iter().map(table_rule).collect()),
    );
    Value::Object(out)
}

fn table_rule(rule: &TableRule) -> Value {
    let mut out = Map::new();
    name_fields(&mut out, &rule.table, "TableName", "TableRegex");
    if let Some(rename) = &rule.rename {
        out.insert("TableRename".into(), json!(rename));
    }
    if let Some(filter) = &rule.where_clause {
        out.insert("Where".into(), json!(filter));
    }
    if let Some(ColumnMap { from, to }) = &rule.column_map {
        out.insert("ColumnMapFrom".into(), json!(from));
        out.insert("ColumnMapTo".into(), json!(to));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rendered job, posted again, is the same job.
    #[test]
    fn rendering_round_trips_through_the_parser() {
        let text = include_str!("../tests/fixtures/same_dtle2x.json");
        let spec = crate::parse_job(text).expect("fixture parses").spec;
        let rendered = json!({
            "Name": spec.name,
            "Failover": spec.failover,
            "Tasks": dtle_tasks(&spec),
        });
        let again = crate::from_json_value(&rendered)
            .expect("rendered job parses")
            .spec;
        assert_eq!(again, spec);
    }

    /// The TLS settings come back when used, and not at all when not (dtle's own shape).
    #[test]
    fn tls_settings_are_rendered_when_used() {
        let text = include_str!("../tests/fixtures/same_dtle2x.json");
        let mut spec = crate::parse_job(text).expect("fixture parses").spec;
        let plain = dtle_tasks(&spec);
        assert!(plain[0]["Config"]["ConnectionConfig"]
            .get("SslMode")
            .is_none());
        spec.dest.connection.ssl = crate::spec::SslConfig {
            mode: SslMode::VerifyCa,
            ca: Some("/etc/dtle/ca.pem".into()),
            cert: None,
            key: None,
        };
        let tasks = dtle_tasks(&spec);
        let dest = &tasks[1]["Config"]["ConnectionConfig"];
        assert_eq!(dest["SslMode"], "VERIFY_CA");
        assert_eq!(dest["SslCa"], "/etc/dtle/ca.pem");
        assert!(dest.get("SslCert").is_none());
        let again = crate::from_json_value(&json!({"Name": spec.name, "Tasks": tasks}))
            .expect("rendered job parses")
            .spec;
        assert_eq!(again, spec);
    }
}
