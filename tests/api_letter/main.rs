//! Issue 13, section 1: "dtle 2.x to the letter" (seed 004, dtle 2.x's API document, whose
//! example answers are the contract). One test per point of that section, each against a live
//! `dtle agent`; every one of them failed on the gateway before the section was done.
//!
//! - [`requests`]: what comes in (points 1, 2, 5: statuses, PUT and `?purge`, jobs without ID);
//! - [`views`]: what goes out (points 3, 4: values as posted, a job posted back);
//! - [`watch`]: watchers and the agent (points 6, 7, 8: blocking queries, advertised addresses,
//!   the throughput timer).
//!
//! Agents listen on 18740-18749; schemas and jobs are named `letter_*`.

#[path = "../support/mod.rs"]
mod support;

mod requests;
mod views;
mod watch;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

/// An answer: its status, its `X-Nomad-Index` header and its JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub index: Option<u64>,
    pub body: Value,
}

pub fn call(method: &str, url: &str, body: Option<&str>) -> Answer {
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
pub fn raw(port: u16, request: &[u8]) -> (u16, String) {
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
pub fn with_id(id: &str, job: &str) -> String {
    job.replacen("{\"Name\"", &format!("{{\"ID\": \"{id}\", \"Name\""), 1)
}

/// Waits until both of the job's allocations run; returns them.
pub fn running_allocations(agent: &Agent, job: &str) -> Vec<Value> {
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

pub fn events_of(alloc: &Value) -> Vec<Value> {
    let task = alloc["Task"].as_str().unwrap_or_default();
    alloc["TaskStates"][task]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn count_events(agent: &Agent, job: &str, kind: &str) -> usize {
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

pub fn purge(agent: &Agent, job: &str) {
    call(
        "DELETE",
        &agent.url(&format!("/v1/job/{job}?purge=true")),
        None,
    );
}
