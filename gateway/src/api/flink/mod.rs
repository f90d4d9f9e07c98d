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
//! their end, exceptions and checkpoints.
//!
//! # What does not apply
//! Jar upload, plan and run, job submission through Flink's client, rescaling, savepoint
//! disposal and cluster shutdown answer 400 `{"errors": ["...why..."]}`.

pub mod checkpoints;
pub mod error;
pub mod handlers;
pub mod ids;
pub mod models;
pub mod openapi;
pub mod savepoints;
#[cfg(test)]
mod tests;
pub mod view;

use super::handlers::Shared;
use handlers::{Api, Query};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// Largest request body accepted (stop and savepoint requests are a few bytes).
const MAX_BODY: u64 = 64 * 1024;

const JARS: &str = "dtle runs replication jobs, not jars: post a dtle job to /v1/jobs instead";
const SUBMIT: &str =
    "jobs are not submitted through Flink's client here: post a dtle job to /v1/jobs instead";
const RESCALE: &str = "a dtle job has one Src and one Dest task: it cannot be rescaled (the \
                       Dest's parallelism is its ParallelWorkers setting; post the job again to \
                       change it)";
const DISPOSE: &str = "a dtle savepoint is a position committed on the target: there is nothing \
                       to dispose of";
const CLUSTER: &str = "the agent is not shut down through this API: stop its process (SIGTERM)";

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
    let body = || {
        warp::body::content_length_limit(MAX_BODY)
            .and(warp::body::bytes())
            .or(warp::any().map(bytes::Bytes::new))
            .unify()
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
            .then(|id, api, q| handlers::terminate(api, id, q))
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
            .then(|id, api, b| handlers::stop(api, id, b))
            .boxed(),
        warp::path!("jobs" / String / "savepoints")
            .and(warp::post())
            .and(with())
            .and(body())
            .then(|id, api, b| handlers::savepoint(api, id, b))
            .boxed(),
        warp::path!("jobs" / String / "savepoints" / String)
            .and(get())
            .and(with())
            .then(|id, tid, api| handlers::savepoint_status(api, id, tid))
            .boxed(),
        warp::path!("jars").and(get()).then(handlers::jars).boxed(),
        not_applicable(),
    ])
}

/// The paths that do not apply to replication jobs.
fn not_applicable() -> BoxedFilter<(Response,)> {
    use handlers::not_applicable as says;
    any_of(vec![
        warp::path!("jobs")
            .and(warp::post())
            .then(|| says(SUBMIT))
            .boxed(),
        warp::path!("jars" / "upload")
            .and(warp::post())
            .then(|| says(JARS))
            .boxed(),
        warp::path!("jars" / String)
            .and(warp::delete())
            .then(|_: String| says(JARS))
            .boxed(),
        warp::path!("jars" / String / "plan")
            .and(warp::get().or(warp::post()).unify())
            .then(|_: String| says(JARS))
            .boxed(),
        warp::path!("jars" / String / "run")
            .and(warp::post())
            .then(|_: String| says(JARS))
            .boxed(),
        warp::path!("jobs" / String / "rescaling")
            .and(warp::patch())
            .then(|_: String| says(RESCALE))
            .boxed(),
        warp::path!("jobs" / String / "rescaling" / String)
            .and(warp::get())
            .then(|_: String, _: String| says(RESCALE))
            .boxed(),
        warp::path!("savepoint-disposal")
            .and(warp::post())
            .then(|| says(DISPOSE))
            .boxed(),
        warp::path!("savepoint-disposal" / String)
            .and(warp::get())
            .then(|_: String| says(DISPOSE))
            .boxed(),
        warp::path!("cluster")
            .and(warp::delete())
            .then(|| says(CLUSTER))
            .boxed(),
    ])
}
