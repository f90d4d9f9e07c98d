//! What goes out: values as posted (point 3), a job posted back (point 4).

use crate::support::*;
use crate::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The dtle 2.x job of seed 004, on the test bed: numbers written as strings, fields dtle-rs does
/// not use, and settings repeated on the Dest.
fn seed_job(name: &str, schema: &str) -> String {
    format!(
        r#"{{"Name": "{name}", "Tasks": [
          {{"Type": "Src", "Config": {{
            "ExpandSyntaxSupport": false, "NatsAddr": "127.0.0.1:8193", "ReplChanBufferSize": "60",
            "ReplicateDoDb": [{{"TableSchema": "{schema}", "Tables": [{{"TableName": "t"}}]}}],
            "ChunkSize": "2000", "ApproveHeterogeneous": true, "DropTableIfExists": false,
            "ConnectionConfig": {{"Password": "{PASSWORD}", "Host": "127.0.0.1", "Port": "{SRC_PORT}", "User": "{USER}"}},
            "TrafficAgainstLimits": 0, "SkipCreateDbTable": false}}}},
          {{"Type": "Dest", "Config": {{
            "SkipCreateDbTable": false, "DropTableIfExists": false, "ExpandSyntaxSupport": false,
            "ReplChanBufferSize": "60", "ApproveHeterogeneous": true,
            "ConnectionConfig": {{"User": "{USER}", "Password": "{PASSWORD}", "Host": "127.0.0.1", "Port": "{DST_PORT}"}}}}}}]}}"#
    )
}

fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && text.ends_with('Z')
        && text[..4].bytes().all(|c| c.is_ascii_digit())
}

/// Go's `time.Duration` in whole seconds (`0s`, `45s`, `2m0s`, `1h2m3s`), or `N/A`.
fn is_go_duration(text: &str) -> bool {
    if text == "N/A" {
        return true;
    }
    let mut rest = text;
    let mut units = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits == rest.len() {
            return false;
        }
        units.push(&rest[digits..=digits]);
        rest = &rest[digits + 1..];
    }
    matches!(units.as_slice(), ["s"] | ["m", "s"] | ["h", "m", "s"])
}

/// Point 3: values come back as posted, with the keys and forms seed 004 shows.
#[tokio::test(flavor = "multi_thread")]
async fn values_come_back_as_they_were_posted() {
    let (job, schema) = ("letter_values", "letter_values");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY); INSERT INTO {schema}.t VALUES (1), (2)"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18742);
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&seed_job(job, schema)));
    assert_eq!(answer.status, 200, "{:?}", answer);
    let allocs = running_allocations(&agent, job);
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let node = call("GET", &agent.url("/v1/nodes"), None).body[0]["Name"].clone();

    let one = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    let listed = call("GET", &agent.url("/v1/jobs"), None).body[0]["JobSummary"].clone();
    for view in [&one, &listed] {
        let (src, dest) = (&view["Tasks"][0], &view["Tasks"][1]);
        assert_eq!(
            (&src["Type"], &dest["Type"]),
            (&json!("Src"), &json!("Dest"))
        );
        let s = &src["Config"];
        assert_eq!(s["ChunkSize"], "2000", "{view}");
        assert_eq!(s["ReplChanBufferSize"], "60");
        assert_eq!(s["ConnectionConfig"]["Port"], SRC_PORT.to_string());
        assert_eq!(s["ConnectionConfig"]["Password"], "*");
        assert_eq!(s["ApproveHeterogeneous"], true);
        assert_eq!(s["TrafficAgainstLimits"], 0);
        assert_eq!(s["NatsAddr"], "127.0.0.1:8193");
        let d = &dest["Config"];
        assert_eq!(d["NatsAddr"], "127.0.0.1:8193", "{view}");
        assert!(d["Gtid"].is_string(), "{view}");
        assert_eq!(d["ReplChanBufferSize"], "60");
        assert_eq!(d["ConnectionConfig"]["Port"], DST_PORT.to_string());
        assert_eq!(d["ConnectionConfig"]["Password"], "*");
        for task in [src, dest] {
            assert_eq!(task["ConfigLock"], json!({}), "{task}");
            assert_eq!(task["NodeName"], node, "{task}");
            assert_eq!(task["Driver"], "MySQL");
        }
    }
    assert!(!one.to_string().contains(PASSWORD));

    for alloc in &allocs {
        assert!(
            alloc["CreateIndex"].as_u64().is_some_and(|i| i > 0),
            "{alloc}"
        );
        assert!(alloc["ModifyIndex"].as_u64() >= alloc["CreateIndex"].as_u64());
        for event in events_of(alloc) {
            for key in [
                "DiskLimit",
                "DriverError",
                "DriverMessage",
                "ExitCode",
                "FailedSibling",
                "FailsTask",
                "KillError",
                "KillReason",
                "KillTimeout",
                "Message",
                "RestartReason",
                "SetupError",
                "StartDelay",
                "TaskSignal",
                "TaskSignalReason",
                "Type",
            ] {
                assert!(event.get(key).is_some(), "no {key} in {event}");
            }
            assert!(
                event["Time"].as_str().is_some_and(is_rfc3339),
                "Time as RFC 3339: {event}"
            );
        }
        let stats = call(
            "GET",
            &agent.url(&format!(
                "/v1/agent/allocation/{}/stats",
                alloc["ID"].as_str().unwrap_or_default()
            )),
            None,
        )
        .body;
        let task = &stats["Tasks"][alloc["Task"].as_str().unwrap_or_default()];
        assert!(
            task["ETA"].as_str().is_some_and(is_go_duration),
            "ETA as a Go duration: {task}"
        );
        let throughput = task["ThroughputStat"].as_object().expect("ThroughputStat");
        assert!(
            throughput.contains_key("Num") && throughput.contains_key("Time"),
            "{task}"
        );
    }

    // Indexes grow with every change: the record's, the definition's, the allocations'.
    let (create, modify, job_modify) = (
        one["CreateIndex"].as_u64().expect("CreateIndex"),
        one["ModifyIndex"].as_u64().expect("ModifyIndex"),
        one["JobModifyIndex"].as_u64().expect("JobModifyIndex"),
    );
    assert!(create > 0 && modify >= create && job_modify >= create);
    let alloc_modify: Vec<u64> = allocs
        .iter()
        .map(|a| a["ModifyIndex"].as_u64().unwrap_or(0))
        .collect();
    let answer = call("POST", &agent.url(&format!("/v1/job/{job}/pause")), None);
    assert_eq!(answer.status, 200, "{:?}", answer);
    let paused = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    assert!(paused["ModifyIndex"].as_u64() > Some(modify), "{paused}");
    assert_eq!(paused["CreateIndex"].as_u64(), Some(create));
    let after: Vec<Value> = call(
        "GET",
        &agent.url(&format!("/v1/job/{job}/allocations")),
        None,
    )
    .body
    .as_array()
    .cloned()
    .unwrap_or_default();
    for (a, before) in after.iter().zip(&alloc_modify) {
        assert!(a["ModifyIndex"].as_u64() > Some(*before), "{a}");
    }
    let answer = call("POST", &agent.url(&format!("/v1/job/{job}/resume")), None);
    assert_eq!(answer.status, 200, "{:?}", answer);
    let changed = with_id(job, &seed_job(job, schema).replace("\"2000\"", "\"500\""));
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&changed));
    assert_eq!(answer.status, 200, "{:?}", answer);
    let updated = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    assert!(
        updated["JobModifyIndex"].as_u64() > Some(job_modify),
        "{updated}"
    );
    assert!(updated["ModifyIndex"].as_u64() > paused["ModifyIndex"].as_u64());
    assert_eq!(updated["Tasks"][0]["Config"]["ChunkSize"], "500");
    purge(&agent, job);
}

/// Point 4: what `GET /v1/job/{ID}` returned, posted back (passwords `*`, the executed `Gtid`,
/// the node, the indexes), changes nothing and restarts nothing; a real change keeps the stored
/// passwords.
#[tokio::test(flavor = "multi_thread")]
async fn posting_back_what_get_returned_changes_nothing() {
    let (job, schema) = ("letter_repost", "letter_repost");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT)"),
    )
    .await;
    let agent = Agent::fresh(job, 18743);
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&seed_job(job, schema)));
    assert_eq!(answer.status, 200, "{:?}", answer);
    running_allocations(&agent, job);
    in_binlog_phase(job, Duration::from_secs(60)).await;
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (1, 1), (2, 2)"),
    )
    .await;
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    // The Src shows the executed position once it has learnt it.
    let shown = eventually_blocking("the executed Gtid shows", Duration::from_secs(30), || {
        let one = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
        if one["Tasks"][0]["Config"]["Gtid"]
            .as_str()
            .is_some_and(|g| !g.is_empty())
        {
            Ok(one)
        } else {
            Err(one.to_string())
        }
    });
    let started = count_events(&agent, job, "Started");
    for method in ["POST", "PUT"] {
        let path = if method == "PUT" {
            format!("/v1/job/{job}")
        } else {
            "/v1/jobs".to_owned()
        };
        let answer = call(method, &agent.url(&path), Some(&shown.to_string()));
        assert_eq!(answer.status, 200, "{method}: {:?}", answer);
        assert_eq!(answer.body["Changed"], false, "{method}: {:?}", answer);
        assert_eq!(answer.body["JobModifyIndex"], shown["JobModifyIndex"]);
    }
    let again = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    assert_eq!(again["JobModifyIndex"], shown["JobModifyIndex"]);
    assert_eq!(
        count_events(&agent, job, "Started"),
        started,
        "nothing restarted"
    );
    assert_eq!(count_events(&agent, job, "Killed"), 0, "nothing stopped");

    // A real change restarts the tasks with the stored passwords, not `*`.
    let mut changed = again.clone();
    changed["Tasks"][0]["Config"]["ChunkSize"] = json!("100");
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&changed.to_string()));
    assert_eq!(answer.status, 200, "{:?}", answer);
    assert_eq!(answer.body["Changed"], true);
    exec(SRC_PORT, &format!("INSERT INTO {schema}.t VALUES (3, 3)")).await;
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    assert_eq!(count_events(&agent, job, "Restarting"), 0, "no task failed");
    assert!(!agent.log_text().contains(PASSWORD));
    purge(&agent, job);
}
