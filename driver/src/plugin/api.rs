//! The plugin's own HTTP API: the replication stats of the tasks running in this plugin, for a
//! `dtle agent` that schedules through Nomad.
//!
//! Nomad's allocation stats carry only CPU and memory (TaskStats' resource usage), so a gateway in
//! front of Nomad asks the node's plugin for the rest. The plugin serves it when its config names
//! `api_addr`, and publishes that address as the fingerprint attribute
//! [`API_ADDR_ATTRIBUTE`], so the gateway finds it in the node's driver attributes. Only the
//! long-lived instance binds it (SetConfig with the client's settings): the client's validation
//! launch is killed right away and must not hold the port.
//!
//! `GET /v1/plugin/allocation/<full allocation id>/stats` answers [`AllocationStats`]: every task of
//! that allocation running here, by its Nomad task name. An allocation with no task here is a
//! 404 with a JSON `{"error": …}`, like every other path.
//!
//! As dtle's plugin did at its `api_addr`, the binary adds the dtle 2.x API in front of the Nomad
//! agent at `nomad_addr` ([`super::Hooks::api_routes`]): every other path goes there, so a dtle
//! user's scripts keep talking to the node's `api_addr`.

use super::registry::{Registry, RunningTask};
use crate::stats::StatsSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

/// The fingerprint attribute that carries `api_addr` (`host:port`; the host may be unspecified,
/// `0.0.0.0`, when the API listens on every interface).
pub const API_ADDR_ATTRIBUTE: &str = "driver.dtle.api_addr";

/// The answer to `GET /v1/plugin/allocation/<id>/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocationStats {
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    /// By Nomad task name.
    pub tasks: BTreeMap<String, TaskReport>,
}

/// One task's replication stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskReport {
    #[serde(rename = "TaskID")]
    pub task_id: String,
    pub stats: StatsSnapshot,
    /// The snapshot's estimated time left, ns; none before any row is copied.
    pub eta_nanos: Option<u64>,
    /// Whether the task is paused (SignalTask SIGSTOP).
    pub paused: bool,
}

impl TaskReport {
    fn of(task: &RunningTask) -> Self {
        let stats = task.stats.snapshot();
        let elapsed = SystemTime::now()
            .duration_since(task.started_at)
            .unwrap_or_default();
        let eta_nanos = stats
            .eta(elapsed)
            .map(|eta| u64::try_from(eta.as_nanos()).unwrap_or(u64::MAX));
        TaskReport {
            task_id: task.id.clone(),
            stats,
            eta_nanos,
            paused: *task.control.borrow(),
        }
    }
}

/// Why the API could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot listen on api_addr {addr}: {source}; free the port or set another api_addr in the plugin config")]
    Bind {
        addr: SocketAddr,
        source: warp::Error,
    },
    #[error("the plugin API already listens on {serving}; api_addr {asked} takes effect when the plugin restarts")]
    AlreadyServing {
        serving: SocketAddr,
        asked: SocketAddr,
    },
}

/// The API's listener: started at most once per process.
#[derive(Debug, Default)]
pub struct ApiServer {
    serving: Mutex<Option<SocketAddr>>,
}

impl ApiServer {
    /// Starts serving on `addr`, unless already serving there: the stats, then `more` (the
    /// binary's dtle 2.x API) for every other request. The server runs until the process ends.
    pub fn ensure(
        &self,
        addr: SocketAddr,
        registry: Arc<Registry>,
        more: Option<MoreRoutes>,
    ) -> Result<(), ApiError> {
        let mut serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        match *serving {
            Some(current) if current == addr => return Ok(()),
            Some(current) => {
                return Err(ApiError::AlreadyServing {
                    serving: current,
                    asked: addr,
                })
            }
            None => {}
        }
        let serves_more = more.is_some();
        let (bound, server) = warp::serve(routes(registry, more))
            .try_bind_ephemeral(addr)
            .map_err(|source| ApiError::Bind { addr, source })?;
        tokio::spawn(server);
        if serves_more {
            tracing::info!(%bound, "plugin API serving task stats and the dtle 2.x API");
        } else {
            tracing::info!(%bound, "plugin API serving task stats");
        }
        *serving = Some(addr);
        Ok(())
    }
}

/// Routes served after the stats, for every other request (the binary's dtle 2.x API).
pub type MoreRoutes = BoxedFilter<(warp::reply::Response,)>;

fn routes(registry: Arc<Registry>, more: Option<MoreRoutes>) -> MoreRoutes {
    let stats = warp::get()
        .and(warp::path!(
            "v1" / "plugin" / "allocation" / String / "stats"
        ))
        .map(move |alloc_id: String| allocation_stats(&registry, alloc_id));
    let rest = more.unwrap_or_else(|| {
        warp::any()
            .map(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "no such path: the dtle plugin serves GET /v1/plugin/allocation/<id>/stats",
                )
            })
            .boxed()
    });
    stats.or(rest).unify().boxed()
}

fn allocation_stats(registry: &Registry, alloc_id: String) -> warp::reply::Response {
    let tasks: BTreeMap<String, TaskReport> = registry
        .by_alloc(&alloc_id)
        .iter()
        .map(|task| (task.name.clone(), TaskReport::of(task)))
        .collect();
    if tasks.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no dtle task of allocation {alloc_id:?} runs in this plugin"),
        );
    }
    let body = AllocationStats { alloc_id, tasks };
    warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response()
}

fn error(status: StatusCode, message: &str) -> warp::reply::Response {
    let body = serde_json::json!({ "error": message });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::registry::StartRequest;
    use crate::plugin::task_spec::TaskJob;

    #[tokio::test]
    async fn unknown_allocations_and_paths_are_json_404s() {
        let api = routes(Arc::new(Registry::default()), None);
        for path in ["/v1/plugin/allocation/abc/stats", "/v1/jobs", "/"] {
            let reply = warp::test::request().path(path).reply(&api).await;
            assert_eq!(reply.status(), StatusCode::NOT_FOUND, "{path}");
            let body: serde_json::Value = serde_json::from_slice(reply.body()).unwrap();
            assert!(body["error"].as_str().is_some(), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn a_paused_task_reports_its_stats_by_task_name() {
        let registry = Arc::new(Registry::default());
        let spec = jobs::parse_job(include_str!(
            "../../../jobs/tests/fixtures/same_dtle2x.json"
        ))
        .expect("the job model's fixture parses")
        .spec;
        registry.start(StartRequest {
            id: "alloc-1/Src/0a1b2c3d".into(),
            name: "Src".into(),
            alloc_id: "alloc-1".into(),
            role: jobs::Role::Src,
            job: TaskJob::Spec(Box::new(spec)),
            hand_over: None,
            nats_url: "nats://127.0.0.1:1".into(),
            nats_security: Default::default(),
            paused: true,
        });
        let api = routes(Arc::clone(&registry), None);
        let reply = warp::test::request()
            .path("/v1/plugin/allocation/alloc-1/stats")
            .reply(&api)
            .await;
        assert_eq!(reply.status(), StatusCode::OK);
        let body: AllocationStats = serde_json::from_slice(reply.body()).unwrap();
        assert_eq!(body.alloc_id, "alloc-1");
        let src = &body.tasks["Src"];
        assert_eq!(src.task_id, "alloc-1/Src/0a1b2c3d");
        assert!(src.paused);
        assert_eq!(src.eta_nanos, None);
        if let Some(task) = registry.get("alloc-1/Src/0a1b2c3d") {
            task.cancel.cancel();
        }
    }
}
