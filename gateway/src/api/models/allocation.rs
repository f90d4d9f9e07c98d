//! `GET /v1/job/{ID}/allocations`: one allocation per run of a task, with Nomad's fields and
//! the task's events (times in RFC 3339).

use crate::orchestrator::{rfc3339, Allocation};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// One allocation of `GET /v1/job/{ID}/allocations`: one task's run on a node.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleAllocation)]
pub struct AllocationView {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub name: String,
    /// `Src` or `Dest`.
    pub task: String,
    pub task_group: String,
    /// `pending`, `running`, `complete`, `failed`, ...
    pub client_status: String,
    pub client_description: String,
    /// `run` or `stop`.
    pub desired_status: String,
    pub desired_description: String,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix time in ns.
    pub create_time: u64,
    /// Unix time in ns.
    pub modify_time: u64,
    /// One entry, keyed by the task's name (`Src` or `Dest`).
    pub task_states: BTreeMap<String, TaskStateView>,
}

/// A task's state in an allocation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleTaskState)]
pub struct TaskStateView {
    /// `pending`, `running` or `dead`.
    pub state: String,
    pub failed: bool,
    pub restarts: u64,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    pub events: Vec<TaskEventView>,
}

/// A task event, with Nomad's fields.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleTaskEvent)]
pub struct TaskEventView {
    /// `Received`, `Started`, `Terminated`, `Restarting`, `Killed`, `Paused`, ...
    #[serde(rename = "Type")]
    pub kind: String,
    /// RFC 3339 with ns.
    pub time: String,
    pub message: String,
    pub display_message: String,
    pub disk_limit: u64,
    pub driver_error: String,
    pub driver_message: String,
    pub exit_code: i64,
    pub failed_sibling: String,
    pub fails_task: bool,
    pub kill_error: String,
    pub kill_reason: String,
    /// ns.
    pub kill_timeout: u64,
    pub restart_reason: String,
    pub setup_error: String,
    /// ns.
    pub start_delay: u64,
    pub task_signal: String,
    pub task_signal_reason: String,
}

/// One allocation of `GET /v1/job/{ID}/allocations`.
pub fn allocation(a: &Allocation) -> AllocationView {
    let events = a
        .task_state
        .events
        .iter()
        .map(|e| {
            let killed = matches!(e.kind.as_str(), "Killed" | "Paused");
            TaskEventView {
                kind: e.kind.clone(),
                time: rfc3339(e.time),
                message: e.message.clone(),
                display_message: if e.driver_error.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.message, e.driver_error)
                },
                disk_limit: 0,
                driver_error: e.driver_error.clone(),
                driver_message: e.driver_message.clone(),
                exit_code: e.exit_code,
                failed_sibling: String::new(),
                fails_task: e.kind == "Terminated" && !e.driver_error.is_empty(),
                kill_error: String::new(),
                kill_reason: if killed {
                    e.message.clone()
                } else {
                    String::new()
                },
                kill_timeout: e.kill_timeout,
                restart_reason: if e.kind == "Restarting" {
                    e.driver_error.clone()
                } else {
                    String::new()
                },
                setup_error: String::new(),
                start_delay: e.restart_delay,
                task_signal: String::new(),
                task_signal_reason: String::new(),
            }
        })
        .collect();
    let task = a.role.as_str().to_owned();
    let state = TaskStateView {
        state: a.task_state.state.clone(),
        failed: a.task_state.failed,
        restarts: a.task_state.restarts,
        started_at: a.task_state.started_at.clone(),
        finished_at: a.task_state.finished_at.clone(),
        events,
    };
    AllocationView {
        id: a.id.clone(),
        job_id: a.job_id.clone(),
        eval_id: a.eval_id.clone(),
        node_id: a.node_id.clone(),
        name: a.name.clone(),
        task: task.clone(),
        task_group: task.clone(),
        client_status: a.client_status.clone(),
        client_description: String::new(),
        desired_status: a.desired_status.clone(),
        desired_description: String::new(),
        create_index: a.create_index,
        modify_index: a.modify_index,
        create_time: a.create_time,
        modify_time: a.modify_time,
        task_states: BTreeMap::from([(task, state)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_show_nomads_fields_and_rfc3339_times() {
        let mut alloc: Allocation = serde_json::from_value(json!({
            "id": "a", "job_id": "j", "eval_id": "e", "node_id": "n", "name": "j.Src",
            "role": "Src", "client_status": "running", "desired_status": "run",
            "create_time": 1, "modify_time": 1, "task_state": {"state": "running", "failed": false,
            "started_at": null, "finished_at": null, "restarts": 0, "events": [{"kind": "Killed",
            "time": 1538993511603015093u64, "message": "stopped", "driver_error": "",
            "restart_delay": 0, "driver_message": ""}]}
        }))
        .expect("an allocation as stored before indexes and kill timeouts");
        alloc.task_state.events[0].kill_timeout = 10;
        let shown = serde_json::to_value(allocation(&alloc)).expect("serialises");
        let event = &shown["TaskStates"]["Src"]["Events"][0];
        assert_eq!(event["Time"], "2018-10-08T10:11:51.603015093Z");
        assert_eq!(
            (
                &event["KillReason"],
                &event["KillTimeout"],
                &event["ExitCode"]
            ),
            (&json!("stopped"), &json!(10), &json!(0))
        );
        assert_eq!(shown["CreateIndex"], 0);
    }
}
