//! SeaTunnel Zeta's REST API over dtle jobs: v2 at the root (`/running-jobs`, `/job-info/:id`,
//! ...), and the same handlers under `/hazelcast/rest/maps/` (v1).
//!
//! A dtle job is a SeaTunnel job whose DAG has two vertices, `Source[0]-MySQL-CDC` (the Src task
//! on the source server) and `Sink[0]-Jdbc` (the Dest task), with the replicated tables as
//! `tablePaths` and one edge in pipeline 1. Field names and shapes follow SeaTunnel's documented
//! API (values are strings where SeaTunnel renders strings); errors are SeaTunnel's
//! `{"status": "fail", "message"}` with a 4xx or 5xx status.
//!
//! | Path | Module |
//! |---|---|
//! | `GET /overview?tag=value`, `/system-monitoring-information`, `/thread-dump` | [`system`] |
//! | `GET /running-jobs`, `/job-info/{jobId}`, `/running-job/{jobId}`, `/finished-jobs[/{state}]`, `/pending-jobs` | [`jobs`] |
//! | `POST /submit-job`, `/submit-jobs`, `/stop-job`, `/stop-jobs` | [`submit`] |
//! | `GET /logs[/{jobId} \| /{file}]`, `/log[/{file}]` | [`logs`] |
//! | `GET /openmetrics`, and `/hazelcast/rest/maps/metrics` (the root's `/metrics` is the dtle API's) | [`openmetrics`] |
//!
//! States, times and errors: [`view`]; DAG, metrics and job objects: [`render`]. Every body is
//! a typed value whose schema is in the served OpenAPI document ([`openapi`]).

pub mod error;
pub mod jobs;
pub mod logs;
pub mod openapi;
pub mod openmetrics;
pub mod procfs;
pub mod render;
pub mod submit;
pub mod system;
pub mod view;

use crate::api::handlers::Shared;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// Largest body accepted by the submit and stop calls.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// What the handlers share: the orchestrator and what this API remembers itself.
pub struct ApiState {
    /// Whoever runs the jobs.
    pub orchestrator: Shared,
    /// Per job ID, whether its last submission asked to start from its savepoint.
    start_with_savepoint: Mutex<HashMap<String, bool>>,
    /// The CPU reading of the previous monitoring request.
    cpu: Mutex<Option<procfs::CpuSample>>,
    /// The most threads seen.
    peak_threads: AtomicU64,
    /// The low bits of the next generated job ID.
    next_id: AtomicU64,
}

/// The shared state.
pub type Api = Arc<ApiState>;

impl ApiState {
    /// For `orchestrator`.
    pub fn new(orchestrator: Shared) -> Api {
        let seed = uuid::Uuid::new_v4().as_u128() as u64;
        Arc::new(Self {
            orchestrator,
            start_with_savepoint: Mutex::default(),
            cpu: Mutex::default(),
            peak_threads: AtomicU64::new(0),
            next_id: AtomicU64::new(seed),
        })
    }

    /// Whether the job's current run was submitted with `isStartWithSavePoint=true`: as this
    /// API remembers it, else (the agent restarted since) whether the history saw its run start
    /// from a savepoint.
    pub fn started_with_savepoint(&self, view: &view::JobView) -> bool {
        self.start_with_savepoint
            .lock()
            .ok()
            .and_then(|m| m.get(&view.id).copied())
            .unwrap_or(view.restored_from_savepoint)
    }

    fn remember_start(&self, id: &str, with_savepoint: bool) {
        if let Ok(mut m) = self.start_with_savepoint.lock() {
            m.insert(id.to_owned(), with_savepoint);
        }
    }

    /// A new job ID as SeaTunnel makes them: a positive 64-bit number, the time in ms in the
    /// high bits and a counter (started at random) in the low 22.
    fn generate_id(&self) -> String {
        let ms = crate::orchestrator::now_ns() / 1_000_000;
        let low = self.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << 22) - 1);
        let id = ((ms & ((1 << 41) - 1)) << 22) | low;
        id.max(1).to_string()
    }

    /// The CPU load (process, host) since the previous call.
    fn cpu_load(&self, processors: u64) -> (f64, f64) {
        let Some(now) = procfs::CpuSample::take() else {
            return (0.0, 0.0);
        };
        let previous = self.cpu.lock().ok().and_then(|mut c| c.replace(now));
        procfs::cpu_load(previous, now, processors)
    }

    /// Records `threads` and returns the most seen.
    fn peak_threads(&self, threads: u64) -> u64 {
        self.peak_threads
            .fetch_max(threads, Ordering::Relaxed)
            .max(threads)
    }
}

/// A job ID as SeaTunnel's clients read it: a number when it is one, else the text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StJobId {
    /// A SeaTunnel job ID: a positive 64-bit number.
    Number(i64),
    /// A dtle job ID that is not a number (letters, digits, `_`, `-`).
    Text(String),
}

impl StJobId {
    /// `id` as a number when it is a non-negative one, else as text.
    pub fn of(id: &str) -> Self {
        match id.parse::<i64>() {
            Ok(n) if n >= 0 => StJobId::Number(n),
            _ => StJobId::Text(id.to_owned()),
        }
    }
}

fn with(api: Api) -> impl Filter<Extract = (Api,), Error = Infallible> + Clone {
    warp::any().map(move || api.clone())
}

/// SeaTunnel's routes at the root and under `/hazelcast/rest/maps/`.
pub fn routes(orchestrator: Shared) -> BoxedFilter<(Response,)> {
    let api = ApiState::new(orchestrator);
    let root = warp::any().boxed();
    let v1 = warp::path("hazelcast")
        .and(warp::path("rest"))
        .and(warp::path("maps"))
        .boxed();
    let v1_paths = under(v1, "/hazelcast/rest/maps", api.clone());
    let v1_metrics = warp::path!("hazelcast" / "rest" / "maps" / "metrics")
        .and(warp::get())
        .and(with(api.clone()))
        .then(openmetrics::v1_metrics);
    under(root, "", api)
        .or(v1_paths)
        .unify()
        .or(v1_metrics)
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}

/// Every SeaTunnel path after `prefix` (whose text is `base`, for links).
fn under(prefix: BoxedFilter<()>, base: &'static str, api: Api) -> BoxedFilter<(Response,)> {
    let p = || prefix.clone();
    let a = || with(api.clone());
    let query = || warp::query::<HashMap<String, String>>();
    let body = || warp::body::content_length_limit(MAX_BODY).and(warp::body::bytes());
    let host = || warp::header::optional::<String>("host");
    let get = |name: &'static str| {
        p().and(warp::path(name))
            .and(warp::path::end())
            .and(warp::get())
    };
    let post = |name: &'static str| {
        p().and(warp::path(name))
            .and(warp::path::end())
            .and(warp::post())
    };
    let get_one = |name: &'static str| {
        p().and(warp::path(name))
            .and(warp::path::param::<String>())
            .and(warp::path::end())
            .and(warp::get())
    };

    let overview = get("overview").and(a()).and(query()).then(system::overview);
    let monitoring = get("system-monitoring-information")
        .and(a())
        .and(host())
        .then(system::monitoring);
    let thread_dump = get("thread-dump").and(a()).then(system::thread_dump);
    let running_jobs = get("running-jobs").and(a()).then(jobs::running_jobs);
    let job_info = get_one("job-info").and(a()).then(jobs::get_job_info);
    let running_job = get_one("running-job").and(a()).then(jobs::get_running_job);
    let finished_all = get("finished-jobs").and(a()).then(jobs::all_finished_jobs);
    let finished = get_one("finished-jobs")
        .and(a())
        .then(jobs::finished_jobs_in_state);
    let pending = get("pending-jobs")
        .and(a())
        .and(query())
        .then(jobs::pending_jobs);
    let submit_job = post("submit-job")
        .and(a())
        .and(query())
        .and(body())
        .then(submit::submit_job);
    let submit_jobs = post("submit-jobs")
        .and(a())
        .and(body())
        .then(submit::submit_jobs);
    let stop_job = post("stop-job").and(a()).and(body()).then(submit::stop_job);
    let stop_jobs = post("stop-jobs")
        .and(a())
        .and(body())
        .then(submit::stop_jobs);
    let logs_all = get("logs")
        .and(a())
        .and(query())
        .and(host())
        .then(move |api, q, host| logs::all_logs(api, q, host, base));
    let logs_one = get_one("logs")
        .and(a())
        .and(query())
        .and(host())
        .then(move |item, api, q, host| logs::job_or_file(api, item, q, host, base));
    let log_all = get("log")
        .and(a())
        .and(query())
        .and(host())
        .then(move |api, q, host| logs::node_logs(api, q, host, base));
    let log_one = get_one("log").and(a()).then(logs::file);
    let openmetrics = get("openmetrics").and(a()).then(openmetrics::scrape);

    overview
        .or(monitoring)
        .unify()
        .or(thread_dump)
        .unify()
        .or(running_jobs)
        .unify()
        .or(job_info)
        .unify()
        .or(running_job)
        .unify()
        .or(finished_all)
        .unify()
        .or(finished)
        .unify()
        .or(pending)
        .unify()
        .boxed()
        .or(submit_job)
        .unify()
        .or(submit_jobs)
        .unify()
        .or(stop_job)
        .unify()
        .or(stop_jobs)
        .unify()
        .or(logs_all)
        .unify()
        .or(logs_one)
        .unify()
        .or(log_all)
        .unify()
        .or(log_one)
        .unify()
        .or(openmetrics)
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_positive_longs_and_distinct() {
        let orchestrator: Shared = Arc::new(NoJobs);
        let api = ApiState::new(orchestrator);
        let a: i64 = api.generate_id().parse().expect("a long");
        let b: i64 = api.generate_id().parse().expect("a long");
        assert!(a > 0 && b > 0 && a != b);
        let id_value = |id: &str| serde_json::to_value(StJobId::of(id)).expect("JSON");
        assert_eq!(
            id_value("733584788375666689"),
            serde_json::json!(733584788375666689_i64)
        );
        assert_eq!(id_value("orders"), serde_json::json!("orders"));
        assert_eq!(api.peak_threads(3), 3);
        assert_eq!(api.peak_threads(2), 3);
    }

    /// An orchestrator with nothing in it, for the handlers' tests.
    pub(crate) struct NoJobs;

    #[async_trait::async_trait]
    impl crate::orchestrator::Orchestrator for NoJobs {
        async fn register(
            &self,
            _: ::jobs::ParsedJob,
        ) -> Result<crate::orchestrator::Registered, crate::orchestrator::OrchestratorError>
        {
            Err(crate::orchestrator::OrchestratorError::Internal(
                "no".into(),
            ))
        }
        async fn jobs(
            &self,
        ) -> Result<Vec<crate::orchestrator::JobRecord>, crate::orchestrator::OrchestratorError>
        {
            Ok(Vec::new())
        }
        async fn job(
            &self,
            id: &str,
        ) -> Result<crate::orchestrator::JobRecord, crate::orchestrator::OrchestratorError>
        {
            Err(crate::orchestrator::OrchestratorError::JobNotFound(
                id.into(),
            ))
        }
        async fn stop(
            &self,
            id: &str,
            _: bool,
            _: bool,
        ) -> Result<crate::orchestrator::Registered, crate::orchestrator::OrchestratorError>
        {
            Err(crate::orchestrator::OrchestratorError::JobNotFound(
                id.into(),
            ))
        }
        async fn pause(
            &self,
            id: &str,
        ) -> Result<crate::orchestrator::Registered, crate::orchestrator::OrchestratorError>
        {
            Err(crate::orchestrator::OrchestratorError::JobNotFound(
                id.into(),
            ))
        }
        async fn resume(
            &self,
            id: &str,
        ) -> Result<crate::orchestrator::Registered, crate::orchestrator::OrchestratorError>
        {
            Err(crate::orchestrator::OrchestratorError::JobNotFound(
                id.into(),
            ))
        }
        async fn allocations(
            &self,
            _: &str,
        ) -> Result<Vec<crate::orchestrator::Allocation>, crate::orchestrator::OrchestratorError>
        {
            Ok(Vec::new())
        }
        async fn allocation_stats(
            &self,
            id: &str,
        ) -> Result<
            (
                crate::orchestrator::Allocation,
                driver::stats::StatsSnapshot,
                Option<std::time::Duration>,
            ),
            crate::orchestrator::OrchestratorError,
        > {
            Err(crate::orchestrator::OrchestratorError::AllocationNotFound(
                id.into(),
            ))
        }
        async fn nodes(
            &self,
        ) -> Result<Vec<crate::orchestrator::Node>, crate::orchestrator::OrchestratorError>
        {
            Ok(vec![crate::orchestrator::Node {
                id: "n1".into(),
                name: "node-1".into(),
                datacenter: "dc1".into(),
                http_addr: "127.0.0.1:8190".into(),
                status: "ready".into(),
                create_index: 1,
                modify_index: 1,
            }])
        }
        async fn wait_index(
            &self,
            _: crate::orchestrator::Watched<'_>,
            _: u64,
            _: std::time::Duration,
        ) -> Result<u64, crate::orchestrator::OrchestratorError> {
            Ok(1)
        }
        async fn leader(&self) -> Result<String, crate::orchestrator::OrchestratorError> {
            Ok("127.0.0.1:8190".into())
        }
    }
}
