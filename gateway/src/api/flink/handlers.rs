//! One function per Flink endpoint: find the job, ask the orchestrator, shape the answer.

use super::error::{respond, FlinkError};
use super::savepoints::{Outcome, Triggers};
use super::view::{self, JobView};
use super::{checkpoints, ids, models, savepoints};
use crate::api::handlers::Shared;
use crate::orchestrator::history::now_ms;
use jobs::Role;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// What every Flink handler works with.
#[derive(Clone)]
pub struct Api {
    /// The orchestrator.
    pub orchestrator: Shared,
    /// Stops with savepoint, by trigger ID.
    pub triggers: Arc<Triggers>,
}

/// Query parameters, as given.
pub type Query = HashMap<String, String>;

fn now() -> i64 {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

fn ok(body: Value) -> Result<Response, FlinkError> {
    Ok(warp::reply::json(&body).into_response())
}

fn accepted(body: Value) -> Result<Response, FlinkError> {
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED).into_response())
}

/// `GET /config`.
pub async fn config() -> Response {
    respond(ok(models::dashboard_config()))
}

/// Flink's keys of `GET /overview`, for this handler and for any API that serves more keys
/// on the same path.
///
/// # Errors
/// When the orchestrator cannot list the jobs or nodes.
pub async fn overview_fields(o: &Shared) -> Result<Map<String, Value>, FlinkError> {
    let views = view::all(o, true, false).await?;
    let nodes = o.nodes().await?.len();
    Ok(models::overview_fields(&views, nodes))
}

/// `GET /overview`.
pub async fn overview(api: Api) -> Response {
    respond(
        overview_fields(&api.orchestrator)
            .await
            .and_then(|map| ok(Value::Object(map))),
    )
}

/// `GET /jobs`.
pub async fn jobs(api: Api) -> Response {
    respond(
        async {
            let views = view::all(&api.orchestrator, true, false).await?;
            ok(json!({"jobs": views.iter().map(models::job_id_with_status).collect::<Vec<_>>()}))
        }
        .await,
    )
}

/// `GET /jobs/overview`.
pub async fn jobs_overview(api: Api) -> Response {
    respond(async {
        let views = view::all(&api.orchestrator, true, false).await?;
        let now = now();
        ok(json!({"jobs": views.iter().map(|v| models::job_details(v, now)).collect::<Vec<_>>()}))
    }.await)
}

/// `GET /jobs/metrics[?get=&agg=&jobs=]`: job metrics aggregated over jobs (numeric ones).
pub async fn jobs_metrics(api: Api, query: Query) -> Response {
    respond(
        async {
            let views = view::all(&api.orchestrator, true, true).await?;
            let wanted_jobs: Option<Vec<&str>> = query
                .get("jobs")
                .map(|j| j.split(',').map(str::trim).collect());
            let now = now();
            let mut by_metric: Vec<(&'static str, Vec<f64>)> = Vec::new();
            for v in views.iter().filter(|v| {
                wanted_jobs.as_ref().is_none_or(|w| {
                    w.iter()
                        .any(|j| j.eq_ignore_ascii_case(&v.flink_id) || *j == v.id)
                })
            }) {
                for (id, value) in models::metric_values(v, now) {
                    let Ok(n) = value.parse::<f64>() else {
                        continue;
                    };
                    match by_metric.iter_mut().find(|(m, _)| *m == id) {
                        Some((_, values)) => values.push(n),
                        None => by_metric.push((id, vec![n])),
                    }
                }
            }
            let Some(get) = query.get("get").filter(|g| !g.trim().is_empty()) else {
                return ok(Value::Array(
                    by_metric.iter().map(|(id, _)| json!({"id": id})).collect(),
                ));
            };
            let wanted: Vec<&str> = get.split(',').map(str::trim).collect();
            let aggs: Vec<String> = query.get("agg").map_or_else(
                || vec!["min".into(), "max".into(), "avg".into(), "sum".into()],
                |a| {
                    a.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .collect()
                },
            );
            let out = by_metric
                .into_iter()
                .filter(|(id, _)| wanted.contains(id))
                .map(|(id, values)| {
                    let mut m = Map::new();
                    m.insert("id".into(), json!(id));
                    let sum: f64 = values.iter().sum();
                    for agg in &aggs {
                        let value = match agg.as_str() {
                            "min" => values.iter().copied().fold(f64::INFINITY, f64::min),
                            "max" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            "avg" => sum / values.len() as f64,
                            "sum" => sum,
                            _ => continue,
                        };
                        m.insert(agg.clone(), json!(value));
                    }
                    Value::Object(m)
                })
                .collect();
            ok(Value::Array(out))
        }
        .await,
    )
}

/// `GET /jobs/:jobid`.
pub async fn job(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(models::job_details_info(&v, now()))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/plan`.
pub async fn plan(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(json!({"plan": models::plan(&v)}))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/vertices/:vertexid`: one vertex, with its one subtask.
pub async fn vertex(api: Api, jobid: String, vertexid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            let role = [Role::Src, Role::Dest]
                .into_iter()
                .find(|r| {
                    ids::vertex_id(&v.id, *r).eq_ignore_ascii_case(&vertexid)
                        || r.as_str().eq_ignore_ascii_case(&vertexid)
                })
                .ok_or_else(|| {
                    FlinkError::not_found(format!("Vertex {vertexid} not found in job {jobid}"))
                })?;
            let now = now();
            let mut vertex = models::vertex(&v, role, now);
            let host = v
                .task(role)
                .map(|t| t.alloc.node_id.clone())
                .unwrap_or_default();
            if let Value::Object(map) = &mut vertex {
                let subtask = json!({
                    "subtask": 0,
                    "status": map.get("status").cloned(),
                    "attempt": v.task(role).map_or(0, |t| t.alloc.task_state.restarts),
                    "host": host,
                    "endpoint": host,
                    "start-time": map.get("start-time").cloned(),
                    "end-time": map.get("end-time").cloned(),
                    "duration": map.get("duration").cloned(),
                    "metrics": map.get("metrics").cloned(),
                    "taskmanager-id": host,
                });
                map.insert("now".into(), json!(now));
                map.insert("subtasks".into(), json!([subtask]));
            }
            ok(vertex)
        }
        .await,
    )
}

/// `GET /jobs/:jobid/config`.
pub async fn job_config(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(models::job_config(&v))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/exceptions[?maxExceptions=N]`.
pub async fn exceptions(api: Api, jobid: String, query: Query) -> Response {
    respond(
        async {
            let max = match query.get("maxExceptions") {
                Some(m) => Some(m.trim().parse::<usize>().map_err(|_| {
                    FlinkError::bad_request(format!(
                        "maxExceptions must be a whole number, not {m:?}"
                    ))
                })?),
                None => None,
            };
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(checkpoints::exceptions(&v, max))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/metrics[?get=a,b]`.
pub async fn job_metrics(api: Api, jobid: String, query: Query) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(models::metrics(
                &v,
                query.get("get").map(String::as_str),
                now(),
            ))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/checkpoints`.
pub async fn job_checkpoints(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(checkpoints::checkpoints(
                &v,
                api.triggers.in_progress(&v.id),
            ))
        }
        .await,
    )
}

/// `GET /jobs/:jobid/checkpoints/config`.
pub async fn checkpoint_config(api: Api, jobid: String) -> Response {
    respond(
        async {
            view::one(&api.orchestrator, &jobid).await?;
            ok(checkpoints::checkpoint_config())
        }
        .await,
    )
}

/// `GET /jobs/:jobid/checkpoints/details/:checkpointid`.
pub async fn checkpoint_details(api: Api, jobid: String, checkpointid: String) -> Response {
    respond(
        async {
            let id: u64 = checkpointid.trim().parse().map_err(|_| {
                FlinkError::bad_request(format!(
                    "the checkpoint ID must be a whole number, not {checkpointid:?}"
                ))
            })?;
            let v = view::one(&api.orchestrator, &jobid).await?;
            let c = checkpoints::find(&v, id).ok_or_else(|| {
                FlinkError::not_found(format!(
                    "Could not find checkpointing statistics for checkpoint {id}."
                ))
            })?;
            ok(checkpoints::checkpoint(&v, c, true))
        }
        .await,
    )
}

/// Whether the job can be stopped now, else why not.
fn must_be_active(v: &JobView) -> Result<(), FlinkError> {
    if v.is_active() && v.record.is_some() {
        return Ok(());
    }
    Err(FlinkError::new(
        StatusCode::CONFLICT,
        format!(
            "Job {} ({}) is {}: it is not running",
            v.flink_id,
            v.id,
            v.state()
        ),
    ))
}

/// Starts a stop with savepoint of `v`, answering 202 with its trigger ID.
fn trigger_stop(api: &Api, v: &JobView, trigger: Option<String>) -> Result<Response, FlinkError> {
    must_be_active(v)?;
    if v.state() == "SUSPENDED" {
        return Err(FlinkError::new(
            StatusCode::CONFLICT,
            format!(
                "Job {} ({}) is paused: resume it (POST /v1/job/{}/resume) before stopping it with a savepoint",
                v.flink_id, v.id, v.id
            ),
        ));
    }
    if v.history.is_none() {
        return Err(FlinkError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this orchestrator keeps no job history, so it cannot stop a job with a savepoint",
        ));
    }
    let trigger = api.triggers.start(&v.id, trigger).ok_or_else(|| {
        FlinkError::new(
            StatusCode::CONFLICT,
            format!(
                "a stop with savepoint of job {} is already in progress",
                v.flink_id
            ),
        )
    })?;
    let (o, triggers, job, t) = (
        api.orchestrator.clone(),
        api.triggers.clone(),
        v.id.clone(),
        trigger.clone(),
    );
    tokio::spawn(async move {
        let outcome = match o.stop_with_savepoint(&job).await {
            Ok(checkpoint) => Outcome::Completed(checkpoint),
            Err(err) => {
                tracing::warn!(job = %job, %err, "stop with savepoint failed");
                Outcome::Failed(err.to_string())
            }
        };
        triggers.finish(&job, &t, outcome);
    });
    accepted(json!({"request-id": trigger}))
}

/// A `triggerId` the client chose, if any (32 hex digits).
fn client_trigger(body: &Value) -> Result<Option<String>, FlinkError> {
    match body.get("triggerId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if ids::is_flink_id(t) => Ok(Some(t.to_ascii_lowercase())),
        Some(other) => Err(FlinkError::bad_request(format!(
            "triggerId must be 32 hexadecimal digits, not {other}"
        ))),
    }
}

/// An optional JSON object body.
fn json_body(body: &[u8]) -> Result<Value, FlinkError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| FlinkError::bad_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(FlinkError::bad_request("the body must be a JSON object"));
    }
    Ok(value)
}

/// `POST /jobs/:jobid/stop`: stop with savepoint (`targetDirectory` and `drain` do not apply:
/// the savepoint is the position committed on the target, and a replication job has no
/// timers to drain).
pub async fn stop(api: Api, jobid: String, body: bytes::Bytes) -> Response {
    respond(
        async {
            let body = json_body(&body)?;
            let trigger = client_trigger(&body)?;
            let v = view::one(&api.orchestrator, &jobid).await?;
            trigger_stop(&api, &v, trigger)
        }
        .await,
    )
}

/// `POST /jobs/:jobid/savepoints`: with `cancel-job` true, as `POST /jobs/:jobid/stop`.
pub async fn savepoint(api: Api, jobid: String, body: bytes::Bytes) -> Response {
    respond(
        async {
            let body = json_body(&body)?;
            let trigger = client_trigger(&body)?;
            let v = view::one(&api.orchestrator, &jobid).await?;
            if body.get("cancel-job").and_then(Value::as_bool) != Some(true) {
                return Err(FlinkError::bad_request(
                    "a dtle savepoint is taken by stopping the job once the target has committed \
                 everything read: send \"cancel-job\": true, or POST /jobs/:jobid/stop",
                ));
            }
            trigger_stop(&api, &v, trigger)
        }
        .await,
    )
}

/// `GET /jobs/:jobid/savepoints/:triggerid`.
pub async fn savepoint_status(api: Api, jobid: String, triggerid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            let outcome = api.triggers.get(&v.id, &triggerid).ok_or_else(|| {
                FlinkError::not_found(format!(
                    "There is no savepoint operation with triggerId={triggerid} for job {}.",
                    v.flink_id
                ))
            })?;
            ok(savepoints::result(&outcome))
        }
        .await,
    )
}

/// `PATCH /jobs/:jobid[?mode=cancel|stop]`: cancel (the job stops, its position is kept), or
/// stop with savepoint.
pub async fn terminate(api: Api, jobid: String, query: Query) -> Response {
    respond(
        async {
            let mode = query
                .get("mode")
                .map_or("cancel".to_owned(), |m| m.to_ascii_lowercase());
            let v = view::one(&api.orchestrator, &jobid).await?;
            match mode.as_str() {
                "cancel" => {
                    must_be_active(&v)?;
                    api.orchestrator.stop(&v.id, false, false).await?;
                    accepted(json!({}))
                }
                "stop" => trigger_stop(&api, &v, None),
                other => Err(FlinkError::bad_request(format!(
                    "mode must be cancel or stop, not {other:?}"
                ))),
            }
        }
        .await,
    )
}

/// What does not apply to replication jobs: a 400 saying why.
pub async fn not_applicable(why: &'static str) -> Response {
    FlinkError::bad_request(why).into_response()
}

/// `GET /jars`: none (dtle runs replication jobs, not jars).
pub async fn jars() -> Response {
    respond(ok(json!({"address": "", "files": []})))
}
