//! The cluster as Flink shows it: its overview (`ClusterOverviewWithVersion`), the web
//! dashboard's configuration (`DashboardConfiguration`) and the jars (none).

use super::view::{JobStatus, JobView};
use crate::orchestrator::history::SAMPLE_EVERY;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The Flink REST API version whose shapes are served.
pub const FLINK_VERSION: &str = "1.18.0";

/// What `flink-commit` and `flink-revision` say: the dtle-rs build that answers.
pub fn flink_commit() -> String {
    format!("dtle-rs-{}", env!("CARGO_PKG_VERSION"))
}

/// Flink's keys of `GET /overview` (Flink's `ClusterOverviewWithVersion`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkClusterOverview)]
pub struct ClusterOverview {
    /// The agent's nodes.
    pub taskmanagers: usize,
    /// The running tasks of the active jobs.
    pub slots_total: usize,
    /// Always 0: dtle does not count slots.
    pub slots_available: usize,
    /// Jobs not ended (running, paused, restarting).
    pub jobs_running: usize,
    /// Jobs finished.
    pub jobs_finished: usize,
    /// Jobs canceled.
    pub jobs_cancelled: usize,
    /// Jobs failed.
    pub jobs_failed: usize,
    /// The Flink REST API version whose shapes are served.
    pub flink_version: String,
    /// The dtle-rs build.
    pub flink_commit: String,
}

/// Flink's keys of `GET /overview`.
pub fn overview(views: &[JobView], taskmanagers: usize) -> ClusterOverview {
    let count = |state: JobStatus| views.iter().filter(|v| v.state() == state).count();
    let running = views.iter().filter(|v| v.is_active()).count();
    let slots: usize = views
        .iter()
        .filter(|v| v.is_active())
        .map(|v| {
            v.tasks
                .iter()
                .filter(|t| t.alloc.client_status == "running")
                .count()
        })
        .sum();
    ClusterOverview {
        taskmanagers,
        slots_total: slots,
        slots_available: 0,
        jobs_running: running,
        jobs_finished: count(JobStatus::Finished),
        jobs_cancelled: count(JobStatus::Canceled),
        jobs_failed: count(JobStatus::Failed),
        flink_version: FLINK_VERSION.to_owned(),
        flink_commit: flink_commit(),
    }
}

/// Flink's keys of `GET /overview`, as a map other APIs' keys can be added to.
pub fn overview_fields(overview: &ClusterOverview) -> Map<String, Value> {
    match serde_json::to_value(overview) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// What the web dashboard may do (Flink's `DashboardConfiguration.features`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkDashboardFeatures)]
pub struct DashboardFeatures {
    /// Always false: jobs are posted to `/v1/jobs`.
    pub web_submit: bool,
    /// Always true: `PATCH /jobs/{jobid}` cancels.
    pub web_cancel: bool,
    /// Always false: a job cannot be rescaled.
    pub web_rescale: bool,
    /// Always false.
    pub web_history: bool,
}

/// `GET /config` (Flink's `DashboardConfiguration`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FlinkDashboardConfiguration)]
pub struct DashboardConfiguration {
    /// How often the numbers change, ms.
    pub refresh_interval: u64,
    /// Always UTC.
    pub timezone_name: String,
    /// Always 0.
    pub timezone_offset: i32,
    /// The Flink REST API version whose shapes are served.
    pub flink_version: String,
    /// The dtle-rs build.
    pub flink_revision: String,
    /// What the dashboard may do.
    pub features: DashboardFeatures,
}

/// `GET /config`.
pub fn dashboard_config() -> DashboardConfiguration {
    DashboardConfiguration {
        refresh_interval: SAMPLE_EVERY.as_millis() as u64,
        timezone_name: "Coordinated Universal Time".into(),
        timezone_offset: 0,
        flink_version: FLINK_VERSION.into(),
        flink_revision: flink_commit(),
        features: DashboardFeatures {
            web_submit: false,
            web_cancel: true,
            web_rescale: false,
            web_history: false,
        },
    }
}

/// An uploaded jar (Flink's `JarFileInfo`): dtle has none.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJarFile)]
pub struct JarFile {
    /// The jar's ID.
    pub id: String,
    /// Its file name.
    pub name: String,
    /// When it was uploaded, ms.
    pub uploaded: i64,
}

/// `GET /jars` (Flink's `JarListInfo`): always empty.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkJarList)]
pub struct JarList {
    /// Always empty.
    pub address: String,
    /// Always empty: dtle runs replication jobs, not jars.
    pub files: Vec<JarFile>,
}

/// `GET /jars`.
pub fn jars() -> JarList {
    JarList {
        address: String::new(),
        files: Vec::new(),
    }
}
