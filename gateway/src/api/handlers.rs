//! One function per endpoint: parse what came in, ask the orchestrator, shape the answer.
//! Handlers hold no replication logic and never see a password in clear (records are rendered
//! through [`super::models`], which redacts).

use super::error::ApiError;
use super::models;
use crate::orchestrator::Orchestrator;
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// The orchestrator, shared by every handler.
pub type Shared = Arc<dyn Orchestrator>;

fn ok(body: serde_json::Value) -> Response {
    warp::reply::json(&body).into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

/// `POST /v1/jobs`: create or update a job (dtle JSON, either shape; Nomad JSON; Nomad HCL).
pub async fn register(orchestrator: Shared, body: bytes::Bytes) -> Response {
    respond(
        async {
            let text = std::str::from_utf8(&body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not UTF-8: {e}"),
                )
            })?;
            if text.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the body is empty: send a job",
                ));
            }
            let parsed = jobs::parse_job(text)?;
            let warnings = parsed.warnings.clone();
            let registered = orchestrator.register(parsed).await?;
            Ok(ok(models::registered(&registered, &warnings)))
        }
        .await,
    )
}

/// `GET /v1/jobs`.
pub async fn list(orchestrator: Shared) -> Response {
    respond(
        orchestrator
            .jobs()
            .await
            .map(|jobs| {
                ok(serde_json::Value::Array(
                    jobs.iter().map(models::job_stub).collect(),
                ))
            })
            .map_err(Into::into),
    )
}

/// `GET /v1/job/{ID}`.
pub async fn get(orchestrator: Shared, id: String) -> Response {
    respond(
        orchestrator
            .job(&id)
            .await
            .map(|r| ok(models::job(&r)))
            .map_err(Into::into),
    )
}

/// Query of `DELETE /v1/job/{ID}`.
#[derive(Debug, Deserialize)]
pub struct StopQuery {
    /// Also forget the job.
    #[serde(default)]
    pub purge: bool,
    /// Also delete the job's position rows on the target.
    #[serde(default)]
    pub purge_position: bool,
}

/// `DELETE /v1/job/{ID}[?purge=true][&purge_position=true]`.
pub async fn stop(orchestrator: Shared, id: String, query: StopQuery) -> Response {
    respond(
        orchestrator
            .stop(&id, query.purge, query.purge_position)
            .await
            .map(|r| ok(models::registered(&r, &[])))
            .map_err(Into::into),
    )
}

/// `POST /v1/job/{ID}/pause`.
pub async fn pause(orchestrator: Shared, id: String) -> Response {
    respond(
        orchestrator
            .pause(&id)
            .await
            .map(|r| ok(models::registered(&r, &[])))
            .map_err(Into::into),
    )
}

/// `POST /v1/job/{ID}/resume`.
pub async fn resume(orchestrator: Shared, id: String) -> Response {
    respond(
        orchestrator
            .resume(&id)
            .await
            .map(|r| ok(models::registered(&r, &[])))
            .map_err(Into::into),
    )
}

/// `GET /v1/job/{ID}/allocations`.
pub async fn allocations(orchestrator: Shared, id: String) -> Response {
    respond(
        orchestrator
            .allocations(&id)
            .await
            .map(|allocs| {
                ok(serde_json::Value::Array(
                    allocs.iter().map(models::allocation).collect(),
                ))
            })
            .map_err(Into::into),
    )
}

/// `GET /v1/agent/allocation/{allocID}/stats`.
pub async fn stats(orchestrator: Shared, alloc_id: String) -> Response {
    respond(
        orchestrator
            .allocation_stats(&alloc_id)
            .await
            .map(|(alloc, stats, eta)| {
                ok(models::stats(
                    &alloc,
                    &stats,
                    eta,
                    crate::orchestrator::now_ns(),
                ))
            })
            .map_err(Into::into),
    )
}

/// `GET /v1/leader`: a JSON string `"host:port"`.
pub async fn leader(orchestrator: Shared) -> Response {
    respond(
        orchestrator
            .leader()
            .await
            .map(|leader| ok(serde_json::Value::String(leader)))
            .map_err(Into::into),
    )
}

/// `GET /v1/nodes`.
pub async fn nodes(orchestrator: Shared) -> Response {
    respond(
        orchestrator
            .nodes()
            .await
            .map(|nodes| ok(models::nodes(&nodes)))
            .map_err(Into::into),
    )
}

/// `GET /v1/members`.
pub async fn members(orchestrator: Shared) -> Response {
    respond(
        orchestrator
            .nodes()
            .await
            .map(|nodes| ok(models::members(&nodes, "global")))
            .map_err(Into::into),
    )
}
