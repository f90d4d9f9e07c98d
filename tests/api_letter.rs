//! Issue 13, section 1: "dtle 2.x to the letter" (seed 004, dtle 2.x's API document, whose
//! example answers are the contract). One test per point of that section, each against a live
//! `dtle agent`; every one of them failed on the gateway before the section was done.
//!
//! Agents listen on 18740-18749; schemas and jobs are named `letter_*`.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

/// An answer: its status, its `X-Nomad-Index` header and its JSON body (Null when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    index: Option<u64>,
    body: Value,
}

fn call(method: &str, url: &str, body: Option<&str>) -> Answer {
    let request = ureq::request(method, url).timeout(Duration::from_secs(60));
    let result = match body {
        Some(b) => request.send_string(b),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let index = response
        .header("X-Nomad-Index")
        .and_then(|v| v.parse().ok());
    let text = response.into_string().unwrap_or_default();
    Answer {
        status,
        index,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Writes `request` as is to the agent and returns the status line's code and the whole answer.
fn raw(port: u16, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the agent listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The agent may answer (and close) before it has read everything: that is the point.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `support::job_json` with an explicit `ID`.
fn with_id(id: &str, job: &str) -> String {
    job.replacen("{\"Name\"", &format!("{{\"ID\": \"{id}\", \"Name\""), 1)
}

/// Waits until both of the job's allocations run; returns them.
fn running_allocations(agent: &Agent, job: &str) -> Vec<Value> {
    let url = agent.url(&format!("/v1/job/{job}/allocations"));
    eventually_blocking("both tasks run", Duration::from_secs(60), || {
        let answer = call("GET", &url, None);
        match answer.body.as_array() {
            Some(list)
                if list.len() == 2 && list.iter().all(|a| a["ClientStatus"] == "running") =>
            {
                Ok(list.clone())
            }
            _ => Err(format!("{} {}", answer.status, answer.body)),
        }
    })
}

fn events_of(alloc: &Value) -> Vec<Value> {
    let task = alloc["Task"].as_str().unwrap_or_default();
    alloc["TaskStates"][task]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count_events(agent: &Agent, job: &str, kind: &str) -> usize {
    let answer = call(
        "GET",
        &agent.url(&format!("/v1/job/{job}/allocations")),
        None,
    );
    answer
        .body
        .as_array()
        .map(|list| {
            list.iter()
                .flat_map(events_of)
                .filter(|e| e["Type"] == kind)
                .count()
        })
        .unwrap_or(0)
}

fn purge(agent: &Agent, job: &str) {
    call(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
}

/// Point 1: a 16 MiB+ body is a 413, a body without a length a 411, a bad `?purge` a 400, though
/// another route shares each path (warp then also reports "method not allowed").
#[tokio::test(flavor = "multi_thread")]
async fn every_rejection_answers_with_its_own_status() {
    let agent = Agent::fresh("letter_rejections", 18740);
    let too_large = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{{",
        16 * 1024 * 1024 + 1
    );
    let (status, text) = raw(agent.port, too_large.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("too large"), "{text}");

    let chunked = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let (status, text) = raw(agent.port, chunked.as_bytes());
    assert_eq!(status, 411, "{text}");

    for query in ["purge=maybe", "purge=2", "purge_position=yes"] {
        let answer = call(
            "DELETE",
            &agent.url(&format!("/v1/job/letter_none?{query}")),
            None,
        );
        assert_eq!(answer.status, 400, "?{query}: {:?}", answer);
        assert!(
            answer.body["Error"]
                .as_str()
                .is_some_and(|e| e.contains("bad query string")),
            "{:?}",
            answer
        );
    }
    // What was right stays right.
    let answer = call("DELETE", &agent.url("/v1/jobs"), None);
    assert_eq!(answer.status, 405, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/job/letter_none?purge=maybe"), None);
    assert_eq!(answer.status, 404, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/nothing"), None);
    assert_eq!(answer.status, 404, "{:?}", answer);
}

/// Point 2: dtle 2.x's Go client registers with PUT (its `write` is a PUT, its body a
/// `RegisterJobRequest` `{"Job": {...}}`); `/v1/job/{ID}` registers too; `?purge` reads what Go's
/// `strconv.ParseBool` reads.
#[tokio::test(flavor = "multi_thread")]
async fn go_clients_register_with_put_and_purge_reads_as_go_does() {
    let agent = Agent::fresh("letter_put", 18741);
    for n in 1..=3 {
        reset(&format!("letter_put{n}"), &format!("letter_put{n}")).await;
    }
    let answer = call(
        "PUT",
        &agent.url("/v1/jobs"),
        Some(&with_id(
            "letter_put1",
            &job_json("letter_put1", "letter_put1", ""),
        )),
    );
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put1"))
    );
    let wrapped = format!(
        r#"{{"Job": {}, "EnforceIndex": false}}"#,
        job_json("letter_put2", "letter_put2", "")
    );
    let answer = call("PUT", &agent.url("/v1/job/letter_put2"), Some(&wrapped));
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put2")),
        "{:?}",
        answer
    );
    let answer = call(
        "POST",
        &agent.url("/v1/job/letter_put3"),
        Some(&job_json("letter_put3", "letter_put3", "")),
    );
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put3")),
        "{:?}",
        answer
    );
    // The ID in the path and the one in the job must agree.
    let answer = call(
        "PUT",
        &agent.url("/v1/job/letter_elsewhere"),
        Some(&with_id(
            "letter_put1",
            &job_json("letter_put1", "letter_put1", ""),
        )),
    );
    assert_eq!(answer.status, 400, "{:?}", answer);

    for n in 1..=3 {
        let answer = call("GET", &agent.url(&format!("/v1/job/letter_put{n}")), None);
        assert_eq!(answer.status, 200, "{:?}", answer);
    }
    let answer = call("DELETE", &agent.url("/v1/job/letter_put1?purge=yes"), None);
    assert_eq!(answer.status, 400, "{:?}", answer);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_put1"), None).status,
        200,
        "a rejected purge leaves the job"
    );
    for (job, purge) in [("letter_put1", "T"), ("letter_put2", "1")] {
        let answer = call(
            "DELETE",
            &agent.url(&format!("/v1/job/{job}?purge={purge}")),
            None,
        );
        assert_eq!(answer.status, 200, "{:?}", answer);
        assert_eq!(
            call("GET", &agent.url(&format!("/v1/job/{job}")), None).status,
            404,
            "purge={purge} purges"
        );
    }
    let answer = call(
        "DELETE",
        &agent.url("/v1/job/letter_put3?purge=FALSE"),
        None,
    );
    assert_eq!(answer.status, 200, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/job/letter_put3"), None);
    assert_eq!(
        (answer.status, &answer.body["Status"]),
        (200, &json!("dead"))
    );
    let answer = call("DELETE", &agent.url("/v1/job/letter_put3?purge=True"), None);
    assert_eq!(answer.status, 200, "{:?}", answer);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_put3"), None).status,
        404
    );
}

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

/// Point 5: a job posted without `ID` whose `Name` is taken does not replace the job that has it
/// (dtle-rs refuses with 409: names key NATS subjects and the target's position rows).
#[tokio::test(flavor = "multi_thread")]
async fn a_job_without_id_never_replaces_one_of_the_same_name() {
    let (job, schema) = ("letter_same", "letter_same");
    reset(schema, job).await;
    let agent = Agent::fresh(job, 18744);
    let first = job_json(job, schema, "");
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&first));
    assert_eq!((answer.status, &answer.body["ID"]), (200, &json!(job)));
    let before = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;

    let other = job_json(job, schema, r#""ChunkSize": 100,"#);
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&other));
    assert_eq!(answer.status, 409, "{:?}", answer);
    let error = answer.body["Error"].as_str().unwrap_or_default();
    assert!(error.contains(job) && error.contains("\"ID\""), "{error}");
    let answer = call(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&with_id("letter_same_2", &first)),
    );
    assert_eq!(
        answer.status, 409,
        "another ID, the same Name: {:?}",
        answer
    );

    let after = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    assert_eq!(after["JobModifyIndex"], before["JobModifyIndex"]);
    assert_eq!(after["Tasks"][0]["Config"]["ChunkSize"], 2000);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_same_2"), None).status,
        404
    );
    // The same job again is no replacement: nothing happens. With its ID, it is an update.
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&first));
    assert_eq!(
        (answer.status, &answer.body["Changed"]),
        (200, &json!(false)),
        "{:?}",
        answer
    );
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&with_id(job, &other)));
    assert_eq!(
        (answer.status, &answer.body["Changed"]),
        (200, &json!(true)),
        "{:?}",
        answer
    );
    purge(&agent, job);
}

/// Point 6: `?prefix=`, and blocking queries as Nomad serves them on the job list, one job and
/// its allocations.
#[tokio::test(flavor = "multi_thread")]
async fn watchers_block_instead_of_polling() {
    let mut agent = Agent::fresh("letter_watch", 18745);
    let jobs = ["letter_watch_a", "letter_watch_b", "letter_other"];
    for job in jobs {
        reset(job, job).await;
        let answer = call(
            "POST",
            &agent.url("/v1/jobs"),
            Some(&job_json(job, job, "")),
        );
        assert_eq!(answer.status, 200, "{:?}", answer);
    }
    for job in jobs {
        running_allocations(&agent, job);
    }
    let listed = call("GET", &agent.url("/v1/jobs?prefix=letter_watch_"), None);
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .map(|l| l.iter().filter_map(|j| j["ID"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["letter_watch_a", "letter_watch_b"], "{:?}", listed);

    let job_url = agent.url("/v1/job/letter_watch_a");
    let allocs_url = agent.url("/v1/job/letter_watch_a/allocations");
    for url in [agent.url("/v1/jobs"), job_url.clone(), allocs_url.clone()] {
        assert!(
            call("GET", &url, None).index.is_some_and(|i| i > 0),
            "{url}"
        );
    }

    // Nothing changes: the query waits its `wait`, then answers with the same index.
    let index = call("GET", &job_url, None).index.expect("index");
    let started = Instant::now();
    let answer = call("GET", &format!("{job_url}?index={index}&wait=1s"), None);
    let waited = started.elapsed();
    assert_eq!((answer.status, answer.index), (200, Some(index)));
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A change wakes it.
    for (url, action) in [(job_url.clone(), "pause"), (allocs_url.clone(), "resume")] {
        let index = call("GET", &url, None).index.expect("index");
        let blocked = std::thread::spawn({
            let url = format!("{url}?index={index}&wait=30s");
            move || {
                let started = Instant::now();
                (call("GET", &url, None), started.elapsed())
            }
        });
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!blocked.is_finished(), "{url} answered before any change");
        let answer = call(
            "POST",
            &agent.url(&format!("/v1/job/letter_watch_a/{action}")),
            None,
        );
        assert_eq!(answer.status, 200, "{:?}", answer);
        let (answer, waited) = blocked.join().expect("the blocked query");
        assert_eq!(answer.status, 200, "{:?}", answer);
        assert!(answer.index > Some(index), "{url}: {:?}", answer);
        assert!(waited < Duration::from_secs(20), "{url}: {waited:?}");
    }
    let list_index = call("GET", &agent.url("/v1/jobs"), None)
        .index
        .expect("index");
    let blocked = std::thread::spawn({
        let url = agent.url(&format!("/v1/jobs?index={list_index}&wait=30s"));
        move || call("GET", &url, None)
    });
    std::thread::sleep(Duration::from_millis(1000));
    purge(&agent, "letter_other");
    let answer = blocked.join().expect("the blocked list");
    assert!(answer.index > Some(list_index), "{:?}", answer);
    assert_eq!(answer.body.as_array().map(Vec::len), Some(2));

    let answer = call("GET", &format!("{job_url}?index=1&wait=soon"), None);
    assert_eq!(answer.status, 400, "{:?}", answer);
    let answer = call("GET", &format!("{job_url}?index=-1"), None);
    assert_eq!(answer.status, 400, "{:?}", answer);
    for job in jobs {
        purge(&agent, job);
    }

    // A watcher waiting minutes does not hold up the agent's shutdown: it is answered.
    let index = call("GET", &job_url, None).index.expect("index");
    let blocked = std::thread::spawn({
        let url = format!("{job_url}?index={index}&wait=5m");
        move || call("GET", &url, None)
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert!(agent.terminate(Duration::from_secs(20)), "the agent exits");
    let answer = blocked.join().expect("the blocked query");
    assert_eq!(answer.index, Some(index), "{:?}", answer);
}

/// Point 7: advertised addresses come from `--advertise` (or the config file's `advertise`),
/// never `0.0.0.0`; an allocation-ID prefix that matches several allocations is a 400 naming them.
#[tokio::test(flavor = "multi_thread")]
async fn advertised_addresses_and_ambiguous_prefixes() {
    let dir = scratch("letter_advertise");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        "[restart]\nattempts = 0\ndelay_s = 1\nmax_delay_s = 1\ntask_attempts = 1\n",
    )
    .expect("config");
    let _ = std::fs::remove_dir_all(dir.join("agent-state"));
    let agent = Agent::start_with(
        "letter_advertise",
        18746,
        &[
            "--advertise",
            "10.11.12.13",
            "--config",
            config.to_str().expect("utf-8"),
        ],
    );
    let leader = call("GET", &agent.url("/v1/leader"), None).body;
    assert_eq!(leader, json!("10.11.12.13:18746"));
    let nodes = call("GET", &agent.url("/v1/nodes"), None).body;
    assert_eq!(nodes[0]["HTTPAddr"], "10.11.12.13:18746");
    let members = call("GET", &agent.url("/v1/members"), None).body;
    assert_eq!(
        (
            &members["Members"][0]["Addr"],
            &members["Members"][0]["Port"]
        ),
        (&json!("10.11.12.13"), &json!(18746))
    );

    // Seventeen allocations or more: two of them share a first hex digit. Their servers do not
    // answer, so the tasks end at once.
    let mut ids = Vec::new();
    for n in 0..9 {
        let job = format!("letter_amb_{n}");
        let text = job_json(&job, "letter_amb", "")
            .replace(&SRC_PORT.to_string(), "1")
            .replace(&DST_PORT.to_string(), "1");
        let answer = call("POST", &agent.url("/v1/jobs"), Some(&text));
        assert_eq!(answer.status, 200, "{:?}", answer);
        let allocs = call(
            "GET",
            &agent.url(&format!("/v1/job/{job}/allocations")),
            None,
        )
        .body;
        for alloc in allocs.as_array().expect("allocations") {
            ids.push(alloc["ID"].as_str().expect("ID").to_owned());
        }
    }
    let shared = ids
        .iter()
        .map(|id| &id[..1])
        .find(|first| ids.iter().filter(|id| id.starts_with(*first)).count() > 1)
        .expect("pigeonhole");
    let candidates: Vec<&String> = ids.iter().filter(|id| id.starts_with(shared)).collect();
    let answer = call(
        "GET",
        &agent.url(&format!("/v1/agent/allocation/{shared}/stats")),
        None,
    );
    assert_eq!(answer.status, 400, "{:?}", answer);
    let error = answer.body["Error"].as_str().unwrap_or_default();
    for id in &candidates {
        assert!(error.contains(id.as_str()), "{id} not named in {error}");
    }
    let answer = call(
        "GET",
        &agent.url(&format!("/v1/agent/allocation/{}/stats", candidates[0])),
        None,
    );
    assert_eq!(answer.status, 200, "a whole ID: {:?}", answer);
    for n in 0..9 {
        purge(&agent, &format!("letter_amb_{n}"));
    }
    drop(agent);

    let file = dir.join("advertise.hcl");
    std::fs::write(&file, "advertise = \"10.9.8.7:4999\"\n").expect("config");
    let agent = Agent::start_with(
        "letter_advertise",
        18747,
        &["--config", file.to_str().expect("utf-8")],
    );
    let leader = call("GET", &agent.url("/v1/leader"), None).body;
    assert_eq!(leader, json!("10.9.8.7:4999"));
}

/// Point 8: the throughput is sampled every second by a timer, not when someone reads it.
#[tokio::test(flavor = "multi_thread")]
async fn throughput_is_sampled_on_a_timer() {
    let (job, schema) = ("letter_rate", "letter_rate");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"),
    )
    .await;
    let agent = Agent::fresh(job, 18748);
    let answer = call(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&job_json(job, schema, "")),
    );
    assert_eq!(answer.status, 200, "{:?}", answer);
    let allocs = running_allocations(&agent, job);
    in_binlog_phase(job, Duration::from_secs(60)).await;
    let dest = allocs
        .iter()
        .find(|a| a["Task"] == "Dest")
        .and_then(|a| a["ID"].as_str())
        .expect("Dest")
        .to_owned();
    let writer = tokio::spawn(async move {
        let mut conn = connect(SRC_PORT).await;
        let deadline = Instant::now() + Duration::from_secs(9);
        while Instant::now() < deadline {
            use mysql_async::prelude::Queryable;
            let _ = conn
                .query_drop(format!("INSERT INTO {schema}.t (v) VALUES (1), (2), (3)"))
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let throughput = || {
        let url = agent.url(&format!("/v1/agent/allocation/{dest}/stats"));
        call("GET", &url, None).body["Tasks"]["Dest"]["ThroughputStat"].clone()
    };
    // Nobody has read it yet: the timer has.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = throughput();
    assert_eq!(first["Time"], 1, "the sampling period: {first}");
    assert!(first["Num"].as_u64().is_some_and(|n| n > 0), "{first}");
    // Scrapes do not restart the window, and the window is the timer's, however long ago the
    // last read was.
    for _ in 0..5 {
        ureq::get(&agent.url("/metrics")).call().expect("metrics");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = throughput();
    assert_eq!(later["Time"], 1, "{later}");
    assert!(later["Num"].as_u64().is_some_and(|n| n > 0), "{later}");
    writer.await.expect("writer");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = throughput();
    assert_eq!(
        (&idle["Num"], &idle["Time"]),
        (&json!(0), &json!(1)),
        "{idle}"
    );
    purge(&agent, job);
}
