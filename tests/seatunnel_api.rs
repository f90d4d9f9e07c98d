//! SeaTunnel Zeta's REST API against a live agent: SeaTunnel configs (JSON and HOCON) and dtle
//! jobs submitted through `/submit-job(s)` replicate; the job queries show SeaTunnel's fields
//! with numbers that move; a failing job is pending with its reason, then failed with its error;
//! a job stopped with a savepoint and submitted again from it loses nothing and applies nothing
//! twice; the v1 paths under `/hazelcast/rest/maps/` answer the same. Agents listen on
//! 18700-18709; schemas and jobs are named `st_*`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

/// A GET answering text: status, content type and body.
fn get_text(url: &str) -> (u16, String, String) {
    let response = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.into_string().unwrap_or_default(),
    )
}

/// Waits until `check` holds for the JSON at `url`, and returns that JSON.
fn wait_for(url: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually_blocking(what, WAIT, || {
        let (status, body) = http("GET", url, None);
        if status == 200 && check(&body) {
            Ok(body)
        } else {
            Err(format!("last answer {status} {body}"))
        }
    })
}

/// A SeaTunnel MySQL-CDC → Jdbc config (JSON) copying `schema`.`t`, into `sink_port`.
fn config_json(name: &str, schema: &str, sink_port: u16) -> String {
    json!({
        "env": {"job.mode": "STREAMING", "job.name": name},
        "source": [{
            "plugin_name": "MySQL-CDC",
            "base-url": format!("jdbc:mysql://127.0.0.1:{SRC_PORT}/{schema}"),
            "username": USER,
            "password": PASSWORD,
            "table-names": [format!("{schema}.t")],
            "startup.mode": "initial",
        }],
        "transform": [],
        "sink": [{
            "plugin_name": "Jdbc",
            "url": format!("jdbc:mysql://127.0.0.1:{sink_port}/{schema}"),
            "user": USER,
            "password": PASSWORD,
            "database": schema,
            "table": "${table_name}",
        }],
    })
    .to_string()
}

/// The same config in HOCON.
fn config_hocon(schema: &str) -> String {
    format!(
        r#"
env {{
  job.mode = "STREAMING"
}}
source {{
  MySQL-CDC {{
    base-url = "jdbc:mysql://127.0.0.1:{SRC_PORT}/{schema}"
    username = "{USER}"
    password = "{PASSWORD}"
    table-names = ["{schema}.t"]
  }}
}}
sink {{
  Jdbc {{
    url = "jdbc:mysql://127.0.0.1:{DST_PORT}/{schema}"
    user = "{USER}"
    password = "{PASSWORD}"
  }}
}}
"#
    )
}

/// A fresh `schema` with a table `t` of `rows` rows on the source.
async fn table_t(schema: &str, job: &str, rows: u32) {
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(40));
             INSERT INTO `{schema}`.t SELECT seq, CONCAT('seed-', seq) FROM `{schema}`.seq_1_to_{rows}"
        ),
    )
    .await;
}

/// A number rendered as SeaTunnel renders metrics: a string.
fn number(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// Everything every answer is checked against: no password.
fn no_password(seen: &str) {
    assert!(!seen.contains(PASSWORD), "a password leaked: {seen}");
}

const METRICS: [&str; 13] = [
    "IntermediateQueueSize",
    "SourceReceivedCount",
    "SourceReceivedQPS",
    "SourceReceivedBytes",
    "SourceReceivedBytesPerSeconds",
    "SinkWriteCount",
    "SinkWriteQPS",
    "SinkWriteBytes",
    "SinkWriteBytesPerSeconds",
    "SinkCommittedCount",
    "SinkCommittedQPS",
    "SinkCommittedBytes",
    "SinkCommittedBytesPerSeconds",
];

const TABLE_METRICS: [&str; 12] = [
    "TableSourceReceivedCount",
    "TableSourceReceivedBytes",
    "TableSourceReceivedBytesPerSeconds",
    "TableSourceReceivedQPS",
    "TableSinkWriteCount",
    "TableSinkWriteQPS",
    "TableSinkWriteBytes",
    "TableSinkWriteBytesPerSeconds",
    "TableSinkCommittedCount",
    "TableSinkCommittedQPS",
    "TableSinkCommittedBytes",
    "TableSinkCommittedBytesPerSeconds",
];

/// The fields SeaTunnel documents for a running job's `/job-info`.
fn check_running_info(info: &Value, id: &str, name: &str, table: &str) {
    assert_eq!(info["jobId"], id, "{info}");
    assert_eq!(info["jobName"], name);
    assert_eq!(info["jobStatus"], "RUNNING");
    assert_eq!(
        info["createTime"].as_str().map(str::len),
        Some(19),
        "{info}"
    );
    let dag = &info["jobDag"];
    assert_eq!(dag["jobId"], id);
    assert_eq!(dag["vertexInfoMap"][0]["vertexId"], 1);
    assert_eq!(dag["vertexInfoMap"][0]["type"], "source");
    assert_eq!(dag["vertexInfoMap"][0]["vertexName"], "Source[0]-MySQL-CDC");
    assert_eq!(dag["vertexInfoMap"][0]["tablePaths"], json!([table]));
    assert_eq!(dag["vertexInfoMap"][1]["type"], "sink");
    assert_eq!(dag["vertexInfoMap"][1]["vertexName"], "Sink[0]-Jdbc");
    assert_eq!(dag["vertexInfoMap"][1]["tablePaths"], json!([table]));
    assert_eq!(
        dag["pipelineEdges"],
        json!({"1": [{"inputVertexId": "1", "targetVertexId": "2"}]})
    );
    assert_eq!(dag["envOptions"]["job.mode"], "STREAMING");
    let metrics = &info["metrics"];
    for key in METRICS {
        assert!(metrics[key].is_string(), "{key}: {metrics}");
    }
    for key in TABLE_METRICS {
        assert!(metrics[key][table].is_string(), "{key}: {metrics}");
        assert!(
            metrics[format!("{key}#{table}")].is_string(),
            "{key}#{table}: {metrics}"
        );
    }
    assert!(info["envOptions"].is_object(), "{info}");
    assert_eq!(info["pluginJarsUrls"], json!([]));
    assert!(info["isStartWithSavePoint"].is_boolean());
    assert!(info.get("finishedTime").is_none(), "{info}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seatunnel_config_replicates_and_every_query_shows_it() {
    let (job, schema) = ("st_api", "st_api");
    table_t(schema, job, 300).await;
    let agent = Agent::fresh(job, 18700);
    let mut seen = String::new();

    // Submitted without a jobId: SeaTunnel's kind of ID, a positive long.
    let (status, body) = http(
        "POST",
        &agent.url("/submit-job"),
        Some(&config_json(job, schema, DST_PORT)),
    );
    assert_eq!(status, 200, "{body}");
    let id = body["jobId"].as_i64().expect("a numeric jobId").to_string();
    assert!(id.parse::<i64>().is_ok_and(|n| n > 0));
    assert_eq!(body["jobName"], job);
    converge(schema, "t", "id", WAIT).await;

    // The same job again while it runs: refused.
    let (status, body) = http(
        "POST",
        &agent.url(&format!("/submit-job?jobId={id}")),
        Some(&config_json(job, schema, DST_PORT)),
    );
    assert_eq!((status, &body["status"]), (409, &json!("fail")), "{body}");

    // job-info: SeaTunnel's fields, and metrics that move.
    let info_url = agent.url(&format!("/job-info/{id}"));
    let table = format!("{schema}.t");
    let first = wait_for(&info_url, "the rows are counted", |i| {
        i["metrics"]["SinkWriteCount"]
            .as_str()
            .is_some_and(|c| c.parse::<u64>().is_ok_and(|n| n >= 300))
    });
    seen.push_str(&first.to_string());
    check_running_info(&first, &id, job, &table);
    assert_eq!(first["isStartWithSavePoint"], false);
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t SELECT 1000 + seq, 'more' FROM {schema}.seq_1_to_200; UPDATE {schema}.t SET v = 'changed' WHERE id <= 10"),
    )
    .await;
    converge(schema, "t", "id", WAIT).await;
    let m1 = &first["metrics"];
    let second = wait_for(&info_url, "the counts move", |i| {
        let m = &i["metrics"];
        number(&m["SourceReceivedCount"]) >= number(&m1["SourceReceivedCount"]) + 210
            && number(&m["SinkWriteCount"]) >= number(&m1["SinkWriteCount"]) + 210
            && number(&m["TableSinkWriteCount"][&table])
                >= number(&m1["TableSinkWriteCount"][&table]) + 210
    });
    seen.push_str(&second.to_string());
    let m2 = &second["metrics"];
    assert!(number(&m2["SourceReceivedBytes"]) > number(&m1["SourceReceivedBytes"]));
    assert!(number(&m2["SinkWriteBytes"]) > number(&m1["SinkWriteBytes"]));
    assert!(m2["SourceReceivedQPS"]
        .as_str()
        .is_some_and(|q| q.parse::<f64>().is_ok()));

    // The deprecated shapes: running-job and running-jobs.
    let (status, short) = http("GET", &agent.url(&format!("/running-job/{id}")), None);
    assert_eq!(status, 200);
    assert!(
        short["metrics"]["sourceReceivedCount"].is_string(),
        "{short}"
    );
    assert!(short["metrics"]["sinkWriteCount"].is_string(), "{short}");
    let (status, running) = http("GET", &agent.url("/running-jobs"), None);
    assert_eq!(status, 200);
    seen.push_str(&running.to_string());
    let entry = running
        .as_array()
        .and_then(|l| l.iter().find(|j| j["jobId"] == id.as_str()))
        .unwrap_or_else(|| panic!("listed: {running}"));
    check_running_info(entry, &id, job, &table);
    assert!(entry["metrics"]["sourceReceivedCount"].is_string());

    // v1 paths answer the same.
    let (status, v1) = http(
        "GET",
        &agent.url(&format!("/hazelcast/rest/maps/job-info/{id}")),
        None,
    );
    assert_eq!(status, 200);
    check_running_info(&v1, &id, job, &table);
    let (_, v1_running) = http("GET", &agent.url("/hazelcast/rest/maps/running-jobs"), None);
    assert!(v1_running
        .as_array()
        .is_some_and(|l| l.iter().any(|j| j["jobId"] == id.as_str())));

    // An unknown job.
    let (status, unknown) = http("GET", &agent.url("/job-info/12345"), None);
    assert_eq!((status, unknown), (200, json!({"jobId": ""})));

    // Overview, on both paths.
    for path in [
        "/overview",
        "/hazelcast/rest/maps/overview",
        "/overview?dc=dc1",
    ] {
        let (status, overview) = http("GET", &agent.url(path), None);
        assert_eq!(status, 200);
        for key in [
            "projectVersion",
            "gitCommitAbbrev",
            "totalSlot",
            "unassignedSlot",
            "works",
            "runningJobs",
            "pendingJobs",
            "finishedJobs",
            "failedJobs",
            "cancelledJobs",
        ] {
            assert!(overview[key].is_string(), "{path} {key}: {overview}");
        }
        assert_eq!(overview["works"], "1", "{path}");
        assert_eq!(overview["runningJobs"], "1", "{path}");
    }
    let (_, tagged) = http("GET", &agent.url("/overview?zone=nowhere"), None);
    assert_eq!(tagged["works"], "0");

    // The process.
    for path in [
        "/system-monitoring-information",
        "/hazelcast/rest/maps/system-monitoring-information",
    ] {
        let (status, system) = http("GET", &agent.url(path), None);
        assert_eq!(status, 200, "{system}");
        let node = &system[0];
        assert_eq!(node["port"], "18700");
        assert!(number(&node["processors"]) >= 1);
        assert!(number(&node["thread.count"]) >= 1);
        for key in [
            "physical.memory.total",
            "heap.memory.used",
            "process.memory.rss",
        ] {
            let size = node[key].as_str().unwrap_or_default();
            assert!(
                size.ends_with('G') || size.ends_with('M') || size.ends_with('K'),
                "{key}: {node}"
            );
        }
        for key in ["load.process", "load.system", "heap.memory.used/total"] {
            assert!(
                node[key].as_str().is_some_and(|l| l.ends_with('%')),
                "{key}"
            );
        }
        assert!(node["process.uptime"]
            .as_str()
            .is_some_and(|u| u.ends_with('s')));
    }
    let (status, threads) = http("GET", &agent.url("/thread-dump"), None);
    assert_eq!(status, 200);
    assert!(threads[0]["threadName"].is_string() && threads[0]["threadId"].is_u64());

    // The job's log: listed, and it has lines.
    let file = format!("job-{id}.log");
    for (path, kind) in [("/logs?format=json", "logs"), ("/log?format=json", "log")] {
        let (status, logs) = http("GET", &agent.url(path), None);
        assert_eq!(status, 200, "{logs}");
        let entry = logs
            .as_array()
            .and_then(|l| l.iter().find(|f| f["logName"] == file.as_str()))
            .unwrap_or_else(|| panic!("{file} listed: {logs}"));
        assert_eq!(entry["node"], format!("127.0.0.1:{}", agent.port));
        let link = entry["logLink"].as_str().expect("a link");
        assert_eq!(link, agent.url(&format!("/{kind}/{file}")));
        let (status, content_type, text) = get_text(link);
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(text.lines().count() > 0 && text.contains(&id), "{text}");
        no_password(&text);
    }
    let (status, content_type, page) = get_text(&agent.url(&format!("/logs/{id}")));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains(&format!("href=\"/logs/{file}\"")), "{page}");
    let (_, json_list) = http("GET", &agent.url(&format!("/logs/{id}?format=json")), None);
    assert_eq!(json_list.as_array().map(Vec::len), Some(1), "{json_list}");
    let (status, _, _) = get_text(&agent.url("/log/job-missing.log"));
    assert_eq!(status, 404);

    // Prometheus and OpenMetrics.
    let (status, _, prometheus) = get_text(&agent.url("/metrics"));
    assert_eq!(status, 200);
    assert!(prometheus.contains(&format!("dtle_rows_read_total{{job=\"{id}\"")));
    let (status, content_type, open) = get_text(&agent.url("/openmetrics"));
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(open.contains("# TYPE dtle_rows_read counter\n"), "{open}");
    assert!(open.contains(&format!("dtle_rows_read_total{{job=\"{id}\"")));
    assert!(open.ends_with("# EOF\n"));

    // Configs dtle cannot run: a 400 naming the connector, on both paths.
    let kafka = config_json(job, schema, DST_PORT).replace("MySQL-CDC", "Kafka");
    let (status, refused) = http("POST", &agent.url("/submit-job"), Some(&kafka));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["status"], "fail");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("Kafka")),
        "{refused}"
    );
    let console = config_json(job, schema, DST_PORT).replace("\"Jdbc\"", "\"Console\"");
    let (status, refused) = http(
        "POST",
        &agent.url("/hazelcast/rest/maps/submit-job"),
        Some(&console),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("Console")),
        "{refused}"
    );
    let (status, refused) = http(
        "POST",
        &agent.url("/submit-job?isStartWithSavePoint=true"),
        Some(&config_json(job, schema, DST_PORT)),
    );
    assert_eq!(status, 400);
    assert_eq!(
        refused["message"],
        "Please provide jobId when start with save point."
    );
    seen.push_str(&refused.to_string());

    let (status, refused) = http("GET", &agent.url("/hazelcast/rest/maps/submit-job"), None);
    assert_eq!(
        (status, &refused["status"]),
        (405, &json!("fail")),
        "{refused}"
    );
    let (status, refused) = http("POST", &agent.url("/stop-job"), Some("[1"));
    assert_eq!(
        (status, &refused["status"]),
        (400, &json!("fail")),
        "{refused}"
    );

    // Stopped without a savepoint: cancelled, with its finish time.
    let numeric: i64 = id.parse().expect("numeric");
    let (status, stopped) = http(
        "POST",
        &agent.url("/stop-job"),
        Some(&json!({"jobId": numeric, "isStopWithSavePoint": false}).to_string()),
    );
    assert_eq!((status, stopped), (200, json!({"jobId": numeric})));
    let cancelled = wait_for(&agent.url("/finished-jobs/CANCELED"), "cancelled", |l| {
        l.as_array()
            .is_some_and(|l| l.iter().any(|j| j["jobId"] == id.as_str()))
    });
    let entry = &cancelled[0];
    assert_eq!(entry["jobStatus"], "CANCELED");
    assert_eq!(entry["jobName"], job);
    assert_eq!(entry["errorMsg"], Value::Null);
    assert_eq!(entry["finishTime"].as_str().map(str::len), Some(19));
    assert_eq!(entry["createTime"].as_str().map(str::len), Some(19));
    assert_eq!(
        entry["jobDag"]["vertexInfoMap"][1]["vertexName"],
        "Sink[0]-Jdbc"
    );
    assert!(entry["metrics"]["SinkWriteCount"].is_string());
    let (_, all) = http("GET", &agent.url("/finished-jobs"), None);
    assert!(all
        .as_array()
        .is_some_and(|l| l.iter().any(|j| j["jobId"] == id.as_str())));
    let (_, failed) = http("GET", &agent.url("/finished-jobs/FAILED"), None);
    assert_eq!(failed, json!([]));
    let (_, info) = http("GET", &info_url, None);
    assert_eq!(info["jobStatus"], "CANCELED");
    assert_eq!(info["finishedTime"].as_str().map(str::len), Some(19));
    assert!(
        info.get("errorMsg").is_some() && info.get("envOptions").is_none(),
        "{info}"
    );
    let (_, overview) = http("GET", &agent.url("/overview"), None);
    assert_eq!(
        (&overview["runningJobs"], &overview["cancelledJobs"]),
        (&json!("0"), &json!("1"))
    );
    // One /overview answers Flink's keys too.
    assert_eq!(
        (&overview["jobs-cancelled"], &overview["taskmanagers"]),
        (&json!(1), &json!(1))
    );

    // Purged: still queryable, with its finish time.
    let (status, _) = http(
        "DELETE",
        &agent.url(&format!("/v1/job/{id}?purge=true")),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = http("GET", &agent.url(&format!("/v1/job/{id}")), None);
    assert_eq!(status, 404);
    let (_, after) = http("GET", &agent.url("/finished-jobs/CANCELED"), None);
    let kept = after
        .as_array()
        .and_then(|l| l.iter().find(|j| j["jobId"] == id.as_str()))
        .unwrap_or_else(|| panic!("kept after the purge: {after}"));
    assert_eq!(kept["finishTime"], entry["finishTime"]);
    assert_eq!(kept["createTime"], entry["createTime"]);
    assert_eq!(kept["jobName"], job);
    let (_, info) = http("GET", &info_url, None);
    assert_eq!(
        (&info["jobId"], &info["jobStatus"]),
        (&json!(id), &json!("CANCELED"))
    );
    let (_, overview) = http("GET", &agent.url("/overview"), None);
    assert_eq!(overview["cancelledJobs"], "1");
    seen.push_str(&all.to_string());
    seen.push_str(&info.to_string());
    no_password(&seen);
}

#[tokio::test(flavor = "multi_thread")]
async fn hocon_configs_and_dtle_jobs_are_submitted_and_stopped_together() {
    let (a, b, c) = ("st_multi_a", "st_multi_b", "st_hocon");
    for schema in [a, b, c] {
        table_t(schema, schema, 50).await;
    }
    let agent = Agent::fresh("st_multi", 18701);

    // A SeaTunnel config and a dtle job in one submit-jobs, each with its params.
    let mut first: Value = serde_json::from_str(&config_json(a, a, DST_PORT)).expect("JSON");
    first["params"] = json!({"jobId": "880000000000000001", "jobName": a});
    let mut second: Value = serde_json::from_str(&job_json(b, b, "")).expect("JSON");
    second["params"] = json!({"jobId": "880000000000000002"});
    let batch = json!([first, second]).to_string();
    let (status, body) = http("POST", &agent.url("/submit-jobs"), Some(&batch));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([
            {"jobId": "880000000000000001", "jobName": a},
            {"jobId": "880000000000000002", "jobName": b},
        ])
    );

    // A HOCON config, on the v1 path.
    let (status, body) = http(
        "POST",
        &agent.url(&format!(
            "/hazelcast/rest/maps/submit-job?format=hocon&jobId=880000000000000003&jobName={c}"
        )),
        Some(&config_hocon(c)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"jobId": 880000000000000003_i64, "jobName": c}));
    for schema in [a, b, c] {
        converge(schema, "t", "id", WAIT).await;
    }
    exec(
        SRC_PORT,
        &format!("INSERT INTO {c}.t VALUES (100, 'binlog')"),
    )
    .await;
    converge(c, "t", "id", WAIT).await;
    let info = wait_for(
        &agent.url("/job-info/880000000000000002"),
        "the dtle job runs",
        |i| i["jobStatus"] == "RUNNING",
    );
    check_running_info(&info, "880000000000000002", b, &format!("{b}.t"));

    // A batch with one bad job starts none of them.
    let mut bad: Value =
        serde_json::from_str(&config_json("st_multi_x", a, DST_PORT)).expect("JSON");
    bad["source"][0]["plugin_name"] = json!("FakeSource");
    let mut fine: Value =
        serde_json::from_str(&config_json("st_multi_y", a, DST_PORT)).expect("JSON");
    fine["params"] = json!({"jobId": "880000000000000009"});
    let (status, refused) = http(
        "POST",
        &agent.url("/submit-jobs"),
        Some(&json!([fine, bad]).to_string()),
    );
    assert_eq!(status, 400, "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("job 2 of 2:") && message.contains("FakeSource"),
        "{message}"
    );
    let (_, unknown) = http("GET", &agent.url("/job-info/880000000000000009"), None);
    assert_eq!(unknown, json!({"jobId": ""}));

    // Stopped together, one with a savepoint.
    let (status, body) = http(
        "POST",
        &agent.url("/hazelcast/rest/maps/stop-jobs"),
        Some(
            &json!([
                {"jobId": 880000000000000001_i64, "isStopWithSavePoint": false},
                {"jobId": "880000000000000002", "isStopWithSavePoint": true},
                {"jobId": 880000000000000003_i64},
            ])
            .to_string(),
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([
            {"jobId": 880000000000000001_i64},
            {"jobId": "880000000000000002"},
            {"jobId": 880000000000000003_i64},
        ])
    );
    let (_, cancelled) = http("GET", &agent.url("/finished-jobs/canceled"), None);
    let ids: Vec<&str> = cancelled
        .as_array()
        .map(|l| l.iter().filter_map(|j| j["jobId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 2, "{cancelled}");
    assert!(ids.contains(&"880000000000000001") && ids.contains(&"880000000000000003"));
    let (_, saved) = http("GET", &agent.url("/finished-jobs/SAVEPOINT_DONE"), None);
    assert_eq!(saved[0]["jobId"], "880000000000000002", "{saved}");
    let (status, missing) = http("POST", &agent.url("/stop-job"), Some(r#"{"jobId": 1}"#));
    assert_eq!(
        (status, &missing["status"]),
        (404, &json!("fail")),
        "{missing}"
    );
    let (status, missing) = http("POST", &agent.url("/stop-job"), Some("{}"));
    assert_eq!(
        (status, &missing["message"]),
        (400, &json!("jobId cannot be empty."))
    );
}

/// An agent that gives up on a failing task quickly: one restart, after 5 s.
fn impatient_agent(test: &str, port: u16) -> Agent {
    let config = scratch(test).join("agent.toml");
    std::fs::write(
        &config,
        "[restart]\nattempts = 1\ndelay_s = 5\nmax_delay_s = 5\ntask_attempts = 1\n",
    )
    .expect("config file");
    let _ = std::fs::remove_dir_all(scratch(test).join("agent-state"));
    Agent::start_with(test, port, &["--config", config.to_str().expect("a path")])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_pending_with_its_reason_then_failed_with_its_error() {
    let (job, schema) = ("st_fail", "st_fail");
    table_t(schema, job, 10).await;
    let agent = impatient_agent(job, 18702);
    let mut seen = String::new();

    // The sink points at a port nothing listens on.
    let (status, body) = http(
        "POST",
        &agent.url("/submit-job?jobId=990000000000000001"),
        Some(&config_json(job, schema, 1)),
    );
    assert_eq!(status, 200, "{body}");
    let id = "990000000000000001";

    // Pending, with the task's error as the reason, while it waits to be restarted.
    let pending = wait_for(&agent.url("/pending-jobs"), "the job waits", |p| {
        p["pendingJobs"][0]["jobId"] == json!(990000000000000001_i64)
    });
    seen.push_str(&pending.to_string());
    let entry = &pending["pendingJobs"][0];
    assert_eq!(pending["queueSummary"]["size"], 1);
    assert_eq!(entry["jobName"], job);
    assert_eq!(entry["jobStatus"], "PENDING");
    assert_eq!(entry["pendingSourceState"], "RESTORE");
    assert_eq!(entry["failureReason"], "TASK_RESTARTING");
    let reason = entry["failureMessage"].as_str().unwrap_or_default();
    assert!(reason.contains("127.0.0.1:1"), "{pending}");
    assert_eq!(entry["totalTaskGroups"], 2);
    assert_eq!(entry["lackingTaskGroups"], 1);
    let lacking = &entry["lackingTaskGroupDiagnostics"][0];
    assert_eq!(lacking["taskFullName"], "Sink[0]");
    assert_eq!(lacking["allocated"], false);
    assert!(entry["waitDurationMs"].is_u64() && entry["enqueueTimestamp"].is_u64());
    let (_, one) = http(
        "GET",
        &agent.url(&format!("/pending-jobs?jobId={id}&pretty=true")),
        None,
    );
    assert_eq!(
        one["pendingJobs"][0]["enqueueTimestamp"]
            .as_str()
            .map(str::len),
        Some(19)
    );
    let (_, overview) = http("GET", &agent.url("/overview"), None);
    assert_eq!(overview["pendingJobs"], "1", "{overview}");

    // Then failed for good: in finished-jobs with its error and finish time.
    let failed = wait_for(&agent.url("/finished-jobs/FAILED"), "the job fails", |l| {
        l.as_array().is_some_and(|l| !l.is_empty())
    });
    seen.push_str(&failed.to_string());
    let entry = &failed[0];
    assert_eq!(entry["jobId"], id);
    assert_eq!(entry["jobStatus"], "FAILED");
    let error = entry["errorMsg"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1:1"), "{entry}");
    assert_eq!(entry["finishTime"].as_str().map(str::len), Some(19));
    let (_, info) = http(
        "GET",
        &agent.url(&format!("/hazelcast/rest/maps/job-info/{id}")),
        None,
    );
    assert_eq!(info["jobStatus"], "FAILED");
    assert_eq!(info["errorMsg"], entry["errorMsg"]);
    assert_eq!(info["finishedTime"], entry["finishTime"]);
    let (_, overview) = http("GET", &agent.url("/overview"), None);
    assert_eq!(
        (&overview["failedJobs"], &overview["pendingJobs"]),
        (&json!("1"), &json!("0"))
    );
    let (_, pending) = http("GET", &agent.url("/pending-jobs"), None);
    assert_eq!(pending["pendingJobs"], json!([]));

    // Purged: its error is still there.
    let (status, _) = http(
        "DELETE",
        &agent.url(&format!("/v1/job/{id}?purge=true")),
        None,
    );
    assert_eq!(status, 200);
    let (_, after) = http("GET", &agent.url("/finished-jobs/failed"), None);
    assert_eq!(after[0]["jobId"], id, "{after}");
    assert_eq!(after[0]["errorMsg"], entry["errorMsg"]);
    assert_eq!(after[0]["finishTime"], entry["finishTime"]);
    seen.push_str(&info.to_string());
    seen.push_str(&after.to_string());
    no_password(&seen);
}

/// Rows on the source: `ev` has no key, so a row applied twice would show as a duplicate.
async fn write_rows(schema: &str, from: u32, to: u32) {
    exec(
        SRC_PORT,
        &format!(
            "INSERT INTO {schema}.t SELECT seq, CONCAT('w-', seq) FROM {schema}.seq_{from}_to_{to};
             INSERT INTO {schema}.ev SELECT seq FROM {schema}.seq_{from}_to_{to};
             UPDATE {schema}.t SET v = CONCAT(v, '+') WHERE id % 7 = 0;
             DELETE FROM {schema}.t WHERE id % 11 = 0"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_with_a_savepoint_and_resumed_from_it_without_loss() {
    let (job, schema) = ("st_savepoint", "st_savepoint");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, v VARCHAR(40));
             CREATE TABLE {schema}.ev (n INT)"
        ),
    )
    .await;
    write_rows(schema, 1, 100).await;
    let agent = Agent::fresh(job, 18703);
    let config = config_json(job, schema, DST_PORT).replace(
        &format!("\"table-names\":[\"{schema}.t\"]"),
        &format!("\"table-names\":[\"{schema}.t\",\"{schema}.ev\"]"),
    );
    assert!(config.contains(".ev"), "{config}");
    let config = config.replace(",\"table\":\"${table_name}\"", "");
    let id = "770000000000000001";
    let (status, body) = http(
        "POST",
        &agent.url(&format!("/submit-job?jobId={id}")),
        Some(&config),
    );
    assert_eq!(status, 200, "{body}");
    converge(schema, "t", "id", WAIT).await;
    converge(schema, "ev", "n", WAIT).await;
    write_rows(schema, 101, 200).await;
    converge(schema, "ev", "n", WAIT).await;

    // Stopped with a savepoint: SAVEPOINT_DONE, the position kept.
    let (status, body) = http(
        "POST",
        &agent.url("/stop-job"),
        Some(&json!({"jobId": id, "isStopWithSavePoint": true}).to_string()),
    );
    assert_eq!((status, body), (200, json!({"jobId": id})));
    let saved = wait_for(&agent.url("/finished-jobs/SAVEPOINT_DONE"), "saved", |l| {
        l[0]["jobId"] == id
    });
    assert_eq!(saved[0]["finishTime"].as_str().map(str::len), Some(19));
    let (_, info) = http("GET", &agent.url(&format!("/job-info/{id}")), None);
    assert_eq!(info["jobStatus"], "SAVEPOINT_DONE");

    // Written while stopped: not on the target yet.
    write_rows(schema, 201, 400).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_target: Option<u64> =
        first_value(DST_PORT, &format!("SELECT COUNT(*) FROM {schema}.ev")).await;
    assert_eq!(on_target, Some(200));

    // Submitted again from the savepoint: every row arrives, once.
    let (status, body) = http(
        "POST",
        &agent.url(&format!("/submit-job?jobId={id}&isStartWithSavePoint=true")),
        Some(&config),
    );
    assert_eq!(status, 200, "{body}");
    converge(schema, "ev", "n", WAIT).await;
    converge(schema, "t", "id", WAIT).await;
    same_schema(schema).await.expect("the same rows");
    gtids_recorded_once(job).await;
    let info = wait_for(
        &agent.url(&format!("/job-info/{id}")),
        "running again",
        |i| i["jobStatus"] == "RUNNING",
    );
    assert_eq!(info["isStartWithSavePoint"], true);
    // It read only what was written while stopped (its counters start with the run).
    let read = wait_for(&agent.url(&format!("/job-info/{id}")), "counted", |i| {
        number(&i["metrics"]["SourceReceivedCount"]) >= 400
    });
    assert!(
        number(&read["metrics"]["SourceReceivedCount"]) < 700,
        "read more than the rows written while stopped: {}",
        read["metrics"]
    );

    // Stopped and submitted again without a savepoint: afresh, from a new snapshot. The copy
    // goes into the tables the target already has, as SeaTunnel's Jdbc sink appends by default
    // (`data_save_mode` APPEND_DATA): keyed rows are replaced, the keyless `ev` gets its rows
    // again, so only `t` is compared.
    let (status, _) = http(
        "POST",
        &agent.url("/stop-job"),
        Some(&json!({"jobId": id}).to_string()),
    );
    assert_eq!(status, 200);
    let (status, body) = http(
        "POST",
        &agent.url(&format!("/submit-job?jobId={id}")),
        Some(&config),
    );
    assert_eq!(status, 200, "{body}");
    let info = wait_for(
        &agent.url(&format!("/job-info/{id}")),
        "a new snapshot",
        |i| {
            i["metrics"]["TableSourceReceivedCount"][format!("{schema}.ev")]
                .as_str()
                .and_then(|c| c.parse::<u64>().ok())
                .is_some_and(|n| n >= 400)
        },
    );
    assert_eq!(info["isStartWithSavePoint"], false);
    write_rows(schema, 401, 450).await;
    converge(schema, "t", "id", WAIT).await;
}
