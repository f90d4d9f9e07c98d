//! The Nomad orchestrator against a fake Nomad (fake_nomad): the requests it makes (paths,
//! region and namespace, the ACL token, the job JSON) and its reading of every answer, Nomad's
//! errors included. The dtle API in front of it: nomad_api.rs.

mod fake_nomad;

use fake_nomad::*;
use gateway::orchestrator::{Orchestrator, OrchestratorError};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn registering_sends_the_dtle_job_with_token_region_and_namespace() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), Some("eu"), Some("dtle"), Some(TOKEN));
    let registered = o.register(parsed("orders", 500)).await.expect("registered");
    assert!(registered.changed);
    assert_eq!(registered.job_id, "orders");
    assert_eq!(registered.eval_id, "d092fdc0-e1fd-2536-67d8-000000000101");
    assert_eq!(registered.job_modify_index, 101);

    let requests = nomad.take_requests();
    let lines: Vec<String> = requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        vec![
            "GET /v1/job/orders?region=eu&namespace=dtle",
            "POST /v1/jobs?region=eu&namespace=dtle",
        ]
    );
    assert!(requests.iter().all(|r| r.token.as_deref() == Some(TOKEN)));
    let job = &requests[1].body["Job"];
    assert_eq!(job["ID"], "orders");
    assert_eq!(job["Name"], "orders");
    assert_eq!(job["Type"], "service");
    assert_eq!(job["Namespace"], "dtle");
    // The cluster's region, not dtle's default "global".
    assert_eq!(job["Region"], "eu");
    assert_eq!(job["Datacenters"], json!(["dc1"]));
    assert_eq!(job["Meta"]["dtle_failover"], "false");
    assert_eq!(job["Meta"]["dtle_settings"], "[]");
    let groups = job["TaskGroups"].as_array().expect("groups");
    let names: Vec<(&Value, &Value, &Value, &Value)> = groups
        .iter()
        .map(|g| {
            (
                &g["Name"],
                &g["Count"],
                &g["Tasks"][0]["Name"],
                &g["Tasks"][0]["Driver"],
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (&json!("Src"), &json!(1), &json!("Src"), &json!("dtle")),
            (&json!("Dest"), &json!(1), &json!("Dest"), &json!("dtle")),
        ]
    );
    let src = &groups[0]["Tasks"][0];
    assert_eq!(
        src["Constraints"],
        json!([{"LTarget": "${node.unique.name}", "RTarget": "node-a", "Operand": "="}])
    );
    assert_eq!(src["Config"]["ChunkSize"], 500);
    assert_eq!(
        src["Config"]["ReplicateDoDb"][0]["Tables"][0]["TableName"],
        "orders"
    );
    assert_eq!(
        src["Config"]["ConnectionConfig"],
        json!({"Host": "127.0.0.1", "Port": 13307, "User": "repl", "Password": "src-secret", "Charset": "utf8mb4"})
    );
    assert_eq!(
        groups[1]["Tasks"][0]["Config"]["ConnectionConfig"]["Password"],
        "dest-secret"
    );
    assert_eq!(groups[0]["RestartPolicy"]["Mode"], "fail");
    assert_eq!(groups[0]["ReschedulePolicy"]["Unlimited"], true);

    // The same job again: read, found unchanged, not registered.
    let again = o.register(parsed("orders", 500)).await.expect("registered");
    assert!(!again.changed);
    assert_eq!(again.job_modify_index, 101);
    assert_eq!(
        nomad.take_lines(),
        vec!["GET /v1/job/orders?region=eu&namespace=dtle"]
    );
    // Changed: registered again.
    let changed = o
        .register(parsed("orders", 1000))
        .await
        .expect("registered");
    assert!(changed.changed);
    assert_eq!(changed.job_modify_index, 102);
    let requests = nomad.take_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["ChunkSize"],
        1000
    );
}

#[tokio::test]
async fn jobs_and_a_job_read_back_from_nomad_with_the_srcs_executed_position() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, None, None);
    running_job(&nomad, &o).await;
    // Not a dtle job: not listed.
    nomad.with(|s| {
        s.jobs.insert("cache".into(), json!({"ID": "cache", "Name": "cache", "Type": "service", "Status": "running",
            "TaskGroups": [{"Name": "cache", "Tasks": [{"Name": "redis", "Driver": "docker", "Config": {"image": "redis:7"}}]}],
            "CreateIndex": 5, "ModifyIndex": 5, "JobModifyIndex": 5}));
    });
    let list = o.jobs().await.expect("listed");
    let ids: Vec<&str> = list.iter().map(|r| r.spec.id.as_str()).collect();
    assert_eq!(ids, vec!["orders"]);
    assert_eq!(
        nomad.take_lines(),
        vec!["GET /v1/jobs", "GET /v1/job/cache", "GET /v1/job/orders"]
    );

    let record = o.job("orders").await.expect("found");
    assert_eq!(record.status, "running");
    assert!(!record.paused);
    assert_eq!((record.create_index, record.job_modify_index), (101, 101));
    assert_eq!(record.spec.src.extract.chunk_size, 500);
    assert_eq!(
        record.spec.src.placement.node_name.as_deref(),
        Some("node-a")
    );
    assert_eq!(record.spec.dest.connection.password.expose(), "dest-secret");
    assert_eq!(record.executed_gtid.as_deref(), Some("0-1-90"));
    let requests = nomad.take_requests();
    let lines: Vec<String> = requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        vec![
            "GET /v1/job/orders".to_owned(),
            "GET /v1/job/orders/allocations".to_owned(),
            format!("GET /v1/node/{NODE_ID}"),
            format!("GET /v1/plugin/allocation/{SRC_ALLOC}/stats"),
        ]
    );
}

#[tokio::test]
async fn the_plugin_is_asked_without_nomads_token() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), Some("eu"), Some("dtle"), Some(TOKEN));
    running_job(&nomad, &o).await;
    o.allocation_stats(SRC_ALLOC).await.expect("stats");
    let requests = nomad.take_requests();
    let plugin = requests.last().expect("requests");
    assert_eq!(
        plugin.line(),
        format!("GET /v1/plugin/allocation/{SRC_ALLOC}/stats")
    );
    assert_eq!(plugin.token, None);
    assert!(requests[..requests.len() - 1]
        .iter()
        .all(|r| r.token.as_deref() == Some(TOKEN)));
}

#[tokio::test]
async fn allocations_are_nomads_with_task_states_and_stats_are_the_plugins() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, None, None);
    running_job(&nomad, &o).await;

    let allocs = o.allocations("orders").await.expect("listed");
    let seen: Vec<(&str, &str, &str)> = allocs
        .iter()
        .map(|a| (a.id.as_str(), a.role.as_str(), a.client_status.as_str()))
        .collect();
    // Src then Dest, the newest first.
    assert_eq!(
        seen,
        vec![
            (SRC_ALLOC, "Src", "running"),
            (OLD_SRC_ALLOC, "Src", "failed"),
            (DEST_ALLOC, "Dest", "running"),
        ]
    );
    let src = &allocs[0];
    assert_eq!(
        (src.name.as_str(), src.node_id.as_str(), src.job_id.as_str()),
        ("orders.Src[0]", NODE_ID, "orders")
    );
    assert_eq!(
        (src.desired_status.as_str(), src.create_time),
        ("run", 1_495_755_675_944_527_600)
    );
    assert_eq!(src.task_state.state, "running");
    assert_eq!(src.task_state.finished_at, None);
    let kinds: Vec<&str> = src
        .task_state
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, vec!["Received", "Task Setup", "Started"]);
    assert_eq!(src.task_state.events[1].message, "Building Task Directory");
    let failed = &allocs[1];
    assert!(failed.task_state.failed);
    assert_eq!(failed.task_state.restarts, 1);
    assert_eq!(
        failed.task_state.finished_at.as_deref(),
        Some("2017-05-25T23:45:00.000000000Z")
    );
    let restarting = failed.task_state.events.last().expect("events");
    assert_eq!(
        (
            restarting.kind.as_str(),
            restarting.driver_error.as_str(),
            restarting.restart_delay
        ),
        ("Restarting", "Restart within policy", 15_000_000_000)
    );

    // Stats by full ID, and by prefix.
    let (alloc, stats, eta) = o.allocation_stats(SRC_ALLOC).await.expect("stats");
    assert_eq!(alloc.id, SRC_ALLOC);
    assert_eq!(
        (stats.rows_read, stats.txns_read, stats.stage.as_str()),
        (1234, 7, "binlog")
    );
    assert_eq!(eta, Some(Duration::from_secs(42)));
    assert_eq!(
        nomad.take_lines(),
        vec![
            "GET /v1/job/orders/allocations".to_owned(),
            format!("GET /v1/allocation/{SRC_ALLOC}"),
            format!("GET /v1/node/{NODE_ID}"),
            format!("GET /v1/plugin/allocation/{SRC_ALLOC}/stats"),
        ]
    );
    let (alloc, stats, _) = o
        .allocation_stats("5b6a4c2e")
        .await
        .expect("stats by prefix");
    assert_eq!(
        (alloc.id.as_str(), alloc.role.as_str(), stats.rows_read),
        (DEST_ALLOC, "Dest", 0)
    );
    assert_eq!(nomad.take_lines()[0], "GET /v1/allocations?prefix=5b6a4c2e");

    // What has no stats says why.
    let ended = o.allocation_stats(OLD_SRC_ALLOC).await.expect_err("ended");
    assert!(matches!(ended, OrchestratorError::Conflict(_)), "{ended}");
    assert!(ended.to_string().contains("has ended (failed)"), "{ended}");
    nomad.with(|s| s.plugin_stats.remove(DEST_ALLOC));
    let gone = o
        .allocation_stats(DEST_ALLOC)
        .await
        .expect_err("no task there");
    assert!(
        gone.to_string()
            .contains("has no dtle task running on node"),
        "{gone}"
    );
    let ambiguous = o.allocation_stats("ed").await.expect_err("two match");
    assert!(
        ambiguous
            .to_string()
            .contains("2 allocations start with \"ed\""),
        "{ambiguous}"
    );
    let unknown = o.allocation_stats("ffff").await.expect_err("none");
    assert!(
        matches!(unknown, OrchestratorError::AllocationNotFound(_)),
        "{unknown}"
    );
    let unknown = o
        .allocation_stats("ffffffff-0000-4000-8000-000000000000")
        .await
        .expect_err("none");
    assert!(
        matches!(unknown, OrchestratorError::AllocationNotFound(_)),
        "{unknown}"
    );
}

#[tokio::test]
async fn pause_resume_and_stop_rewrite_or_deregister_the_job() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, Some("dtle"), Some(TOKEN));
    running_job(&nomad, &o).await;

    let paused = o.pause("orders").await.expect("paused");
    assert_eq!(paused.job_modify_index, 102);
    let requests = nomad.take_requests();
    let lines: Vec<String> = requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        vec![
            "GET /v1/job/orders?namespace=dtle",
            "POST /v1/job/orders?namespace=dtle"
        ]
    );
    let body = &requests[1].body;
    assert_eq!(body["EnforceIndex"], true);
    assert_eq!(body["JobModifyIndex"], 101);
    assert_eq!(body["Job"]["Stop"], true);
    assert_eq!(body["Job"]["Meta"]["dtle_paused"], "true");
    // The rest of the job is Nomad's own copy, unchanged.
    assert_eq!(
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["ChunkSize"],
        500
    );
    let record = o.job("orders").await.expect("found");
    assert_eq!((record.status.as_str(), record.paused), ("paused", true));
    let again = o.pause("orders").await.expect_err("already paused");
    assert!(matches!(again, OrchestratorError::Conflict(_)), "{again}");
    nomad.take_requests();

    o.resume("orders").await.expect("resumed");
    let requests = nomad.take_requests();
    let body = &requests[1].body;
    assert_eq!(
        (body["JobModifyIndex"].as_u64(), &body["Job"]["Stop"]),
        (Some(102), &json!(false))
    );
    assert!(
        body["Job"]["Meta"].get("dtle_paused").is_none(),
        "{}",
        body["Job"]["Meta"]
    );
    assert_eq!(body["Job"]["Meta"]["dtle_failover"], "false");
    let not_paused = o.resume("orders").await.expect_err("not paused");
    assert!(
        not_paused.to_string().contains("is not paused"),
        "{not_paused}"
    );

    // Stop: deregistered, kept; paused then stopped: the mark is cleared, still stopped.
    nomad.take_requests();
    let stopped = o.stop("orders", false, false).await.expect("stopped");
    assert_eq!(stopped.eval_id, "d092fdc0-e1fd-2536-67d8-000000000104");
    assert_eq!(
        nomad.take_lines(),
        vec![
            "GET /v1/job/orders?namespace=dtle",
            "DELETE /v1/job/orders?namespace=dtle"
        ]
    );
    let err = o.pause("orders").await.expect_err("stopped");
    assert!(err.to_string().contains("is not running"), "{err}");
    o.resume("orders").await.expect_err("stopped, not paused");
    nomad.with(|s| {
        if let Some(job) = s.jobs.get_mut("orders") {
            job["Stop"] = json!(false);
            job["Status"] = json!("running");
        }
    });
    o.pause("orders").await.expect("paused");
    nomad.take_requests();
    o.stop("orders", false, false).await.expect("stopped");
    let requests = nomad.take_requests();
    assert_eq!(requests[1].line(), "POST /v1/job/orders?namespace=dtle");
    assert_eq!(requests[1].body["Job"]["Stop"], true);
    assert!(requests[1].body["Job"]["Meta"].get("dtle_paused").is_none());
    assert!(!o.job("orders").await.expect("kept").paused);

    // Purge: gone.
    nomad.take_requests();
    o.stop("orders", true, false).await.expect("purged");
    assert_eq!(
        nomad.take_lines()[1],
        "DELETE /v1/job/orders?purge=true&namespace=dtle"
    );
    let gone = o.job("orders").await.expect_err("purged");
    assert!(matches!(gone, OrchestratorError::JobNotFound(_)), "{gone}");
}

#[tokio::test]
async fn forgetting_the_position_waits_for_the_allocations_to_end() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, None, None);
    running_job(&nomad, &o).await;
    // The target: a port nothing listens on.
    let port = closed_port();
    o.register(jobs::parse_job(&dtle_job_to("orders", 500, port)).expect("valid"))
        .await
        .expect("updated");
    nomad.take_requests();
    // The allocations never end: no position is deleted, and the job is not purged.
    let err = o
        .stop("orders", true, true)
        .await
        .expect_err("still running");
    assert!(
        err.to_string().contains("have not ended within 2s"),
        "{err}"
    );
    let lines = nomad.take_lines();
    assert_eq!(lines[..2], ["GET /v1/job/orders", "DELETE /v1/job/orders"]);
    assert!(
        lines[2..]
            .iter()
            .all(|l| l == "GET /v1/job/orders/allocations"),
        "{lines:?}"
    );
    // Ended: the target is asked to forget (here it cannot be reached), before any purge.
    nomad.with(|s| {
        for a in s.allocations.values_mut().flatten() {
            a["ClientStatus"] = json!("complete");
        }
    });
    let err = o
        .stop("orders", true, true)
        .await
        .expect_err("no target here");
    assert!(
        err.to_string()
            .starts_with("deleting the position of job orders on the target"),
        "{err}"
    );
    assert!(nomad.take_lines().iter().all(|l| !l.contains("purge")));
}

#[tokio::test]
async fn nomads_errors_become_clear_gateway_errors() {
    let nomad = FakeNomad::start().await;
    // 404: the job's, or the allocation's, not found.
    let o = orchestrator(&nomad.url(), None, None, Some(TOKEN));
    for err in [
        o.job("nope").await.expect_err("404"),
        o.allocations("nope").await.expect_err("404"),
        o.stop("nope", false, false).await.expect_err("404"),
        o.pause("nope").await.expect_err("404"),
    ] {
        assert!(
            matches!(&err, OrchestratorError::JobNotFound(id) if id == "nope"),
            "{err}"
        );
    }

    // 403: the token.
    nomad.with(|s| s.require_token = Some("another-token".into()));
    let err = o.jobs().await.expect_err("403");
    assert!(matches!(err, OrchestratorError::Forbidden(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("Nomad refused the ACL token: Permission denied."),
        "{err}"
    );
    let err = o.register(parsed("orders", 500)).await.expect_err("403");
    assert!(matches!(err, OrchestratorError::Forbidden(_)), "{err}");
    nomad.with(|s| s.require_token = None);
    nomad.take_requests();

    // 500: quoted; a read is tried three times, a write once.
    nomad.fail("GET", "/v1/jobs", 500, "rpc error: No cluster leader");
    let err = o.jobs().await.expect_err("500");
    assert!(matches!(err, OrchestratorError::Upstream(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "Nomad answered 500: rpc error: No cluster leader"
    );
    assert_eq!(nomad.take_lines(), vec!["GET /v1/jobs"; 3]);
    nomad.fail("POST", "/v1/jobs", 500, "raft apply failed");
    let err = o.register(parsed("orders", 500)).await.expect_err("500");
    assert_eq!(err.to_string(), "Nomad answered 500: raft apply failed");
    assert_eq!(
        nomad.take_lines(),
        vec!["GET /v1/job/orders", "POST /v1/jobs"]
    );

    // 400: the job refused.
    nomad.with(|s| s.failures.clear());
    nomad.fail(
        "POST",
        "/v1/jobs",
        400,
        "1 error occurred:\n\t* Task group Src validation failed",
    );
    let err = o.register(parsed("orders", 500)).await.expect_err("400");
    assert!(matches!(err, OrchestratorError::Rejected(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("Nomad refused the request: 1 error occurred"),
        "{err}"
    );

    // A Nomad job of the same ID that is not dtle's is never overwritten.
    nomad.with(|s| {
        s.failures.clear();
        s.jobs.insert(
            "orders".into(),
            json!({"ID": "orders", "TaskGroups": [{"Name": "web",
            "Tasks": [{"Name": "web", "Driver": "docker", "Config": {}}]}]}),
        );
    });
    nomad.take_requests();
    let err = o
        .register(parsed("orders", 500))
        .await
        .expect_err("not ours");
    assert!(matches!(err, OrchestratorError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("is not a dtle job"), "{err}");
    assert_eq!(nomad.take_lines(), vec!["GET /v1/job/orders"]);

    // Unreachable: a port nobody listens on.
    let port = closed_port();
    let down = orchestrator(&format!("http://127.0.0.1:{port}"), None, None, None);
    let err = down.jobs().await.expect_err("unreachable");
    assert!(matches!(err, OrchestratorError::Unavailable(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach Nomad at http://127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(matches!(
        down.leader().await,
        Err(OrchestratorError::Unavailable(_))
    ));
}

#[tokio::test]
async fn nodes_and_leader() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, None, None);
    let nodes = o.nodes().await.expect("nodes");
    let seen: Vec<(&str, &str, &str)> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.name.as_str(), n.http_addr.as_str()))
        .collect();
    assert_eq!(seen, vec![(NODE_ID, "node-a", "10.138.0.5")]);
    assert_eq!(o.leader().await.expect("a leader"), "127.0.0.1:4647");
    assert_eq!(
        nomad.take_lines(),
        vec!["GET /v1/nodes", "GET /v1/status/leader"]
    );
}

#[tokio::test]
async fn the_plugins_and_unreadable_answers_become_clear_errors() {
    let nomad = FakeNomad::start().await;
    let o = orchestrator(&nomad.url(), None, None, None);
    running_job(&nomad, &o).await;

    // The plugin fails.
    nomad.fail("GET", "/v1/plugin/", 500, "stats registry poisoned");
    let err = o.allocation_stats(SRC_ALLOC).await.expect_err("500");
    assert!(matches!(err, OrchestratorError::Upstream(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "the dtle plugin at 127.0.0.1:{} answered 500",
            nomad.addr.port()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("stats registry poisoned (node {NODE_ID})")),
        "{text}"
    );
    nomad.with(|s| s.failures.clear());

    // The plugin cannot be reached.
    let port = closed_port();
    nomad.with(|s| s.plugin_addr = Some(format!("127.0.0.1:{port}")));
    let err = o
        .allocation_stats(SRC_ALLOC)
        .await
        .expect_err("unreachable");
    assert!(matches!(err, OrchestratorError::Unavailable(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach the dtle plugin at 127.0.0.1:{port}")),
        "{err}"
    );
    // The node advertises no stats API.
    nomad.with(|s| s.plugin_addr = Some(String::new()));
    let err = o.allocation_stats(SRC_ALLOC).await.expect_err("no address");
    assert!(matches!(err, OrchestratorError::Unavailable(_)), "{err}");
    assert!(
        err.to_string()
            .contains("publishes no driver.dtle.api_addr"),
        "{err}"
    );
    // The executed position is best effort: the job still reads.
    assert_eq!(o.job("orders").await.expect("found").executed_gtid, None);

    // Nomad answers what is not JSON, or JSON of the wrong shape.
    nomad.fail("GET", "/v1/status/leader", 200, "<html>proxy login</html>");
    let err = o.leader().await.expect_err("not JSON");
    assert!(matches!(err, OrchestratorError::Upstream(_)), "{err}");
    assert!(
        err.to_string()
            .contains("answered what the gateway cannot read: not JSON"),
        "{err}"
    );
    nomad.fail("GET", "/v1/nodes", 200, "{}");
    let err = o.nodes().await.expect_err("an object");
    assert_eq!(
        err.to_string(),
        "Nomad answered an object for the node list"
    );
}
