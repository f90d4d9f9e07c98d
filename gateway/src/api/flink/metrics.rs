//! Job metrics (Flink's `Metric` and `AggregatedMetric` collections): a job's, by name, and
//! the numeric ones aggregated over jobs. Values are text, as Flink's.

use super::models::duration;
use super::view::{JobStatus, JobView};
use jobs::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// The job metrics served, and their values.
pub fn metric_values(view: &JobView, now: i64) -> Vec<(&'static str, String)> {
    let h = view.history.as_ref();
    let latest = h.and_then(|h| h.latest_checkpoint());
    let (start, end) = (view.start_ms(), view.end_ms());
    let running = view.state() == JobStatus::Running;
    let src = view.vertex_totals(Role::Src);
    let dest = view.vertex_totals(Role::Dest);
    let lag = view
        .task(Role::Src)
        .and_then(|t| t.stats.as_ref())
        .and_then(|s| s.lag_seconds);
    vec![
        (
            "uptime",
            if running {
                duration(start, end, now)
            } else {
                0
            }
            .to_string(),
        ),
        ("downtime", "0".into()),
        ("numRestarts", view.restarts().to_string()),
        ("fullRestarts", view.restarts().to_string()),
        (
            "totalNumberOfCheckpoints",
            h.map_or(0, |h| h.checkpoints_total).to_string(),
        ),
        (
            "numberOfCompletedCheckpoints",
            h.map_or(0, |h| h.checkpoints_total).to_string(),
        ),
        ("numberOfFailedCheckpoints", "0".into()),
        ("numberOfInProgressCheckpoints", "0".into()),
        (
            "lastCheckpointDuration",
            latest.map_or(0, |c| c.duration_ms).to_string(),
        ),
        ("lastCheckpointSize", "0".into()),
        (
            "lastCheckpointExternalPath",
            latest.map(|c| c.position_text()).unwrap_or_default(),
        ),
        (
            "lastCheckpointRestoreTimestamp",
            h.and_then(|h| h.last_restore.as_ref())
                .map_or(-1, |r| i64::try_from(r.time_ms).unwrap_or(-1))
                .to_string(),
        ),
        ("numRecordsIn", src.read_records.to_string()),
        ("numRecordsOut", dest.write_records.to_string()),
        ("numBytesOut", src.write_bytes.to_string()),
        ("numBytesIn", dest.read_bytes.to_string()),
        (
            "currentEmitEventTimeLag",
            lag.map_or(-1, |s| i64::try_from(s.saturating_mul(1000)).unwrap_or(-1))
                .to_string(),
        ),
        (
            "executedGtidSet",
            view.record
                .as_ref()
                .and_then(|r| r.executed_gtid.clone())
                .or_else(|| latest.and_then(|c| c.gtid_set.clone()))
                .unwrap_or_default(),
        ),
    ]
}

/// One job metric (Flink's `Metric`): its name, and its value when asked for with `get`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkMetric)]
pub struct Metric {
    /// Its name (`numRecordsIn`, `uptime`, ...).
    pub id: String,
    /// Its value, as text (Flink's metrics are text); only with `get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub value: Option<String>,
}

/// `GET /jobs/{jobid}/metrics[?get=a,b]`: without `get`, the metrics there are; with it, the
/// values of those named (unknown names are left out, as Flink does).
pub fn metrics(view: &JobView, get: Option<&str>, now: i64) -> Vec<Metric> {
    let values = metric_values(view, now);
    let Some(get) = get.filter(|g| !g.trim().is_empty()) else {
        return values
            .iter()
            .map(|(id, _)| Metric {
                id: (*id).to_owned(),
                value: None,
            })
            .collect();
    };
    let wanted: Vec<&str> = get.split(',').map(str::trim).collect();
    values
        .into_iter()
        .filter(|(id, _)| wanted.contains(id))
        .map(|(id, value)| Metric {
            id: id.to_owned(),
            value: Some(value),
        })
        .collect()
}

/// One job metric over several jobs (Flink's `AggregatedMetric`): the aggregates asked for
/// with `agg` (all four by default), only with `get`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(as = FlinkAggregatedMetric)]
pub struct AggregatedMetric {
    /// Its name.
    pub id: String,
    /// The smallest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub min: Option<f64>,
    /// The largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max: Option<f64>,
    /// The mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub avg: Option<f64>,
    /// The sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sum: Option<f64>,
}

/// `GET /jobs/metrics`: the numeric job metrics of `views`; with `get`, those named,
/// aggregated over the jobs with `aggs` (`min`, `max`, `avg`, `sum`; others are ignored).
pub fn aggregated_metrics(
    views: &[&JobView],
    get: Option<&str>,
    aggs: &[String],
    now: i64,
) -> Vec<AggregatedMetric> {
    let mut by_metric: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for v in views {
        for (id, value) in metric_values(v, now) {
            let Ok(n) = value.parse::<f64>() else {
                continue;
            };
            match by_metric.iter_mut().find(|(m, _)| *m == id) {
                Some((_, values)) => values.push(n),
                None => by_metric.push((id, vec![n])),
            }
        }
    }
    let Some(get) = get.filter(|g| !g.trim().is_empty()) else {
        return by_metric
            .iter()
            .map(|(id, _)| AggregatedMetric {
                id: (*id).to_owned(),
                ..AggregatedMetric::default()
            })
            .collect();
    };
    let wanted: Vec<&str> = get.split(',').map(str::trim).collect();
    by_metric
        .into_iter()
        .filter(|(id, _)| wanted.contains(id))
        .map(|(id, values)| {
            let sum: f64 = values.iter().sum();
            let mut m = AggregatedMetric {
                id: id.to_owned(),
                ..AggregatedMetric::default()
            };
            for agg in aggs {
                match agg.as_str() {
                    "min" => m.min = Some(values.iter().copied().fold(f64::INFINITY, f64::min)),
                    "max" => {
                        m.max = Some(values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
                    }
                    "avg" => m.avg = Some(sum / values.len() as f64),
                    "sum" => m.sum = Some(sum),
                    _ => {}
                }
            }
            m
        })
        .collect()
}
