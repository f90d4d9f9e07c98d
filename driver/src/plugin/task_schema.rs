//! The schema of a dtle task's `config` in a Nomad job (TaskConfigSchema).
//!
//! It names what the job model (`jobs`, task_config.rs) reads from a task's `Config`, with dtle's
//! shapes, so dtle users' Nomad jobs keep working: the connections are blocks
//! (`SrcConnectionConfig { Host = ... }`), `ReplicateDoDb` / `ReplicateIgnoreDb` are lists of
//! blocks with nested `Tables` blocks, the rest attributes. Either task may carry any field (the
//! job model picks each from its owner), so both tasks share this one schema.
//!
//! No defaults here: the job model owns them, and an unset attribute arrives as nil. Fields dtle
//! accepted and dtle-rs ignores or refuses are accepted too, so that the job model can warn or
//! say why instead of the Nomad client's "argument not expected". Kafka and Oracle blocks are
//! left out (dtle-rs has neither); the client refuses them by name.

use super::hclspec::{attr, block, block_list, object, required};
use super::proto::hclspec::Spec;

/// The task config schema.
pub fn schema() -> Spec {
    let mut members: Vec<(&str, Spec)> = vec![
        ("ConnectionConfig", connection()),
        ("SrcConnectionConfig", connection()),
        ("DestConnectionConfig", connection()),
        ("ReplicateDoDb", block_list(schema_rule())),
        ("ReplicateIgnoreDb", block_list(schema_rule())),
        ("SqlFilter", attr("list(string)")),
        ("DestType", attr("string")),
        ("Gtid", attr("string")),
        ("GtidStart", attr("string")),
        ("AutoGtid", attr("bool")),
        ("BinlogFile", attr("string")),
        ("BinlogPos", attr("number")),
    ];
    for name in NUMBERS {
        members.push((name, attr("number")));
    }
    for name in BOOLS {
        members.push((name, attr("bool")));
    }
    for name in STRINGS {
        members.push((name, attr("string")));
    }
    object(members)
}

/// Number fields (settings, and dtle's tuning fields the job model ignores with a warning).
const NUMBERS: [&str; 21] = [
    "ChunkSize",
    "ReplChanBufferSize",
    "GroupMaxSize",
    "GroupTimeout",
    "SlaveNetWriteTimeout",
    "DumpEntryLimit",
    "RetryTxLimit",
    "ParallelWorkers",
    "DependencyHistorySize",
    "GtidExecutedRetention",
    "MsgBytesLimit",
    "MsgsLimit",
    "BytesLimit",
    "TrafficAgainstLimits",
    "MaxRetries",
    "BulkInsert1",
    "BulkInsert2",
    "BulkInsert3",
    "NBulkInsert",
    "BigTxSrcQueue",
    "GroupCount",
];

/// Bool fields, including dtle's that dtle-rs refuses (`BinlogRelay`, `TwoWaySync`).
const BOOLS: [&str; 11] = [
    "SkipIncrementalCopy",
    "BinlogRelay",
    "ExpandSyntaxSupport",
    "DropTableIfExists",
    "SkipCreateDbTable",
    "SkipPrivilegeCheck",
    "UseMySQLDependency",
    "ForeignKeyChecks",
    "SetGtidNext",
    "ApproveHeterogeneous",
    "TwoWaySync",
];

/// String fields dtle accepted that dtle-rs ignores or refuses.
const STRINGS: [&str; 4] = ["NatsAddr", "TimeZone", "TwoWaySyncGtid", "WaitOnJob"];

/// A server: `Host`, `Port`, `User` required, as dtle's schema had them; dtle-rs's TLS settings
/// (`SslMode`, `SslCa`, `SslCert`, `SslKey`) optional.
fn connection() -> Spec {
    block(object([
        ("Host", required("string")),
        ("Port", required("number")),
        ("User", required("string")),
        ("Password", attr("string")),
        ("Charset", attr("string")),
        ("SslMode", attr("string")),
        ("SslCa", attr("string")),
        ("SslCert", attr("string")),
        ("SslKey", attr("string")),
    ]))
}

/// One schema of ReplicateDoDb / ReplicateIgnoreDb, with its tables.
fn schema_rule() -> Spec {
    object([
        ("TableSchema", attr("string")),
        ("TableSchemaRegex", attr("string")),
        ("TableSchemaRename", attr("string")),
        ("TableSchemaRenameRegex", attr("string")),
        ("TableSchemaScope", attr("string")),
        ("Tables", block_list(table_rule())),
    ])
}

fn table_rule() -> Spec {
    object([
        ("TableName", attr("string")),
        ("TableRegex", attr("string")),
        ("TableRename", attr("string")),
        ("TableRenameRegex", attr("string")),
        ("ColumnMapFrom", attr("list(string)")),
        ("ColumnMapTo", attr("list(string)")),
        ("Where", attr("string")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::proto::hclspec::spec::Block as S;

    fn members(spec: &Spec) -> &std::collections::HashMap<String, Spec> {
        match &spec.block {
            Some(S::Object(o)) => &o.attributes,
            other => panic!("not an Object: {other:?}"),
        }
    }

    /// Every Attr type, recursively, for checking them against HCL's type names.
    fn attr_types(spec: &Spec, out: &mut Vec<String>) {
        match &spec.block {
            Some(S::Attr(a)) => out.push(a.r#type.clone()),
            Some(S::Object(o)) => o.attributes.values().for_each(|s| attr_types(s, out)),
            Some(S::BlockValue(b)) => b.nested.iter().for_each(|s| attr_types(s, out)),
            Some(S::BlockList(b)) => b.nested.iter().for_each(|s| attr_types(s, out)),
            other => panic!("unexpected spec in the task schema: {other:?}"),
        }
    }

    #[test]
    fn names_dtles_fields_once_each() {
        let spec = schema();
        let names = members(&spec);
        assert_eq!(
            names.len(),
            12 + NUMBERS.len() + BOOLS.len() + STRINGS.len()
        );
        for name in [
            "SrcConnectionConfig",
            "DestConnectionConfig",
            "ConnectionConfig",
        ] {
            let Some(S::BlockValue(b)) = &names[name].block else {
                panic!("{name} is not a block");
            };
            let inner = members(b.nested.as_deref().expect("a nested object"));
            for key in [
                "Host", "Port", "User", "Password", "Charset", "SslMode", "SslCa", "SslCert",
                "SslKey",
            ] {
                assert!(inner.contains_key(key), "{name}.{key}");
            }
        }
        let Some(S::BlockList(rules)) = &names["ReplicateDoDb"].block else {
            panic!("ReplicateDoDb is not a block list");
        };
        let rule = members(rules.nested.as_deref().expect("a nested object"));
        assert!(matches!(&rule["Tables"].block, Some(S::BlockList(_))));
    }

    #[test]
    fn every_type_is_an_hcl_type_expression() {
        let mut types = Vec::new();
        attr_types(&schema(), &mut types);
        for t in types {
            assert!(
                ["string", "number", "bool", "list(string)"].contains(&t.as_str()),
                "{t}"
            );
        }
    }
}
