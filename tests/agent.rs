//! The agent over HTTP, as users drive it: the dtle 2.x API's lifecycle, its error paths, and a
//! kill -9 of the agent itself. Every scenario ends with the target equal to the source.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// Waits until `check` holds for the JSON at `url`, and returns that JSON.
fn wait_for(url: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually_blocking(what, Duration::from_secs(60), || {
        let (status, body) = http("GET", url, None);
        if status == 200 && check(&body) {
            Ok(body)
        } else {
            Err(format!("last answer {status} {body}"))
        }
    })
}

fn stats_of(agent: &Agent, alloc: &Value) -> Value {
    let id = alloc["ID"].as_str().expect("allocation ID");
    let (status, body) = http(
        "GET",
        &agent.url(&format!("/v1/agent/allocation/{id}/stats")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let task = alloc["Task"].as_str().expect("task");
    body["Tasks"][task].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_lifecycle_through_the_api() {
    let (job, schema) = ("api_lifecycle", "e2e_api");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO {schema}.t SELECT seq, 'seed' FROM {schema}.seq_1_to_1000"),
    )
    .await;
    let agent = Agent::fresh(job, 18190);
    let mut seen = String::new();
    let job_text = job_json(job, schema, "");

    // POST: created, with IDs.
    let (status, body) = http("POST", &agent.url("/v1/jobs"), Some(&job_text));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ID"], job);
    assert!(
        body["EvalID"].as_str().is_some_and(|e| e.len() == 36),
        "{body}"
    );
    assert_eq!(body["Success"], true);

    // List and get: dtle's keys, passwords masked.
    let (status, list) = http("GET", &agent.url("/v1/jobs"), None);
    assert_eq!(status, 200);
    seen.push_str(&list.to_string());
    let entry = list
        .as_array()
        .and_then(|l| l.iter().find(|j| j["ID"] == job))
        .expect("the job is listed")
        .clone();
    assert_eq!(entry["Type"], "synchronous");
    assert_eq!(
        entry["JobSummary"]["Tasks"][0]["Config"]["ConnectionConfig"]["Password"],
        "*"
    );
    let (status, one) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(status, 200);
    seen.push_str(&one.to_string());
    assert_eq!(one["Tasks"][0]["Type"], "Src");
    assert_eq!(one["Tasks"][1]["Type"], "Dest");
    assert_eq!(
        one["Tasks"][1]["Config"]["ConnectionConfig"]["Password"],
        "*"
    );
    assert_eq!(
        one["Tasks"][0]["Config"]["ConnectionConfig"]["Port"],
        SRC_PORT
    );
    assert!(one["CreateIndex"].is_u64() && one["JobModifyIndex"].is_u64());

    // Allocations: one per task, running, with events.
    let allocs = wait_for(
        &agent.url(&format!("/v1/job/{job}/allocations")),
        "running tasks",
        |a| {
            a.as_array()
                .is_some_and(|l| l.len() == 2 && l.iter().all(|x| x["ClientStatus"] == "running"))
        },
    );
    seen.push_str(&allocs.to_string());
    let allocs = allocs.as_array().expect("list").clone();
    for alloc in &allocs {
        let task = alloc["Task"].as_str().expect("task");
        assert_eq!(alloc["Name"], format!("{job}.{task}"));
        let kinds: Vec<&str> = alloc["TaskStates"][task]["Events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["Type"].as_str())
            .collect();
        assert_eq!(&kinds[..2], ["Received", "Started"], "{alloc}");
        assert!(alloc["CreateTime"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000_000_000));
    }
    let dest = allocs
        .iter()
        .find(|a| a["Task"] == "Dest")
        .expect("dest")
        .clone();
    let src = allocs
        .iter()
        .find(|a| a["Task"] == "Src")
        .expect("src")
        .clone();
    converge(schema, "t", "id", Duration::from_secs(60)).await;

    // Stats move while rows are written.
    let before = stats_of(&agent, &dest);
    assert_eq!(before["ProgressPct"], "100.0");
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t SELECT seq, 'more' FROM {schema}.seq_1001_to_1500"),
    )
    .await;
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let after = stats_of(&agent, &dest);
    assert!(
        after["ExecMasterRowCount"].as_u64() > before["ExecMasterRowCount"].as_u64(),
        "{before} -> {after}"
    );
    assert!(after["ExecMasterTxCount"].as_u64().is_some_and(|n| n >= 1));
    assert!(after["CurrentCoordinates"]["GtidSet"]
        .as_str()
        .is_some_and(|g| g.starts_with("0-1-")));
    assert!(after["TableStats"][format!("{schema}.t")]["InsertCount"]
        .as_u64()
        .is_some_and(|n| n >= 1500));
    let src_stats = stats_of(&agent, &src);
    assert!(
        src_stats["ReadMasterRowCount"]
            .as_u64()
            .is_some_and(|n| n >= 1500),
        "{src_stats}"
    );
    assert!(src_stats["Backlog"]
        .as_str()
        .is_some_and(|b| b.ends_with("/32")));
    seen.push_str(&after.to_string());

    // Prometheus metrics carry the same counters.
    let metrics = ureq::get(&agent.url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    let applied = metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "dtle_rows_applied_total{{job=\"{job}\",task=\"Dest\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no dtle_rows_applied_total for the Dest in:\n{metrics}"));
    assert!(applied >= 1500, "{applied}");
    assert!(
        metrics.contains(&format!("dtle_task_up{{job=\"{job}\",task=\"Src\"}} 1")),
        "{metrics}"
    );

    // A second job on the same agent carries a marker row through the pause: once it has
    // arrived, a job that still ran would have applied the writes before it.
    let (marker_job, marker_schema) = ("api_lifecycle_marker", "e2e_api_marker");
    reset(marker_schema, marker_job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {marker_schema}.marker (n BIGINT PRIMARY KEY)"),
    )
    .await;
    let (status, body) = http(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&job_json(marker_job, marker_schema, "")),
    );
    assert_eq!(status, 200, "{body}");
    in_binlog_phase(marker_job, Duration::from_secs(60)).await;

    // Pause: tasks stop, writes wait; resume: they arrive, nothing lost.
    let (status, body) = http("POST", &agent.url(&format!("/v1/job/{job}/pause")), None);
    assert_eq!(status, 200, "{body}");
    wait_for(&agent.url(&format!("/v1/job/{job}")), "paused", |j| {
        j["Status"] == "paused"
    });
    exec(SRC_PORT, &format!("UPDATE {schema}.t SET v = 'while paused' WHERE id <= 100; DELETE FROM {schema}.t WHERE id > 1400")).await;
    marker_arrives(marker_schema, Duration::from_secs(60)).await;
    assert!(
        same_table(schema, "t", "id").await.is_err(),
        "a paused job must not apply"
    );
    let (status, body) = http("POST", &agent.url(&format!("/v1/job/{job}/resume")), None);
    assert_eq!(status, 200, "{body}");
    converge(schema, "t", "id", Duration::from_secs(60)).await;

    // Update: a changed job restarts its tasks and keeps replicating. It names the job it
    // updates: without an ID a job never replaces another of its name.
    let changed = job_json(job, schema, r#""ChunkSize": 500,"#).replacen(
        "{\"Name\"",
        &format!("{{\"ID\": \"{job}\", \"Name\""),
        1,
    );
    let (status, body) = http("POST", &agent.url("/v1/jobs"), Some(&changed));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Changed"], true);
    let (_, same_again) = http("POST", &agent.url("/v1/jobs"), Some(&changed));
    assert_eq!(
        same_again["Changed"], false,
        "posting an identical job changes nothing"
    );
    let (_, one) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(one["Tasks"][0]["Config"]["ChunkSize"], 500);
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (5000, 'after update')"),
    )
    .await;
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    assert!(gtids_recorded_once(job).await >= 3);

    // Delete, then purge.
    let (status, _) = http(
        "DELETE",
        &agent.url(&format!("/v1/job/{marker_job}?purge=true")),
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = http("DELETE", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(status, 200, "{body}");
    assert!(body["EvalID"].is_string());
    wait_for(&agent.url(&format!("/v1/job/{job}")), "dead", |j| {
        j["Status"] == "dead"
    });
    let (status, _) = http(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(
        (status, body["Error"].as_str()),
        (404, Some("job api_lifecycle not found"))
    );

    // Leader, members, nodes.
    let (_, leader) = http("GET", &agent.url("/v1/leader"), None);
    assert_eq!(leader, json!("127.0.0.1:18190"));
    let (_, nodes) = http("GET", &agent.url("/v1/nodes"), None);
    assert_eq!(nodes[0]["Status"], "ready");
    assert_eq!(nodes[0]["HTTPAddr"], "127.0.0.1:18190");
    let (_, members) = http("GET", &agent.url("/v1/members"), None);
    assert_eq!(members["Members"][0]["Port"], 18190);

    // No answer ever carried the password, nor did the agent's log.
    assert!(!seen.contains(PASSWORD), "a response leaked the password");
    assert!(
        !agent.log_text().contains(PASSWORD),
        "the log leaked the password"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_path_answers_with_its_status_and_message() {
    let agent = Agent::fresh("api_errors", 18191);
    let post = |body: &str| http("POST", &agent.url("/v1/jobs"), Some(body));

    let (status, body) = post("{\n  \"Name\": \"x\",\n  \"Tasks\": [\n}");
    assert_eq!(status, 400);
    assert_eq!(
        body["Error"],
        "the job is not valid JSON: expected value at line 4, column 1"
    );

    let (status, body) = post("");
    assert_eq!(
        (status, body["Error"].as_str()),
        (400, Some("the body is empty: send a job"))
    );

    let bad = job_json("bad.name", "s", "").replace("\"Port\": 3307", "\"Port\": \"abc\"");
    let (status, body) = post(&bad);
    assert_eq!(status, 400);
    let errors: Vec<String> = body["Errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["Path"].as_str().unwrap_or_default(),
                e["Message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            r#"Name: "bad.name" contains '.': use only letters, digits, '_' and '-' (the name is part of NATS subjects and SQL keys)"#,
            r#"Tasks[0].Config.ConnectionConfig.Port: expected 1-65535, got "abc""#,
        ]
    );
    assert!(!body.to_string().contains(PASSWORD));

    let (status, body) = post("job \"x\" {\n  group \"src\" {");
    assert_eq!(status, 400);
    assert!(
        body["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("the job is not valid HCL")),
        "{body}"
    );

    for (method, path, code, message) in [
        ("GET", "/v1/job/nope", 404, "job nope not found"),
        ("DELETE", "/v1/job/nope", 404, "job nope not found"),
        ("POST", "/v1/job/nope/pause", 404, "job nope not found"),
        ("POST", "/v1/job/nope/resume", 404, "job nope not found"),
        ("GET", "/v1/job/nope/allocations", 404, "job nope not found"),
        (
            "GET",
            "/v1/agent/allocation/0000/stats",
            404,
            "allocation 0000 not found",
        ),
        ("GET", "/v1/unknown", 404, "no such route"),
        ("PATCH", "/v1/jobs", 405, "method not allowed on this route"),
        (
            "DELETE",
            "/v1/jobs",
            405,
            "method not allowed on this route",
        ),
        (
            "GET",
            "/v1/job/x/pause",
            405,
            "method not allowed on this route",
        ),
    ] {
        let (status, body) = http(method, &agent.url(path), None);
        assert_eq!(
            (status, body["Error"].as_str()),
            (code, Some(message)),
            "{method} {path}"
        );
    }

    // Pausing twice and resuming a running job are conflicts.
    let (job, schema) = ("api_conflicts", "e2e_api_conflicts");
    reset(schema, job).await;
    let (status, _) = post(&job_json(job, schema, ""));
    assert_eq!(status, 200);
    let (status, body) = http("POST", &agent.url(&format!("/v1/job/{job}/resume")), None);
    assert_eq!(
        (status, body["Error"].as_str()),
        (409, Some("job api_conflicts is not paused"))
    );
    let (status, _) = http("POST", &agent.url(&format!("/v1/job/{job}/pause")), None);
    assert_eq!(status, 200);
    let (status, body) = http("POST", &agent.url(&format!("/v1/job/{job}/pause")), None);
    assert_eq!(
        (status, body["Error"].as_str()),
        (409, Some("job api_conflicts is already paused"))
    );
    http(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agent_brings_its_jobs_back() {
    let (job, schema) = ("api_agent_kill", "e2e_api_kill");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT)"),
    )
    .await;
    let mut agent = Agent::fresh(job, 18192);
    let (status, body) = http(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&job_json(job, schema, "")),
    );
    assert_eq!(status, 200, "{body}");
    let mut conn = connect(SRC_PORT).await;
    use mysql_async::prelude::Queryable;
    // Start writing once the (empty) snapshot is done, so every write is a binlog transaction.
    in_binlog_phase(job, Duration::from_secs(60)).await;
    for i in 0..300 {
        conn.exec_drop(format!("INSERT INTO {schema}.t VALUES (?, ?)"), (i, i))
            .await
            .expect("insert");
        if i == 150 {
            agent.kill();
        }
    }
    // Writes continue while no agent runs; then it comes back by itself with the job.
    for i in 300..400 {
        conn.exec_drop(
            format!("UPDATE {schema}.t SET v = v + 1 WHERE id = ?"),
            (i - 300,),
        )
        .await
        .expect("update");
    }
    let agent = Agent::start(job, 18192);
    wait_for(
        &agent.url(&format!("/v1/job/{job}/allocations")),
        "tasks restored",
        |a| {
            a.as_array().is_some_and(|l| {
                l.iter().all(|x| {
                    let task = x["Task"].as_str().unwrap_or_default();
                    x["ClientStatus"] == "running"
                        && x["TaskStates"][task]["Events"]
                            .as_array()
                            .is_some_and(|e| e.iter().any(|e| e["Type"] == "Restored"))
                })
            })
        },
    );
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    // Every source transaction once: 300 inserts and 100 updates.
    eventually("every GTID arrives", Duration::from_secs(30), || async {
        match gtids_recorded_once(job).await {
            400.. => Ok(()),
            n => Err(format!("{n} of 400 GTIDs recorded")),
        }
    })
    .await;
    assert_eq!(gtids_recorded_once(job).await, 400);
    http(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_task_is_restarted_with_backoff_and_its_error_shown() {
    let job = "api_restart";
    let config = scratch(job).join("agent.toml");
    std::fs::write(
        &config,
        "[restart]\nattempts = 2\ninterval_s = 600\ndelay_s = 1\nmax_delay_s = 1\ntask_attempts = 1\n",
    )
    .expect("config");
    let _ = std::fs::remove_dir_all(scratch(job).join("agent-state"));
    let agent = Agent::start_with(
        job,
        18193,
        &["--config", config.to_str().expect("utf-8 path")],
    );
    // Nothing listens on port 1: the Dest cannot reach its target.
    let text = job_json(job, "e2e_api_restart", "").replacen(&DST_PORT.to_string(), "1", 1);
    let (status, body) = http("POST", &agent.url("/v1/jobs"), Some(&text));
    assert_eq!(status, 200, "{body}");
    let allocs = wait_for(
        &agent.url(&format!("/v1/job/{job}/allocations")),
        "the Dest fails for good",
        |a| {
            a.as_array().is_some_and(|l| {
                l.iter()
                    .any(|x| x["Task"] == "Dest" && x["ClientStatus"] == "failed")
            })
        },
    );
    let dest = allocs
        .as_array()
        .and_then(|l| l.iter().find(|x| x["Task"] == "Dest"))
        .expect("dest")
        .clone();
    let state = &dest["TaskStates"]["Dest"];
    assert_eq!(state["Failed"], true);
    assert_eq!(state["Restarts"], 2, "{state}");
    let events: Vec<(&str, &str)> = state["Events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["Type"].as_str().unwrap_or_default(),
                e["DriverError"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            "Received",
            "Started",
            "Restarting",
            "Started",
            "Restarting",
            "Started",
            "Terminated"
        ],
        "{state}"
    );
    assert!(
        events[2]
            .1
            .contains("connecting to the target server dtle@127.0.0.1:1"),
        "the restart names the cause: {:?}",
        events[2]
    );
    let (_, one) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(one["Status"], "running", "the Src still runs");
    // The job's own log file holds its failures (and nothing of other jobs).
    let job_log = std::fs::read_to_string(agent.state_dir.join(format!("logs/job-{job}.log")))
        .expect("the job's log file");
    assert!(
        job_log.contains("task failed") && job_log.contains("127.0.0.1:1"),
        "{job_log}"
    );
    assert!(job_log.lines().all(|l| l.contains(job)), "{job_log}");
    assert!(!job_log.contains(PASSWORD), "no password in job logs");
    http(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
}

fn dtle(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dtle"))
        .args(args)
        .output()
        .expect("dtle runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_commands_talk_to_the_agent() {
    let (job, schema) = ("cli_job", "e2e_cli");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY); INSERT INTO {schema}.t VALUES (1), (2)"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18194);
    let address = agent.url("");
    let file = write_job(job, &job_json(job, schema, ""));
    let file = file.to_str().expect("utf-8 path");

    let (code, out, err) = dtle(&["job", "run", file, "--address", &address]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("job cli_job submitted (evaluation "),
        "{out}"
    );
    converge(schema, "t", "id", Duration::from_secs(60)).await;

    let (code, out, err) = dtle(&["job", "status", job, "--address", &address]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job cli_job: running"), "{out}");
    assert!(
        out.contains("Src  running") && out.contains("Dest running"),
        "{out}"
    );
    assert!(out.contains("position: 0-1-"), "{out}");
    let (_, list, _) = dtle(&["job", "status", "--address", &address]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("cli_job") && l.contains("running")),
        "{list}"
    );

    let (code, out, _) = dtle(&["job", "stop", job, "--purge", "--address", &address]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "job cli_job stopped and purged");
    let (code, _, err) = dtle(&["job", "status", job, "--address", &address]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the agent answered 404: job cli_job not found"),
        "{err}"
    );

    let bad = write_job("cli_job_bad", &job_json("bad.name", schema, ""));
    let (code, _, err) = dtle(&[
        "job",
        "run",
        bad.to_str().expect("utf-8"),
        "--address",
        &address,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the agent answered 400") && err.contains("Name: \"bad.name\" contains '.'"),
        "{err}"
    );
    let (code, _, err) = dtle(&["job", "status", "--address", "http://127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the agent at http://127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_reads_an_hcl_config_and_rejects_a_bad_one() {
    let dir = scratch("agent_config");
    let good = dir.join("agent.hcl");
    std::fs::write(
        &good,
        "node_name = \"edge-1\"\ndatacenter = \"dc9\"\nrestart {\n  attempts = 3\n  delay_s = 2\n}\n",
    )
    .expect("config");
    let agent = Agent::start_with(
        "agent_config",
        18195,
        &["--config", good.to_str().expect("utf-8")],
    );
    let (_, nodes) = http("GET", &agent.url("/v1/nodes"), None);
    assert_eq!(
        (nodes[0]["Name"].as_str(), nodes[0]["Datacenter"].as_str()),
        (Some("edge-1"), Some("dc9"))
    );
    drop(agent);

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:18196\"\nnats_ulr = \"nats://x\"\n",
    )
    .expect("config");
    let (code, _, err) = dtle(&["agent", "--config", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not a valid agent config") && err.contains("nats_ulr"),
        "{err}"
    );
}
