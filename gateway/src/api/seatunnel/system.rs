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
use serde_json::{json, Map, Value};
use std::collections::HashMap;
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

/// SeaTunnel's overview keys.
pub async fn overview_fields(api: &Api, tags: &HashMap<String, String>) -> Map<String, Value> {
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
    let mut m = Map::new();
    let mut put = |key: &str, value: String| {
        m.insert(key.to_owned(), Value::String(value));
    };
    put("projectVersion", env!("CARGO_PKG_VERSION").to_owned());
    put(
        "gitCommitAbbrev",
        GIT_COMMIT.unwrap_or("unknown").to_owned(),
    );
    put("totalSlot", "0".into());
    put("unassignedSlot", "0".into());
    put("works", works.to_string());
    put("runningJobs", count(StStatus::Running).to_string());
    put("pendingJobs", count(StStatus::Pending).to_string());
    put("finishedJobs", count(StStatus::Finished).to_string());
    put("failedJobs", count(StStatus::Failed).to_string());
    put("cancelledJobs", count(StStatus::Canceled).to_string());
    m
}

/// `GET /overview?tag=value`: SeaTunnel's keys and Flink's
/// ([`crate::api::flink::handlers::overview_fields`]) in one object; they do not collide.
pub async fn overview(api: Api, tags: HashMap<String, String>) -> Response {
    let mut fields = match crate::api::flink::handlers::overview_fields(&api.orchestrator).await {
        Ok(flink) => flink,
        Err(err) => {
            tracing::warn!(?err, "overview: Flink's keys are left out");
            Map::new()
        }
    };
    fields.extend(overview_fields(&api, &tags).await);
    ok_json(&Value::Object(fields))
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", part * 100.0 / whole)
    } else {
        "0.00%".into()
    }
}

/// `GET /system-monitoring-information`.
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
            let fields: Vec<(&str, String)> = vec![
                ("isMaster", "true".into()),
                ("host", host_name),
                ("port", port),
                ("processors", processors.to_string()),
                ("physical.memory.total", human_bytes(machine.total)),
                ("physical.memory.free", human_bytes(machine.free)),
                ("swap.space.total", human_bytes(machine.swap_total)),
                ("swap.space.free", human_bytes(machine.swap_free)),
                ("heap.memory.used", human_bytes(used)),
                ("heap.memory.free", human_bytes(total - used)),
                ("heap.memory.total", human_bytes(total)),
                ("heap.memory.max", human_bytes(max)),
                ("heap.memory.used/total", percent(used as f64, total as f64)),
                ("heap.memory.used/max", percent(used as f64, max as f64)),
                ("minor.gc.count", zero()),
                ("minor.gc.time", "0ms".into()),
                ("major.gc.count", zero()),
                ("major.gc.time", "0ms".into()),
                ("load.process", format!("{load_process:.2}%")),
                ("load.system", format!("{load_system:.2}%")),
                (
                    "load.systemAverage",
                    format!("{:.2}", procfs::load_average().unwrap_or(0.0)),
                ),
                ("thread.count", process.threads.to_string()),
                ("thread.peakCount", peak.to_string()),
                ("cluster.timeDiff", zero()),
                ("event.q.size", zero()),
                ("executor.q.async.size", zero()),
                ("executor.q.client.size", zero()),
                ("executor.q.client.query.size", zero()),
                ("executor.q.client.blocking.size", zero()),
                ("executor.q.query.size", zero()),
                ("executor.q.scheduled.size", zero()),
                ("executor.q.io.size", zero()),
                ("executor.q.system.size", zero()),
                ("executor.q.operations.size", zero()),
                ("executor.q.priorityOperation.size", zero()),
                ("operations.completed.count", zero()),
                ("executor.q.mapLoad.size", zero()),
                ("executor.q.mapLoadAllKeys.size", zero()),
                ("executor.q.cluster.size", zero()),
                ("executor.q.response.size", zero()),
                ("operations.running.count", zero()),
                ("operations.pending.invocations.percentage", "0.00%".into()),
                ("operations.pending.invocations.count", zero()),
                ("proxy.count", zero()),
                ("clientEndpoint.count", zero()),
                ("connection.active.count", zero()),
                ("client.connection.count", zero()),
                ("connection.count", zero()),
                ("process.uptime", format!("{}s", uptime as u64)),
                ("process.memory.rss", human_bytes(process.rss)),
                ("process.memory.rssPeak", human_bytes(process.rss_peak)),
                ("process.memory.virtual", human_bytes(process.virtual_size)),
                ("process.openFiles", procfs::open_fds().to_string()),
            ];
            let entry: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            Ok(ok_json(&json!([entry])))
        }
        .await,
    )
}

/// `GET /thread-dump`: this process's threads (dtle has no stack traces to show: empty).
pub async fn thread_dump(_api: Api) -> Response {
    let threads: Vec<Value> = procfs::threads()
        .into_iter()
        .map(|t| {
            json!({
                "threadName": t.name,
                "threadId": t.id,
                "threadState": t.state,
                "stackTrace": "",
            })
        })
        .collect();
    ok_json(&Value::Array(threads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::tests::NoJobs;
    use crate::api::seatunnel::ApiState;
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
