//! `GET /metrics`: every task's counters in Prometheus' text format, read from the orchestrator at
//! scrape time (nothing is kept between scrapes). Names follow `dtle_<what>_<unit>[_total]`;
//! labels are the job and the task (`Src`/`Dest`). Counters restart from zero when a task
//! restarts, which Prometheus' `rate()` handles.

use super::handlers::Shared;
use driver::stats::Wait;
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Reads one counter from a task's stats.
type Read = fn(&driver::stats::StatsSnapshot) -> u64;

struct Families {
    registry: Registry,
    counters: Vec<(IntCounterVec, Read)>,
    lag: GaugeVec,
    backlog: GaugeVec,
    progress: GaugeVec,
    up: GaugeVec,
    restarts: IntCounterVec,
}

fn families() -> Result<Families, prometheus::Error> {
    let registry = Registry::new();
    let labels = &["job", "task"];
    let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(c.clone()))?;
        Ok(c)
    };
    let gauge = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    let counters: Vec<(IntCounterVec, Read)> = vec![
        (
            counter(
                "dtle_rows_read_total",
                "Rows read from the source (snapshot and binlog).",
            )?,
            |s| s.rows_read,
        ),
        (
            counter(
                "dtle_rows_applied_total",
                "Rows applied to the target (the Src: as the applier acknowledged them).",
            )?,
            |s| s.rows_applied,
        ),
        (
            counter("dtle_transactions_read_total", "Source transactions read.")?,
            |s| s.txns_read,
        ),
        (
            counter(
                "dtle_transactions_applied_total",
                "Source transactions applied to the target.",
            )?,
            |s| s.txns_applied,
        ),
        (
            counter(
                "dtle_target_commits_total",
                "Target transactions that committed source transactions (group commit).",
            )?,
            |s| s.target_commits,
        ),
        (
            counter(
                "dtle_wait_source_microseconds_total",
                "Time the Src waited for the source (binlog events, snapshot rows).",
            )?,
            |s| s.waited_us[Wait::Source as usize],
        ),
        (
            counter(
                "dtle_wait_target_microseconds_total",
                "Time the Dest waited for the target's answers.",
            )?,
            |s| s.waited_us[Wait::Target as usize],
        ),
        (
            counter(
                "dtle_wait_peer_microseconds_total",
                "Time a task waited for the other (the Src for acknowledgements, the Dest for frames).",
            )?,
            |s| s.waited_us[Wait::Peer as usize],
        ),
        (
            counter("dtle_nats_messages_sent_total", "NATS messages published.")?,
            |s| s.msgs_out,
        ),
        (
            counter(
                "dtle_nats_messages_received_total",
                "NATS messages received.",
            )?,
            |s| s.msgs_in,
        ),
        (
            counter(
                "dtle_nats_sent_bytes_total",
                "NATS payload bytes published.",
            )?,
            |s| s.bytes_out,
        ),
        (
            counter(
                "dtle_nats_received_bytes_total",
                "NATS payload bytes received.",
            )?,
            |s| s.bytes_in,
        ),
        (
            counter(
                "dtle_nats_reconnects_total",
                "Reconnections of the task's NATS connection.",
            )?,
            |s| s.reconnects,
        ),
        (
            counter(
                "dtle_transport_resyncs_total",
                "Restarts of the transport's stream from the target's position.",
            )?,
            |s| s.resyncs,
        ),
    ];
    Ok(Families {
        counters,
        lag: gauge(
            "dtle_lag_seconds",
            "Seconds behind the source, as Seconds_Behind_Master: 0 when caught up, else now minus \
             the source time of the transaction being (or last) applied.",
        )?,
        backlog: gauge(
            "dtle_backlog_frames",
            "Frames sent and not yet acknowledged by the applier.",
        )?,
        progress: gauge("dtle_snapshot_progress_ratio", "Snapshot progress, 0 to 1.")?,
        up: gauge("dtle_task_up", "1 while the task runs.")?,
        restarts: counter(
            "dtle_task_restarts_total",
            "Restarts of the task after failures.",
        )?,
        registry,
    })
}

/// The scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "dtle",
    responses(
        (status = 200, description = "Prometheus' text exposition format (0.0.4)", body = String, content_type = "text/plain"),
        (status = 500, description = "The metrics cannot be rendered", body = super::error::ErrorBody),
    ),
)]
pub async fn scrape(orchestrator: Shared) -> warp::reply::Response {
    match render(orchestrator).await {
        Ok(text) => warp::http::Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(text.into())
            .unwrap_or_default(),
        Err(err) => super::error::ApiError::new(
            warp::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering metrics: {err}"),
        )
        .into_response(),
    }
}

async fn render(orchestrator: Shared) -> Result<String, prometheus::Error> {
    let f = families()?;
    // An orchestrator that cannot list its jobs (Nomad unreachable) leaves the scrape without
    // task series; Prometheus' `up` and the missing series tell the story.
    let jobs = orchestrator.jobs().await.unwrap_or_else(|err| {
        tracing::warn!(%err, "metrics: the jobs cannot be listed");
        Vec::new()
    });
    for job in jobs {
        let Ok(allocations) = orchestrator.allocations(&job.spec.id).await else {
            continue;
        };
        for alloc in allocations {
            let Ok((alloc, stats, _)) = orchestrator.allocation_stats(&alloc.id).await else {
                continue;
            };
            let labels = [job.spec.id.as_str(), alloc.role.as_str()];
            for (counter, read) in &f.counters {
                counter.with_label_values(&labels).inc_by(read(&stats));
            }
            if let Some(lag) = stats.lag_seconds {
                f.lag.with_label_values(&labels).set(lag as f64);
            }
            f.backlog
                .with_label_values(&labels)
                .set(stats.backlog.0 as f64);
            f.progress
                .with_label_values(&labels)
                .set(stats.progress_pct() / 100.0);
            f.up.with_label_values(&labels)
                .set(if alloc.client_status == "running" {
                    1.0
                } else {
                    0.0
                });
            f.restarts
                .with_label_values(&labels)
                .inc_by(alloc.task_state.restarts);
        }
    }
    let mut out = Vec::new();
    TextEncoder::new().encode(&f.registry.gather(), &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
