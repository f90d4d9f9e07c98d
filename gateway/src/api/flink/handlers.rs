//! One function per Flink endpoint: find the job, ask the orchestrator, shape the answer.
//! Each is annotated with its path at the root (`openapi` adds the `/v1` copies), the
//! statuses it answers and their bodies.

use super::checkpoints::{
    self, CheckpointConfigInfo, CheckpointStatistics, CheckpointingStatistics,
};
use super::cluster::{self, ClusterOverview, DashboardConfiguration, JarList};
use super::error::{respond, ErrorBody, FlinkError, OrchestratorErrors};
use super::exceptions::{self, JobExceptions};
use super::ids;
use super::metrics::{self, AggregatedMetric, Metric};
use super::models::{
    self, JobConfigInfo, JobDetailsInfo, JobIdsWithStatus, JobPlanInfo, JobVertexDetails,
    MultipleJobsDetails,
};
use super::savepoints::Triggers;
use super::view::{self, JobView};
use crate::api::handlers::Shared;
use crate::orchestrator::history::now_ms;
use jobs::Role;
use serde::Serialize;
use serde_json::{Map, Value};
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

/// Query parameters, as given (a typed query would answer a repeated key with the dtle API's
/// 400; Flink's last value wins).
pub type Query = HashMap<String, String>;

/// A request body: its bytes (empty when none was sent), or why it was refused (too large).
pub type Body = Result<bytes::Bytes, FlinkError>;

fn now() -> i64 {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

pub(super) fn ok<T: Serialize>(body: &T) -> Result<Response, FlinkError> {
    Ok(warp::reply::json(body).into_response())
}

pub(super) fn accepted<T: Serialize>(body: &T) -> Result<Response, FlinkError> {
    Ok(warp::reply::with_status(warp::reply::json(body), StatusCode::ACCEPTED).into_response())
}

/// The Flink job ID or the dtle job ID of a path.
pub(super) const JOBID: &str = "The Flink job ID (32 hex digits, any case) or the dtle job ID";

/// `GET /config`.
#[utoipa::path(
    get,
    path = "/config",
    operation_id = "flink_config",
    tag = "Flink",
    summary = "The web dashboard's configuration",
    responses((status = 200, description = "The configuration", body = DashboardConfiguration))
)]
pub async fn config() -> Response {
    respond(ok(&cluster::dashboard_config()))
}

/// Flink's keys of `GET /overview`.
///
/// # Errors
/// When the orchestrator cannot list the jobs or nodes.
pub async fn cluster_overview(o: &Shared) -> Result<ClusterOverview, FlinkError> {
    let views = view::all(o, true, false).await?;
    let nodes = o.nodes().await?.len();
    Ok(cluster::overview(&views, nodes))
}

/// Flink's keys of `GET /overview`, for any API that serves more keys on the same path.
///
/// # Errors
/// When the orchestrator cannot list the jobs or nodes.
pub async fn overview_fields(o: &Shared) -> Result<Map<String, Value>, FlinkError> {
    Ok(cluster::overview_fields(&cluster_overview(o).await?))
}

/// `GET /overview` (at the root SeaTunnel's handler answers it first, with these keys too).
#[utoipa::path(
    get,
    path = "/overview",
    operation_id = "flink_overview",
    tag = "Flink",
    summary = "The cluster: nodes, tasks, jobs by state",
    responses(
        (status = 200, description = "The cluster", body = ClusterOverview),
        OrchestratorErrors,
    )
)]
pub async fn overview(api: Api) -> Response {
    respond(
        cluster_overview(&api.orchestrator)
            .await
            .and_then(|o| ok(&o)),
    )
}

/// `GET /jobs`.
#[utoipa::path(
    get,
    path = "/jobs",
    operation_id = "flink_jobs",
    tag = "Flink",
    summary = "Every job and its state",
    responses(
        (status = 200, description = "The jobs, live or only in the history", body = JobIdsWithStatus),
        OrchestratorErrors,
    )
)]
pub async fn jobs(api: Api) -> Response {
    respond(
        async {
            let views = view::all(&api.orchestrator, true, false).await?;
            ok(&JobIdsWithStatus {
                jobs: views.iter().map(models::job_id_with_status).collect(),
            })
        }
        .await,
    )
}

/// `GET /jobs/overview`.
#[utoipa::path(
    get,
    path = "/jobs/overview",
    operation_id = "flink_jobs_overview",
    tag = "Flink",
    summary = "Every job, with its times and tasks",
    responses(
        (status = 200, description = "The jobs, live or only in the history", body = MultipleJobsDetails),
        OrchestratorErrors,
    )
)]
pub async fn jobs_overview(api: Api) -> Response {
    respond(
        async {
            let views = view::all(&api.orchestrator, true, false).await?;
            let now = now();
            ok(&MultipleJobsDetails {
                jobs: views.iter().map(|v| models::job_details(v, now)).collect(),
            })
        }
        .await,
    )
}

/// `GET /jobs/metrics[?get=&agg=&jobs=]`: job metrics aggregated over jobs (numeric ones).
#[utoipa::path(
    get,
    path = "/jobs/metrics",
    operation_id = "flink_jobs_metrics",
    tag = "Flink",
    summary = "Job metrics aggregated over jobs",
    params(
        ("get" = Option<String>, Query, description = "Metrics to aggregate, comma-separated (`numRecordsOut,uptime`); without it, the names of the numeric metrics"),
        ("agg" = Option<String>, Query, description = "Aggregates, comma-separated, of `min`, `max`, `avg`, `sum` (others are ignored); all four by default"),
        ("jobs" = Option<String>, Query, description = "Jobs to aggregate over, comma-separated Flink or dtle job IDs; all by default"),
    ),
    responses(
        (status = 200, description = "The metrics: names only without `get`", body = [AggregatedMetric]),
        OrchestratorErrors,
    )
)]
pub async fn jobs_metrics(api: Api, query: Query) -> Response {
    respond(
        async {
            let views = view::all(&api.orchestrator, true, true).await?;
            let wanted_jobs: Option<Vec<&str>> = query
                .get("jobs")
                .map(|j| j.split(',').map(str::trim).collect());
            let chosen: Vec<&JobView> = views
                .iter()
                .filter(|v| {
                    wanted_jobs.as_ref().is_none_or(|w| {
                        w.iter()
                            .any(|j| j.eq_ignore_ascii_case(&v.flink_id) || *j == v.id)
                    })
                })
                .collect();
            let aggs: Vec<String> = query.get("agg").map_or_else(
                || vec!["min".into(), "max".into(), "avg".into(), "sum".into()],
                |a| {
                    a.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .collect()
                },
            );
            ok(&metrics::aggregated_metrics(
                &chosen,
                query.get("get").map(String::as_str),
                &aggs,
                now(),
            ))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}",
    operation_id = "flink_job",
    tag = "Flink",
    summary = "One job: state, times, vertices, plan",
    params(("jobid" = String, Path, description = JOBID)),
    responses(
        (status = 200, description = "The job", body = JobDetailsInfo),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn job(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(&models::job_details_info(&v, now()))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/plan`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/plan",
    operation_id = "flink_job_plan",
    tag = "Flink",
    summary = "A job's dataflow plan: the Src feeds the Dest",
    params(("jobid" = String, Path, description = JOBID)),
    responses(
        (status = 200, description = "The plan", body = JobPlanInfo),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn plan(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(&JobPlanInfo {
                plan: models::plan(&v),
            })
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/vertices/{vertexid}`: one vertex, with its one subtask.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/vertices/{vertexid}",
    operation_id = "flink_job_vertex",
    tag = "Flink",
    summary = "One vertex of a job (the Src or the Dest), with its subtask",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("vertexid" = String, Path, description = "The vertex ID (32 hex digits), or `Src` or `Dest` (any case)"),
    ),
    responses(
        (status = 200, description = "The vertex", body = JobVertexDetails),
        (status = 404, description = "No such job, or no such vertex in it", body = ErrorBody),
        OrchestratorErrors,
    )
)]
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
            ok(&models::vertex_details(&v, role, now()))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/config`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/config",
    operation_id = "flink_job_config",
    tag = "Flink",
    summary = "A job's configuration: the dtle job, flattened, passwords masked",
    params(("jobid" = String, Path, description = JOBID)),
    responses(
        (status = 200, description = "The configuration", body = JobConfigInfo),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn job_config(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(&models::job_config(&v))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/exceptions[?maxExceptions=N]`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/exceptions",
    operation_id = "flink_job_exceptions",
    tag = "Flink",
    summary = "A job's task failures and restart causes, newest first",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("maxExceptions" = Option<u64>, Query, description = "At most this many"),
    ),
    responses(
        (status = 200, description = "The exceptions", body = JobExceptions),
        (status = 400, description = "`maxExceptions` is not a whole number", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
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
            ok(&exceptions::exceptions(&v, max))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/metrics[?get=a,b]`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/metrics",
    operation_id = "flink_job_metrics",
    tag = "Flink",
    summary = "A job's metrics: their names, or the values of those asked for",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("get" = Option<String>, Query, description = "Metrics to read, comma-separated (`numRecordsIn,numRecordsOut`; unknown names are left out); without it, the names there are"),
    ),
    responses(
        (status = 200, description = "The metrics: names only without `get`", body = [Metric]),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn job_metrics(api: Api, jobid: String, query: Query) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(&metrics::metrics(
                &v,
                query.get("get").map(String::as_str),
                now(),
            ))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/checkpoints`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints",
    operation_id = "flink_job_checkpoints",
    tag = "Flink",
    summary = "A job's checkpoints: positions the target committed",
    params(("jobid" = String, Path, description = JOBID)),
    responses(
        (status = 200, description = "The checkpoints", body = CheckpointingStatistics),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn job_checkpoints(api: Api, jobid: String) -> Response {
    respond(
        async {
            let v = view::one(&api.orchestrator, &jobid).await?;
            ok(&checkpoints::checkpoints(
                &v,
                api.triggers.in_progress(&v.id),
            ))
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/checkpoints/config`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints/config",
    operation_id = "flink_job_checkpoint_config",
    tag = "Flink",
    summary = "How a job's checkpoints are taken",
    params(("jobid" = String, Path, description = JOBID)),
    responses(
        (status = 200, description = "The checkpointing settings", body = CheckpointConfigInfo),
        (status = 404, description = "No such job", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn checkpoint_config(api: Api, jobid: String) -> Response {
    respond(
        async {
            view::one(&api.orchestrator, &jobid).await?;
            ok(&checkpoints::checkpoint_config())
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/checkpoints/details/{checkpointid}`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints/details/{checkpointid}",
    operation_id = "flink_job_checkpoint",
    tag = "Flink",
    summary = "One checkpoint, with its part per vertex",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("checkpointid" = u64, Path, description = "The checkpoint ID"),
    ),
    responses(
        (status = 200, description = "The checkpoint", body = CheckpointStatistics),
        (status = 400, description = "The checkpoint ID is not a whole number", body = ErrorBody),
        (status = 404, description = "No such job, or the history does not keep that checkpoint", body = ErrorBody),
        OrchestratorErrors,
    )
)]
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
            ok(&checkpoints::checkpoint(&v, c, true))
        }
        .await,
    )
}

/// `GET /jars`: none (dtle runs replication jobs, not jars).
#[utoipa::path(
    get,
    path = "/jars",
    operation_id = "flink_jars",
    tag = "Flink",
    summary = "Uploaded jars: none",
    responses((status = 200, description = "An empty list", body = JarList))
)]
pub async fn jars() -> Response {
    respond(ok(&cluster::jars()))
}
