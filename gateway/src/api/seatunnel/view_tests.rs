//! Tests of [`super`]: dtle states and histories as SeaTunnel's, times, tables.

use super::*;
use crate::orchestrator::{TaskEvent, TaskState};

fn record(status: &str, paused: bool) -> JobRecord {
    let text = r#"{"Name": "st_v", "Tasks": [
      {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "a", "TableSchemaRename": "b",
         "Tables": [{"TableName": "t", "TableRename": "u"}]}, {"TableSchema": "c"}],
        "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "secret"}}},
      {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "secret"}}}]}"#;
    JobRecord {
        spec: jobs::parse_job(text).expect("valid").spec,
        status: status.into(),
        status_description: String::new(),
        create_index: 1,
        modify_index: 1,
        job_modify_index: 1,
        paused,
        posted: jobs::Posted::default(),
        executed_gtid: None,
        nats_addr: None,
        task_nodes: [None, None],
    }
}

fn alloc(role: Role, client_status: &str, events: &[(&str, &str)]) -> Allocation {
    Allocation {
        id: format!("{role}-id"),
        job_id: "st_v".into(),
        eval_id: String::new(),
        node_id: "n".into(),
        name: format!("st_v.{role}"),
        role,
        client_status: client_status.into(),
        desired_status: "run".into(),
        create_time: 1_700_000_000_000_000_000,
        modify_time: 1_700_000_100_000_000_000,
        create_index: 1,
        modify_index: 1,
        task_state: TaskState {
            state: String::new(),
            failed: client_status == "failed",
            started_at: Some("2023-11-14T22:13:20.5Z".into()),
            finished_at: None,
            restarts: 1,
            events: events
                .iter()
                .enumerate()
                .map(|(i, (kind, error))| TaskEvent {
                    kind: (*kind).into(),
                    time: 1_700_000_000_000_000_000 + i as u64 * 1_000_000_000,
                    message: "m".into(),
                    driver_error: (*error).into(),
                    restart_delay: 2_000_000_000,
                    driver_message: String::new(),
                    kill_timeout: 0,
                    exit_code: 0,
                })
                .collect(),
        },
    }
}

fn view(record: &JobRecord, allocs: Vec<Allocation>) -> JobView {
    from_parts(
        record,
        allocs
            .into_iter()
            .map(|alloc| TaskView { alloc, stats: None })
            .collect(),
        None,
    )
}

#[test]
fn dtle_states_read_as_seatunnel_states() {
    let running = alloc(Role::Src, "running", &[("Started", "")]);
    let dest = alloc(Role::Dest, "running", &[("Started", "")]);
    let v = view(
        &record("running", false),
        vec![running.clone(), dest.clone()],
    );
    assert_eq!(v.status, StStatus::Running);
    assert_eq!((v.error, v.finished_ms), (None, None));

    let failed = alloc(
        Role::Dest,
        "failed",
        &[("Started", ""), ("Terminated", "Connection refused")],
    );
    let v = view(&record("running", false), vec![running.clone(), failed]);
    assert_eq!(v.status, StStatus::Failed);
    assert_eq!(v.error.as_deref(), Some("Connection refused"));
    assert_eq!(v.finished_ms, Some(1_700_000_001_000));

    let restarting = alloc(
        Role::Dest,
        "pending",
        &[("Started", ""), ("Restarting", "Connection refused")],
    );
    let v = view(&record("running", false), vec![running.clone(), restarting]);
    assert_eq!(v.status, StStatus::Pending);
    assert!(v.restoring);
    let reason = v.pending_reason.expect("a reason");
    assert!(
        reason.contains("Dest") && reason.contains("Connection refused"),
        "{reason}"
    );

    let killed = |role| alloc(role, "complete", &[("Started", ""), ("Killed", "")]);
    let v = view(
        &record("dead", false),
        vec![killed(Role::Src), killed(Role::Dest)],
    );
    assert_eq!(v.status, StStatus::Canceled);
    assert!(v.finished_ms.is_some());

    let done = |role| alloc(role, "complete", &[("Started", ""), ("Terminated", "")]);
    let v = view(
        &record("dead", false),
        vec![done(Role::Src), done(Role::Dest)],
    );
    assert_eq!(v.status, StStatus::Finished);

    let v = view(
        &record("paused", true),
        vec![killed(Role::Src), killed(Role::Dest)],
    );
    assert_eq!(v.status, StStatus::SavepointDone);
    assert!(v.status.is_ended());
    assert_eq!(v.created_ms, Some(1_700_000_000_000));
    assert_eq!(v.started_ms, Some(1_700_000_000_500));
    assert!(!format!("{:?}", v.spec).contains("secret"));
}

#[test]
fn times_and_tables() {
    assert_eq!(seatunnel_time(1_700_000_000_999), "2023-11-14 22:13:20");
    assert_eq!(
        parse_rfc3339_ms("2023-11-14T22:13:20.123456789Z"),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        parse_rfc3339_ms("2023-11-14T22:13:20Z"),
        Some(1_700_000_000_000)
    );
    assert_eq!(parse_rfc3339_ms("yesterday"), None);
    let spec = record("running", false).spec;
    assert_eq!(rule_tables(&spec, false), ["a.t", "c.*"]);
    assert_eq!(rule_tables(&spec, true), ["b.u", "c.*"]);
}

#[test]
fn the_history_names_ended_states_and_outlives_a_purge() {
    let rec = record("dead", false);
    let killed = |role| alloc(role, "complete", &[("Started", ""), ("Killed", "")]);
    let mut history = JobHistory::new(&rec.spec, 1_600_000_000_000);
    history.enter(
        JobState::SavepointDone,
        "stopped with a savepoint",
        1_600_000_005_000,
    );
    let v = from_parts(
        &rec,
        vec![killed(Role::Src), killed(Role::Dest)]
            .into_iter()
            .map(|alloc| TaskView { alloc, stats: None })
            .collect(),
        Some(&history),
    );
    assert_eq!(v.status, StStatus::SavepointDone);
    assert_eq!(v.created_ms, Some(1_600_000_000_000));
    assert_eq!(v.finished_ms, Some(1_600_000_005_000));

    // Running again in the history: the tasks say whether it waits.
    history.start(&rec.spec, "posted again", 1_600_000_010_000);
    let restarting = alloc(
        Role::Dest,
        "pending",
        &[("Started", ""), ("Restarting", "refused")],
    );
    let v = from_parts(
        &record("running", false),
        vec![TaskView {
            alloc: restarting,
            stats: None,
        }],
        Some(&history),
    );
    assert_eq!(v.status, StStatus::Pending);
    assert_eq!(v.started_ms, Some(1_600_000_010_000));

    // Failed, then purged: only the history is left, and it tells the error.
    history.enter(
        JobState::Failed,
        "the Dest task failed: refused",
        1_600_000_020_000,
    );
    history.purged = true;
    let v = from_history(&history);
    assert_eq!(v.status, StStatus::Failed);
    assert_eq!(v.error.as_deref(), Some("the Dest task failed: refused"));
    assert_eq!(v.finished_ms, Some(1_600_000_020_000));
    assert!(v.purged && v.src.is_none());
    assert_eq!(v.tables(false), ["a.t", "c.*"]);
    assert_eq!(v.tables(true), ["b.u", "c.*"]);
    assert!(!format!("{:?}", v.spec).contains("secret"));
    let counters = v.counters(0);
    assert_eq!((counters.received, counters.written), (0, 0));
    // Rates of an ended job are over its last run.
    assert_eq!(counters.src_secs, 10.0);
}
