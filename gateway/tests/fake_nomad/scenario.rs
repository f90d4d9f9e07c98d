//! What the Nomad tests share: a dtle job, an orchestrator for the fake, and a running job.

use super::{allocation, plugin_stats, FakeNomad};
use gateway::orchestrator::nomad::client::ClientConfig;
use gateway::orchestrator::nomad::{NomadConfig, NomadOrchestrator};
use gateway::orchestrator::Orchestrator;
use serde_json::json;
use std::time::Duration;

pub const TOKEN: &str = "0f8e3c2a-secret-token";
pub const SRC_ALLOC: &str = "ed344e0a-7290-d117-41d3-a64f853ca3c2";
pub const DEST_ALLOC: &str = "5b6a4c2e-1f0d-4e3c-9b8a-7c6d5e4f3a2b";
pub const OLD_SRC_ALLOC: &str = "ed99e0aa-0000-4000-8000-000000000001";

/// A dtle 2.x job, as users post it, with its `ID` (so that posting it with another chunk size
/// updates it); its servers are on ports nothing listens on.
pub fn dtle_job(name: &str, chunk_size: u64) -> String {
    dtle_job_to(name, chunk_size, 13308)
}

/// The same, with the target's port given.
pub fn dtle_job_to(name: &str, chunk_size: u64, dest_port: u16) -> String {
    json!({
        "ID": name,
        "Name": name,
        "Tasks": [
            {"Type": "Src", "NodeName": "node-a", "Config": {
                "ReplicateDoDb": [{"TableSchema": "shop", "Tables": [{"TableName": "orders"}]}],
                "ChunkSize": chunk_size,
                "ConnectionConfig": {"Host": "127.0.0.1", "Port": 13307, "User": "repl", "Password": "src-secret"}}},
            {"Type": "Dest", "Config": {
                "ConnectionConfig": {"Host": "127.0.0.1", "Port": dest_port, "User": "apply", "Password": "dest-secret"}}}
        ]
    })
    .to_string()
}

pub fn parsed(name: &str, chunk_size: u64) -> jobs::ParsedJob {
    jobs::parse_job(&dtle_job(name, chunk_size)).expect("a valid job")
}

pub fn orchestrator(
    address: &str,
    region: Option<&str>,
    namespace: Option<&str>,
    token: Option<&str>,
) -> NomadOrchestrator {
    NomadOrchestrator::new(NomadConfig {
        client: ClientConfig {
            address: address.into(),
            region: region.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            token: token.map(str::to_owned),
            timeout: Duration::from_secs(5),
        },
        stop_timeout: Duration::from_secs(2),
    })
    .expect("a valid address")
}

/// A fake with the job `orders` registered and running: a Src and a Dest allocation (and an
/// older, failed Src), the plugin serving both tasks' stats.
pub async fn running_job(nomad: &FakeNomad, o: &NomadOrchestrator) {
    o.register(parsed("orders", 500)).await.expect("registered");
    nomad.with(|s| {
        if let Some(job) = s.jobs.get_mut("orders") {
            job["Status"] = json!("running");
        }
        s.allocations.insert(
            "orders".into(),
            vec![
                allocation(
                    OLD_SRC_ALLOC,
                    "orders",
                    "Src",
                    "failed",
                    1_495_755_600_000_000_000,
                ),
                allocation(
                    SRC_ALLOC,
                    "orders",
                    "Src",
                    "running",
                    1_495_755_675_944_527_600,
                ),
                allocation(
                    DEST_ALLOC,
                    "orders",
                    "Dest",
                    "running",
                    1_495_755_675_944_527_700,
                ),
            ],
        );
        s.plugin_stats.insert(
            SRC_ALLOC.into(),
            plugin_stats(SRC_ALLOC, "Src", 1234, Some("0-1-90")),
        );
        s.plugin_stats
            .insert(DEST_ALLOC.into(), plugin_stats(DEST_ALLOC, "Dest", 0, None));
    });
    nomad.take_requests();
}

/// A port on 127.0.0.1 nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("an address").port()
}
