//! Flink's monitoring REST API over replication jobs.
//!
//! A dtle job is shown as a Flink streaming job of two vertices: `Src` (the source: reads the
//! source server's snapshot and binlog) feeding `Dest` (the sink: applies into the target).
//! Field names and shapes are Flink's (see `docs/flink-api.md` for the mapping, and the seeds
//! it follows); what Flink cannot say about replication travels in extra keys (a checkpoint's
//! `gtid_set`, a job's `dtle-job-id`).
//!
//! # Identifiers
//! Flink job IDs are 32 hex digits: a dtle job's is a hash of its dtle ID ([`ids`]), the same
//! on every agent and after restarts. Paths accept either form. Vertex IDs are hashes too
//! (`Src` and `Dest` are accepted as well).
//!
//! # Paths
//! Every path is served at the root and under `/v1` (Flink's versioned prefix), except
//! `GET /v1/jobs` and `POST /v1/jobs`, which stay dtle 2.x's (the dtle routes are tried first).
//! Job lists and states come from the job history, so ended and purged jobs stay visible with
//! their end, exceptions and checkpoints. `GET /overview` at the root is answered by SeaTunnel's
//! handler, with Flink's keys too ([`handlers::overview_fields`]); `/v1/overview` by this API.
//!
//! # Contract
//! Every response body is a typed struct (`#[derive(Serialize, ToSchema)]`, schemas named
//! `Flink…`), every handler carries its `#[utoipa::path]`, and [`openapi::document`] builds this
//! API's part of `GET /openapi.json` from them.
//!
//! # What does not apply
//! Jar upload, plan and run, job submission through Flink's client, rescaling, savepoint
//! disposal and cluster shutdown answer 400 `{"errors": ["...why..."]}`.

pub mod checkpoints;
pub mod cluster;
pub mod control;
pub mod error;
pub mod exceptions;
pub mod handlers;
pub mod ids;
pub mod inapplicable;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod savepoints;
#[cfg(test)]
mod tests;
pub mod view;

use super::handlers::Shared;
use error::FlinkError;
use handlers::{Api, Body, Query};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

/// Largest request body accepted (stop and savepoint requests are a few bytes).
const MAX_BODY: u64 = 64 * 1024;

/// Every Flink route, at the root and under `/v1`.
pub fn routes(orchestrator: Shared) -> BoxedFilter<(Response,)> {
    let api = Api {
        orchestrator,
        triggers: Arc::default(),
    };
    let relative = relative(api);
    warp::path("v1")
        .and(relative.clone())
        .or(relative)
        .unify()
        .boxed()
}

/// Tries `routes` in turn; each is boxed first, so the combined type stays shallow (long
/// chains of warp's `or` take the compiler minutes).
fn any_of(routes: Vec<BoxedFilter<(Response,)>>) -> BoxedFilter<(Response,)> {
    let mut routes = routes.into_iter();
    let first = routes.next().unwrap_or_else(|| {
        warp::any()
            .and_then(|| async { Err(warp::reject::not_found()) })
            .boxed()
    });
    routes.fold(first, |all, next| all.or(next).unify().boxed())
}

fn relative(api: Api) -> BoxedFilter<(Response,)> {
    let with = move || {
        let api = api.clone();
        warp::any().map(move || api.clone())
    };
    let query = || warp::query::<Query>();
    // No body (or one without a length) is an empty one; one too large is the handler's 413.
    let body = || {
        warp::body::content_length_limit(MAX_BODY)
            .and(warp::body::bytes())
            .map(Ok)
            .or(
                warp::header::optional::<u64>("content-length").map(|length| match length {
                    Some(n) if n > MAX_BODY => Err(FlinkError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the request body is too large (at most {MAX_BODY} bytes)"),
                    )),
                    _ => Ok(bytes::Bytes::new()),
                }),
            )
            .unify()
            .map(|body: Body| body)
            .boxed()
    };
    let get = warp::get;
    any_of(vec![
        warp::path!("config")
            .and(get())
            .then(handlers::config)
            .boxed(),
        warp::path!("overview")
            .and(get())
            .and(with())
            .then(handlers::overview)
            .boxed(),
        warp::path!("jobs")
            .and(get())
            .and(with())
            .then(handlers::jobs)
            .boxed(),
        warp::path!("jobs" / "overview")
            .and(get())
            .and(with())
            .then(handlers::jobs_overview)
            .boxed(),
        warp::path!("jobs" / "metrics")
            .and(get())
            .and(with())
            .and(query())
            .then(handlers::jobs_metrics)
            .boxed(),
        warp::path!("jobs" / String)
            .and(get())
            .and(with())
            .then(|id, api| handlers::job(api, id))
            .boxed(),
        warp::path!("jobs" / String)
            .and(warp::patch())
            .and(with())
            .and(query())
            .then(|id, api, q| control::terminate(api, id, q))
            .boxed(),
        warp::path!("jobs" / String / "plan")
            .and(get())
            .and(with())
            .then(|id, api| handlers::plan(api, id))
            .boxed(),
        warp::path!("jobs" / String / "vertices" / String)
            .and(get())
            .and(with())
            .then(|id, vid, api| handlers::vertex(api, id, vid))
            .boxed(),
        warp::path!("jobs" / String / "config")
            .and(get())
            .and(with())
            .then(|id, api| handlers::job_config(api, id))
            .boxed(),
        warp::path!("jobs" / String / "exceptions")
            .and(get())
            .and(with())
            .and(query())
            .then(|id, api, q| handlers::exceptions(api, id, q))
            .boxed(),
        warp::path!("jobs" / String / "metrics")
            .and(get())
            .and(with())
            .and(query())
            .then(|id, api, q| handlers::job_metrics(api, id, q))
            .boxed(),
        warp::path!("jobs" / String / "checkpoints")
            .and(get())
            .and(with())
            .then(|id, api| handlers::job_checkpoints(api, id))
            .boxed(),
        warp::path!("jobs" / String / "checkpoints" / "config")
            .and(get())
            .and(with())
            .then(|id, api| handlers::checkpoint_config(api, id))
            .boxed(),
        warp::path!("jobs" / String / "checkpoints" / "details" / String)
            .and(get())
            .and(with())
            .then(|id, cid, api| handlers::checkpoint_details(api, id, cid))
            .boxed(),
        warp::path!("jobs" / String / "stop")
            .and(warp::post())
            .and(with())
            .and(body())
            .then(|id, api, b| control::stop(api, id, b))
            .boxed(),
        warp::path!("jobs" / String / "savepoints")
            .and(warp::post())
            .and(with())
            .and(body())
            .then(|id, api, b| control::savepoint(api, id, b))
            .boxed(),
        warp::path!("jobs" / String / "savepoints" / String)
            .and(get())
            .and(with())
            .then(|id, tid, api| control::savepoint_status(api, id, tid))
            .boxed(),
        warp::path!("jars").and(get()).then(handlers::jars).boxed(),
        not_applicable(),
    ])
}

/// The paths that do not apply to replication jobs.
fn not_applicable() -> BoxedFilter<(Response,)> {
    use inapplicable as says;
    any_of(vec![
        warp::path!("jobs")
            .and(warp::post())
            .then(says::submit_job)
            .boxed(),
        warp::path!("jars" / "upload")
            .and(warp::post())
            .then(says::jar_upload)
            .boxed(),
        warp::path!("jars" / String)
            .and(warp::delete())
            .then(says::jar_delete)
            .boxed(),
        warp::path!("jars" / String / "plan")
            .and(warp::get())
            .then(says::jar_plan)
            .boxed(),
        warp::path!("jars" / String / "plan")
            .and(warp::post())
            .then(says::jar_plan_post)
            .boxed(),
        warp::path!("jars" / String / "run")
            .and(warp::post())
            .then(says::jar_run)
            .boxed(),
        warp::path!("jobs" / String / "rescaling")
            .and(warp::patch())
            .then(says::rescale)
            .boxed(),
        warp::path!("jobs" / String / "rescaling" / String)
            .and(warp::get())
            .then(says::rescale_status)
            .boxed(),
        warp::path!("savepoint-disposal")
            .and(warp::post())
            .then(says::dispose)
            .boxed(),
        warp::path!("savepoint-disposal" / String)
            .and(warp::get())
            .then(says::dispose_status)
            .boxed(),
        warp::path!("cluster")
            .and(warp::delete())
            .then(says::shutdown)
            .boxed(),
    ])
}
