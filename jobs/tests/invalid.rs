//! Each kind of bad job is rejected with a message that names the place and the cause, and all
//! problems of a job are reported at once.

use jobs::{from_json_value, parse_hcl, parse_job, JobError};
use serde_json::{json, Value};

fn base() -> Value {
    let path = format!(
        "{}/tests/fixtures/same_dtle2x.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn errors_of(job: &Value) -> Vec<String> {
    match from_json_value(job) {
        Ok(_) => panic!("accepted: {job:#}"),
        Err(JobError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("not a validation error: {other}"),
    }
}

fn src_config(job: &mut Value) -> &mut Value {
    &mut job["Tasks"][0]["Config"]
}

/// Applies `change` to the base job and expects exactly `expected` as the only error.
fn rejects(change: impl FnOnce(&mut Value), expected: &str) {
    let mut job = base();
    change(&mut job);
    assert_eq!(errors_of(&job), vec![expected.to_owned()]);
}

#[test]
fn port_that_is_not_a_port() {
    rejects(
        |j| src_config(j)["ConnectionConfig"]["Port"] = json!("abc"),
        r#"Tasks[0].Config.ConnectionConfig.Port: expected 1-65535, got "abc""#,
    );
    rejects(
        |j| j["Tasks"][1]["Config"]["ConnectionConfig"]["Port"] = json!(70000),
        "Tasks[1].Config.ConnectionConfig.Port: expected 1-65535, got 70000",
    );
}

#[test]
fn missing_src_or_dest_task() {
    rejects(
        |j| {
            j["Tasks"].as_array_mut().unwrap().remove(0);
        },
        "Tasks: no Src task: a job needs one Src and one Dest task",
    );
    rejects(
        |j| {
            j["Tasks"].as_array_mut().unwrap().remove(1);
        },
        "Tasks: no Dest task: a job needs one Src and one Dest task",
    );
    rejects(
        |j| {
            let dest = j["Tasks"][1].clone();
            j["Tasks"].as_array_mut().unwrap().push(dest);
        },
        "Tasks[2]: a second Dest task (the first is Tasks[1]): a job has exactly one Src and one Dest task",
    );
}

#[test]
fn unknown_task_type_or_driver() {
    let mut job = base();
    job["Tasks"][1]["Type"] = json!("Sink");
    assert_eq!(
        errors_of(&job),
        vec![
            r#"Tasks[1].Type: unknown task type "Sink": expected "Src" or "Dest""#,
            "Tasks: no Dest task: a job needs one Src and one Dest task",
        ]
    );
    rejects(
        |j| j["Tasks"][0]["Driver"] = json!("Postgres"),
        r#"Tasks[0].Driver: unknown driver "Postgres": expected "MySQL""#,
    );
    rejects(
        |j| j["Tasks"][1]["Driver"] = json!("Kafka"),
        "Tasks[1].Driver: Kafka targets are not supported by dtle-rs; only MySQL/MariaDB",
    );
}

#[test]
fn empty_or_missing_host() {
    rejects(
        |j| src_config(j)["ConnectionConfig"]["Host"] = json!("  "),
        "Tasks[0].Config.ConnectionConfig.Host: must not be empty",
    );
    rejects(
        |j| {
            j["Tasks"][1]["Config"]["ConnectionConfig"]
                .as_object_mut()
                .unwrap()
                .remove("Host");
        },
        "Tasks[1].Config.ConnectionConfig.Host: missing",
    );
    rejects(
        |j| {
            j["Tasks"][1]["Config"]
                .as_object_mut()
                .unwrap()
                .remove("ConnectionConfig");
        },
        "Tasks[1].Config: the Dest task needs ConnectionConfig (or DestConnectionConfig on the Src task) with Host, Port, User and Password",
    );
}

#[test]
fn bad_regex() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][1]["TableSchemaRegex"] = json!("(\\w*src"),
        "Tasks[0].Config.ReplicateDoDb[1].TableSchemaRegex: invalid regular expression \"(\\\\w*src\": regex parse error: (\\w*src ^ error: unclosed group",
    );
}

#[test]
fn rename_without_regex() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][0]["TableSchemaRename"] = json!("copy_${1}"),
        r#"Tasks[0].Config.ReplicateDoDb[0].TableSchemaRename: "copy_${1}" refers to capture group ${1}, but there is no TableSchemaRegex to capture it (a rename without a regex is taken literally)"#,
    );
    // A plain rename of one schema is dtle's documented single-schema rename, and valid.
    let mut job = base();
    src_config(&mut job)["ReplicateDoDb"][0]["TableSchemaRename"] = json!("demoRename");
    assert!(from_json_value(&job).is_ok());
}

#[test]
fn rename_refers_to_a_group_the_regex_lacks() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][1]["TableSchemaRename"] = json!("x${3}"),
        r#"Tasks[0].Config.ReplicateDoDb[1].TableSchemaRename: "x${3}" refers to capture group ${3}, but TableSchemaRegex "(\\w*)src(\\w*)" has 2 capture group(s)"#,
    );
}

#[test]
fn schema_and_table_need_exactly_one_of_name_and_regex() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][0]["TableSchemaRegex"] = json!("db.*"),
        "Tasks[0].Config.ReplicateDoDb[0]: give TableSchema or TableSchemaRegex, not both",
    );
    rejects(
        |j| src_config(j)["ReplicateDoDb"][0]["Tables"][0] = json!({"Where": "a > 1"}),
        "Tasks[0].Config.ReplicateDoDb[0].Tables[0]: TableName or TableRegex is required",
    );
}

#[test]
fn column_maps_of_different_lengths() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][0]["Tables"][2]["ColumnMapTo"] = json!(["val", "x"]),
        "Tasks[0].Config.ReplicateDoDb[0].Tables[2].ColumnMapTo: has 2 column(s) but ColumnMapFrom has 1: they are paired in order, so the lengths must be equal",
    );
}

#[test]
fn job_names_that_cannot_be_subjects_or_keys() {
    let long = "j".repeat(65);
    rejects(
        |j| j["Name"] = json!(long),
        "Name: 65 characters; at most 64 are allowed",
    );
    rejects(
        |j| j["Name"] = json!("orders.eu"),
        r#"Name: "orders.eu" contains '.': use only letters, digits, '_' and '-' (the name is part of NATS subjects and SQL keys)"#,
    );
    rejects(
        |j| j["Name"] = json!("a b"),
        r#"Name: "a b" contains ' ': use only letters, digits, '_' and '-' (the name is part of NATS subjects and SQL keys)"#,
    );
    rejects(
        |j| {
            j.as_object_mut().unwrap().remove("Name");
        },
        "Name: missing: a job needs a Name",
    );
    // Exactly 64 is fine.
    let mut job = base();
    job["Name"] = json!("j".repeat(64));
    assert!(from_json_value(&job).is_ok());
}

#[test]
fn unknown_sql_filter_words() {
    rejects(
        |j| src_config(j)["SqlFilter"] = json!(["NoDML", "NoDMLUpsert"]),
        "Tasks[0].Config.SqlFilter[1]: unknown SqlFilter word \"NoDMLUpsert\"; known words: NoDML, NoDMLInsert, NoDMLDelete, NoDMLUpdate, NoDDL, NoDDLCreateSchema, NoDDLCreateTable, NoDDLDropSchema, NoDDLDropTable, NoDDLDropIndex, NoDDLAlterTable, NoDDLTruncate, NoDDLAlterTableAddColumn, NoDDLAlterTableDropColumn, NoDDLAlterTableModifyColumn, NoDDLAlterTableChangeColumn, NoDDLAlterTableAlterColumn",
    );
}

#[test]
fn conflicting_start_positions_and_bad_gtids() {
    rejects(
        |j| {
            src_config(j)["Gtid"] = json!("0-1-5");
            src_config(j)["AutoGtid"] = json!(true);
        },
        "Tasks[0].Config.AutoGtid: AutoGtid starts at the source's current position, so Gtid, GtidStart and BinlogFile must be empty",
    );
    rejects(
        |j| src_config(j)["Gtid"] = json!("f6def853:1-7"),
        r#"Tasks[0].Config.Gtid: "f6def853:1-7" is not a GTID set: bad server UUID "f6def853": expected 32 hex digits as 8-4-4-4-12"#,
    );
    rejects(
        |j| src_config(j)["BinlogPos"] = json!(120),
        "Tasks[0].Config.BinlogPos: needs BinlogFile",
    );
}

#[test]
fn unsupported_targets_are_errors_not_silent_no_ops() {
    rejects(
        |j| j["Tasks"][1]["Config"] = json!({"DestType": "kafka", "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u"}}),
        "Tasks[1].Config.DestType: Kafka targets are not supported by dtle-rs; only MySQL/MariaDB (DestType \"mysql\")",
    );
    rejects(
        |j| src_config(j)["TwoWaySync"] = json!(true),
        "Tasks[0].Config.TwoWaySync: two-way sync is not supported by dtle-rs",
    );
}

#[test]
fn a_connection_given_twice_is_an_error() {
    rejects(
        |j| src_config(j)["DestConnectionConfig"] = json!({"Host": "h", "Port": 1, "User": "u"}),
        "Tasks[0].Config.DestConnectionConfig: the Dest server is also given at Tasks[1].Config.ConnectionConfig; give it once",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut job = base();
    job["Name"] = json!("bad.name");
    src_config(&mut job)["ConnectionConfig"]["Port"] = json!("abc");
    src_config(&mut job)["ChunkSize"] = json!(-5);
    src_config(&mut job)["SqlFilter"] = json!(["Nope"]);
    job["Tasks"][1]["Config"]["ConnectionConfig"]["Host"] = json!("");
    let errors = errors_of(&job);
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "Name",
            "Tasks[0].Config.ConnectionConfig.Port",
            "Tasks[1].Config.ConnectionConfig.Host",
            "Tasks[0].Config.SqlFilter[0]",
            "Tasks[0].Config.ChunkSize",
        ],
        "{errors:#?}"
    );
}

#[test]
fn syntax_errors_give_their_position() {
    let err = parse_job("{\n  \"Name\": \"x\",\n  \"Tasks\": [\n}").unwrap_err();
    assert!(
        matches!(
            err,
            JobError::Json {
                line: 4,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the job is not valid JSON: expected value at line 4, column 1"
    );
    let err = parse_hcl("job \"x\" {\n  group \"src\" {\n").unwrap_err();
    assert!(matches!(err, JobError::Hcl { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("HCL parse error in line 2, column 17"),
        "{err}"
    );
}

#[test]
fn hcl_jobs_report_hcl_paths() {
    let text = r#"
job "demo" {
  group "src" {
    task "src" {
      driver = "dtle"
      config {
        ConnectionConfig = { Host = "h", Port = "abc", User = "u", Password = "p" }
      }
    }
  }
  group "dest" {
    task "sink" {
      driver = "docker"
      config {}
    }
  }
}
"#;
    let Err(JobError::Invalid { errors, .. }) = parse_hcl(text) else {
        panic!("accepted");
    };
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        vec![
            r#"job["demo"].group["dest"].task["sink"].driver: unknown driver "docker": expected "dtle""#,
            r#"job["demo"].group["src"].task["src"].config.ConnectionConfig.Port: expected 1-65535, got "abc""#,
            r#"job["demo"].group["dest"].task["sink"].config: the Dest task needs ConnectionConfig (or DestConnectionConfig on the Src task) with Host, Port, User and Password"#,
        ]
    );
}

#[test]
fn where_filters_that_cannot_be_evaluated() {
    rejects(
        |j| src_config(j)["ReplicateDoDb"][0]["Tables"][1]["Where"] = json!("id IN (SELECT 1)"),
        r#"Tasks[0].Config.ReplicateDoDb[0].Tables[1].Where: "id IN (SELECT 1)" is not a filter dtle-rs can evaluate: id IN (SELECT 1) is not supported in a Where filter"#,
    );
}
