//! Every job shape dtle users write parses to the same `JobSpec`.

use jobs::{
    parse_job, ColumnMap, JobFormat, JobSpec, NameMatch, Placement, SqlFilterWord, StartPosition,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> jobs::ParsedJob {
    parse_job(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What a Nomad job adds beside the dtle job (its own stanzas) is not part of the comparison.
fn without_orchestrator_settings(mut spec: JobSpec) -> JobSpec {
    spec.orchestrator_settings.clear();
    spec
}

#[test]
fn the_same_job_in_five_shapes_is_one_job_spec() {
    let shapes = [
        ("same_dtle2x.json", JobFormat::DtleJson),
        ("same_later_shape.json", JobFormat::DtleJson),
        ("same_nomad.hcl", JobFormat::NomadHcl),
        ("same_nomad_later.hcl", JobFormat::NomadHcl),
        ("same_nomad.json", JobFormat::NomadJson),
    ];
    let parsed: Vec<_> = shapes
        .iter()
        .map(|(name, format)| {
            let job = parse(name);
            assert_eq!(job.format, *format, "{name}");
            // ParallelWorkers 4 is accepted, and the warning says what the applier does instead.
            let messages: Vec<&str> = job.warnings.iter().map(|w| w.message.as_str()).collect();
            assert_eq!(
                messages,
                vec!["accepted, but the applier uses one target connection: consecutive transactions are committed together in groups instead (docs/benchmarks.md)"],
                "{name}"
            );
            (name, without_orchestrator_settings(job.spec))
        })
        .collect();
    let (_, reference) = &parsed[0];
    for (name, spec) in &parsed[1..] {
        assert_eq!(spec, reference, "{name} differs from same_dtle2x.json");
    }

    let spec = reference;
    assert_eq!(spec.id, "demo");
    assert_eq!(spec.name, "demo");
    assert_eq!(spec.datacenters, vec!["dc1"]);
    assert_eq!(spec.region, "global");
    assert_eq!(
        spec.src.placement,
        Placement {
            node_name: Some("node-a".into()),
            node_id: None
        }
    );
    assert_eq!(spec.dest.placement.node_name.as_deref(), Some("node-b"));
    assert_eq!(spec.src.connection.port, 3307);
    assert_eq!(spec.src.connection.password.expose(), "src-secret");
    assert_eq!(spec.dest.connection.port, 3308);
    assert_eq!(spec.dest.connection.password.expose(), "dst-secret");
    assert_eq!(spec.dest.connection.charset, "utf8mb4");

    let extract = &spec.src.extract;
    assert_eq!(extract.start, StartPosition::Snapshot);
    assert_eq!(extract.chunk_size, 2000);
    assert_eq!(extract.group_max_size, 1024);
    assert_eq!(extract.group_timeout_ms, 100);
    assert_eq!(extract.repl_chan_buffer_size, 32);
    assert!(extract.sql_filter.has(SqlFilterWord::NoDMLDelete));
    assert!(extract.sql_filter.has(SqlFilterWord::NoDDLTruncate));
    assert_eq!(extract.replicate_do_db.len(), 2);
    let db1 = &extract.replicate_do_db[0];
    assert_eq!(db1.schema, NameMatch::Exact("db1".into()));
    assert_eq!(db1.tables[1].where_clause.as_deref(), Some("id > 5"));
    assert_eq!(
        db1.tables[2].column_map,
        Some(ColumnMap {
            from: vec!["a".into()],
            to: vec!["val".into()]
        })
    );
    let NameMatch::Regex(pattern) = &extract.replicate_do_db[1].schema else {
        panic!("expected a regex");
    };
    let rename = extract.replicate_do_db[1].rename.as_deref().unwrap();
    assert_eq!(
        rename, "rename${1}",
        "HCL writes $$${{1}} for the literal ${{1}}"
    );
    assert_eq!(
        pattern.rename("test1src", rename).as_deref(),
        Some("renametest1")
    );
    assert_eq!(extract.replicate_ignore_db[0].tables.len(), 1);
    assert_eq!(spec.dest.apply.parallel_workers, 4);
    assert!(spec.dest.apply.use_mysql_dependency);
    assert_eq!(spec.dest.apply.dependency_history_size, 2500);
}

#[test]
fn dtle_documentation_examples_parse() {
    let full = parse("docs_2x_full_and_incremental.json").spec;
    assert_eq!(full.name, "dts-demo");
    assert_eq!(full.src.connection.host, "mysql-src");
    assert_eq!(full.src.connection.port, 3306);
    assert_eq!(full.src.extract.start, StartPosition::Snapshot);

    let incremental = parse("docs_2x_incremental_from_gtid.json").spec;
    match &incremental.src.extract.start {
        StartPosition::AfterExecuted(set) => {
            assert_eq!(set.to_string(), "f6def853-cbaa-11e8-8aeb-0242ac120003:1-7")
        }
        other => panic!("expected AfterExecuted, got {other:?}"),
    }

    let three = parse("docs_3x_example_job.hcl");
    assert_eq!(three.spec.id, "job1");
    assert_eq!(three.spec.dest.connection.port, 3308);
    assert!(three.warnings.is_empty(), "{:?}", three.warnings);
    let four = parse("docs_4x_example_job.hcl");
    assert_eq!(four.spec.src.extract.group_max_size, 1024);
    assert_eq!(four.spec.dest.connection.host, "127.0.0.1");
    assert!(four.warnings.is_empty(), "{:?}", four.warnings);
    // Nomad's restart and reschedule stanzas are kept for the orchestrator, not dropped.
    let kept: Vec<&str> = four
        .spec
        .orchestrator_settings
        .iter()
        .map(|k| k.path.as_str())
        .collect();
    assert_eq!(
        kept,
        vec![
            r#"job["job1"].group["src"].restart"#,
            r#"job["job1"].group["dest"].restart"#,
            r#"job["job1"].reschedule"#,
        ]
    );

    let nomad_json = parse("docs_3x_nomad_job.json");
    assert!(nomad_json.spec.src.extract.drop_table_if_exists);
    assert_eq!(
        nomad_json.spec.orchestrator_settings[0].path,
        "Job.Reschedule"
    );
}

#[test]
fn unknown_fields_are_kept_and_warned_about() {
    let text = fixture("same_dtle2x.json").replace(
        "\"ChunkSize\": \"2000\",",
        "\"ChunkSize\": \"2000\", \"ChunkSzie\": 10, \"NatsAddr\": \"127.0.0.1:8193\",",
    );
    let job = parse_job(&text).unwrap();
    let warnings: Vec<String> = job
        .warnings
        .iter()
        .filter(|w| !w.path.ends_with("ParallelWorkers"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        vec![
            "Tasks[0].Config.ChunkSzie: unknown field; kept but not used",
            "Tasks[0].Config.NatsAddr: set by the agent (the NATS server its tasks use); ignored when posted",
        ]
    );
    let kept: Vec<(&str, &serde_json::Value)> = job
        .spec
        .unrecognised
        .iter()
        .map(|k| (k.path.as_str(), &k.value))
        .collect();
    // NatsAddr is what the server shows (dtle 2.x's scheduler wrote it into every task): a job
    // posted back with it is the same job, so it is not kept.
    assert_eq!(
        kept,
        vec![("Tasks[0].Config.ChunkSzie", &serde_json::json!(10))]
    );
}

#[test]
fn start_positions_follow_dtle_fields() {
    let with = |extra: &str| {
        let text = fixture("same_later_shape.json").replace(
            "\"GroupMaxSize\": 1024,",
            &format!("\"GroupMaxSize\": 1024, {extra}"),
        );
        parse_job(&text).map(|j| j.spec.src.extract.start)
    };
    assert_eq!(with("\"AutoGtid\": true,"), Ok(StartPosition::Current));
    assert_eq!(
        with("\"BinlogFile\": \"mysql-bin.000002\", \"BinlogPos\": 1234,"),
        Ok(StartPosition::BinlogFile {
            file: "mysql-bin.000002".into(),
            pos: 1234
        })
    );
    match with("\"GtidStart\": \"0-1-100\",") {
        Ok(StartPosition::FromGtid(set)) => assert_eq!(set.to_string(), "0-1-100"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_field_on_both_tasks_uses_its_owners_value_and_says_so() {
    let text = fixture("same_dtle2x.json").replace(
        "\"ParallelWorkers\": 4,",
        "\"ParallelWorkers\": 4, \"ChunkSize\": 500,",
    );
    let job = parse_job(&text).unwrap();
    assert_eq!(job.spec.src.extract.chunk_size, 2000);
    assert!(job.warnings.iter().any(|w| w.to_string()
        == "Tasks[1].Config.ChunkSize: differs from Tasks[0].Config.ChunkSize, which is used"));
}

/// A Nomad group's or task's own stanzas know which task they were written for, by the group's
/// or task's name, so an orchestrator can apply them to that task alone.
#[test]
fn nomad_settings_know_their_task() {
    let four = parse("docs_4x_example_job.hcl");
    let roles: Vec<(&str, Option<jobs::Role>)> = four
        .spec
        .orchestrator_settings
        .iter()
        .map(|k| (k.path.as_str(), k.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            (r#"job["job1"].group["src"].restart"#, Some(jobs::Role::Src)),
            (
                r#"job["job1"].group["dest"].restart"#,
                Some(jobs::Role::Dest)
            ),
            (r#"job["job1"].reschedule"#, None),
        ]
    );
    // In Nomad JSON a group is known by index only: its name (or its task's) gives the role.
    let json = parse("same_nomad.json");
    let in_groups: Vec<_> = json
        .spec
        .orchestrator_settings
        .iter()
        .filter(|k| k.path.contains("TaskGroups["))
        .collect();
    assert!(!in_groups.is_empty());
    assert!(in_groups.iter().all(|k| k.role.is_some()), "{in_groups:?}");
}

#[test]
fn a_go_clients_register_request_is_the_dtle_job_inside() {
    let job = fixture("same_dtle2x.json");
    let wrapped = format!(r#"{{"Job": {job}, "EnforceIndex": false, "JobModifyIndex": 0}}"#);
    let parsed = parse_job(&wrapped).unwrap();
    assert_eq!(parsed.format, jobs::JobFormat::DtleJson);
    assert_eq!(parsed.spec, parse_job(&job).unwrap().spec);
    assert!(!parsed.explicit_id);
    let warned: Vec<String> = parsed.warnings.iter().map(|w| w.path.clone()).collect();
    assert!(warned.contains(&"EnforceIndex".to_owned()), "{warned:?}");
    let bad = wrapped.replace("\"Port\": \"3307\"", "\"Port\": \"x\"");
    let Err(jobs::JobError::Invalid { errors, .. }) = parse_job(&bad) else {
        panic!("a bad port is an error")
    };
    assert_eq!(errors[0].path, "Job.Tasks[0].Config.ConnectionConfig.Port");
}

#[test]
fn what_the_server_prints_is_warned_about_but_not_kept() {
    let job = fixture("same_dtle2x.json");
    let fetched = job.replacen(
        "\"Name\": \"demo\",",
        "\"ID\": \"demo\", \"Name\": \"demo\", \"Status\": \"running\", \"CreateIndex\": 7, \"ModifyIndex\": 9, \"JobModifyIndex\": 9, \"Orders\": [],",
        1,
    );
    let parsed = parse_job(&fetched).unwrap();
    assert!(parsed.explicit_id);
    assert_eq!(parsed.spec, parse_job(&job).unwrap().spec);
    assert!(parsed
        .warnings
        .iter()
        .any(|w| w.path == "CreateIndex" && w.message.contains("set by the server")));
}
