//! The Flink routes over an embedded orchestrator whose tasks are stand-ins (they set the
//! positions and counters a real task would), under paused time: shapes, the paths shared with
//! dtle 2.x, errors, and a stop with savepoint from trigger to restore.

use super::ids;
use crate::api::handlers::Shared;
use crate::orchestrator::embedded::supervisor::{RestartPolicy, TaskRunner};
use crate::orchestrator::embedded::{EmbeddedConfig, EmbeddedOrchestrator};
use driver::change::SourcePosition;
use driver::error::TaskError;
use driver::retry::RetryPolicy;
use driver::task::TaskContext;
use jobs::{JobSpec, Role};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use warp::reply::Response;
use warp::Filter;

struct Replicating;

#[async_trait::async_trait]
impl TaskRunner for Replicating {
    async fn run(&self, _spec: &JobSpec, role: Role, ctx: TaskContext) -> Result<(), TaskError> {
        let position = SourcePosition {
            gtid_set: Some(jobs::GtidSet::parse("0-1-7").expect("GTID set")),
            file: "bin.000001".into(),
            pos: 4,
            resume_from: None,
        };
        match role {
            Role::Src => {
                ctx.stats.rows_read.store(7, Relaxed);
                ctx.stats.rows_applied.store(7, Relaxed);
                ctx.stats.set_executed(&position);
            }
            Role::Dest => {
                ctx.stats.rows_applied.store(7, Relaxed);
                ctx.stats.set_position(&position);
            }
        }
        ctx.cancel.cancelled().await;
        Ok(())
    }
}

pub(super) fn orchestrator(dir: &tempfile::TempDir) -> EmbeddedOrchestrator {
    let config = EmbeddedConfig {
        state_dir: dir.path().to_owned(),
        nats_url: "nats://127.0.0.1:1".into(),
        node_name: "test".into(),
        datacenter: "dc1".into(),
        http_addr: "127.0.0.1:1".into(),
        restart: RestartPolicy::default(),
        task_retry: RetryPolicy::default(),
        kill_timeout: Duration::from_secs(10),
    };
    EmbeddedOrchestrator::start_with(config, Arc::new(Replicating)).expect("orchestrator")
}

const JOB: &str = r#"{"Name": "fj", "Tasks": [
  {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "s", "Tables": [{"TableName": "t"}]}],
    "ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "hunter22"}}},
  {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "hunter33"}}}]}"#;

/// The routes, built once as the agent does (the trigger IDs live in them).
trait Routes:
    Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
}

impl<F> Routes for F where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
}

async fn call(routes: &impl Routes, method: &str, path: &str, body: &str) -> (u16, Value) {
    let response = warp::test::request()
        .method(method)
        .path(path)
        .body(body)
        .reply(routes)
        .await;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert!(
        !text.contains("hunter22") && !text.contains("hunter33"),
        "{method} {path} shows a password: {text}"
    );
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn get(routes: &impl Routes, path: &str) -> Value {
    let (status, body) = call(routes, "GET", path, "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[tokio::test(start_paused = true)]
async fn a_job_through_the_flink_routes_from_start_to_savepoint_and_restore() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = orchestrator(&dir);
    let shared: Shared = Arc::new(o.clone());
    let routes = crate::api::routes::routes(shared);
    let (status, _) = call(&routes, "POST", "/v1/jobs", JOB).await;
    assert_eq!(status, 200);
    let jid = ids::job_id("fj");

    // dtle 2.x keeps /v1/jobs; Flink's list is /jobs.
    assert!(get(&routes, "/v1/jobs").await.is_array());
    let jobs = get(&routes, "/jobs").await;
    assert_eq!(jobs["jobs"][0]["id"], jid.as_str());
    assert_eq!(
        jobs["jobs"][0]["status"], "CREATED",
        "its tasks are not started yet"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(get(&routes, "/jobs").await["jobs"][0]["status"], "RUNNING");

    for path in [format!("/jobs/{jid}"), "/v1/jobs/fj".to_owned()] {
        let job = get(&routes, &path).await;
        assert_eq!(job["jid"], jid.as_str());
        assert_eq!(job["name"], "fj");
        assert_eq!(job["vertices"][0]["name"], "Src: read h:1");
        assert_eq!(job["vertices"][1]["metrics"]["write-records"], 7);
        assert_eq!(
            job["vertices"][0]["id"],
            ids::vertex_id("fj", Role::Src).as_str()
        );
    }
    let overview = get(&routes, "/jobs/overview").await;
    assert_eq!(overview["jobs"][0]["tasks"]["running"], 2);
    let checkpoints = get(&routes, &format!("/jobs/{jid}/checkpoints")).await;
    assert_eq!(checkpoints["counts"]["completed"], 1);
    assert_eq!(checkpoints["latest"]["completed"]["external_path"], "0-1-7");
    assert_eq!(checkpoints["history"][0]["rows_since_previous"], 7);
    let details = get(&routes, &format!("/jobs/{jid}/checkpoints/details/1")).await;
    assert_eq!(details["tasks"].as_object().map(|t| t.len()), Some(2));
    let config = get(&routes, &format!("/jobs/{jid}/config")).await;
    assert_eq!(
        config["execution-config"]["user-config"]["Tasks[1].Config.ConnectionConfig.Password"],
        "*"
    );
    let metrics = get(
        &routes,
        &format!("/jobs/{jid}/metrics?get=numRecordsOut,nope"),
    )
    .await;
    assert_eq!(
        metrics,
        serde_json::json!([{"id": "numRecordsOut", "value": "7"}])
    );
    let cluster = get(&routes, "/overview").await;
    assert_eq!(
        (
            cluster["jobs-running"].as_u64(),
            cluster["slots-total"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(get(&routes, "/v1/config").await["flink-version"], "1.18.0");

    // Errors, Flink-shaped.
    let (status, body) = call(&routes, "GET", "/jobs/nope", "").await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (404, Some("Job nope not found"))
    );
    let (status, body) = call(&routes, "PATCH", &format!("/jobs/{jid}/rescaling"), "").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        &routes,
        "GET",
        &format!("/jobs/{jid}/checkpoints/details/x"),
        "",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&routes, "POST", &format!("/jobs/{jid}/stop"), "[1]").await;
    assert_eq!(status, 400, "not an object");
    let (status, _) = call(&routes, "POST", &format!("/jobs/{jid}/savepoints"), "{}").await;
    assert_eq!(status, 400, "a savepoint that does not cancel");

    // Stop with savepoint: 202, in progress, then completed at the Dest's position.
    let trigger = "00112233445566778899aabbccddeeff";
    let (status, body) = call(
        &routes,
        "POST",
        &format!("/jobs/{jid}/stop"),
        &format!(r#"{{"triggerId": "{trigger}"}}"#),
    )
    .await;
    assert_eq!((status, body["request-id"].as_str()), (202, Some(trigger)));
    let path = format!("/jobs/{jid}/savepoints/{trigger}");
    assert_eq!(get(&routes, &path).await["status"]["id"], "IN_PROGRESS");
    let checkpoints = get(&routes, &format!("/jobs/{jid}/checkpoints")).await;
    assert_eq!(checkpoints["counts"]["in_progress"], 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let done = get(&routes, &path).await;
    assert_eq!(done["status"]["id"], "COMPLETED", "{done}");
    assert_eq!(done["operation"]["location"], "0-1-7");
    let job = get(&routes, &format!("/jobs/{jid}")).await;
    assert_eq!(job["state"], "FINISHED");
    assert!(job["end-time"].as_i64().is_some_and(|t| t > 0));
    let (status, _) = call(&routes, "PATCH", &format!("/jobs/{jid}"), "").await;
    assert_eq!(status, 409, "an ended job cannot be canceled");

    // Posted again: restored from the savepoint.
    let (status, _) = call(&routes, "POST", "/v1/jobs", JOB).await;
    assert_eq!(status, 200);
    let checkpoints = get(&routes, &format!("/jobs/{jid}/checkpoints")).await;
    assert_eq!(checkpoints["latest"]["restored"]["id"], 2);
    assert_eq!(checkpoints["latest"]["restored"]["is_savepoint"], true);
    let (status, _) = call(&routes, "POST", "/v1/job/fj/pause", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&routes, "/jobs").await["jobs"][0]["status"],
        "SUSPENDED"
    );
    let (status, body) = call(&routes, "POST", &format!("/jobs/{jid}/stop"), "").await;
    assert_eq!(status, 409, "a paused job: {body}");
    let (status, _) = call(&routes, "PATCH", &format!("/jobs/{jid}?mode=cancel"), "").await;
    assert_eq!(status, 202);
    assert_eq!(get(&routes, "/jobs").await["jobs"][0]["status"], "CANCELED");
    assert_eq!(get(&routes, "/overview").await["jobs-cancelled"], 1);
    o.shutdown().await;
}
