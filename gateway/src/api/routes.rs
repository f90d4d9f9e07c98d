//! Paths and methods of the dtle 2.x API. Unknown paths answer 404, known paths with the wrong
//! method 405, both as JSON (see [`super::error::recover`]). Jobs are registered with `POST` or
//! `PUT` (dtle 2.x's Go client writes with `PUT`), on `/v1/jobs` or `/v1/job/{ID}`.

use super::body::job_body;
use super::error::recover;
use super::handlers::{self, Shared};
use super::query::ReadQuery;
use std::convert::Infallible;
use warp::Filter;

fn with(orchestrator: Shared) -> impl Filter<Extract = (Shared,), Error = Infallible> + Clone {
    warp::any().map(move || orchestrator.clone())
}

/// Every route, with errors turned into JSON responses.
pub fn routes(
    orchestrator: Shared,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let o = || with(orchestrator.clone());
    let v1 = warp::path("v1");
    let write = || warp::post().or(warp::put()).unify();
    let jobs_list = v1
        .and(warp::path("jobs"))
        .and(warp::path::end())
        .and(warp::get())
        .and(o())
        .and(warp::query::<ReadQuery>())
        .then(handlers::list);
    let jobs_post = v1
        .and(warp::path("jobs"))
        .and(warp::path::end())
        .and(write())
        .and(o())
        .and(job_body())
        .then(handlers::register_job);
    let job_get = v1
        .and(warp::path!("job" / String))
        .and(warp::get())
        .and(o())
        .and(warp::query::<ReadQuery>())
        .then(|id, o, q| handlers::get(o, id, q));
    let job_put = v1
        .and(warp::path!("job" / String))
        .and(write())
        .and(o())
        .and(job_body())
        .then(|id, o, body| handlers::register_at(o, id, body));
    let job_delete = v1
        .and(warp::path!("job" / String))
        .and(warp::delete())
        .and(o())
        .and(warp::query::<handlers::StopQuery>())
        .then(|id, o, q| handlers::stop(o, id, q));
    let job_pause = v1
        .and(warp::path!("job" / String / "pause"))
        .and(warp::post())
        .and(o())
        .then(|id, o| handlers::pause(o, id));
    let job_resume = v1
        .and(warp::path!("job" / String / "resume"))
        .and(warp::post())
        .and(o())
        .then(|id, o| handlers::resume(o, id));
    let allocations = v1
        .and(warp::path!("job" / String / "allocations"))
        .and(warp::get())
        .and(o())
        .and(warp::query::<ReadQuery>())
        .then(|id, o, q| handlers::allocations(o, id, q));
    let stats = v1
        .and(warp::path!("agent" / "allocation" / String / "stats"))
        .and(warp::get())
        .and(o())
        .then(|id, o| handlers::stats(o, id));
    let leader = v1
        .and(warp::path!("leader"))
        .and(warp::get())
        .and(o())
        .then(handlers::leader);
    let nodes = v1
        .and(warp::path!("nodes"))
        .and(warp::get())
        .and(o())
        .then(handlers::nodes);
    let members = v1
        .and(warp::path!("members"))
        .and(warp::get())
        .and(o())
        .then(handlers::members);
    // SeaTunnel's endpoint, at its v2 and v1 paths.
    let encrypt = warp::path!("encrypt-config")
        .or(warp::path!(
            "hazelcast" / "rest" / "maps" / "encrypt-config"
        ))
        .unify()
        .and(warp::post())
        .and(o())
        .and(job_body())
        .then(super::encrypt::encrypt_config);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(o())
        .then(super::metrics::scrape);
    jobs_list
        .or(metrics)
        .unify()
        .or(super::openapi::route())
        .unify()
        .or(encrypt)
        .unify()
        .or(jobs_post)
        .unify()
        .or(job_get)
        .unify()
        .or(job_put)
        .unify()
        .or(job_delete)
        .unify()
        .or(job_pause)
        .unify()
        .or(job_resume)
        .unify()
        .or(allocations)
        .unify()
        .or(stats)
        .unify()
        .or(leader)
        .unify()
        .or(nodes)
        .unify()
        .or(members)
        .unify()
        // SeaTunnel's `/overview` answers Flink's keys too: it is mounted first.
        .or(super::seatunnel::routes(orchestrator.clone()))
        .unify()
        .or(super::flink::routes(orchestrator.clone()))
        .unify()
        .recover(recover)
        .unify()
}
