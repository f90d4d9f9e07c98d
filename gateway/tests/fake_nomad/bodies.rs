//! Nomad's (and the dtle plugin's) answers, written from Nomad's HTTP API documentation
//! (website/content/api-docs: jobs.mdx, allocations.mdx, nodes.mdx).

use super::NODE_ID;
use serde_json::{json, Value};

/// A job list entry (jobs.mdx, "List Jobs").
pub fn stub(job: &Value) -> Value {
    json!({
        "ID": job["ID"], "ParentID": "", "Name": job["Name"], "Type": job["Type"],
        "Priority": 50, "Status": job["Status"], "StatusDescription": "",
        "JobSummary": {"JobID": job["ID"], "Namespace": "default", "Summary": {},
            "Children": {"Pending": 0, "Running": 0, "Dead": 0},
            "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"]},
        "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"],
        "JobModifyIndex": job["JobModifyIndex"]
    })
}

/// The node (nodes.mdx, "Read Node"), with the dtle driver's attributes.
pub fn node(api_addr: &str) -> Value {
    json!({
        "Attributes": {
            "cpu.arch": "amd64", "kernel.name": "linux", "nomad.version": "1.6.2",
            "unique.hostname": "node-a", "unique.network.ip-address": "127.0.0.1",
            "driver.dtle": "1"
        },
        "Datacenter": "dc1",
        "Drivers": {
            "dtle": {
                "Attributes": {"driver.dtle": "true", "driver.dtle.version": "0.1.0",
                               "driver.dtle.api_addr": api_addr},
                "Detected": true, "HealthDescription": "Healthy", "Healthy": true,
                "UpdateTime": "2019-08-26T12:22:50.762716458+02:00"
            },
            "exec": {"Attributes": null, "Detected": false, "HealthDescription": "Driver must run as root",
                     "Healthy": false, "UpdateTime": "2019-08-26T12:22:50.6873373+02:00"}
        },
        "HTTPAddr": "127.0.0.1:4646", "ID": NODE_ID, "Name": "node-a", "NodeClass": "",
        "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "",
        "TLSEnabled": false
    })
}

/// The node list (nodes.mdx, "List Nodes"): a dtle node and one without the driver.
pub fn nodes() -> Value {
    json!([
        {"Address": "10.138.0.5", "CreateIndex": 6, "Datacenter": "dc1", "Drain": false,
         "Drivers": {"dtle": {"Attributes": {"driver.dtle": "true"}, "Detected": true, "HealthDescription": "Healthy", "Healthy": true, "UpdateTime": "2018-04-11T23:33:48.781948669Z"}},
         "ID": NODE_ID, "LastDrain": null, "ModifyIndex": 2526, "Name": "node-a", "NodeClass": "",
         "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "", "Version": "1.6.2"},
        {"Address": "10.138.0.6", "CreateIndex": 7, "Datacenter": "dc1", "Drain": false,
         "Drivers": {"docker": {"Attributes": {"driver.docker.version": "18.03.0-ce"}, "Detected": true, "HealthDescription": "Driver is available and responsive", "Healthy": true, "UpdateTime": "2018-04-11T23:34:48.713720323Z"}},
         "ID": "0a1b2c3d-4d6e-c0de-26d0-e383c49be942", "LastDrain": null, "ModifyIndex": 2527, "Name": "node-b", "NodeClass": "",
         "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "", "Version": "1.6.2"}
    ])
}

/// An allocation of `job`'s `group` (jobs.mdx, "List Job Allocations"), `status` its client
/// status, with the task events Nomad records for a started task.
pub fn allocation(id: &str, job: &str, group: &str, status: &str, create_time: u64) -> Value {
    let state = match status {
        "running" => "running",
        "pending" => "pending",
        _ => "dead",
    };
    let mut events = vec![
        json!({"Type": "Received", "Time": create_time + 1000, "FailsTask": false, "RestartReason": "",
               "SetupError": "", "DriverError": "", "ExitCode": 0, "Signal": 0, "Message": "",
               "DisplayMessage": "Task received by client", "KillTimeout": 0, "KillError": "",
               "KillReason": "", "StartDelay": 0, "DownloadError": "", "ValidationError": "",
               "DiskLimit": 0, "FailedSibling": "", "VaultError": "", "TaskSignalReason": "",
               "TaskSignal": "", "DriverMessage": ""}),
        json!({"Type": "Task Setup", "Time": create_time + 2000, "Message": "Building Task Directory",
               "DisplayMessage": "Building Task Directory", "DriverMessage": ""}),
        json!({"Type": "Started", "Time": create_time + 3000, "Message": "",
               "DisplayMessage": "Task started by client", "DriverMessage": ""}),
    ];
    if status == "failed" {
        events.push(
            json!({"Type": "Terminated", "Time": create_time + 4000, "Message": "",
            "DisplayMessage": "Exit Code: 1", "DriverError": "", "ExitCode": 1,
            "DriverMessage": ""}),
        );
        events.push(
            json!({"Type": "Restarting", "Time": create_time + 5000, "Message": "",
            "DisplayMessage": "Task restarting in 15s", "RestartReason": "Restart within policy",
            "StartDelay": 15_000_000_000u64, "DriverMessage": ""}),
        );
    }
    json!({
        "ID": id,
        "EvalID": "a9c5effc-2242-51b2-f1fe-054ee11ab189",
        "Name": format!("{job}.{group}[0]"),
        "NodeID": NODE_ID,
        "PreviousAllocation": "",
        "NextAllocation": "",
        "RescheduleTracker": null,
        "JobID": job,
        "TaskGroup": group,
        "DesiredStatus": if state == "dead" { "stop" } else { "run" },
        "DesiredDescription": "",
        "ClientStatus": status,
        "ClientDescription": "",
        "TaskStates": {
            group: {
                "State": state,
                "Failed": status == "failed",
                "Restarts": if status == "failed" { 1 } else { 0 },
                "StartedAt": "2017-05-25T23:41:23.240184101Z",
                "FinishedAt": if state == "dead" { "2017-05-25T23:45:00.000000000Z" } else { "0001-01-01T00:00:00Z" },
                "Events": events
            }
        },
        "CreateIndex": 9,
        "ModifyIndex": 13,
        "CreateTime": create_time,
        "ModifyTime": create_time + 3000
    })
}

/// The plugin's stats answer for one task: a snapshot with a few counters set, the executed
/// GTID set when given.
pub fn plugin_stats(alloc_id: &str, task: &str, rows_read: u64, executed: Option<&str>) -> Value {
    let mut stats = serde_json::to_value(driver::stats::TaskStats::default().snapshot())
        .expect("a snapshot is JSON");
    stats["rows_read"] = json!(rows_read);
    stats["txns_read"] = json!(7);
    stats["stage"] = json!("binlog");
    stats["position"]["gtid_set"] = json!("0-1-100");
    if let Some(set) = executed {
        stats["executed"] = json!({"gtid_set": set, "file": "", "pos": 0});
    }
    json!({"AllocID": alloc_id, "Tasks": {task: {"TaskID": format!("{alloc_id}/{task}/0a1b2c3d"),
        "Stats": stats, "EtaNanos": 42_000_000_000u64, "Paused": false}}})
}
