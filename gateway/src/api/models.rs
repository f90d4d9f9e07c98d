//! dtle 2.x response shapes, built from orchestrator records. Key names and types follow dtle's
//! documented API (Nomad-style capitalised keys, times in ns). Jobs are always rendered from their
//! redacted form: no password leaves through here.
//!
//! As in dtle, the Src task's `Gtid` follows what the target has committed once that is known
//! (so a job posted back as shown resumes where it is), not the value first posted.

use crate::orchestrator::{Allocation, JobRecord, Node, Registered};
use driver::stats::StatsSnapshot;
use serde_json::{json, Value};
use std::time::Duration;

/// A job, as `GET /v1/job/{ID}` shows it.
pub fn job(record: &JobRecord) -> Value {
    let spec = record.spec.redacted();
    let tasks: Vec<Value> = jobs::render::dtle_tasks(&spec)
        .into_iter()
        .map(|mut task| {
            if let Value::Object(map) = &mut task {
                map.insert(
                    "Leader".into(),
                    json!(map.get("Type") == Some(&json!("Dest"))),
                );
                map.insert("Constraints".into(), Value::Null);
                let src = map.get("Type") == Some(&json!("Src"));
                if let (true, Some(gtid), Some(Value::Object(config))) =
                    (src, &record.executed_gtid, map.get_mut("Config"))
                {
                    config.insert("Gtid".into(), json!(gtid));
                }
            }
            task
        })
        .collect();
    json!({
        "ID": spec.id,
        "Name": spec.name,
        "Type": "synchronous",
        "Region": spec.region,
        "Datacenters": spec.datacenters,
        "Failover": spec.failover,
        "Status": record.status,
        "StatusDescription": record.status_description,
        "Paused": record.paused,
        "Tasks": tasks,
        "Orders": [],
        "Constraints": Value::Null,
        "EnforceIndex": false,
        "CreateIndex": record.create_index,
        "ModifyIndex": record.modify_index,
        "JobModifyIndex": record.job_modify_index,
    })
}

/// A job in the list of `GET /v1/jobs`.
pub fn job_stub(record: &JobRecord) -> Value {
    json!({
        "ID": record.spec.id,
        "Name": record.spec.name,
        "Type": "synchronous",
        "Status": record.status,
        "StatusDescription": record.status_description,
        "JobSummary": job(record),
        "CreateIndex": record.create_index,
        "ModifyIndex": record.modify_index,
        "JobModifyIndex": record.job_modify_index,
    })
}

/// The answer to a registration, a stop, a pause or a resume.
pub fn registered(r: &Registered, warnings: &[jobs::Diagnostic]) -> Value {
    json!({
        "ID": r.job_id,
        "EvalID": r.eval_id,
        "EvalCreateIndex": r.job_modify_index,
        "JobModifyIndex": r.job_modify_index,
        "Index": r.job_modify_index,
        "KnownLeader": true,
        "LastContact": 0,
        "Success": true,
        "Changed": r.changed,
        "Warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// One allocation of `GET /v1/job/{ID}/allocations`.
pub fn allocation(a: &Allocation) -> Value {
    let events: Vec<Value> = a
        .task_state
        .events
        .iter()
        .map(|e| {
            json!({
                "Type": e.kind,
                "Time": e.time,
                "Message": e.message,
                "DisplayMessage": if e.driver_error.is_empty() { e.message.clone() } else { format!("{}: {}", e.message, e.driver_error) },
                "DriverError": e.driver_error,
                "DriverMessage": e.driver_message,
                "RestartReason": if e.kind == "Restarting" { e.driver_error.clone() } else { String::new() },
                "StartDelay": e.restart_delay,
                "KillError": "",
                "FailsTask": e.kind == "Terminated" && !e.driver_error.is_empty(),
            })
        })
        .collect();
    let task = a.role.as_str();
    json!({
        "ID": a.id,
        "JobID": a.job_id,
        "EvalID": a.eval_id,
        "NodeID": a.node_id,
        "Name": a.name,
        "Task": task,
        "TaskGroup": task,
        "ClientStatus": a.client_status,
        "ClientDescription": "",
        "DesiredStatus": a.desired_status,
        "DesiredDescription": "",
        "CreateIndex": 0,
        "ModifyIndex": 0,
        "CreateTime": a.create_time,
        "ModifyTime": a.modify_time,
        "TaskStates": {
            task: {
                "State": a.task_state.state,
                "Failed": a.task_state.failed,
                "Restarts": a.task_state.restarts,
                "StartedAt": a.task_state.started_at,
                "FinishedAt": a.task_state.finished_at,
                "Events": events,
            }
        },
    })
}

/// dtle's stats object for `GET /v1/agent/allocation/{allocID}/stats`.
pub fn stats(a: &Allocation, s: &StatsSnapshot, eta: Option<Duration>, now_ns: u64) -> Value {
    let gtid = s
        .position
        .gtid_set
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    // The Src knows both what it read and what the target executed; the Dest's position is
    // what it executed.
    let executed = s
        .executed
        .as_ref()
        .map(|p| {
            p.gtid_set
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .unwrap_or_else(|| gtid.clone());
    let (read_rows, read_txns, exec_rows, exec_txns) =
        (s.rows_read, s.txns_read, s.rows_applied, s.txns_applied);
    let table_stats: serde_json::Map<String, Value> = s
        .tables
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                json!({"InsertCount": t.inserts, "UpdateCount": t.updates, "DelCount": t.deletes, "RowCount": t.rows}),
            )
        })
        .collect();
    json!({
        "Tasks": {
            a.role.as_str(): {
                "Backlog": format!("{}/{}", s.backlog.0, s.backlog.1),
                "BufferStat": {
                    "ExtractorTxQueueSize": s.backlog.0,
                    "ApplierTxQueueSize": 0,
                    "ApplierGroupTxQueueSize": 0,
                    "SendByTimeout": s.sends_by_timeout,
                    "SendBySizeFull": s.sends_by_size,
                },
                "CurrentCoordinates": {
                    "File": s.position.file,
                    "Position": s.position.pos,
                    "GtidSet": gtid,
                    "RelayMasterLogFile": "",
                    "ReadMasterLogPos": 0,
                    "RetrievedGtidSet": "",
                    "ExecutedGtidSet": executed,
                },
                "DelayCount": s.lag_seconds.map(|lag| json!({"Num": 0, "Time": lag})),
                "ETA": eta.map_or_else(|| if s.progress_pct() >= 100.0 { "0s".to_owned() } else { String::new() }, |d| format!("{}s", d.as_secs())),
                "ExecMasterRowCount": exec_rows,
                "ExecMasterTxCount": exec_txns,
                "MsgStat": {
                    "InMsgs": s.msgs_in,
                    "OutMsgs": s.msgs_out,
                    "InBytes": s.bytes_in,
                    "OutBytes": s.bytes_out,
                    "Reconnects": s.reconnects,
                },
                "ProgressPct": format!("{:.1}", s.progress_pct()),
                "ReadMasterRowCount": read_rows,
                "ReadMasterTxCount": read_txns,
                "Stage": s.stage,
                "TableStats": table_stats,
                "ThroughputStat": {
                    "num": s.throughput.0,
                    "time": s.throughput.1,
                },
                "Timestamp": now_ns,
            }
        }
    })
}

/// `GET /v1/nodes`.
pub fn nodes(nodes: &[Node]) -> Value {
    Value::Array(
        nodes
            .iter()
            .map(|n| {
                json!({
                    "ID": n.id,
                    "Name": n.name,
                    "Datacenter": n.datacenter,
                    "HTTPAddr": n.http_addr,
                    "Status": n.status,
                    "StatusDescription": "",
                    "CreateIndex": 0,
                    "ModifyIndex": 0,
                })
            })
            .collect(),
    )
}

/// `GET /v1/members`.
pub fn members(nodes: &[Node], region: &str) -> Value {
    let members: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let (addr, port) = n.http_addr.rsplit_once(':').unwrap_or((n.http_addr.as_str(), "0"));
            json!({
                "Name": n.name,
                "Addr": addr,
                "Port": port.parse::<u16>().unwrap_or(0),
                "Status": "alive",
                "Tags": {"dc": n.datacenter, "region": region, "role": "dtle", "build": env!("CARGO_PKG_VERSION")},
                "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
            })
        })
        .collect();
    json!({
        "Members": members,
        "ServerName": nodes.first().map(|n| n.name.clone()).unwrap_or_default(),
        "ServerDC": nodes.first().map(|n| n.datacenter.clone()).unwrap_or_default(),
        "ServerRegion": region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(executed_gtid: Option<&str>) -> JobRecord {
        let text = r#"{"Name": "g", "Tasks": [
          {"Type": "Src", "Config": {"Gtid": "0-1-5",
            "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "secret"}}},
          {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "secret"}}}]}"#;
        JobRecord {
            spec: jobs::parse_job(text).expect("valid").spec,
            status: "running".into(),
            status_description: String::new(),
            create_index: 1,
            modify_index: 1,
            job_modify_index: 1,
            paused: false,
            executed_gtid: executed_gtid.map(str::to_owned),
        }
    }

    #[test]
    fn the_src_gtid_follows_the_executed_position_and_passwords_stay_masked() {
        assert_eq!(job(&record(None))["Tasks"][0]["Config"]["Gtid"], "0-1-5");
        let shown = job(&record(Some("0-1-90")));
        assert_eq!(shown["Tasks"][0]["Type"], "Src");
        assert_eq!(shown["Tasks"][0]["Config"]["Gtid"], "0-1-90");
        assert!(shown["Tasks"][1]["Config"].get("Gtid").is_none());
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(
            job_stub(&record(Some("0-1-90")))["JobSummary"]["Tasks"][0]["Config"]["Gtid"],
            "0-1-90"
        );
    }
}
