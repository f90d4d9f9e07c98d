//! What does not apply to replication jobs: Flink's jar upload, plan and run, job submission
//! through Flink's client, rescaling, savepoint disposal and cluster shutdown. Each answers
//! 400 `{"errors": ["...why..."]}`.

use super::error::{ErrorBody, FlinkError};
use warp::reply::Response;

const JARS: &str = "dtle runs replication jobs, not jars: post a dtle job to /v1/jobs instead";
const SUBMIT: &str =
    "jobs are not submitted through Flink's client here: post a dtle job to /v1/jobs instead";
const RESCALE: &str = "a dtle job has one Src and one Dest task: it cannot be rescaled (the \
                       Dest's parallelism is its ParallelWorkers setting; post the job again to \
                       change it)";
const DISPOSE: &str = "a dtle savepoint is a position committed on the target: there is nothing \
                       to dispose of";
const CLUSTER: &str = "the agent is not shut down through this API: stop its process (SIGTERM)";

fn says(why: &'static str) -> Response {
    FlinkError::bad_request(why).into_response()
}

/// `POST /jobs` (at the root: `/v1/jobs` is dtle's).
#[utoipa::path(
    post,
    path = "/jobs",
    operation_id = "flink_submit_job",
    tag = "Flink",
    summary = "Does not apply: post a dtle job to /v1/jobs",
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn submit_job() -> Response {
    says(SUBMIT)
}

/// `POST /jars/upload`.
#[utoipa::path(
    post,
    path = "/jars/upload",
    operation_id = "flink_jar_upload",
    tag = "Flink",
    summary = "Does not apply: dtle runs replication jobs, not jars",
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn jar_upload() -> Response {
    says(JARS)
}

/// `DELETE /jars/{jarid}`.
#[utoipa::path(
    delete,
    path = "/jars/{jarid}",
    operation_id = "flink_jar_delete",
    tag = "Flink",
    summary = "Does not apply: dtle runs replication jobs, not jars",
    params(("jarid" = String, Path, description = "A jar ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn jar_delete(_jarid: String) -> Response {
    says(JARS)
}

/// `GET /jars/{jarid}/plan`.
#[utoipa::path(
    get,
    path = "/jars/{jarid}/plan",
    operation_id = "flink_jar_plan",
    tag = "Flink",
    summary = "Does not apply: dtle runs replication jobs, not jars",
    params(("jarid" = String, Path, description = "A jar ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn jar_plan(_jarid: String) -> Response {
    says(JARS)
}

/// `POST /jars/{jarid}/plan`.
#[utoipa::path(
    post,
    path = "/jars/{jarid}/plan",
    operation_id = "flink_jar_plan_post",
    tag = "Flink",
    summary = "Does not apply: dtle runs replication jobs, not jars",
    params(("jarid" = String, Path, description = "A jar ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn jar_plan_post(_jarid: String) -> Response {
    says(JARS)
}

/// `POST /jars/{jarid}/run`.
#[utoipa::path(
    post,
    path = "/jars/{jarid}/run",
    operation_id = "flink_jar_run",
    tag = "Flink",
    summary = "Does not apply: dtle runs replication jobs, not jars",
    params(("jarid" = String, Path, description = "A jar ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn jar_run(_jarid: String) -> Response {
    says(JARS)
}

/// `PATCH /jobs/{jobid}/rescaling`.
#[utoipa::path(
    patch,
    path = "/jobs/{jobid}/rescaling",
    operation_id = "flink_job_rescale",
    tag = "Flink",
    summary = "Does not apply: a dtle job cannot be rescaled",
    params(("jobid" = String, Path, description = "A job ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn rescale(_jobid: String) -> Response {
    says(RESCALE)
}

/// `GET /jobs/{jobid}/rescaling/{triggerid}`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/rescaling/{triggerid}",
    operation_id = "flink_job_rescale_status",
    tag = "Flink",
    summary = "Does not apply: a dtle job cannot be rescaled",
    params(
        ("jobid" = String, Path, description = "A job ID"),
        ("triggerid" = String, Path, description = "A trigger ID"),
    ),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn rescale_status(_jobid: String, _triggerid: String) -> Response {
    says(RESCALE)
}

/// `POST /savepoint-disposal`.
#[utoipa::path(
    post,
    path = "/savepoint-disposal",
    operation_id = "flink_savepoint_disposal",
    tag = "Flink",
    summary = "Does not apply: a dtle savepoint is a position on the target",
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn dispose() -> Response {
    says(DISPOSE)
}

/// `GET /savepoint-disposal/{triggerid}`.
#[utoipa::path(
    get,
    path = "/savepoint-disposal/{triggerid}",
    operation_id = "flink_savepoint_disposal_status",
    tag = "Flink",
    summary = "Does not apply: a dtle savepoint is a position on the target",
    params(("triggerid" = String, Path, description = "A trigger ID")),
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn dispose_status(_triggerid: String) -> Response {
    says(DISPOSE)
}

/// `DELETE /cluster`.
#[utoipa::path(
    delete,
    path = "/cluster",
    operation_id = "flink_cluster_shutdown",
    tag = "Flink",
    summary = "Does not apply: stop the agent's process (SIGTERM)",
    responses((status = 400, description = "Why it does not apply", body = ErrorBody))
)]
pub async fn shutdown() -> Response {
    says(CLUSTER)
}
