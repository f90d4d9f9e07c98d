//! Watchers and the agent: blocking queries (point 6), advertised addresses and ambiguous
//! prefixes (point 7), the throughput timer (point 8).

use crate::support::*;
use crate::*;
use serde_json::json;
use std::time::Duration;
use std::time::Instant;

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
