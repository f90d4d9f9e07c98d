//! Front-end for the job JSON dtle 2.x users POST to `/v1/jobs`:
//! `{"Name", "ID"?, "Failover"?, "Tasks": [{"Type": "Src"|"Dest", "Driver"?, "NodeName"?, "NodeID"?,
//! "Config": {...}}]}`, with either connection shape inside the configs. Fields that dtle's own
//! `GET /v1/job/{ID}` prints (Status, indexes, ...) are accepted so a fetched job can be re-posted;
//! being the server's, they are warned about but not kept on the job (a job posted back with them
//! is the same job).

use crate::assemble::{role_from_name, RawJob, RawTask};
use crate::diagnostic::{Diagnostics, Path};
use crate::read::ObjectReader;
use crate::spec::{Placement, Role};
use serde_json::{Map, Value};

/// Fields dtle's API prints that a user may send back: read-only, so not used.
const SET_BY_SERVER: &str = "set by the server; ignored when posted";
const READ_ONLY_JOB_FIELDS: &[(&str, &str)] = &[
    ("Type", SET_BY_SERVER),
    ("Status", SET_BY_SERVER),
    ("StatusDescription", SET_BY_SERVER),
    ("CreateIndex", SET_BY_SERVER),
    ("ModifyIndex", SET_BY_SERVER),
    ("JobModifyIndex", SET_BY_SERVER),
    ("EnforceIndex", SET_BY_SERVER),
    ("Orders", SET_BY_SERVER),
    ("Constraints", SET_BY_SERVER),
    ("Paused", SET_BY_SERVER),
    ("JobSummary", SET_BY_SERVER),
];
const READ_ONLY_TASK_FIELDS: &[(&str, &str)] = &[
    ("Leader", SET_BY_SERVER),
    ("ConfigLock", SET_BY_SERVER),
    ("Constraints", SET_BY_SERVER),
];

/// Reads a dtle 2.x job object found at `path` (the root, or `Job` in a Go client's
/// `RegisterJobRequest`).
pub(crate) fn read<'a>(
    job: &'a Map<String, Value>,
    path: Path,
    empty: &'a Map<String, Value>,
    diags: &mut Diagnostics,
) -> RawJob<'a> {
    let mut r = ObjectReader::new(job, path);
    let id = r
        .string("ID", diags)
        .filter(|s| !s.is_empty())
        .map(|s| (s, r.field_path("ID")));
    let name = r.string("Name", diags).map(|s| (s, r.field_path("Name")));
    let failover = r.bool("Failover", false, diags);
    let datacenters = r.strings("Datacenters", diags);
    let region = r.string("Region", diags).filter(|s| !s.is_empty());
    let tasks_path = r.field_path("Tasks");
    if !r.has("Tasks") {
        diags.error(
            &tasks_path,
            "missing: a job needs one Src and one Dest task",
        );
    }
    let tasks = r
        .objects("Tasks", diags)
        .into_iter()
        .map(|task| read_task(task, empty, diags))
        .collect();
    diags.skip_read_only(r.finish(), READ_ONLY_JOB_FIELDS, &[]);
    RawJob {
        id,
        name,
        failover,
        datacenters,
        region,
        tasks_path,
        tasks,
    }
}

fn read_task<'a>(
    mut task: ObjectReader<'a>,
    empty: &'a Map<String, Value>,
    diags: &mut Diagnostics,
) -> RawTask<'a> {
    let type_path = task.field_path("Type");
    let role = match task.string("Type", diags) {
        None => {
            diags.error(&type_path, "missing: \"Src\" or \"Dest\"");
            None
        }
        Some(t) => {
            let role = role_from_name(&t);
            if role.is_none() {
                diags.error(
                    &type_path,
                    format!("unknown task type {t:?}: expected \"Src\" or \"Dest\""),
                );
            }
            role
        }
    };
    let driver_path = task.field_path("Driver");
    match task.string("Driver", diags) {
        None => {}
        Some(d) if d.eq_ignore_ascii_case("mysql") => {}
        Some(d) if d.eq_ignore_ascii_case("kafka") && role == Some(Role::Dest) => diags.error(
            &driver_path,
            "Kafka targets are not supported by dtle-rs; only MySQL/MariaDB",
        ),
        Some(d) => diags.error(
            &driver_path,
            format!("unknown driver {d:?}: expected \"MySQL\""),
        ),
    }
    let placement = Placement {
        node_name: task.string("NodeName", diags).filter(|s| !s.is_empty()),
        node_id: task.string("NodeID", diags).filter(|s| !s.is_empty()),
    };
    let config_path = task.field_path("Config");
    let config = task.object("Config", diags).unwrap_or_else(|| {
        if !task.has("Config") {
            diags.error(&config_path, "missing: the task's settings go here");
        }
        ObjectReader::new(empty, config_path)
    });
    let path = task.path().clone();
    diags.skip_read_only(task.finish(), READ_ONLY_TASK_FIELDS, &[]);
    RawTask {
        path,
        role,
        config,
        placement,
    }
}
