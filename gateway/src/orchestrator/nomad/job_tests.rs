//! The Nomad job written for a dtle job, and read back; and the proof that each task's `Config`
//! is what the dtle plugin reads: decoded as a Nomad client decodes it (JSON → HCL JSON →
//! hcldec with the plugin's TaskConfigSchema → go-cty msgpack), then turned into a job by the
//! plugin's own `task_spec::from_task`, it is the same task.

use super::*;
use driver::plugin::proto::hclspec::{spec::Block as S, Spec};
use rmpv::Value as Mp;

/// A Nomad HCL job with every kind of thing the translation must carry: renames with `${1}`, a
/// password with `${` and `%{`, a WHERE clause, a column map, pins on name and ID, a restart,
/// a reschedule and resources.
const JOB: &str = r#"
job "orders-sync" {
  datacenters = ["dc1", "dc2"]
  reschedule {
    attempts  = 5
    interval  = "1h"
    unlimited = false
  }
  group "src" {
    restart {
      attempts = 3
      interval = "10m"
      delay    = "20s"
      mode     = "delay"
    }
    task "src" {
      driver = "dtle"
      constraint {
        attribute = "${node.unique.name}"
        value     = "node-a"
      }
      config {
        ReplicateDoDb = [{
          TableSchema = "shop"
          Tables = [{
            TableName = "orders"
            Where     = "id > 100"
          }, {
            TableName     = "items"
            TableRename   = "line_items"
            ColumnMapFrom = ["a", "b"]
            ColumnMapTo   = ["x", "y"]
          }]
        }, {
          TableSchemaRegex  = "(\\w+)_archive"
          TableSchemaRename = "archive_$${1}"
        }]
        ReplicateIgnoreDb = [{
          TableSchema = "shop"
          Tables      = [{ TableName = "tmp" }]
        }]
        ChunkSize = 500
        SqlFilter = ["NoDDLDropTable"]
        ConnectionConfig {
          Host     = "10.0.0.1"
          Port     = 3307
          User     = "repl"
          Password = "pa$${ss}%%{w}"
        }
      }
    }
  }
  group "dest" {
    task "dest" {
      driver = "dtle"
      constraint {
        attribute = "${node.unique.id}"
        value     = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
      }
      resources {
        cpu    = 500
        memory = 512
      }
      config {
        ParallelWorkers = 1
        ConnectionConfig {
          Host     = "10.0.0.2"
          Port     = 3308
          User     = "apply"
          Password = "dest-secret"
        }
      }
    }
  }
}
"#;

fn spec() -> JobSpec {
    jobs::parse_job(JOB).expect("the test job parses").spec
}

#[test]
fn the_nomad_job_has_a_dtle_group_per_task_with_pins_policies_and_meta() {
    let spec = spec();
    assert_eq!(spec.src.connection.password.expose(), "pa${ss}%{w}");
    let job = to_nomad(&spec, Some("dtle")).expect("carried").body;
    assert_eq!(job["ID"], "orders-sync");
    assert_eq!(job["Name"], "orders-sync");
    assert_eq!(job["Type"], "service");
    assert_eq!(job["Namespace"], "dtle");
    assert_eq!(job["Region"], "global");
    assert_eq!(job["Datacenters"], json!(["dc1", "dc2"]));
    let groups = job["TaskGroups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    let (src, dest) = (&groups[0], &groups[1]);
    for (group, name) in [(src, "Src"), (dest, "Dest")] {
        assert_eq!(group["Name"], name);
        assert_eq!(group["Count"], 1);
        assert_eq!(group["Tasks"].as_array().map(Vec::len), Some(1));
        assert_eq!(group["Tasks"][0]["Name"], name);
        assert_eq!(group["Tasks"][0]["Driver"], "dtle");
        assert_eq!(group["Tasks"][0]["KillTimeout"], 10_000_000_000u64);
        // The job's reschedule applies (Nomad merges it in): no dtle default here.
        assert!(group.get("ReschedulePolicy").is_none());
    }
    assert_eq!(
        job["Reschedule"],
        json!({"Attempts": 5, "Interval": 3_600_000_000_000u64, "Unlimited": false})
    );
    assert_eq!(
        src["RestartPolicy"],
        json!({"Attempts": 3, "Interval": 600_000_000_000u64, "Delay": 20_000_000_000u64, "Mode": "delay"})
    );
    assert_eq!(dest["RestartPolicy"]["Attempts"], 10);
    let (src_task, dest_task) = (&src["Tasks"][0], &dest["Tasks"][0]);
    assert_eq!(
        src_task["Constraints"],
        json!([{"LTarget": "${node.unique.name}", "RTarget": "node-a", "Operand": "="}])
    );
    assert_eq!(
        dest_task["Constraints"],
        json!([{"LTarget": "${node.unique.id}", "RTarget": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "Operand": "="}])
    );
    assert_eq!(dest_task["Resources"], json!({"CPU": 500, "MemoryMB": 512}));
    // Each task has its own settings and its own server only; templates escaped.
    let (src_config, dest_config) = (&src_task["Config"], &dest_task["Config"]);
    assert_eq!(src_config["ConnectionConfig"]["Password"], "pa$${ss}%%{w}");
    assert_eq!(src_config["ConnectionConfig"]["Port"], 3307);
    assert_eq!(
        src_config["ReplicateDoDb"][1]["TableSchemaRename"],
        "archive_$${1}"
    );
    assert_eq!(
        src_config["ReplicateDoDb"][0]["Tables"][0]["Where"],
        "id > 100"
    );
    assert_eq!(src_config["ChunkSize"], 500);
    assert_eq!(dest_config["ConnectionConfig"]["Password"], "dest-secret");
    assert!(dest_config.get("ReplicateDoDb").is_none());
    assert!(!src_config.to_string().contains("dest-secret"));
    assert!(!dest_config.to_string().contains("pa$"));
    // Meta: failover and the kept stanzas, as Nomad will keep them.
    assert_eq!(job["Meta"][META_FAILOVER], "false");
    let kept: Vec<jobs::KeptField> =
        serde_json::from_str(job["Meta"][META_SETTINGS].as_str().expect("a string"))
            .expect("kept stanzas");
    assert_eq!(kept, spec.redacted().orchestrator_settings);
    assert!(job["Meta"].get(META_PAUSED).is_none());
}

/// What Nomad adds when it stores a job (from the API docs' job read), around what was sent.
fn as_nomad_keeps_it(mut job: Value, status: &str) -> Value {
    for (key, value) in [
        ("Status", json!(status)),
        ("StatusDescription", json!("")),
        ("Stop", json!(false)),
        ("Priority", json!(50)),
        ("AllAtOnce", json!(false)),
        ("Constraints", Value::Null),
        ("Affinities", Value::Null),
        (
            "Update",
            json!({"Stagger": 30_000_000_000u64, "MaxParallel": 1}),
        ),
        ("ParentID", json!("")),
        ("Version", json!(0)),
        ("Stable", json!(false)),
        ("SubmitTime", json!(1_608_304_897_537_638_400u64)),
        ("CreateIndex", json!(44)),
        ("ModifyIndex", json!(51)),
        ("JobModifyIndex", json!(44)),
    ] {
        job[key] = value;
    }
    for group in job["TaskGroups"].as_array_mut().into_iter().flatten() {
        group["EphemeralDisk"] = json!({"Migrate": false, "SizeMB": 300, "Sticky": false});
        group["Meta"] = Value::Null;
        group["Spreads"] = Value::Null;
        for task in group["Tasks"].as_array_mut().into_iter().flatten() {
            task["Env"] = Value::Null;
            task["Leader"] = json!(false);
            task["LogConfig"] = json!({"Disabled": false, "MaxFileSizeMB": 10, "MaxFiles": 10});
            task["Meta"] = Value::Null;
            if task.get("Resources").is_none() {
                task["Resources"] = json!({"CPU": 100, "MemoryMB": 300, "DiskMB": 0, "IOPS": 0});
            }
            task["Templates"] = Value::Null;
            task["User"] = json!("");
        }
    }
    job
}

#[test]
fn a_registered_job_reads_back_as_the_same_job() {
    let spec = spec();
    let stored = as_nomad_keeps_it(to_nomad(&spec, None).expect("carried").body, "running");
    let record = from_nomad(&stored).expect("a dtle job");
    assert!(
        same_definition(&record.spec, &spec),
        "{:#?}\n{:#?}",
        record.spec,
        spec
    );
    assert_eq!(
        record.spec.src.placement.node_name.as_deref(),
        Some("node-a")
    );
    assert_eq!(record.spec.src.connection.password.expose(), "pa${ss}%{w}");
    assert_eq!(
        (
            record.status.as_str(),
            record.paused,
            record.create_index,
            record.modify_index,
            record.job_modify_index
        ),
        ("running", false, 44, 51, 44)
    );
    // A changed definition is not the same job.
    let mut other = spec.clone();
    other.src.extract.chunk_size = 501;
    assert!(!same_definition(&record.spec, &other));

    // Paused: Stop and the mark, whatever Nomad's status says.
    let mut paused = stored.clone();
    paused["Stop"] = json!(true);
    paused["Meta"][META_PAUSED] = json!("true");
    paused["Status"] = json!("dead");
    let record = from_nomad(&paused).expect("a dtle job");
    assert_eq!((record.status.as_str(), record.paused), ("paused", true));
    // Stopped but not yet dead: said so.
    let mut stopping = stored;
    stopping["Stop"] = json!(true);
    let record = from_nomad(&stopping).expect("a dtle job");
    assert_eq!(record.status, "running");
    assert!(
        record.status_description.starts_with("stopping"),
        "{}",
        record.status_description
    );
}

#[test]
fn with_failover_the_pins_are_affinities_and_read_back() {
    let mut spec = spec();
    spec.failover = true;
    let job = to_nomad(&spec, None).expect("carried").body;
    let task = &job["TaskGroups"][0]["Tasks"][0];
    assert!(task.get("Constraints").is_none(), "{task}");
    assert_eq!(
        task["Affinities"],
        json!([{"LTarget": "${node.unique.name}", "RTarget": "node-a", "Operand": "=", "Weight": 100}])
    );
    let record = from_nomad(&as_nomad_keeps_it(job, "pending")).expect("a dtle job");
    assert!(record.spec.failover);
    assert_eq!(
        record.spec.src.placement.node_name.as_deref(),
        Some("node-a")
    );
    assert_eq!(
        record.spec.dest.placement.node_id.as_deref(),
        Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    );
    assert!(same_definition(&record.spec, &spec));
}

#[test]
fn other_nomad_jobs_are_not_dtle_jobs() {
    let docker = json!({"ID": "cache", "Name": "cache", "TaskGroups": [{"Name": "cache",
        "Tasks": [{"Name": "redis", "Driver": "docker", "Config": {"image": "redis:7"}}]}]});
    let err = from_nomad(&docker).expect_err("not dtle");
    assert_eq!(
        err.to_string(),
        "Nomad job cache is not a dtle job: it has no task with driver \"dtle\""
    );
    let half = json!({"ID": "half", "TaskGroups": [{"Name": "src",
        "Tasks": [{"Name": "src", "Driver": "dtle", "Config": {}}]}]});
    assert!(from_nomad(&half).is_err());
}

#[test]
fn templates_are_escaped_and_unescaped_exactly() {
    for text in ["${1}", "a$${b", "%{x}", "$$", "plain", "${a}%{b}$${c}"] {
        let escaped = escape_templates(json!(text));
        assert_eq!(
            unescape_templates(escaped.clone()),
            json!(text),
            "{escaped}"
        );
        assert_eq!(
            hcl_template(escaped.as_str().unwrap_or_default()),
            Ok(text.to_owned())
        );
    }
}

/// HCL's reading of a JSON string as a template: `$${` and `%%{` are literal; an unescaped `${`
/// or `%{` would be an interpolation, which a generated config must never contain.
fn hcl_template(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("$${") || rest.starts_with("%%{") {
            out.push(c);
            out.push('{');
            rest = &rest[3..];
        } else if rest.starts_with("${") || rest.starts_with("%{") {
            return Err(format!("{s:?} would be interpolated"));
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

/// A Nomad client's decoding of a task config with the plugin's schema, into the go-cty
/// msgpack the plugin receives: every member of an object present (nil when absent), a block
/// list an array, unknown keys and missing required ones refused.
fn decode(spec: &Spec, value: Option<&Value>, path: &str) -> Result<Mp, String> {
    match (&spec.block, value) {
        (Some(S::Object(object)), value) => {
            let empty = Map::new();
            let map = match value {
                None => &empty,
                Some(Value::Object(map)) => map,
                Some(other) => return Err(format!("{path}: expected an object, got {other}")),
            };
            if let Some(key) = map.keys().find(|k| !object.attributes.contains_key(*k)) {
                return Err(format!(
                    "{path}: An argument named {key:?} is not expected here"
                ));
            }
            let mut names: Vec<&String> = object.attributes.keys().collect();
            names.sort();
            let mut pairs = Vec::new();
            for name in names {
                let member = decode(
                    &object.attributes[name],
                    map.get(name),
                    &format!("{path}.{name}"),
                )?;
                pairs.push((Mp::from(name.as_str()), member));
            }
            Ok(Mp::Map(pairs))
        }
        (Some(S::Attr(attr)), None) if attr.required => Err(format!(
            "{path}: The argument is required, but no definition was found"
        )),
        (Some(S::Attr(_)) | Some(S::BlockValue(_)), None) => Ok(Mp::Nil),
        (Some(S::Attr(attr)), Some(v)) => match (attr.r#type.as_str(), v) {
            ("string", Value::String(s)) => Ok(Mp::from(hcl_template(s)?)),
            ("number", Value::Number(n)) => Ok(n
                .as_i64()
                .map(Mp::from)
                .or_else(|| n.as_u64().map(Mp::from))
                .unwrap_or_else(|| Mp::F64(n.as_f64().unwrap_or_default()))),
            ("bool", Value::Bool(b)) => Ok(Mp::Boolean(*b)),
            ("list(string)", Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => hcl_template(s).map(Mp::from),
                    other => Err(format!("{path}: a list(string) holding {other}")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Mp::Array),
            (ty, other) => Err(format!("{path}: {other} is not a {ty}")),
        },
        (Some(S::BlockValue(block)), Some(v)) => {
            let nested = block.nested.as_deref().ok_or("a block without a spec")?;
            decode(nested, Some(v), path)
        }
        (Some(S::BlockList(list)), v) => {
            let nested = list
                .nested
                .as_deref()
                .ok_or("a block list without a spec")?;
            let items = match v {
                None => Vec::new(),
                Some(Value::Array(items)) => items.iter().collect(),
                Some(object @ Value::Object(_)) => vec![object],
                Some(other) => return Err(format!("{path}: blocks as {other}")),
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| decode(nested, Some(item), &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Mp::Array)
        }
        (other, _) => Err(format!(
            "{path}: a spec the task schema does not use: {other:?}"
        )),
    }
}

#[test]
fn every_task_config_decodes_through_the_plugins_schema_into_the_same_task() {
    use driver::plugin::task_spec::from_task;
    let spec = spec();
    let job = to_nomad(&spec, None).expect("carried").body;
    let schema = driver::plugin::task_schema::schema();
    for group in job["TaskGroups"].as_array().expect("groups") {
        let task = &group["Tasks"][0];
        let name = task["Name"].as_str().expect("a name");
        let cty = decode(&schema, Some(&task["Config"]), name).unwrap_or_else(|e| panic!("{e}"));
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &cty).expect("msgpack");
        // The plugin gets the Nomad job's Name as the task's job name.
        let job_name = job["Name"].as_str().expect("a job name");
        let (_, ran) = from_task(name, job_name, &bytes, "nats://127.0.0.1:4222")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let driver::plugin::task_spec::TaskJob::Spec(ran) = ran else {
            panic!("{name}: the task's config names its own server, it waits for nobody");
        };
        assert_eq!(ran.name, spec.name);
        match name {
            "Src" => {
                assert_eq!(ran.src.connection, spec.src.connection);
                assert_eq!(ran.src.extract, spec.src.extract);
            }
            "Dest" => {
                assert_eq!(ran.dest.connection, spec.dest.connection);
                assert_eq!(ran.dest.apply, spec.dest.apply);
            }
            other => panic!("unexpected task {other}"),
        }
    }
    // The simulation refuses what a Nomad client would.
    let mut bad = job["TaskGroups"][0]["Tasks"][0]["Config"].clone();
    bad["Leader"] = json!(true);
    assert!(decode(&schema, Some(&bad), "Src").is_err());
    bad = json!({"ConnectionConfig": {"Host": "h", "User": "u"}});
    assert!(decode(&schema, Some(&bad), "Src").is_err());
}
