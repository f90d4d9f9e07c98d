//! The calls that end a job: stop with savepoint (`POST /jobs/{jobid}/stop`, `POST
//! /jobs/{jobid}/savepoints`, `PATCH /jobs/{jobid}?mode=stop`, and how it goes: `GET
//! /jobs/{jobid}/savepoints/{triggerid}`), and cancel (`PATCH /jobs/{jobid}`); their request
//! bodies and answers.

use super::error::{respond, ErrorBody, FlinkError, OrchestratorErrors};
use super::handlers::{accepted, ok, Api, Body, Query, JOBID};
use super::ids;
use super::savepoints::{self, Outcome, SavepointOperation, TriggerResponse};
use super::view::{self, JobStatus, JobView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

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

/// Starts a stop with savepoint of `v`; its trigger ID.
fn trigger_stop(
    api: &Api,
    v: &JobView,
    trigger: Option<String>,
) -> Result<TriggerResponse, FlinkError> {
    must_be_active(v)?;
    if v.state() == JobStatus::Suspended {
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
    Ok(TriggerResponse {
        request_id: trigger,
    })
}

/// A `triggerId` the client chose, if any (32 hex digits).
fn client_trigger(trigger: Option<&str>) -> Result<Option<String>, FlinkError> {
    match trigger {
        None => Ok(None),
        Some(t) if ids::is_flink_id(t) => Ok(Some(t.to_ascii_lowercase())),
        Some(other) => Err(FlinkError::bad_request(format!(
            "triggerId must be 32 hexadecimal digits, not {other:?}"
        ))),
    }
}

/// An optional JSON object body, read as `T` (no body, or `null`, is `{}`).
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FlinkError> {
    let mut value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| FlinkError::bad_request(format!("the body is not JSON: {e}")))?
    };
    if value.is_null() {
        value = Value::Object(Map::new());
    }
    if !value.is_object() {
        return Err(FlinkError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| FlinkError::bad_request(format!("the body does not fit: {e}")))
}

/// The body of `POST /jobs/{jobid}/stop` (Flink's `StopWithSavepointRequestBody`); every key
/// is optional, and keys not listed are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = FlinkStopRequest)]
pub struct StopRequest {
    /// The trigger ID to answer with (32 hex digits); a new one when absent.
    #[serde(rename = "triggerId")]
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub trigger_id: Option<String>,
    /// Does not apply: a replication job has no timers to drain.
    pub drain: Option<bool>,
    /// Does not apply: the savepoint is the position committed on the target.
    #[serde(rename = "targetDirectory")]
    pub target_directory: Option<String>,
}

/// The body of `POST /jobs/{jobid}/savepoints` (Flink's `SavepointTriggerRequestBody`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = FlinkSavepointRequest)]
pub struct SavepointRequest {
    /// Must be true: a dtle savepoint is taken by stopping the job.
    #[serde(rename = "cancel-job")]
    pub cancel_job: Option<bool>,
    /// The trigger ID to answer with (32 hex digits); a new one when absent.
    #[serde(rename = "triggerId")]
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub trigger_id: Option<String>,
    /// Does not apply: the savepoint is the position committed on the target.
    #[serde(rename = "target-directory")]
    pub target_directory: Option<String>,
}

/// `POST /jobs/{jobid}/stop`: stop with savepoint (`targetDirectory` and `drain` do not apply:
/// the savepoint is the position committed on the target, and a replication job has no
/// timers to drain).
#[utoipa::path(
    post,
    path = "/jobs/{jobid}/stop",
    operation_id = "flink_job_stop",
    tag = "Flink",
    summary = "Stops a job with a savepoint",
    description = "Stops the Src, lets the Dest apply everything the Src had sent, stops the Dest and records the position it committed as a savepoint. The job is then FINISHED; posted again to /v1/jobs, it resumes from there. A body without Content-Length is ignored.",
    params(("jobid" = String, Path, description = JOBID)),
    request_body(content = Option<StopRequest>, content_type = "application/json", description = "Optional: no body (or `null`) is `{}`"),
    responses(
        (status = 202, description = "The stop started: ask `/jobs/{jobid}/savepoints/{request-id}` how it goes", body = TriggerResponse),
        (status = 400, description = "The body is not a JSON object of this shape, or `triggerId` is not 32 hex digits", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has ended, is paused, or a stop is already under way", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 501, description = "The orchestrator keeps no job history (Nomad)", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn stop(api: Api, jobid: String, body: Body) -> Response {
    respond(
        async {
            let request: StopRequest = json_body(&body?)?;
            let trigger = client_trigger(request.trigger_id.as_deref())?;
            let v = view::one(&api.orchestrator, &jobid).await?;
            accepted(&trigger_stop(&api, &v, trigger)?)
        }
        .await,
    )
}

/// `POST /jobs/{jobid}/savepoints`: with `cancel-job` true, as `POST /jobs/{jobid}/stop`.
#[utoipa::path(
    post,
    path = "/jobs/{jobid}/savepoints",
    operation_id = "flink_job_savepoint",
    tag = "Flink",
    summary = "With `cancel-job` true, stops a job with a savepoint",
    description = "As POST /jobs/{jobid}/stop. Without `\"cancel-job\": true`, 400: a dtle savepoint is taken by stopping the job. A body without Content-Length is ignored.",
    params(("jobid" = String, Path, description = JOBID)),
    request_body(content = SavepointRequest, content_type = "application/json", description = "`cancel-job` must be true (no body is refused)"),
    responses(
        (status = 202, description = "The stop started: ask `/jobs/{jobid}/savepoints/{request-id}` how it goes", body = TriggerResponse),
        (status = 400, description = "`cancel-job` is not true, the body is not a JSON object of this shape, or `triggerId` is not 32 hex digits", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has ended, is paused, or a stop is already under way", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 501, description = "The orchestrator keeps no job history (Nomad)", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn savepoint(api: Api, jobid: String, body: Body) -> Response {
    respond(
        async {
            let request: SavepointRequest = json_body(&body?)?;
            let trigger = client_trigger(request.trigger_id.as_deref())?;
            let v = view::one(&api.orchestrator, &jobid).await?;
            if request.cancel_job != Some(true) {
                return Err(FlinkError::bad_request(
                    "a dtle savepoint is taken by stopping the job once the target has committed \
                 everything read: send \"cancel-job\": true, or POST /jobs/:jobid/stop",
                ));
            }
            accepted(&trigger_stop(&api, &v, trigger)?)
        }
        .await,
    )
}

/// `GET /jobs/{jobid}/savepoints/{triggerid}`.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/savepoints/{triggerid}",
    operation_id = "flink_job_savepoint_status",
    tag = "Flink",
    summary = "How a stop with savepoint goes",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("triggerid" = String, Path, description = "The `request-id` the stop answered (the agent remembers the last 100)"),
    ),
    responses(
        (status = 200, description = "In progress, or completed with the savepoint or why it failed", body = SavepointOperation),
        (status = 404, description = "No such job, or no such operation for it", body = ErrorBody),
        OrchestratorErrors,
    )
)]
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
            ok(&savepoints::result(&outcome))
        }
        .await,
    )
}

/// How `PATCH /jobs/{jobid}` ends a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = FlinkTerminationMode)]
pub enum TerminationMode {
    /// The job stops; its position stays on the target.
    Cancel,
    /// Stop with savepoint, as `POST /jobs/{jobid}/stop`.
    Stop,
}

/// A canceled job: nothing to say (Flink answers `{}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FlinkEmptyResponse)]
pub struct EmptyResponse {}

/// What `PATCH /jobs/{jobid}` answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = FlinkTerminationAccepted)]
pub enum TerminationAccepted {
    /// `mode=cancel`: the job is being stopped.
    Canceled(EmptyResponse),
    /// `mode=stop`: the stop with savepoint started.
    Stopping(TriggerResponse),
}

/// `PATCH /jobs/{jobid}[?mode=cancel|stop]`: cancel (the job stops, its position is kept), or
/// stop with savepoint.
#[utoipa::path(
    patch,
    path = "/jobs/{jobid}",
    operation_id = "flink_job_terminate",
    tag = "Flink",
    summary = "Cancels a job, or stops it with a savepoint",
    params(
        ("jobid" = String, Path, description = JOBID),
        ("mode" = Option<TerminationMode>, Query, description = "`cancel` (the default) or `stop` (any case)"),
    ),
    responses(
        (status = 202, description = "`{}` for cancel; the trigger ID for stop", body = TerminationAccepted),
        (status = 400, description = "`mode` is neither `cancel` nor `stop`", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has ended (or, to stop it, is paused or already stopping)", body = ErrorBody),
        (status = 501, description = "`mode=stop` and the orchestrator keeps no job history (Nomad)", body = ErrorBody),
        OrchestratorErrors,
    )
)]
pub async fn terminate(api: Api, jobid: String, query: Query) -> Response {
    respond(
        async {
            let mode = query
                .get("mode")
                .map_or("cancel".to_owned(), |m| m.to_ascii_lowercase());
            let v = view::one(&api.orchestrator, &jobid).await?;
            let mode: TerminationMode = serde_json::from_value(Value::String(mode.clone()))
                .map_err(|_| {
                    FlinkError::bad_request(format!("mode must be cancel or stop, not {mode:?}"))
                })?;
            let answer = match mode {
                TerminationMode::Cancel => {
                    must_be_active(&v)?;
                    api.orchestrator.stop(&v.id, false, false).await?;
                    TerminationAccepted::Canceled(EmptyResponse {})
                }
                TerminationMode::Stop => {
                    TerminationAccepted::Stopping(trigger_stop(&api, &v, None)?)
                }
            };
            accepted(&answer)
        }
        .await,
    )
}
