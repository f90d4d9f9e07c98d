//! One function per endpoint: parse what came in, ask the orchestrator, shape the answer.
//! Handlers hold no replication logic and never see a password in clear (records are rendered
//! through [`super::models`], which redacts). Reads that may block ([`super::query`]) first wait
//! for the orchestrator's index, then read, and answer with that index.

use super::error::ApiError;
use super::models;
use super::query::{go_bool, with_index, ReadQuery};
use crate::orchestrator::{Orchestrator, Watched};
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

/// Waits, as the query asks, until what `watched` reads has an index above the query's.
async fn block(
    orchestrator: &Shared,
    watched: Watched<'_>,
    query: &ReadQuery,
) -> Result<u64, ApiError> {
    let (min_index, wait) = query.blocking()?;
    Ok(orchestrator.wait_index(watched, min_index, wait).await?)
}

/// `POST`/`PUT` `/v1/jobs`, and `/v1/job/{ID}` (`path_id`): create or update a job (dtle JSON,
/// either shape, bare or in a Go client's `{"Job": ...}`; Nomad JSON; Nomad HCL). Under
/// `/v1/job/{ID}` the job's ID is the path's: a job that names another is a 400.
pub async fn register(
    orchestrator: Shared,
    path_id: Option<String>,
    body: Result<bytes::Bytes, ApiError>,
) -> Response {
    respond(
        async {
            let body = body?;
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
            let mut parsed = jobs::parse_job(text)?;
            if let Some(id) = path_id {
                if parsed.explicit_id && parsed.spec.id != id {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "the job's ID {:?} is not the {id:?} of the path /v1/job/{id}",
                            parsed.spec.id
                        ),
                    ));
                }
                jobs::check_id(&id).map_err(|why| {
                    ApiError::new(StatusCode::BAD_REQUEST, format!("the job ID {id:?}: {why}"))
                })?;
                parsed.spec.id = id;
                parsed.explicit_id = true;
            }
            let warnings = parsed.warnings.clone();
            let registered = orchestrator.register(parsed).await?;
            Ok(ok(models::registered(&registered, &warnings)))
        }
        .await,
    )
}

/// `GET /v1/jobs[?prefix=][&index=&wait=]`: the jobs whose ID starts with the prefix.
pub async fn list(orchestrator: Shared, query: ReadQuery) -> Response {
    let index = match block(&orchestrator, Watched::Jobs, &query).await {
        Ok(index) => index,
        Err(err) => return err.into_response(),
    };
    let prefix = query.prefix.unwrap_or_default();
    let answer = orchestrator
        .jobs()
        .await
        .map(|jobs| {
            ok(serde_json::Value::Array(
                jobs.iter()
                    .filter(|j| j.spec.id.starts_with(&prefix))
                    .map(models::job_stub)
                    .collect(),
            ))
        })
        .map_err(Into::into);
    with_index(respond(answer), index)
}

/// `GET /v1/job/{ID}[?index=&wait=]`.
pub async fn get(orchestrator: Shared, id: String, query: ReadQuery) -> Response {
    let index = match block(&orchestrator, Watched::Job(&id), &query).await {
        Ok(index) => index,
        Err(err) => return err.into_response(),
    };
    let answer = orchestrator
        .job(&id)
        .await
        .map(|r| ok(models::job(&r)))
        .map_err(Into::into);
    with_index(respond(answer), index)
}

/// Query of `DELETE /v1/job/{ID}`: booleans as Go's `strconv.ParseBool` reads them.
#[derive(Debug, Default, Deserialize)]
pub struct StopQuery {
    /// Also forget the job.
    pub purge: Option<String>,
    /// Also delete the job's position rows on the target.
    pub purge_position: Option<String>,
}

/// `DELETE /v1/job/{ID}[?purge=true][&purge_position=true]`.
pub async fn stop(orchestrator: Shared, id: String, query: StopQuery) -> Response {
    respond(
        async {
            let purge = go_bool("purge", query.purge.as_deref())?;
            let purge_position = go_bool("purge_position", query.purge_position.as_deref())?;
            let stopped = orchestrator.stop(&id, purge, purge_position).await?;
            Ok(ok(models::registered(&stopped, &[])))
        }
        .await,
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

/// `GET /v1/job/{ID}/allocations[?index=&wait=]`.
pub async fn allocations(orchestrator: Shared, id: String, query: ReadQuery) -> Response {
    let index = match block(&orchestrator, Watched::Allocations(&id), &query).await {
        Ok(index) => index,
        Err(err) => return err.into_response(),
    };
    let answer = orchestrator
        .allocations(&id)
        .await
        .map(|allocs| {
            ok(serde_json::Value::Array(
                allocs.iter().map(models::allocation).collect(),
            ))
        })
        .map_err(Into::into);
    with_index(respond(answer), index)
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
