//! One function per endpoint: parse what came in, ask the orchestrator, shape the answer.
//! Handlers hold no replication logic and never see a password in clear (records are rendered
//! through [`super::models`], which redacts). Reads that may block ([`super::query`]) first wait
//! for the orchestrator's index, then read, and answer with that index.

use super::error::{ApiError, BodyFailure, OrchestratorFailure};
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

fn ok(body: impl serde::Serialize) -> Response {
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

/// `POST`/`PUT` `/v1/jobs`: create or update a job (dtle JSON, either shape, bare or in a Go
/// client's `{"Job": ...}`; Nomad JSON; Nomad HCL).
#[utoipa::path(
    method(post, put),
    path = "/v1/jobs",
    tag = "dtle",
    request_body(
        description = "A dtle 2.x job (either task shape, bare or as `{\"Job\": ...}`), a Nomad \
                       JSON job, or a Nomad HCL job as text. A Password shown as `*` keeps the \
                       stored one.",
        content(
            (Object = "application/json"),
            (String = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "Registered (or unchanged)", body = models::RegisterResponse),
        OrchestratorFailure,
        BodyFailure,
    ),
)]
pub async fn register_job(orchestrator: Shared, body: Result<bytes::Bytes, ApiError>) -> Response {
    register(orchestrator, None, body).await
}

/// `POST`/`PUT` `/v1/job/{ID}`: as [`register_job`], the job's ID being the path's (a job that
/// names another is a 400).
#[utoipa::path(
    method(post, put),
    path = "/v1/job/{ID}",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID")),
    request_body(
        description = "As for `POST /v1/jobs`.",
        content(
            (Object = "application/json"),
            (String = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "Registered (or unchanged)", body = models::RegisterResponse),
        OrchestratorFailure,
        BodyFailure,
    ),
)]
pub async fn register_at(
    orchestrator: Shared,
    id: String,
    body: Result<bytes::Bytes, ApiError>,
) -> Response {
    register(orchestrator, Some(id), body).await
}

async fn register(
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
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "dtle",
    params(ReadQuery),
    responses(
        (status = 200, description = "The jobs", body = Vec<models::JobStub>, headers(
            ("X-Nomad-Index" = u64, description = "The index of what is shown: pass it as `?index=` to wait for a change"),
            ("X-Nomad-KnownLeader" = bool),
            ("X-Nomad-LastContact" = u64),
        )),
        OrchestratorFailure,
    ),
)]
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
            let stubs: Vec<_> = jobs
                .iter()
                .filter(|j| j.spec.id.starts_with(&prefix))
                .map(models::job_stub)
                .collect();
            ok(stubs)
        })
        .map_err(Into::into);
    with_index(respond(answer), index)
}

/// `GET /v1/job/{ID}[?index=&wait=]`.
#[utoipa::path(
    get,
    path = "/v1/job/{ID}",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID"), ReadQuery),
    responses(
        (status = 200, description = "The job (passwords as `*`)", body = models::Job, headers(
            ("X-Nomad-Index" = u64, description = "The index of what is shown: pass it as `?index=` to wait for a change"),
            ("X-Nomad-KnownLeader" = bool),
            ("X-Nomad-LastContact" = u64),
        )),
        OrchestratorFailure,
    ),
)]
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

/// Query of `DELETE /v1/job/{ID}`: booleans as Go's `strconv.ParseBool` reads them (`1`, `t`,
/// `TRUE`, `true`, ..., `0`, `f`, `FALSE`, ...; absent or empty is false).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StopQuery {
    /// Also forget the job.
    pub purge: Option<String>,
    /// Also delete the job's position rows on the target.
    pub purge_position: Option<String>,
}

/// `DELETE /v1/job/{ID}[?purge=true][&purge_position=true]`.
#[utoipa::path(
    delete,
    path = "/v1/job/{ID}",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID"), StopQuery),
    responses(
        (status = 200, description = "Stopped (and purged)", body = models::RegisterResponse),
        OrchestratorFailure,
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/job/{ID}/pause",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID")),
    responses(
        (status = 200, description = "Paused", body = models::RegisterResponse),
        OrchestratorFailure,
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/job/{ID}/resume",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID")),
    responses(
        (status = 200, description = "Resumed", body = models::RegisterResponse),
        OrchestratorFailure,
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/job/{ID}/allocations",
    tag = "dtle",
    params(("ID" = String, Path, description = "The job's ID"), ReadQuery),
    responses(
        (status = 200, description = "The job's allocations (one per task run)", body = Vec<models::AllocationView>, headers(
            ("X-Nomad-Index" = u64, description = "The index of what is shown: pass it as `?index=` to wait for a change"),
            ("X-Nomad-KnownLeader" = bool),
            ("X-Nomad-LastContact" = u64),
        )),
        OrchestratorFailure,
    ),
)]
pub async fn allocations(orchestrator: Shared, id: String, query: ReadQuery) -> Response {
    let index = match block(&orchestrator, Watched::Allocations(&id), &query).await {
        Ok(index) => index,
        Err(err) => return err.into_response(),
    };
    let answer = orchestrator
        .allocations(&id)
        .await
        .map(|allocs| {
            let shown: Vec<_> = allocs.iter().map(models::allocation).collect();
            ok(shown)
        })
        .map_err(Into::into);
    with_index(respond(answer), index)
}

/// `GET /v1/agent/allocation/{allocID}/stats`.
#[utoipa::path(
    get,
    path = "/v1/agent/allocation/{allocID}/stats",
    tag = "dtle",
    params(("allocID" = String, Path, description = "The allocation's ID, or a unique prefix of it")),
    responses(
        (status = 200, description = "The task's figures", body = models::AllocationStats),
        OrchestratorFailure,
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/leader",
    tag = "dtle",
    responses(
        (status = 200, description = "The leader's `host:port`", body = String, content_type = "application/json"),
        OrchestratorFailure,
    ),
)]
pub async fn leader(orchestrator: Shared) -> Response {
    respond(orchestrator.leader().await.map(ok).map_err(Into::into))
}

/// `GET /v1/nodes`.
#[utoipa::path(
    get,
    path = "/v1/nodes",
    tag = "dtle",
    responses(
        (status = 200, description = "The nodes", body = Vec<models::NodeView>),
        OrchestratorFailure,
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "dtle",
    responses(
        (status = 200, description = "The agents", body = models::Members),
        OrchestratorFailure,
    ),
)]
pub async fn members(orchestrator: Shared) -> Response {
    respond(
        orchestrator
            .nodes()
            .await
            .map(|nodes| ok(models::members(&nodes, "global")))
            .map_err(Into::into),
    )
}
