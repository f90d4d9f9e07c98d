//! The dtle API (`/v1/jobs`, `/v1/job/{ID}/allocations`, `/v1/agent/allocation/{ID}/stats`,
//! ...) served in front of the Nomad orchestrator, against the fake Nomad: the answers users see,
//! Nomad's errors included.

mod fake_nomad;

use fake_nomad::*;
use serde_json::{json, Value};
use std::sync::Arc;

async fn call(
    routes: &gateway::api::handlers::Shared,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let filter = gateway::api::routes::routes(routes.clone());
    let response = warp::test::request()
        .method(method)
        .path(path)
        .body(body)
        .reply(&filter)
        .await;
    let status = response.status().as_u16();
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn the_dtle_api_in_front_of_nomad() {
    let nomad = FakeNomad::start().await;
    let o: gateway::api::handlers::Shared =
        Arc::new(orchestrator(&nomad.url(), None, None, Some(TOKEN)));

    let (status, body) = call(&o, "POST", "/v1/jobs", &dtle_job("orders", 500)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["ID"], &body["Success"], &body["Changed"]),
        (&json!("orders"), &json!(true), &json!(true))
    );
    assert_eq!(body["EvalID"], "d092fdc0-e1fd-2536-67d8-000000000101");
    let sent = nomad.take_requests();
    assert_eq!(sent[1].line(), "POST /v1/jobs");
    assert_eq!(
        sent[1].body["Job"]["TaskGroups"][1]["Tasks"][0]["Driver"],
        "dtle"
    );

    running_job(&nomad, &orchestrator(&nomad.url(), None, None, Some(TOKEN))).await;
    let (status, list) = call(&o, "GET", "/v1/jobs", "").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["ID"], "orders");
    assert_eq!(list[0]["Status"], "running");
    assert_eq!(
        list[0]["JobSummary"]["Tasks"][0]["Config"]["ConnectionConfig"]["Password"],
        "*"
    );
    assert!(!list.to_string().contains("secret"), "{list}");

    let (status, one) = call(&o, "GET", "/v1/job/orders", "").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["Tasks"][0]["NodeName"], "node-a");
    assert_eq!(one["Tasks"][0]["Config"]["Gtid"], "0-1-90");

    let (status, allocs) = call(&o, "GET", "/v1/job/orders/allocations", "").await;
    assert_eq!(status, 200, "{allocs}");
    assert_eq!(allocs[0]["ID"], SRC_ALLOC);
    assert_eq!(allocs[0]["Task"], "Src");
    assert_eq!(allocs[0]["ClientStatus"], "running");
    assert_eq!(allocs[0]["TaskStates"]["Src"]["State"], "running");
    assert_eq!(
        allocs[0]["TaskStates"]["Src"]["Events"][2]["Type"],
        "Started"
    );
    assert_eq!(allocs[2]["Task"], "Dest");

    let (status, stats) = call(
        &o,
        "GET",
        &format!("/v1/agent/allocation/{SRC_ALLOC}/stats"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    let src = &stats["Tasks"]["Src"];
    assert_eq!(src["ReadMasterRowCount"], 1234);
    assert_eq!(src["Stage"], "binlog");
    assert_eq!(src["CurrentCoordinates"]["GtidSet"], "0-1-100");
    assert_eq!(src["CurrentCoordinates"]["ExecutedGtidSet"], "0-1-90");
    assert_eq!(src["ETA"], "42s");

    let (status, nodes) = call(&o, "GET", "/v1/nodes", "").await;
    assert_eq!((status, &nodes[0]["Name"]), (200, &json!("node-a")));
    let (status, leader) = call(&o, "GET", "/v1/leader", "").await;
    assert_eq!((status, leader), (200, json!("127.0.0.1:4647")));

    // Nomad's errors, as the API answers them.
    let (status, body) = call(&o, "GET", "/v1/job/nope", "").await;
    assert_eq!(
        (status, &body["Error"]),
        (404, &json!("job nope not found"))
    );
    nomad.with(|s| s.require_token = Some("another-token".into()));
    let (status, body) = call(&o, "GET", "/v1/jobs", "").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Nomad refused the ACL token")),
        "{body}"
    );
    let port = closed_port();
    let down: gateway::api::handlers::Shared = Arc::new(orchestrator(
        &format!("http://127.0.0.1:{port}"),
        None,
        None,
        None,
    ));
    let (status, body) = call(&down, "POST", "/v1/jobs", &dtle_job("orders", 500)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cannot reach Nomad at")),
        "{body}"
    );
}

#[tokio::test]
async fn blocking_queries_are_nomads_own() {
    let nomad = FakeNomad::start().await;
    let o: gateway::api::handlers::Shared =
        Arc::new(orchestrator(&nomad.url(), None, None, Some(TOKEN)));
    running_job(&nomad, &orchestrator(&nomad.url(), None, None, Some(TOKEN))).await;
    nomad.take_requests();
    let filter = gateway::api::routes::routes(o.clone());
    let response = warp::test::request()
        .path("/v1/job/orders/allocations?index=5&wait=2s")
        .reply(&filter)
        .await;
    assert_eq!(response.status(), 200);
    let index = nomad.with(|s| s.index);
    assert_eq!(
        response
            .headers()
            .get("X-Nomad-Index")
            .map(|v| v.as_bytes()),
        Some(index.to_string().as_bytes())
    );
    let lines = nomad.take_lines();
    assert_eq!(
        lines[0],
        "GET /v1/job/orders/allocations?index=5&wait=2000ms"
    );
    // A bad wait is the gateway's 400; Nomad is not asked.
    let (status, body) = call(&o, "GET", "/v1/jobs?index=1&wait=soon", "").await;
    assert_eq!(status, 400, "{body}");
    assert!(nomad.take_lines().is_empty());
}
