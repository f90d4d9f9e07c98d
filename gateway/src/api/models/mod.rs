//! dtle 2.x response shapes, built from orchestrator records: jobs here, [`allocation`]s,
//! their [`stats`], and the [`cluster`]'s nodes and members. Key names, types and forms follow
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

mod allocation;
mod cluster;
mod stats;

pub use allocation::{allocation, AllocationView, TaskEventView, TaskStateView};
pub use cluster::{members, nodes, Member, Members, NodeView};
pub use stats::{
    go_duration, stats, AllocationStats, BufferStat, Coordinates, DelayCount, MsgStat, TableStat,
    TaskStats, ThroughputStat,
};

use crate::orchestrator::{JobRecord, Registered};
use jobs::Role;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// dtle 2.x's job type: every job is a synchronous replication.
const JOB_TYPE: &str = "synchronous";

/// An empty JSON object (`{}`).
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = DtleEmpty)]
pub struct Empty {}

/// A job, as `GET /v1/job/{ID}` shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleJob)]
pub struct Job {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// Always `synchronous`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub region: String,
    pub datacenters: Vec<String>,
    pub failover: bool,
    /// `pending`, `running`, `dead`, ...
    pub status: String,
    pub status_description: String,
    pub paused: bool,
    /// The Src task, then the Dest task.
    pub tasks: Vec<JobTask>,
    /// Always empty.
    pub orders: Vec<String>,
    /// Always null.
    #[schema(value_type = Option<Vec<Object>>)]
    pub constraints: Option<Vec<Value>>,
    pub enforce_index: bool,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
}

/// One task of a job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleJobTask)]
pub struct JobTask {
    /// `Src` or `Dest`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub driver: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// The node that runs the task, else the one the job asks for (may be empty).
    pub node_name: String,
    /// The task's settings with their values in the form they were posted (`"ChunkSize":
    /// "2000"` stays a string), defaults filled in, `NatsAddr` and `Gtid` added, and every
    /// `Password` shown as `*`.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// True for the Dest.
    pub leader: bool,
    /// Always null.
    #[schema(value_type = Option<Vec<Object>>)]
    pub constraints: Option<Vec<Value>>,
    /// Always `{}`.
    pub config_lock: Empty,
}

impl JobTask {
    /// From a task as [`jobs::posted::tasks_as_posted`] renders it.
    fn from_rendered(rendered: Value, role: Role) -> Self {
        let Value::Object(mut map) = rendered else {
            return Self::empty(role);
        };
        let mut text = |key: &str| match map.remove(key) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let (kind, driver, node_id, node_name) = (
            text("Type"),
            text("Driver"),
            text("NodeID"),
            text("NodeName"),
        );
        let config = match map.remove("Config") {
            Some(Value::Object(config)) => config,
            _ => Map::new(),
        };
        Self {
            kind,
            driver,
            node_id,
            node_name,
            config,
            leader: role == Role::Dest,
            constraints: None,
            config_lock: Empty {},
        }
    }

    fn empty(role: Role) -> Self {
        Self::from_rendered(json!({"Type": role.as_str()}), role)
    }
}

/// A job, as `GET /v1/job/{ID}` shows it.
pub fn job(record: &JobRecord) -> Job {
    let spec = record.spec.redacted();
    let rendered = jobs::posted::tasks_as_posted(&spec, &record.posted);
    let mut shown_gtid = record.executed_gtid.clone();
    let mut tasks = Vec::with_capacity(2);
    for (rendered, (role, slot)) in rendered.into_iter().zip([(Role::Src, 0), (Role::Dest, 1)]) {
        let mut task = JobTask::from_rendered(rendered, role);
        if let Some(node) = &record.task_nodes[slot] {
            task.node_name = node.name.clone();
        }
        let config = &mut task.config;
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
        tasks.push(task);
    }
    Job {
        id: spec.id,
        name: spec.name,
        kind: JOB_TYPE,
        region: spec.region,
        datacenters: spec.datacenters,
        failover: spec.failover,
        status: record.status.clone(),
        status_description: record.status_description.clone(),
        paused: record.paused,
        tasks,
        orders: Vec::new(),
        constraints: None,
        enforce_index: false,
        create_index: record.create_index,
        modify_index: record.modify_index,
        job_modify_index: record.job_modify_index,
    }
}

/// A job in the list of `GET /v1/jobs`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleJobListStub)]
pub struct JobStub {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// Always `synchronous`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub status: String,
    pub status_description: String,
    /// The whole job, as `GET /v1/job/{ID}` shows it.
    pub job_summary: Job,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
}

/// A job in the list of `GET /v1/jobs`.
pub fn job_stub(record: &JobRecord) -> JobStub {
    JobStub {
        id: record.spec.id.clone(),
        name: record.spec.name.clone(),
        kind: JOB_TYPE,
        status: record.status.clone(),
        status_description: record.status_description.clone(),
        job_summary: job(record),
        create_index: record.create_index,
        modify_index: record.modify_index,
        job_modify_index: record.job_modify_index,
    }
}

/// The answer to a registration, a stop, a pause or a resume.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleJobRegisterResponse)]
pub struct RegisterResponse {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
    pub known_leader: bool,
    pub last_contact: u64,
    pub success: bool,
    /// Whether the job changed (an identical re-post changes nothing and restarts nothing).
    pub changed: bool,
    /// What the job model noted about the posted job (settings read but unused, ...).
    pub warnings: Vec<String>,
}

/// The answer to a registration, a stop, a pause or a resume.
pub fn registered(r: &Registered, warnings: &[jobs::Diagnostic]) -> RegisterResponse {
    RegisterResponse {
        id: r.job_id.clone(),
        eval_id: r.eval_id.clone(),
        eval_create_index: r.job_modify_index,
        job_modify_index: r.job_modify_index,
        index: r.job_modify_index,
        known_leader: true,
        last_contact: 0,
        success: true,
        changed: r.changed,
        warnings: warnings.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_json<T: Serialize>(value: T) -> Value {
        serde_json::to_value(value).expect("serialises")
    }

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
        assert_eq!(
            as_json(job(&record(None)))["Tasks"][0]["Config"]["Gtid"],
            "0-1-5"
        );
        let shown = as_json(job(&record(Some("0-1-90"))));
        assert_eq!(shown["Tasks"][0]["Type"], "Src");
        assert_eq!(shown["Tasks"][0]["Config"]["Gtid"], "0-1-90");
        // dtle 2.x's server wrote the Gtid into every task's config (seed 004).
        assert_eq!(shown["Tasks"][1]["Config"]["Gtid"], "0-1-90");
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(
            as_json(job_stub(&record(Some("0-1-90"))))["JobSummary"]["Tasks"][0]["Config"]["Gtid"],
            "0-1-90"
        );
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
        let shown = as_json(job(&record));
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
