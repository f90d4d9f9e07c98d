//! dtle 2.x response shapes, built from orchestrator records. Key names, types and forms follow
//! dtle's documented API (seed 004: Nomad-style capitalised keys, event times in RFC 3339,
//! `CreateTime` in ns, `ETA` as a Go duration). Jobs are always rendered from their redacted
//! form: no password leaves through here.
//!
//! A job's task configs show the values in the form the user posted them (`"ChunkSize": "2000"`
//! stays a string; [`jobs::posted`]), with what dtle 2.x's server wrote into every task's config:
//! `NatsAddr` (the NATS server the tasks use) and `Gtid`. The Src's `Gtid` follows what the
//! target has committed once that is known (so a job posted back as shown resumes where it is),
//! not the value first posted; the Dest shows the same. With it, the other start fields show
//! that position too (`AutoGtid` false, no `GtidStart` or `BinlogFile`): the job as shown is the
//! job that resumes where it is, and can be posted back. `NodeName` is the node that runs the
//! task; `ConfigLock` is dtle 2.x's (always `{}`).

use crate::orchestrator::{rfc3339, Allocation, JobRecord, Node, Registered};
use driver::stats::StatsSnapshot;
use jobs::Role;
use serde_json::{json, Value};
use std::time::Duration;

/// A job, as `GET /v1/job/{ID}` shows it.
pub fn job(record: &JobRecord) -> Value {
    let spec = record.spec.redacted();
    let mut tasks = jobs::posted::tasks_as_posted(&spec, &record.posted);
    let mut shown_gtid = record.executed_gtid.clone();
    for (task, role) in tasks.iter_mut().zip([Role::Src, Role::Dest]) {
        let Value::Object(map) = task else { continue };
        map.insert("Leader".into(), json!(role == Role::Dest));
        map.insert("Constraints".into(), Value::Null);
        map.insert("ConfigLock".into(), json!({}));
        let slot = match role {
            Role::Src => 0,
            Role::Dest => 1,
        };
        if let Some(node) = &record.task_nodes[slot] {
            map.insert("NodeName".into(), json!(node.name));
        }
        let Some(Value::Object(config)) = map.get_mut("Config") else {
            continue;
        };
        if let Some(nats) = &record.nats_addr {
            config.insert("NatsAddr".into(), json!(nats));
        }
        if role == Role::Src && shown_gtid.is_some() {
            for (key, none) in [
                ("GtidStart", json!("")),
                ("AutoGtid", json!(false)),
                ("BinlogFile", json!("")),
                ("BinlogPos", json!(0)),
            ] {
                if let Some(value) = config.get_mut(key) {
                    *value = none;
                }
            }
        }
        let gtid = shown_gtid.get_or_insert_with(|| {
            config
                .get("Gtid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
        config.insert("Gtid".into(), json!(gtid));
    }
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
            let killed = matches!(e.kind.as_str(), "Killed" | "Paused");
            json!({
                "Type": e.kind,
                "Time": rfc3339(e.time),
                "Message": e.message,
                "DisplayMessage": if e.driver_error.is_empty() { e.message.clone() } else { format!("{}: {}", e.message, e.driver_error) },
                "DiskLimit": 0,
                "DriverError": e.driver_error,
                "DriverMessage": e.driver_message,
                "ExitCode": e.exit_code,
                "FailedSibling": "",
                "FailsTask": e.kind == "Terminated" && !e.driver_error.is_empty(),
                "KillError": "",
                "KillReason": if killed { e.message.clone() } else { String::new() },
                "KillTimeout": e.kill_timeout,
                "RestartReason": if e.kind == "Restarting" { e.driver_error.clone() } else { String::new() },
                "SetupError": "",
                "StartDelay": e.restart_delay,
                "TaskSignal": "",
                "TaskSignalReason": "",
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
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
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
                "ETA": eta_text(s, eta),
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
                    "Num": s.throughput.0,
                    "Time": s.throughput.1,
                },
                "Timestamp": now_ns,
            }
        }
    })
}

/// dtle's `ETA`: the estimate as a Go duration (`1h2m3s`), `0s` when the snapshot is done (or
/// there is none), `N/A` before anything can be estimated.
fn eta_text(s: &StatsSnapshot, eta: Option<Duration>) -> String {
    match eta {
        Some(eta) => go_duration(eta),
        None if s.progress_pct() >= 100.0 => "0s".to_owned(),
        None => "N/A".to_owned(),
    }
}

/// A duration as Go's `time.Duration` prints it, in whole seconds: `0s`, `45s`, `2m0s`, `1h2m3s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
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
                    "CreateIndex": n.create_index,
                    "ModifyIndex": n.modify_index,
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
        let parsed = jobs::parse_job(text).expect("valid");
        let mut record = JobRecord::new(parsed.spec, parsed.posted, 1);
        record.executed_gtid = executed_gtid.map(str::to_owned);
        record
    }

    #[test]
    fn the_src_gtid_follows_the_executed_position_and_passwords_stay_masked() {
        assert_eq!(job(&record(None))["Tasks"][0]["Config"]["Gtid"], "0-1-5");
        let shown = job(&record(Some("0-1-90")));
        assert_eq!(shown["Tasks"][0]["Type"], "Src");
        assert_eq!(shown["Tasks"][0]["Config"]["Gtid"], "0-1-90");
        // dtle 2.x's server wrote the Gtid into every task's config (seed 004).
        assert_eq!(shown["Tasks"][1]["Config"]["Gtid"], "0-1-90");
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(
            job_stub(&record(Some("0-1-90")))["JobSummary"]["Tasks"][0]["Config"]["Gtid"],
            "0-1-90"
        );
    }

    #[test]
    fn etas_are_go_durations_or_na() {
        assert_eq!(go_duration(Duration::from_secs(0)), "0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(go_duration(Duration::from_millis(3_723_900)), "1h2m3s");
        let mut s = driver::stats::TaskStats::default().snapshot();
        assert_eq!(eta_text(&s, None), "0s", "no snapshot to wait for");
        s.snapshot_rows_estimated = 100;
        assert_eq!(eta_text(&s, None), "N/A");
        assert_eq!(eta_text(&s, Some(Duration::from_secs(75))), "1m15s");
    }

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
        let shown = allocation(&alloc);
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

    #[test]
    fn a_job_shown_with_its_executed_position_posts_back_as_itself() {
        let text = r#"{"Name": "g", "Tasks": [
          {"Type": "Src", "NodeName": "n1", "Config": {"AutoGtid": true, "ChunkSize": "10",
            "ConnectionConfig": {"Host": "h", "Port": "1", "User": "u", "Password": "secret"}}},
          {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "secret"}}}]}"#;
        let parsed = jobs::parse_job(text).expect("valid");
        let mut record = JobRecord::new(parsed.spec.clone(), parsed.posted, 3);
        record.executed_gtid = Some("0-1-90".into());
        let here = crate::orchestrator::TaskNode {
            id: "id-1".into(),
            name: "n1".into(),
        };
        record.task_nodes = [Some(here.clone()), Some(here)];
        let shown = job(&record);
        assert_eq!(shown["Tasks"][0]["Config"]["AutoGtid"], false);
        assert_eq!(shown["Tasks"][0]["Config"]["ChunkSize"], "10");
        let again = jobs::from_json_value(&shown).expect("the shown job parses");
        let executed = record.executed();
        let merged = again
            .spec
            .reconciled_with(&record.spec, &record.shown(executed.as_ref()));
        assert_eq!(merged, parsed.spec);
    }
}
