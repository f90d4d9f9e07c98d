//! Nomad's allocations, nodes and the dtle plugin's stats, as the gateway's records.
//!
//! - An allocation of a dtle job (`GET /v1/job/:id/allocations`, `GET /v1/allocation/:id`) is
//!   one task: its role is its group's name (`Src`/`Dest`, dtle's other spellings accepted),
//!   its [`TaskState`] that task's entry of `TaskStates`, its events Nomad's task events
//!   (`Restarting`'s reason, a driver's error or message, the restart delay). Nomad writes "never"
//!   as `0001-01-01T00:00:00Z`: such times become `None`.
//! - A node's dtle plugin publishes where its stats API listens as the driver attribute
//!   `driver.dtle.api_addr` (`host:port`); an unspecified host (`0.0.0.0`, `[::]`) means the
//!   node's own address, `unique.network.ip-address`.
//! - The plugin answers `GET /v1/plugin/allocation/<alloc id>/stats` with each task's
//!   [`StatsSnapshot`] and snapshot ETA: the replication stats, not Nomad's resource usage.

use crate::orchestrator::{Allocation, Node, TaskEvent, TaskState};
use driver::plugin::api::AllocationStats;
use driver::stats::StatsSnapshot;
use jobs::Role;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// The node attribute the dtle plugin publishes its stats API's `host:port` in.
pub const API_ADDR_ATTRIBUTE: &str = "driver.dtle.api_addr";

/// Client statuses after which an allocation runs no more.
pub const TERMINAL: [&str; 3] = ["complete", "failed", "lost"];

/// The fields of a Nomad allocation (or allocation stub) the gateway reads.
#[derive(Debug, Deserialize)]
struct NomadAllocation {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "EvalID", default)]
    eval_id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(rename = "JobID", default)]
    job_id: String,
    #[serde(rename = "TaskGroup", default)]
    task_group: String,
    #[serde(rename = "ClientStatus", default)]
    client_status: String,
    #[serde(rename = "DesiredStatus", default)]
    desired_status: String,
    #[serde(rename = "CreateTime", default)]
    create_time: i64,
    #[serde(rename = "ModifyTime", default)]
    modify_time: i64,
    #[serde(rename = "CreateIndex", default)]
    create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    modify_index: u64,
    #[serde(rename = "TaskStates", default)]
    task_states: Option<BTreeMap<String, NomadTaskState>>,
}

#[derive(Debug, Deserialize)]
struct NomadTaskState {
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "Failed", default)]
    failed: bool,
    #[serde(rename = "Restarts", default)]
    restarts: u64,
    #[serde(rename = "StartedAt", default)]
    started_at: Option<String>,
    #[serde(rename = "FinishedAt", default)]
    finished_at: Option<String>,
    #[serde(rename = "Events", default)]
    events: Option<Vec<NomadTaskEvent>>,
}

#[derive(Debug, Deserialize)]
struct NomadTaskEvent {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Time", default)]
    time: i64,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "DisplayMessage", default)]
    display_message: String,
    #[serde(rename = "DriverError", default)]
    driver_error: String,
    #[serde(rename = "DriverMessage", default)]
    driver_message: String,
    #[serde(rename = "RestartReason", default)]
    restart_reason: String,
    #[serde(rename = "KillError", default)]
    kill_error: String,
    #[serde(rename = "SetupError", default)]
    setup_error: String,
    #[serde(rename = "StartDelay", default)]
    start_delay: i64,
    #[serde(rename = "KillTimeout", default)]
    kill_timeout: i64,
    #[serde(rename = "ExitCode", default)]
    exit_code: i64,
}

/// A Nomad allocation as the gateway's [`Allocation`]; `None` when it is no dtle task's (a
/// group that is neither Src nor Dest).
///
/// # Errors
/// When the JSON is not an allocation.
pub fn allocation(value: &Value) -> Result<Option<Allocation>, String> {
    let a = NomadAllocation::deserialize(value).map_err(|e| format!("not an allocation: {e}"))?;
    let states = a.task_states.unwrap_or_default();
    let role = jobs::role_from_name(&a.task_group)
        .or_else(|| states.keys().find_map(|k| jobs::role_from_name(k)));
    let Some(role) = role else {
        return Ok(None);
    };
    let state = states
        .iter()
        .find(|(name, _)| jobs::role_from_name(name) == Some(role))
        .or_else(|| states.iter().next())
        .map(|(_, s)| task_state(s))
        .unwrap_or_else(|| TaskState {
            state: "pending".into(),
            ..TaskState::default()
        });
    Ok(Some(Allocation {
        id: a.id,
        job_id: a.job_id,
        eval_id: a.eval_id,
        node_id: a.node_id,
        name: a.name,
        role,
        client_status: a.client_status,
        desired_status: a.desired_status,
        create_time: a.create_time.max(0) as u64,
        modify_time: a.modify_time.max(0) as u64,
        create_index: a.create_index,
        modify_index: a.modify_index,
        task_state: state,
    }))
}

fn task_state(s: &NomadTaskState) -> TaskState {
    TaskState {
        state: s.state.clone(),
        failed: s.failed,
        started_at: time(s.started_at.as_deref()),
        finished_at: time(s.finished_at.as_deref()),
        restarts: s.restarts,
        events: s.events.iter().flatten().map(event).collect(),
    }
}

/// A Nomad time, `None` for Go's zero time.
fn time(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty() && !t.starts_with("0001-01-01"))
        .map(str::to_owned)
}

fn event(e: &NomadTaskEvent) -> TaskEvent {
    let message = [&e.message, &e.display_message]
        .into_iter()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default();
    let driver_error = [
        &e.driver_error,
        &e.restart_reason,
        &e.setup_error,
        &e.kill_error,
    ]
    .into_iter()
    .find(|m| !m.is_empty())
    .cloned()
    .unwrap_or_default();
    TaskEvent {
        kind: e.kind.clone(),
        time: e.time.max(0) as u64,
        message,
        driver_error,
        restart_delay: e.start_delay.max(0) as u64,
        driver_message: e.driver_message.clone(),
        kill_timeout: e.kill_timeout.max(0) as u64,
        exit_code: e.exit_code,
    }
}

/// A node of `GET /v1/nodes` or `GET /v1/node/:id`; `None` when its dtle driver is known to be
/// absent (the node lists its drivers and `dtle` is not detected there).
pub fn node(value: &Value) -> Option<Node> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    if let Some(drivers) = value.get("Drivers").and_then(Value::as_object) {
        let detected = drivers
            .get("dtle")
            .and_then(|d| d.get("Detected"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !detected {
            return None;
        }
    }
    let http_addr = [text("HTTPAddr"), text("Address")]
        .into_iter()
        .find(|a| !a.is_empty())
        .unwrap_or_default();
    let index = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
    Some(Node {
        create_index: index("CreateIndex"),
        modify_index: index("ModifyIndex"),
        id: text("ID").to_owned(),
        name: text("Name").to_owned(),
        datacenter: text("Datacenter").to_owned(),
        http_addr: http_addr.to_owned(),
        status: text("Status").to_owned(),
    })
}

/// Where the dtle plugin on this node (`GET /v1/node/:id`) serves its stats API.
///
/// # Errors
/// A message saying what the node lacks.
pub fn plugin_address(node: &Value) -> Result<String, String> {
    let attribute = |key: &str| {
        node.get("Drivers")
            .and_then(|d| d.get("dtle"))
            .and_then(|d| d.get("Attributes"))
            .and_then(|a| a.get(key))
            .or_else(|| node.get("Attributes").and_then(|a| a.get(key)))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let Some(addr) = attribute(API_ADDR_ATTRIBUTE) else {
        return Err(format!(
            "it publishes no {API_ADDR_ATTRIBUTE} attribute (its dtle plugin is not running, or \
             is too old to serve stats)"
        ));
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{API_ADDR_ATTRIBUTE} {addr:?} is not host:port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if !bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Ok(addr.to_owned());
    }
    let own = attribute("unique.network.ip-address").ok_or_else(|| {
        format!("{API_ADDR_ATTRIBUTE} is {addr}, and the node has no unique.network.ip-address")
    })?;
    Ok(match own.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{own}:{port}"),
    })
}

/// The `role` task's stats and snapshot ETA from the plugin's answer.
///
/// # Errors
/// When the answer is not the plugin's stats, or has no such task.
pub fn task_stats(answer: &Value, role: Role) -> Result<(StatsSnapshot, Option<Duration>), String> {
    let stats = AllocationStats::deserialize(answer).map_err(|e| format!("not dtle stats: {e}"))?;
    let names: Vec<String> = stats.tasks.keys().cloned().collect();
    let task = stats
        .tasks
        .into_iter()
        .find(|(name, _)| jobs::role_from_name(name) == Some(role))
        .map(|(_, task)| task)
        .ok_or_else(|| format!("no {role} task among {names:?}"))?;
    Ok((task.stats, task.eta_nanos.map(Duration::from_nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_allocation_is_its_groups_task_with_nomads_events() {
        let value: Value = serde_json::from_str(
            r#"{
            "ID": "ed344e0a-7290-d117-41d3-a64f853ca3c2", "EvalID": "a9c5effc-2242-51b2-f1fe-054ee11ab189",
            "Name": "orders.Src[0]", "NodeID": "cb1f6030-a220-4f92-57dc-7baaabdc3823", "JobID": "orders",
            "TaskGroup": "Src", "DesiredStatus": "run", "ClientStatus": "running",
            "TaskStates": {"Src": {"State": "running", "Failed": false, "Restarts": 1,
                "StartedAt": "2017-05-25T23:41:23.240184101Z", "FinishedAt": "0001-01-01T00:00:00Z",
                "Events": [
                    {"Type": "Received", "Time": 1495755675956923000, "Message": "", "DisplayMessage": "Task received by client"},
                    {"Type": "Restarting", "Time": 1495755676000000000, "RestartReason": "Restart within policy", "StartDelay": 15000000000},
                    {"Type": "Driver", "Time": 1495755676100000000, "DriverMessage": "binlog"}
                ]}},
            "CreateTime": 1495755675944527600, "ModifyTime": 1495755675944527600
        }"#,
        )
        .expect("JSON");
        let a = allocation(&value).expect("readable").expect("a dtle task");
        assert_eq!(a.role, Role::Src);
        assert_eq!(
            (a.name.as_str(), a.job_id.as_str()),
            ("orders.Src[0]", "orders")
        );
        assert_eq!(a.client_status, "running");
        assert_eq!(a.create_time, 1_495_755_675_944_527_600);
        assert_eq!(
            a.task_state.started_at.as_deref(),
            Some("2017-05-25T23:41:23.240184101Z")
        );
        assert_eq!(a.task_state.finished_at, None);
        assert_eq!(a.task_state.restarts, 1);
        let events = &a.task_state.events;
        assert_eq!(events[0].message, "Task received by client");
        assert_eq!(
            (
                events[1].kind.as_str(),
                events[1].driver_error.as_str(),
                events[1].restart_delay
            ),
            ("Restarting", "Restart within policy", 15_000_000_000)
        );
        assert_eq!(events[2].driver_message, "binlog");
        // A pending allocation has no task states yet; another group is no dtle task.
        let pending =
            json!({"ID": "x", "TaskGroup": "dest", "TaskStates": null, "ClientStatus": "pending"});
        let a = allocation(&pending)
            .expect("readable")
            .expect("a dtle task");
        assert_eq!(
            (a.role, a.task_state.state.as_str()),
            (Role::Dest, "pending")
        );
        assert!(allocation(&json!({"ID": "y", "TaskGroup": "cache"}))
            .expect("readable")
            .is_none());
        assert!(allocation(&json!([1])).is_err());
    }

    #[test]
    fn the_plugins_address_from_the_driver_attributes_or_the_node_address() {
        let node = |attrs: Value, driver: Value| json!({"Attributes": attrs, "Drivers": {"dtle": {"Attributes": driver, "Detected": true, "Healthy": true}}});
        let own = json!({"unique.network.ip-address": "10.0.0.7"});
        let n = node(
            own.clone(),
            json!({"driver.dtle.api_addr": "10.0.0.7:8190"}),
        );
        assert_eq!(plugin_address(&n), Ok("10.0.0.7:8190".into()));
        let n = node(own.clone(), json!({"driver.dtle.api_addr": "0.0.0.0:8190"}));
        assert_eq!(plugin_address(&n), Ok("10.0.0.7:8190".into()));
        let n = node(
            json!({"unique.network.ip-address": "fd00::7"}),
            json!({"driver.dtle.api_addr": "[::]:8190"}),
        );
        assert_eq!(plugin_address(&n), Ok("[fd00::7]:8190".into()));
        // Only in the node's attributes.
        let n = node(json!({"driver.dtle.api_addr": "h:1"}), Value::Null);
        assert_eq!(plugin_address(&n), Ok("h:1".into()));
        let err = plugin_address(&node(own, Value::Null)).expect_err("none");
        assert!(err.contains("driver.dtle.api_addr"), "{err}");
    }

    #[test]
    fn nodes_without_a_detected_dtle_driver_are_left_out() {
        let with = json!({"ID": "n1", "Name": "a", "Datacenter": "dc1", "Address": "10.0.0.1", "Status": "ready",
            "Drivers": {"dtle": {"Detected": true}}});
        let n = node(&with).expect("a dtle node");
        assert_eq!(
            (n.name.as_str(), n.http_addr.as_str(), n.status.as_str()),
            ("a", "10.0.0.1", "ready")
        );
        let without = json!({"ID": "n2", "Drivers": {"docker": {"Detected": true}}});
        assert!(node(&without).is_none());
    }

    #[test]
    fn the_plugins_stats_by_role() {
        let stats = driver::stats::TaskStats::default().snapshot();
        let answer = json!({"AllocID": "a", "Tasks": {"Dest": {"TaskID": "a/Dest/1", "Stats": stats, "EtaNanos": null, "Paused": false}}});
        let (read, eta) = task_stats(&answer, Role::Dest).expect("the Dest");
        assert_eq!((read, eta), (stats, None));
        assert!(task_stats(&answer, Role::Src)
            .expect_err("no Src")
            .contains("no Src task"));
        assert!(task_stats(&json!({"Tasks": {"Src": {"Stats": 1}}}), Role::Src).is_err());
    }
}
