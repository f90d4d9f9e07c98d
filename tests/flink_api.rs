//! Flink's monitoring REST API over a real `dtle agent` and the test bed: a job that replicates
//! (numbers that move between two reads), one that fails (its error in the exceptions and the
//! history, also after an agent restart and a purge), and one stopped with a savepoint and
//! resumed from it without loss. Every path the API serves is read at least once, and no answer
//! carries a password.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

/// GET `path`, expecting 200; the body.
fn get(agent: &Agent, path: &str) -> Value {
    let (status, body) = http("GET", &agent.url(path), None);
    assert_eq!(status, 200, "GET {path}: {body}");
    assert!(
        !body.to_string().contains(PASSWORD),
        "GET {path} shows a password: {body}"
    );
    body
}

/// Waits until `check` holds for the JSON of GET `path`; returns it.
fn wait_get(agent: &Agent, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually_blocking(what, WAIT, || {
        let (status, body) = http("GET", &agent.url(path), None);
        if status == 200 && check(&body) {
            Ok(body)
        } else {
            Err(format!("GET {path}: {status} {body}"))
        }
    })
}

fn number(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

/// The 32-hex Flink ID of `job`, as `GET /jobs/overview` lists it.
fn flink_id(agent: &Agent, job: &str) -> String {
    let overview = wait_get(agent, "/jobs/overview", "the job is listed", |b| {
        b["jobs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|j| j["name"] == job))
    });
    let jid = overview["jobs"]
        .as_array()
        .and_then(|l| l.iter().find(|j| j["name"] == job))
        .and_then(|j| j["jid"].as_str())
        .expect("a jid")
        .to_owned();
    assert!(
        jid.len() == 32 && jid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{jid}"
    );
    jid
}

fn post_job(agent: &Agent, text: &str) {
    let (status, body) = http("POST", &agent.url("/v1/jobs"), Some(text));
    assert_eq!(status, 200, "{body}");
}

/// A job's vertex by name.
fn vertex<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["vertices"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|v| {
                v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("{name}:")))
            })
        })
        .unwrap_or_else(|| panic!("no {name} vertex in {job}"))
}

fn metric(agent: &Agent, jid: &str, id: &str) -> u64 {
    let values = get(agent, &format!("/jobs/{jid}/metrics?get={id}"));
    values
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == id))
        .and_then(|m| m["value"].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value of {id}: {values}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicating_job_through_flinks_api() {
    let (job, schema) = ("flink_live", "flink_live");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO {schema}.t SELECT seq, 'seed' FROM {schema}.seq_1_to_300"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18720);
    post_job(&agent, &job_json(job, schema, ""));
    let jid = flink_id(&agent, job);

    // GET /jobs and /v1/jobs/overview: Flink's keys; /v1/jobs itself stays dtle 2.x's list.
    let jobs = wait_get(&agent, "/jobs", "the job runs", |b| {
        b["jobs"][0]["status"] == "RUNNING"
    });
    assert_eq!(jobs["jobs"][0]["id"], jid.as_str());
    let overview = get(&agent, "/v1/jobs/overview");
    let entry = &overview["jobs"][0];
    assert_eq!(entry["name"], job);
    assert_eq!(entry["state"], "RUNNING");
    assert_eq!(entry["end-time"], -1);
    assert!(number(&entry["start-time"], "start-time") > 1_600_000_000_000);
    assert!(entry["duration"].is_i64() && entry["last-modification"].is_i64());
    assert_eq!(entry["tasks"]["total"], 2);
    assert!(get(&agent, "/v1/jobs").is_array(), "dtle's list");

    // GET /jobs/:jobid, by either ID: vertices Src and Dest with numbers that move.
    in_binlog_phase(job, WAIT).await;
    converge(schema, "t", "id", WAIT).await;
    let first = wait_get(&agent, &format!("/jobs/{jid}"), "rows counted", |b| {
        vertex(b, "Dest")["metrics"]["write-records"]
            .as_u64()
            .is_some_and(|n| n >= 300)
    });
    assert_eq!(first["jid"], jid.as_str());
    assert_eq!(first["state"], "RUNNING");
    assert_eq!(first["dtle-job-id"], job);
    assert!(first["timestamps"]["RUNNING"]
        .as_u64()
        .is_some_and(|t| t > 0));
    assert_eq!(first["status-counts"]["RUNNING"], 2);
    assert_eq!(first["plan"]["nodes"].as_array().map(Vec::len), Some(2));
    for name in ["Src", "Dest"] {
        let v = vertex(&first, name);
        assert_eq!(v["status"], "RUNNING", "{v}");
        assert_eq!(v["parallelism"], 1);
        assert_eq!(v["tasks"]["RUNNING"], 1);
        assert!(v["id"].as_str().is_some_and(|id| id.len() == 32));
        assert!(number(&v["start-time"], "start-time") > 0);
        assert_eq!(v["end-time"], -1);
        for key in ["read-records", "write-records", "read-bytes", "write-bytes"] {
            assert!(v["metrics"][key].is_u64(), "{key} in {v}");
        }
        assert_eq!(v["metrics"]["write-records-complete"], true);
    }
    let src_read = number(
        &vertex(&first, "Src")["metrics"]["read-records"],
        "Src reads",
    );
    let records_in = metric(&agent, &jid, "numRecordsIn");
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t SELECT seq, 'more' FROM {schema}.seq_301_to_500"),
    )
    .await;
    converge(schema, "t", "id", WAIT).await;
    let second = wait_get(&agent, &format!("/jobs/{job}"), "numbers move", |b| {
        vertex(b, "Src")["metrics"]["read-records"]
            .as_u64()
            .is_some_and(|n| n >= src_read + 200)
            && vertex(b, "Dest")["metrics"]["write-records"]
                .as_u64()
                .is_some_and(|n| n >= 500)
    });
    assert_eq!(
        second["jid"],
        jid.as_str(),
        "the dtle ID names the same job"
    );
    assert!(metric(&agent, &jid, "numRecordsIn") >= records_in + 200);
    assert!(metric(&agent, &jid, "numRecordsOut") >= 500);

    // Checkpoints: the committed position, sampled as it moves.
    let checkpoints = wait_get(
        &agent,
        &format!("/jobs/{jid}/checkpoints"),
        "a checkpoint",
        |b| b["counts"]["completed"].as_u64().is_some_and(|n| n >= 1),
    );
    let latest = &checkpoints["latest"]["completed"];
    assert_eq!(latest["status"], "COMPLETED");
    assert_eq!(latest["is_savepoint"], false);
    assert!(latest["external_path"]
        .as_str()
        .is_some_and(|p| !p.is_empty()));
    assert!(latest["gtid_set"].is_string(), "{latest}");
    assert!(latest["latest_ack_timestamp"]
        .as_u64()
        .is_some_and(|t| t > 0));
    assert_eq!(checkpoints["counts"]["failed"], 0);
    let history = checkpoints["history"].as_array().expect("history");
    assert!(!history.is_empty());
    let id = number(&latest["id"], "checkpoint id");
    let details = get(&agent, &format!("/jobs/{jid}/checkpoints/details/{id}"));
    assert_eq!(details["id"], id);
    assert_eq!(details["tasks"].as_object().map(|t| t.len()), Some(2));
    let (status, missing) = http(
        "GET",
        &agent.url(&format!("/jobs/{jid}/checkpoints/details/999999")),
        None,
    );
    assert_eq!(status, 404, "{missing}");
    assert!(missing["errors"][0].is_string());
    let rows: u64 = history
        .iter()
        .filter_map(|c| c["rows_since_previous"].as_u64())
        .sum();
    assert!(rows > 0, "rows since the previous checkpoints: {history:?}");
    assert_eq!(
        get(&agent, &format!("/jobs/{jid}/checkpoints/config"))["mode"],
        "exactly_once"
    );

    // Config (passwords masked), metrics, plan, a vertex, the cluster.
    let config = get(&agent, &format!("/jobs/{jid}/config"));
    assert_eq!(config["jid"], jid.as_str());
    let user = &config["execution-config"]["user-config"];
    assert_eq!(user["Name"], job);
    assert_eq!(
        user["Tasks[0].Config.ConnectionConfig.Password"], "*",
        "{user}"
    );
    assert_eq!(user["Tasks[1].Config.ConnectionConfig.Password"], "*");
    let names = get(&agent, &format!("/jobs/{jid}/metrics"));
    assert!(names
        .as_array()
        .is_some_and(|l| l.iter().any(|m| m["id"] == "numRecordsOut")));
    assert_eq!(
        get(&agent, &format!("/jobs/{jid}/plan"))["plan"]["type"],
        "STREAMING"
    );
    let src = get(&agent, &format!("/jobs/{jid}/vertices/Src"));
    assert_eq!(src["subtasks"][0]["status"], "RUNNING");
    let cluster = get(&agent, "/overview");
    assert_eq!(cluster["taskmanagers"], 1);
    assert!(number(&cluster["jobs-running"], "jobs-running") >= 1);
    for key in [
        "slots-total",
        "slots-available",
        "jobs-finished",
        "jobs-cancelled",
        "jobs-failed",
    ] {
        assert!(cluster[key].is_u64(), "{key} in {cluster}");
    }
    assert!(cluster["flink-version"].is_string() && cluster["flink-commit"].is_string());
    let dashboard = get(&agent, "/config");
    assert!(dashboard["refresh-interval"].is_u64() && dashboard["flink-version"].is_string());
    let exceptions = get(&agent, &format!("/jobs/{jid}/exceptions"));
    assert_eq!(
        exceptions["exceptionHistory"]["entries"],
        serde_json::json!([])
    );
    assert!(get(&agent, "/jobs/metrics?get=numRecordsOut&agg=sum").is_array());

    // What does not apply, and what is not there.
    for (method, path) in [
        ("POST", "/jars/upload".to_owned()),
        ("POST", "/jars/x.jar/run".to_owned()),
        ("PATCH", format!("/jobs/{jid}/rescaling?parallelism=2")),
        ("POST", "/jobs".to_owned()),
        ("DELETE", "/cluster".to_owned()),
    ] {
        let (status, body) = http(method, &agent.url(&path), None);
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert!(
            body["errors"][0].as_str().is_some_and(|e| e.len() > 20),
            "{body}"
        );
    }
    let (status, body) = http(
        "GET",
        &agent.url("/jobs/0123456789abcdef0123456789abcdef"),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body["errors"][0].is_string());

    // Cancel: 202, and the job ends as CANCELED with an end time; its position stays.
    let (status, body) = http(
        "PATCH",
        &agent.url(&format!("/jobs/{jid}?mode=cancel")),
        None,
    );
    assert_eq!(status, 202, "{body}");
    let ended = wait_get(&agent, &format!("/jobs/{jid}"), "canceled", |b| {
        b["state"] == "CANCELED"
    });
    assert!(number(&ended["end-time"], "end-time") >= number(&ended["start-time"], "start"));
    assert_eq!(vertex(&ended, "Dest")["status"], "CANCELED");
    let (status, body) = http("PATCH", &agent.url(&format!("/jobs/{jid}")), None);
    assert_eq!(status, 409, "an ended job: {body}");
    assert_eq!(get(&agent, "/overview")["jobs-cancelled"], 1);
    same_table(schema, "t", "id")
        .await
        .expect("the target holds every row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_shows_its_error_also_after_an_agent_restart_and_a_purge() {
    let (job, schema) = ("flink_failed", "flink_failed");
    let wrong = "flink-wrong-pw";
    reset(schema, job).await;
    let text = job_json(job, schema, "").replacen(
        &format!("\"Password\": \"{PASSWORD}\""),
        &format!("\"Password\": \"{wrong}\""),
        1,
    );
    assert!(text.contains(wrong));
    let mut agent = Agent::fresh(job, 18721);
    post_job(&agent, &text);
    let jid = flink_id(&agent, job);
    let check_failed = |agent: &Agent| {
        let details = wait_get(agent, &format!("/jobs/{jid}"), "the job fails", |b| {
            b["state"] == "FAILED"
        });
        assert!(details["end-time"].as_i64().is_some_and(|t| t > 0));
        assert_eq!(vertex(&details, "Src")["status"], "FAILED", "{details}");
        let exceptions = get(agent, &format!("/jobs/{jid}/exceptions"));
        let text = exceptions.to_string();
        assert!(!text.contains(wrong), "{text}");
        let root = exceptions["root-exception"]
            .as_str()
            .expect("a root exception");
        assert!(root.contains("Access denied"), "{exceptions}");
        assert!(exceptions["timestamp"].as_u64().is_some_and(|t| t > 0));
        let entries = exceptions["exceptionHistory"]["entries"]
            .as_array()
            .expect("entries");
        let failure = entries
            .iter()
            .find(|e| e["exceptionName"] == "TaskFailure")
            .expect("the failure that ended the Src");
        assert_eq!(failure["taskName"], "Src");
        assert!(failure["stacktrace"]
            .as_str()
            .is_some_and(|s| s.contains("Access denied")));
        assert!(failure["timestamp"].as_u64().is_some_and(|t| t > 0));
        assert!(exceptions["all-exceptions"][0]["exception"].is_string());
        let limited = get(agent, &format!("/jobs/{jid}/exceptions?maxExceptions=0"));
        assert_eq!(
            limited["exceptionHistory"]["entries"],
            serde_json::json!([])
        );
        assert_eq!(limited["exceptionHistory"]["truncated"], true);
        entries.len()
    };
    let before = check_failed(&agent);
    assert!(before >= 1);
    assert_eq!(get(&agent, "/overview")["jobs-failed"], 1);
    let (status, body) = http("POST", &agent.url(&format!("/jobs/{jid}/stop")), Some("{}"));
    assert_eq!(status, 409, "a failed job cannot be stopped: {body}");

    // The history is in the state folder: a killed agent tells the same after its restart.
    agent.kill();
    let agent = Agent::start(job, 18721);
    let after = check_failed(&agent);
    assert!(after >= before, "{after} < {before}");

    // Purged, the job stays listed as failed, with its error.
    let (status, body) = http(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(status, 404, "purged from the dtle API");
    let jobs = get(&agent, "/jobs");
    assert_eq!(jobs["jobs"][0]["status"], "FAILED", "{jobs}");
    check_failed(&agent);
    let config = get(&agent, &format!("/jobs/{jid}/config"));
    assert!(!config.to_string().contains(wrong));
    assert_eq!(
        config["execution-config"]["user-config"]["Tasks[0].Config.ConnectionConfig.Password"],
        "*"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stopped_with_a_savepoint_resumes_from_it_without_loss() {
    let (job, schema) = ("flink_savepoint", "flink_savepoint");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT);
             INSERT INTO {schema}.t SELECT seq, seq FROM {schema}.seq_1_to_500"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18722);
    let text = job_json(job, schema, "");
    post_job(&agent, &text);
    let jid = flink_id(&agent, job);
    in_binlog_phase(job, WAIT).await;
    converge(schema, "t", "id", WAIT).await;

    // Writes go on while the job is stopped with a savepoint.
    let writer = tokio::spawn(async move {
        for i in 0..40 {
            exec(
                SRC_PORT,
                &format!(
                    "INSERT INTO {schema}.t VALUES ({}, 0); UPDATE {schema}.t SET v = v + 1 WHERE id = {}",
                    1000 + i,
                    1 + i
                ),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = http(
        "POST",
        &agent.url(&format!("/jobs/{jid}/stop")),
        Some(r#"{"drain": false, "targetDirectory": "/ignored"}"#),
    );
    assert_eq!(status, 202, "{body}");
    let trigger = body["request-id"]
        .as_str()
        .expect("a request-id")
        .to_owned();
    assert_eq!(trigger.len(), 32);
    let (status, again) = http("POST", &agent.url(&format!("/jobs/{jid}/stop")), None);
    assert_eq!(status, 409, "one stop at a time: {again}");
    let done = wait_get(
        &agent,
        &format!("/jobs/{jid}/savepoints/{trigger}"),
        "the savepoint completes",
        |b| b["status"]["id"] == "COMPLETED",
    );
    let location = done["operation"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("a location: {done}"))
        .to_owned();
    assert!(!location.is_empty());
    writer.await.expect("the writer");
    let stopped = get(&agent, &format!("/jobs/{jid}"));
    assert_eq!(stopped["state"], "FINISHED", "{stopped}");
    let checkpoints = get(&agent, &format!("/jobs/{jid}/checkpoints"));
    let savepoint = &checkpoints["latest"]["savepoint"];
    assert_eq!(savepoint["is_savepoint"], true, "{checkpoints}");
    assert_eq!(savepoint["checkpoint_type"], "SAVEPOINT");
    assert_eq!(savepoint["external_path"], location.as_str());
    let savepoint_id = number(&savepoint["id"], "savepoint id");
    assert_eq!(checkpoints["latest"]["completed"]["id"], savepoint_id);

    // Written while stopped: not on the target yet.
    exec(
        SRC_PORT,
        &format!(
            "INSERT INTO {schema}.t SELECT seq, seq FROM {schema}.seq_2001_to_2300;
             DELETE FROM {schema}.t WHERE id BETWEEN 100 AND 149;
             UPDATE {schema}.t SET v = -v WHERE id BETWEEN 200 AND 219"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_target: Option<u64> = first_value(
        DST_PORT,
        &format!("SELECT COUNT(*) FROM {schema}.t WHERE id > 2000"),
    )
    .await;
    assert_eq!(on_target, Some(0), "the stopped job applied nothing");

    // Posted again: it resumes from the savepoint, and every row arrives exactly once.
    post_job(&agent, &text);
    let resumed = wait_get(
        &agent,
        &format!("/jobs/{jid}/checkpoints"),
        "a restore from the savepoint",
        |b| b["latest"]["restored"]["id"].as_u64() == Some(savepoint_id),
    );
    assert_eq!(resumed["latest"]["restored"]["is_savepoint"], true);
    assert_eq!(
        resumed["latest"]["restored"]["external_path"],
        location.as_str()
    );
    assert!(number(&resumed["counts"]["restored"], "restores") >= 1);
    wait_get(&agent, &format!("/jobs/{jid}"), "running again", |b| {
        b["state"] == "RUNNING"
    });
    converge(schema, "t", "id", WAIT).await;
    gtids_recorded_once(job).await;
    let (status, body) = http(
        "GET",
        &agent.url(&format!(
            "/jobs/{jid}/savepoints/0123456789abcdef0123456789abcdef"
        )),
        None,
    );
    assert_eq!(status, 404, "{body}");
}
