//! The history's rules and its file: states, exceptions seen once, checkpoints only when the
//! position moves, bounds, and what survives reopening the folder.

use super::*;

fn spec(id: &str) -> JobSpec {
    let text = format!(
        r#"{{"ID": "{id}", "Name": "{id}", "Tasks": [
          {{"Type": "Src", "Config": {{"ReplicateDoDb": [
              {{"TableSchema": "a", "Tables": [{{"TableName": "t1"}}, {{"TableName": "t2"}}]}},
              {{"TableSchema": "b"}}],
            "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "secret-pw"}}}}}},
          {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u", "Password": "other-pw"}}}}}}]}}"#
    );
    jobs::parse_job(&text).expect("a valid job").spec
}

fn position(gtid: &str, rows: u64) -> PositionSample {
    PositionSample {
        gtid_set: Some(gtid.to_owned()),
        binlog_file: "bin.000001".into(),
        binlog_pos: 4,
        rows_applied: rows,
        txns_applied: rows / 2,
    }
}

fn failure(event_ns: u64, message: &str, restarted: bool) -> TaskFailure {
    TaskFailure {
        event_ns,
        message: message.into(),
        restarted,
    }
}

#[test]
fn a_registered_job_runs_and_keeps_its_tables_and_no_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j1"), "registered");
    let h = history.get("j1").expect("kept");
    assert_eq!(h.state, JobState::Running);
    assert_eq!(h.table_rules, ["a.t1", "a.t2", "b.*"]);
    assert_eq!(h.tables(), h.table_rules);
    assert_eq!(h.transitions.len(), 1);
    let file = std::fs::read_to_string(dir.path().join("history/j1.json")).expect("file");
    assert!(
        !file.contains("secret-pw") && !file.contains("other-pw"),
        "{file}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("history/j1.json"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn an_ended_job_keeps_its_end_until_it_is_posted_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    history.transition("j", JobState::Paused, "paused");
    history.resumed("j", "resumed");
    history.transition("j", JobState::Failed, "Access denied");
    let h = history.get("j").expect("kept");
    assert_eq!(h.state, JobState::Failed);
    assert_eq!(h.last_error.as_deref(), Some("Access denied"));
    let finished = h.finished_ms.expect("a finish time");
    // A stop (or purge) of a failed job does not make it canceled.
    history.transition("j", JobState::Canceled, "stopped");
    history.purged("j");
    let h = history.get("j").expect("kept after the purge");
    assert_eq!(
        (h.state, h.finished_ms, h.purged),
        (JobState::Failed, Some(finished), true)
    );
    let states: Vec<_> = h.transitions.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [
            JobState::Running,
            JobState::Paused,
            JobState::Running,
            JobState::Failed
        ]
    );
    history.registered(&spec("j"), "posted again");
    let h = history.get("j").expect("kept");
    assert_eq!(
        (h.state, h.finished_ms, h.purged),
        (JobState::Running, None, false)
    );
}

#[test]
fn purging_a_running_job_cancels_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    history.purged("j");
    let h = history.get("j").expect("kept");
    assert_eq!(h.state, JobState::Canceled);
    assert!(h.purged && h.finished_ms.is_some());
}

#[test]
fn each_failure_is_recorded_once_and_the_failure_that_ended_a_task_is_the_last_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    let events = [failure(10, "lost connection", true)];
    history.task_events("j", Role::Dest, &events);
    history.task_events("j", Role::Dest, &events);
    assert_eq!(history.get("j").expect("kept").exceptions_total, 1);
    assert_eq!(
        history.get("j").expect("kept").last_error.as_deref(),
        Some("lost connection")
    );
    history.task_events(
        "j",
        Role::Src,
        &[
            failure(5, "timeout", true),
            failure(20, "Access denied", false),
        ],
    );
    // A later restart cause does not hide the failure that ended a task.
    history.task_events("j", Role::Dest, &[failure(30, "deadlock", true)]);
    let h = history.get("j").expect("kept");
    assert_eq!(h.exceptions_total, 4);
    assert_eq!(h.last_error.as_deref(), Some("Access denied"));
    let tasks: Vec<_> = h.exceptions.iter().map(|e| (e.task, e.restarted)).collect();
    assert_eq!(
        tasks,
        [
            (Role::Dest, true),
            (Role::Src, true),
            (Role::Src, false),
            (Role::Dest, true)
        ]
    );
    assert_eq!(h.exceptions[2].time_ms, 0, "ns turned into ms");
}

#[test]
fn exceptions_are_bounded_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    let events: Vec<_> = (1..=MAX_EXCEPTIONS as u64 + 25)
        .map(|i| failure(i * 1_000_000, &format!("failure {i}"), true))
        .collect();
    history.task_events("j", Role::Src, &events);
    let h = history.get("j").expect("kept");
    assert_eq!(h.exceptions.len(), MAX_EXCEPTIONS);
    assert_eq!(h.exceptions_total, MAX_EXCEPTIONS as u64 + 25);
    assert_eq!(
        h.exceptions[0].message, "failure 26",
        "the oldest are dropped"
    );
}

#[test]
fn a_checkpoint_is_recorded_when_the_position_moves_with_the_rows_since_the_previous_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    let sample = |gtid: &str, rows: u64| Sample {
        position: Some(position(gtid, rows)),
        ..Sample::default()
    };
    assert_eq!(
        history.sample("j", &Sample::default()),
        None,
        "nothing known"
    );
    let first = history.sample("j", &sample("0-1-5", 10)).expect("first");
    assert_eq!((first.id, first.rows_since_previous), (1, 10));
    assert_eq!(history.sample("j", &sample("0-1-5", 10)), None, "unmoved");
    let second = history.sample("j", &sample("0-1-9", 25)).expect("moved");
    assert_eq!((second.id, second.rows_since_previous), (2, 15));
    assert_eq!(second.txns_since_previous, 12 - 5);
    // The job is stopped with a savepoint, then posted again: a restore of it, and the
    // counters of the new run start from zero.
    let savepoint = history
        .savepoint("j", &position("0-1-9", 25), 1234)
        .expect("always recorded");
    assert!(savepoint.savepoint && savepoint.id == 3 && savepoint.rows_since_previous == 0);
    let h = history.get("j").expect("kept");
    assert_eq!(h.state, JobState::SavepointDone);
    assert_eq!(h.latest_savepoint.as_ref(), Some(&savepoint));
    history.registered(&spec("j"), "posted again");
    let h = history.get("j").expect("kept");
    let restore = h.last_restore.expect("a restore");
    assert_eq!(
        (
            restore.checkpoint_id,
            restore.savepoint,
            restore.position.as_str()
        ),
        (3, true, "0-1-9")
    );
    assert_eq!(h.restores_total, 1);
    let third = history.sample("j", &sample("0-1-12", 4)).expect("moved");
    assert_eq!((third.id, third.rows_since_previous), (4, 4));
    assert_eq!(history.get("j").expect("kept").savepoints_total, 1);
}

#[test]
fn checkpoints_are_bounded_and_the_latest_savepoint_is_kept_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.registered(&spec("j"), "registered");
    history.savepoint("j", &position("0-1-1", 1), 5);
    history.registered(&spec("j"), "posted again");
    for i in 2..(MAX_CHECKPOINTS as u64 + 10) {
        let sample = Sample {
            position: Some(position(&format!("0-1-{i}"), i)),
            ..Sample::default()
        };
        history.sample("j", &sample);
    }
    let h = history.get("j").expect("kept");
    assert_eq!(h.checkpoints.len(), MAX_CHECKPOINTS);
    assert_eq!(h.checkpoints_total, MAX_CHECKPOINTS as u64 + 9);
    assert!(h.checkpoints.iter().all(|c| !c.savepoint));
    assert_eq!(h.latest_savepoint.map(|s| s.id), Some(1));
}

#[test]
fn counters_and_tables_are_kept_and_everything_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let history = History::open(dir.path()).expect("history");
        history.registered(&spec("j"), "registered");
        history.task_events("j", Role::Src, &[failure(7_000_000, "boom", false)]);
        let totals = VertexTotals {
            read_records: 5,
            write_records: 5,
            read_bytes: 0,
            write_bytes: 300,
        };
        let sample = Sample {
            position: Some(position("0-1-3", 5)),
            vertices: vec![(Role::Src, totals)],
            tables: vec!["b.x".into(), "a.t1".into(), "b.x".into()],
        };
        assert!(history.sample("j", &sample).is_some());
        history.transition("j", JobState::Failed, "boom");
    }
    std::fs::write(dir.path().join("history/broken.json"), "{not json").expect("write");
    let history = History::open(dir.path()).expect("reopened");
    let h = history.get("j").expect("read back");
    assert_eq!(h.state, JobState::Failed);
    assert_eq!(h.tables(), ["a.t1", "b.x"]);
    assert_eq!(h.vertices[&Role::Src].write_bytes, 300);
    assert_eq!((h.exceptions_total, h.checkpoints_total), (1, 1));
    // The event already seen is not recorded again after the restart.
    history.task_events("j", Role::Src, &[failure(7_000_000, "boom", false)]);
    assert_eq!(history.get("j").expect("kept").exceptions_total, 1);
    assert_eq!(history.all().len(), 1, "the broken file is skipped");
}

#[test]
fn unknown_jobs_are_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = History::open(dir.path()).expect("history");
    history.transition("nope", JobState::Failed, "x");
    history.purged("nope");
    assert!(history.sample("nope", &Sample::default()).is_none());
    assert!(history.all().is_empty());
}
