//! `GET /overview`, `/system-monitoring-information` and `/thread-dump`.
//!
//! # Overview
//! SeaTunnel's keys, every value a string: `projectVersion` (dtle-rs's version),
//! `gitCommitAbbrev` (the commit it was built from, when the build knew it), `totalSlot` and
//! `unassignedSlot` (`0`: dtle has no slots, as SeaTunnel with dynamic slots), `works` (the
//! nodes that run tasks and match the tags), and the jobs by state. Tags filter the nodes by
//! `datacenter` (or `dc`), `node` (or `name`) and `status`; any other tag matches no node. The
//! job counts are for the whole cluster, as SeaTunnel's.
//!
//! # System monitoring
//! One entry: this agent's process (the embedded orchestrator runs every task in it) and its
//! host, with SeaTunnel's keys. dtle has no JVM: `heap.memory.used` is the process's resident
//! anonymous memory (its heap and stacks), `heap.memory.total` its resident memory,
//! `heap.memory.max` the host's memory; there is no garbage collector (its counts are 0).
//! `load.process` and `load.system` are the CPU load since the previous request (the first:
//! since the process started); `thread.peakCount` the most threads this API has seen. The
//! process's uptime, resident peak and open descriptors are added as `process.*`.

use super::error::{ok_json, respond};
use super::procfs::{self, human_bytes};
use super::view::{self, StStatus};
use super::Api;
use crate::orchestrator::Node;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use warp::reply::Response;

/// The commit dtle-rs was built from, if the build was given it.
const GIT_COMMIT: Option<&str> = option_env!("DTLE_GIT_COMMIT");

/// Whether a node has every tag asked for.
fn node_matches(node: &Node, tags: &HashMap<String, String>) -> bool {
    tags.iter().all(|(key, value)| {
        let have = match key.as_str() {
            "datacenter" | "dc" => &node.datacenter,
            "node" | "name" => &node.name,
            "status" => &node.status,
            _ => return false,
        };
        have == value
    })
}

/// Flink's keys of `/overview` (Flink's `GET /overview`), which the same answer carries: all
/// of them, or none when the orchestrator cannot list the jobs or nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StOverviewFlinkKeys {
    /// The nodes (Flink's task managers).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub taskmanagers: Option<u64>,
    /// The running tasks of the active jobs.
    #[serde(rename = "slots-total", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub slots_total: Option<u64>,
    /// 0.
    #[serde(rename = "slots-available", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub slots_available: Option<u64>,
    /// The jobs that have not ended.
    #[serde(rename = "jobs-running", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub jobs_running: Option<u64>,
    /// The jobs that ended by themselves.
    #[serde(rename = "jobs-finished", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub jobs_finished: Option<u64>,
    /// The stopped jobs.
    #[serde(rename = "jobs-cancelled", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub jobs_cancelled: Option<u64>,
    /// The failed jobs.
    #[serde(rename = "jobs-failed", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub jobs_failed: Option<u64>,
    /// The Flink version whose API is served.
    #[serde(rename = "flink-version", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub flink_version: Option<String>,
    /// The commit dtle-rs was built from.
    #[serde(rename = "flink-commit", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub flink_commit: Option<String>,
}

/// `/overview`: Flink's keys and SeaTunnel's in one object (they do not collide). SeaTunnel's
/// values are strings; the job counts are the whole cluster's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StOverview {
    /// Flink's keys.
    #[serde(flatten)]
    pub flink: StOverviewFlinkKeys,
    /// dtle-rs's version.
    pub project_version: String,
    /// The commit dtle-rs was built from (`unknown` when the build was not told).
    pub git_commit_abbrev: String,
    /// `0`: dtle has no slots (as SeaTunnel with dynamic slots).
    pub total_slot: String,
    /// `0`.
    pub unassigned_slot: String,
    /// The ready nodes matching the tags.
    pub works: String,
    /// Running jobs.
    pub running_jobs: String,
    /// Pending jobs.
    pub pending_jobs: String,
    /// Jobs that ended by themselves.
    pub finished_jobs: String,
    /// Failed jobs.
    pub failed_jobs: String,
    /// Stopped jobs.
    pub cancelled_jobs: String,
}

/// SeaTunnel's overview keys (without Flink's).
pub async fn overview_fields(api: &Api, tags: &HashMap<String, String>) -> StOverview {
    let views = view::load_all(&api.orchestrator)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(message = %err.message, "overview: the jobs cannot be listed");
            Vec::new()
        });
    let count = |status: StStatus| views.iter().filter(|v| v.status == status).count();
    let nodes = api.orchestrator.nodes().await.unwrap_or_default();
    let works = nodes
        .iter()
        .filter(|n| n.status == "ready" && node_matches(n, tags))
        .count();
    StOverview {
        flink: StOverviewFlinkKeys::default(),
        project_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit_abbrev: GIT_COMMIT.unwrap_or("unknown").to_owned(),
        total_slot: "0".into(),
        unassigned_slot: "0".into(),
        works: works.to_string(),
        running_jobs: count(StStatus::Running).to_string(),
        pending_jobs: count(StStatus::Pending).to_string(),
        finished_jobs: count(StStatus::Finished).to_string(),
        failed_jobs: count(StStatus::Failed).to_string(),
        cancelled_jobs: count(StStatus::Canceled).to_string(),
    }
}

/// `GET /overview?tag=value`: SeaTunnel's keys and Flink's in one object; they do not collide.
///
/// Flink's keys are those Flink's own `GET /overview` would answer: this path serves both APIs.
#[utoipa::path(
    get,
    path = "/overview",
    operation_id = "st_overview",
    tag = "SeaTunnel",
    params(
        ("tags" = Option<HashMap<String, String>>, Query, style = Form, explode,
         description = "Tags the counted nodes (`works`) must have: `datacenter` (or `dc`), `node` (or `name`), `status`; any other tag matches no node"),
    ),
    responses(
        (status = 200, description = "The cluster: SeaTunnel's keys (strings) and Flink's (left out when the orchestrator cannot list the jobs or nodes)", body = StOverview),
    )
)]
pub async fn overview(api: Api, tags: HashMap<String, String>) -> Response {
    let flink = match crate::api::flink::handlers::overview_fields(&api.orchestrator).await {
        Ok(flink) => serde_json::to_value(flink)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "overview: Flink's keys do not read");
                StOverviewFlinkKeys::default()
            }),
        Err(err) => {
            tracing::warn!(?err, "overview: Flink's keys are left out");
            StOverviewFlinkKeys::default()
        }
    };
    let mut fields = overview_fields(&api, &tags).await;
    fields.flink = flink;
    ok_json(&fields)
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", part * 100.0 / whole)
    } else {
        "0.00%".into()
    }
}

/// One node of `/system-monitoring-information`: this agent's process and host, with SeaTunnel's
/// keys (every value a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StMonitoring {
    /// Always `true`: this agent is its own master.
    #[serde(rename = "isMaster")]
    pub is_master: String,
    /// The host this agent was reached at (the request's `Host`, else the leader's address).
    #[serde(rename = "host")]
    pub host: String,
    /// Its port (empty when the address has none).
    #[serde(rename = "port")]
    pub port: String,
    /// The CPUs available.
    #[serde(rename = "processors")]
    pub processors: String,
    /// The host's memory (`12.3G`, `456.7M`, ...).
    #[serde(rename = "physical.memory.total")]
    pub physical_memory_total: String,
    /// The host's available memory.
    #[serde(rename = "physical.memory.free")]
    pub physical_memory_free: String,
    /// The host's swap.
    #[serde(rename = "swap.space.total")]
    pub swap_space_total: String,
    /// The host's free swap.
    #[serde(rename = "swap.space.free")]
    pub swap_space_free: String,
    /// The process's resident anonymous memory (its heap and stacks).
    #[serde(rename = "heap.memory.used")]
    pub heap_memory_used: String,
    /// Its resident memory less that.
    #[serde(rename = "heap.memory.free")]
    pub heap_memory_free: String,
    /// The process's resident memory.
    #[serde(rename = "heap.memory.total")]
    pub heap_memory_total: String,
    /// The host's memory.
    #[serde(rename = "heap.memory.max")]
    pub heap_memory_max: String,
    /// used over total, `12.34%`.
    #[serde(rename = "heap.memory.used/total")]
    pub heap_memory_used_total: String,
    /// used over max, `12.34%`.
    #[serde(rename = "heap.memory.used/max")]
    pub heap_memory_used_max: String,
    /// `0`: no garbage collector.
    #[serde(rename = "minor.gc.count")]
    pub minor_gc_count: String,
    /// `0ms`.
    #[serde(rename = "minor.gc.time")]
    pub minor_gc_time: String,
    /// `0`.
    #[serde(rename = "major.gc.count")]
    pub major_gc_count: String,
    /// `0ms`.
    #[serde(rename = "major.gc.time")]
    pub major_gc_time: String,
    /// The process's CPU load since the previous request, `12.34%`.
    #[serde(rename = "load.process")]
    pub load_process: String,
    /// The host's CPU load since the previous request, `12.34%`.
    #[serde(rename = "load.system")]
    pub load_system: String,
    /// The host's 1-minute load average, `0.42`.
    #[serde(rename = "load.systemAverage")]
    pub load_system_average: String,
    /// The process's threads.
    #[serde(rename = "thread.count")]
    pub thread_count: String,
    /// The most threads seen.
    #[serde(rename = "thread.peakCount")]
    pub thread_peak_count: String,
    /// `0`.
    #[serde(rename = "cluster.timeDiff")]
    pub cluster_time_diff: String,
    /// `0`: no Hazelcast queues.
    #[serde(rename = "event.q.size")]
    pub event_q_size: String,
    /// `0`.
    #[serde(rename = "executor.q.async.size")]
    pub executor_q_async_size: String,
    /// `0`.
    #[serde(rename = "executor.q.client.size")]
    pub executor_q_client_size: String,
    /// `0`.
    #[serde(rename = "executor.q.client.query.size")]
    pub executor_q_client_query_size: String,
    /// `0`.
    #[serde(rename = "executor.q.client.blocking.size")]
    pub executor_q_client_blocking_size: String,
    /// `0`.
    #[serde(rename = "executor.q.query.size")]
    pub executor_q_query_size: String,
    /// `0`.
    #[serde(rename = "executor.q.scheduled.size")]
    pub executor_q_scheduled_size: String,
    /// `0`.
    #[serde(rename = "executor.q.io.size")]
    pub executor_q_io_size: String,
    /// `0`.
    #[serde(rename = "executor.q.system.size")]
    pub executor_q_system_size: String,
    /// `0`.
    #[serde(rename = "executor.q.operations.size")]
    pub executor_q_operations_size: String,
    /// `0`.
    #[serde(rename = "executor.q.priorityOperation.size")]
    pub executor_q_priority_operation_size: String,
    /// `0`.
    #[serde(rename = "operations.completed.count")]
    pub operations_completed_count: String,
    /// `0`.
    #[serde(rename = "executor.q.mapLoad.size")]
    pub executor_q_map_load_size: String,
    /// `0`.
    #[serde(rename = "executor.q.mapLoadAllKeys.size")]
    pub executor_q_map_load_all_keys_size: String,
    /// `0`.
    #[serde(rename = "executor.q.cluster.size")]
    pub executor_q_cluster_size: String,
    /// `0`.
    #[serde(rename = "executor.q.response.size")]
    pub executor_q_response_size: String,
    /// `0`.
    #[serde(rename = "operations.running.count")]
    pub operations_running_count: String,
    /// `0.00%`.
    #[serde(rename = "operations.pending.invocations.percentage")]
    pub operations_pending_invocations_percentage: String,
    /// `0`.
    #[serde(rename = "operations.pending.invocations.count")]
    pub operations_pending_invocations_count: String,
    /// `0`.
    #[serde(rename = "proxy.count")]
    pub proxy_count: String,
    /// `0`.
    #[serde(rename = "clientEndpoint.count")]
    pub client_endpoint_count: String,
    /// `0`.
    #[serde(rename = "connection.active.count")]
    pub connection_active_count: String,
    /// `0`.
    #[serde(rename = "client.connection.count")]
    pub client_connection_count: String,
    /// `0`.
    #[serde(rename = "connection.count")]
    pub connection_count: String,
    /// Seconds since the process started, `42s`.
    #[serde(rename = "process.uptime")]
    pub process_uptime: String,
    /// The process's resident memory.
    #[serde(rename = "process.memory.rss")]
    pub process_memory_rss: String,
    /// Its resident peak.
    #[serde(rename = "process.memory.rssPeak")]
    pub process_memory_rss_peak: String,
    /// Its virtual memory.
    #[serde(rename = "process.memory.virtual")]
    pub process_memory_virtual: String,
    /// Its open file descriptors.
    #[serde(rename = "process.openFiles")]
    pub process_open_files: String,
}

/// `GET /system-monitoring-information`.
#[utoipa::path(
    get,
    path = "/system-monitoring-information",
    operation_id = "st_system_monitoring_information",
    tag = "SeaTunnel",
    responses(
        (status = 200, description = "One entry: this agent (its process and host)", body = Vec<StMonitoring>),
    )
)]
pub async fn monitoring(api: Api, host: Option<String>) -> Response {
    respond(
        async {
            let leader = api.orchestrator.leader().await.unwrap_or_default();
            let address = host.filter(|h| !h.is_empty()).unwrap_or(leader);
            let (host_name, port) = address
                .rsplit_once(':')
                .map(|(h, p)| (h.to_owned(), p.to_owned()))
                .unwrap_or((address.clone(), String::new()));
            let processors = std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1);
            let process = procfs::process_memory();
            let machine = procfs::host_memory();
            let (load_process, load_system) = api.cpu_load(processors);
            let peak = api.peak_threads(process.threads);
            let uptime = procfs::process_uptime_secs().unwrap_or(0.0);
            let used = process.rss_anon;
            let total = process.rss.max(used);
            let max = machine.total.max(total);
            let zero = || "0".to_owned();
            let entry = StMonitoring {
                is_master: "true".into(),
                host: host_name,
                port,
                processors: processors.to_string(),
                physical_memory_total: human_bytes(machine.total),
                physical_memory_free: human_bytes(machine.free),
                swap_space_total: human_bytes(machine.swap_total),
                swap_space_free: human_bytes(machine.swap_free),
                heap_memory_used: human_bytes(used),
                heap_memory_free: human_bytes(total - used),
                heap_memory_total: human_bytes(total),
                heap_memory_max: human_bytes(max),
                heap_memory_used_total: percent(used as f64, total as f64),
                heap_memory_used_max: percent(used as f64, max as f64),
                minor_gc_count: zero(),
                minor_gc_time: "0ms".into(),
                major_gc_count: zero(),
                major_gc_time: "0ms".into(),
                load_process: format!("{load_process:.2}%"),
                load_system: format!("{load_system:.2}%"),
                load_system_average: format!("{:.2}", procfs::load_average().unwrap_or(0.0)),
                thread_count: process.threads.to_string(),
                thread_peak_count: peak.to_string(),
                cluster_time_diff: zero(),
                event_q_size: zero(),
                executor_q_async_size: zero(),
                executor_q_client_size: zero(),
                executor_q_client_query_size: zero(),
                executor_q_client_blocking_size: zero(),
                executor_q_query_size: zero(),
                executor_q_scheduled_size: zero(),
                executor_q_io_size: zero(),
                executor_q_system_size: zero(),
                executor_q_operations_size: zero(),
                executor_q_priority_operation_size: zero(),
                operations_completed_count: zero(),
                executor_q_map_load_size: zero(),
                executor_q_map_load_all_keys_size: zero(),
                executor_q_cluster_size: zero(),
                executor_q_response_size: zero(),
                operations_running_count: zero(),
                operations_pending_invocations_percentage: "0.00%".into(),
                operations_pending_invocations_count: zero(),
                proxy_count: zero(),
                client_endpoint_count: zero(),
                connection_active_count: zero(),
                client_connection_count: zero(),
                connection_count: zero(),
                process_uptime: format!("{}s", uptime as u64),
                process_memory_rss: human_bytes(process.rss),
                process_memory_rss_peak: human_bytes(process.rss_peak),
                process_memory_virtual: human_bytes(process.virtual_size),
                process_open_files: procfs::open_fds().to_string(),
            };
            Ok(ok_json(&[entry]))
        }
        .await,
    )
}

/// One thread of `/thread-dump`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StThread {
    /// Its name.
    pub thread_name: String,
    /// The kernel's thread ID.
    pub thread_id: u64,
    /// Its state as Java names them: `RUNNABLE`, `WAITING`, `BLOCKED`, `TIMED_WAITING`,
    /// `TERMINATED`, `NEW`.
    pub thread_state: String,
    /// Always empty: dtle has no stack traces to show.
    pub stack_trace: String,
}

/// `GET /thread-dump`: this process's threads (dtle has no stack traces to show: empty).
#[utoipa::path(
    get,
    path = "/thread-dump",
    operation_id = "st_thread_dump",
    tag = "SeaTunnel",
    responses(
        (status = 200, description = "This process's threads", body = Vec<StThread>),
    )
)]
pub async fn thread_dump(_api: Api) -> Response {
    let threads: Vec<StThread> = procfs::threads()
        .into_iter()
        .map(|t| StThread {
            thread_name: t.name,
            thread_id: t.id,
            thread_state: t.state.to_owned(),
            stack_trace: String::new(),
        })
        .collect();
    ok_json(&threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::tests::NoJobs;
    use crate::api::seatunnel::ApiState;
    use serde_json::Value;
    use std::sync::Arc;

    async fn body(response: Response) -> Value {
        let bytes = warp::hyper::body::to_bytes(response.into_body())
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn overview_keys_are_strings_and_tags_filter_nodes() {
        let api = ApiState::new(Arc::new(NoJobs));
        let all = body(overview(api.clone(), HashMap::new()).await).await;
        for key in [
            "projectVersion",
            "gitCommitAbbrev",
            "totalSlot",
            "unassignedSlot",
            "works",
            "runningJobs",
            "pendingJobs",
            "finishedJobs",
            "failedJobs",
            "cancelledJobs",
        ] {
            assert!(all[key].is_string(), "{key}: {all}");
        }
        assert_eq!(all["works"], "1");
        let dc = HashMap::from([("dc".to_owned(), "dc1".to_owned())]);
        assert_eq!(body(overview(api.clone(), dc).await).await["works"], "1");
        let other = HashMap::from([("zone".to_owned(), "az1".to_owned())]);
        assert_eq!(body(overview(api, other).await).await["works"], "0");
    }

    #[tokio::test]
    async fn monitoring_describes_this_process() {
        let api = ApiState::new(Arc::new(NoJobs));
        let info = body(monitoring(api.clone(), Some("localhost:5801".into())).await).await;
        let entry = &info[0];
        assert_eq!(entry["host"], "localhost");
        assert_eq!(entry["port"], "5801");
        assert!(entry["thread.count"].as_str().is_some_and(|t| t != "0"));
        let total = entry["physical.memory.total"].as_str().expect("a size");
        assert!(total.ends_with('G') || total.ends_with('M'), "{total}");
        assert!(entry["load.process"]
            .as_str()
            .is_some_and(|l| l.ends_with('%')));
        let dump = body(thread_dump(api).await).await;
        assert!(dump[0]["threadName"].is_string() && dump[0]["threadId"].is_u64());
    }
}
