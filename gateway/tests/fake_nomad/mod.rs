//! A fake Nomad agent on 127.0.0.1:0 for the Nomad orchestrator's tests: it records every
//! request (method, path, query, `X-Nomad-Token`, JSON body) and answers with bodies written
//! from Nomad's HTTP API documentation (website/content/api-docs: jobs.mdx, allocations.mdx,
//! nodes.mdx, status.mdx). It keeps the jobs it is given, so a registered job reads back; the
//! allocations, nodes and errors a test needs are set on its [`State`]. The dtle plugin's stats
//! API (`GET /v1/plugin/allocation/:id/stats`) is served on the same address, which the fake
//! node advertises as `driver.dtle.api_addr = "0.0.0.0:<port>"`.

#![allow(dead_code)]

mod bodies;
mod scenario;

pub use bodies::{allocation, plugin_stats};
pub use scenario::*;

use bodies::{node, nodes, stub};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use warp::http::StatusCode;
use warp::Filter;

/// The ID of the one Nomad client node.
pub const NODE_ID: &str = "f7476465-4d6e-c0de-26d0-e383c49be941";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// The `X-Nomad-Token` header.
    pub token: Option<String>,
    /// The JSON body, `Null` when none.
    pub body: Value,
}

impl Recorded {
    /// `METHOD /path?query`, for comparing lists of requests.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }
}

/// What the fake knows and how it answers.
#[derive(Default)]
pub struct State {
    /// Every request, in order.
    pub requests: Vec<Recorded>,
    /// Jobs by ID, as Nomad would return them.
    pub jobs: BTreeMap<String, Value>,
    /// Allocations (Nomad's JSON) by job ID.
    pub allocations: BTreeMap<String, Vec<Value>>,
    /// The plugin's stats answers by allocation ID.
    pub plugin_stats: BTreeMap<String, Value>,
    /// The token every Nomad request must carry, when ACLs are "on".
    pub require_token: Option<String>,
    /// Answers that win over everything: (method, path prefix) → (status, plain-text body).
    pub failures: Vec<(String, String, u16, String)>,
    /// The Raft index.
    pub index: u64,
    /// What the node advertises as `driver.dtle.api_addr` (default: this fake, `0.0.0.0:<port>`).
    pub plugin_addr: Option<String>,
}

/// A running fake; it stops with the test's runtime.
pub struct FakeNomad {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeNomad {
    /// Starts a fake on 127.0.0.1, on a free port.
    pub async fn start() -> FakeNomad {
        let state = Arc::new(Mutex::new(State {
            index: 100,
            ..State::default()
        }));
        let port_cell = Arc::new(Mutex::new(0u16));
        let (s, p) = (state.clone(), port_cell.clone());
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::optional::<String>("x-nomad-token"))
            .and(warp::body::bytes())
            .map(
                move |method: warp::http::Method,
                      path: warp::path::FullPath,
                      query: String,
                      token: Option<String>,
                      body: bytes::Bytes| {
                    let recorded = Recorded {
                        method: method.to_string(),
                        path: path.as_str().to_owned(),
                        query,
                        token,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    };
                    let port = *p.lock().expect("port");
                    let mut state = s.lock().expect("state");
                    state.requests.push(recorded.clone());
                    let (status, body) = answer(&mut state, &recorded, port);
                    let reply: Box<dyn warp::Reply> = match body {
                        Body::Text(text) => Box::new(text),
                        Body::Json(value) => Box::new(warp::reply::json(&value)),
                    };
                    // As Nomad, every answer says the index it was read at (no query blocks).
                    warp::reply::with_header(
                        warp::reply::with_status(reply, status),
                        "X-Nomad-Index",
                        state.index.to_string(),
                    )
                },
            );
        let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
        *port_cell.lock().expect("port") = addr.port();
        tokio::spawn(server);
        FakeNomad { addr, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, and forgets them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.state.lock().expect("state").requests)
    }

    /// The request lines so far (`METHOD /path?query`), and forgets them.
    pub fn take_lines(&self) -> Vec<String> {
        self.take_requests().iter().map(Recorded::line).collect()
    }

    /// Changes the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("state"))
    }

    /// Makes `method path…` answer `status` with `body` from now on.
    pub fn fail(&self, method: &str, path_prefix: &str, status: u16, body: &str) {
        self.with(|s| {
            s.failures
                .push((method.into(), path_prefix.into(), status, body.into()))
        });
    }
}

/// An answer's body: JSON, or plain text as Nomad writes its errors.
pub enum Body {
    Json(Value),
    Text(String),
}

fn text(status: StatusCode, body: &str) -> (StatusCode, Body) {
    (status, Body::Text(body.to_owned()))
}

fn ok(body: Value) -> (StatusCode, Body) {
    (StatusCode::OK, Body::Json(body))
}

/// Nomad's (and the plugin's) answer to one request.
fn answer(state: &mut State, r: &Recorded, port: u16) -> (StatusCode, Body) {
    for (method, prefix, status, body) in &state.failures {
        if *method == r.method && r.path.starts_with(prefix.as_str()) {
            return text(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            );
        }
    }
    let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    // The plugin's API: no token.
    if let ["v1", "plugin", "allocation", id, "stats"] = segments.as_slice() {
        return match state.plugin_stats.get(*id) {
            Some(stats) => ok(stats.clone()),
            None => (
                StatusCode::NOT_FOUND,
                Body::Json(json!({"error": format!("no dtle task of allocation {id} here")})),
            ),
        };
    }
    if let Some(required) = &state.require_token {
        if r.token.as_deref() != Some(required.as_str()) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
    }
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "jobs"]) | ("POST", ["v1", "job", _]) => register(state, r),
        ("GET", ["v1", "jobs"]) => {
            let stubs: Vec<Value> = state.jobs.values().map(stub).collect();
            ok(Value::Array(stubs))
        }
        ("GET", ["v1", "job", id]) => match state.jobs.get(*id) {
            Some(job) => ok(job.clone()),
            None => text(StatusCode::NOT_FOUND, "job not found"),
        },
        ("DELETE", ["v1", "job", id]) => {
            if !state.jobs.contains_key(*id) {
                return text(StatusCode::NOT_FOUND, "job not found");
            }
            state.index += 1;
            let index = state.index;
            if r.query.contains("purge=true") {
                state.jobs.remove(*id);
            } else if let Some(job) = state.jobs.get_mut(*id) {
                job["Stop"] = json!(true);
                job["ModifyIndex"] = json!(index);
                job["JobModifyIndex"] = json!(index);
            }
            ok(json!({"EvalID": eval_id(index), "EvalCreateIndex": index, "JobModifyIndex": index}))
        }
        ("GET", ["v1", "job", id, "allocations"]) => {
            let list = state.allocations.get(*id).cloned().unwrap_or_default();
            ok(Value::Array(list))
        }
        ("GET", ["v1", "allocation", id]) => {
            let found = state
                .allocations
                .values()
                .flatten()
                .find(|a| a["ID"] == *id);
            match found {
                Some(a) => ok(a.clone()),
                None => text(StatusCode::NOT_FOUND, "alloc not found"),
            }
        }
        ("GET", ["v1", "allocations"]) => {
            let prefix = r
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .unwrap_or_default()
                .to_owned();
            let list: Vec<Value> = state
                .allocations
                .values()
                .flatten()
                .filter(|a| a["ID"].as_str().is_some_and(|id| id.starts_with(&prefix)))
                .cloned()
                .collect();
            ok(Value::Array(list))
        }
        ("GET", ["v1", "node", id]) if *id == NODE_ID => {
            let addr = state
                .plugin_addr
                .clone()
                .unwrap_or(format!("0.0.0.0:{port}"));
            ok(node(&addr))
        }
        ("GET", ["v1", "node", _]) => text(StatusCode::NOT_FOUND, "node not found"),
        ("GET", ["v1", "nodes"]) => ok(nodes()),
        ("GET", ["v1", "status", "leader"]) => ok(json!("127.0.0.1:4647")),
        _ => text(StatusCode::NOT_FOUND, "Invalid URL"),
    }
}

fn eval_id(index: u64) -> String {
    format!("d092fdc0-e1fd-2536-67d8-{index:012}")
}

/// `POST /v1/jobs` and `POST /v1/job/:id`: keeps the job as Nomad would show it.
fn register(state: &mut State, r: &Recorded) -> (StatusCode, Body) {
    let Some(job) = r.body.get("Job").cloned() else {
        return text(StatusCode::BAD_REQUEST, "Job must be specified");
    };
    let Some(id) = job["ID"].as_str().map(str::to_owned) else {
        return text(StatusCode::BAD_REQUEST, "Job ID does not match");
    };
    let existing = state.jobs.get(&id).cloned();
    if r.body["EnforceIndex"] == json!(true) {
        let current = existing
            .as_ref()
            .map_or(0, |j| j["JobModifyIndex"].as_u64().unwrap_or(0));
        if r.body["JobModifyIndex"].as_u64() != Some(current) {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Enforcing job modify index {}: job exists with conflicting job modify index: {current}", r.body["JobModifyIndex"]),
            );
        }
    }
    state.index += 1;
    let index = state.index;
    let mut stored = job;
    // What Nomad adds (jobs.mdx, "Read Job").
    let version = existing
        .as_ref()
        .map_or(0, |j| j["Version"].as_u64().unwrap_or(0) + 1);
    let create = existing
        .as_ref()
        .map_or(index, |j| j["CreateIndex"].as_u64().unwrap_or(index));
    let stop = stored.get("Stop").and_then(Value::as_bool).unwrap_or(false);
    for (key, value) in [
        ("Stop", json!(stop)),
        ("Status", json!(if stop { "dead" } else { "pending" })),
        ("StatusDescription", json!("")),
        ("Priority", json!(50)),
        ("AllAtOnce", json!(false)),
        ("ParentID", json!("")),
        ("Version", json!(version)),
        ("Stable", json!(false)),
        ("SubmitTime", json!(1_608_304_897_537_638_400u64)),
        ("CreateIndex", json!(create)),
        ("ModifyIndex", json!(index)),
        ("JobModifyIndex", json!(index)),
    ] {
        stored[key] = value;
    }
    state.jobs.insert(id, stored);
    ok(
        json!({"EvalID": eval_id(index), "EvalCreateIndex": index, "JobModifyIndex": index,
               "Warnings": "", "Index": index, "LastContact": 0, "KnownLeader": false}),
    )
}
