//! `GET /openmetrics`: the Prometheus scrape of `GET /metrics` ([`crate::api::metrics`]) in the
//! OpenMetrics text format: counter families are named without their `_total` suffix (their
//! samples keep it), the content type is OpenMetrics', and the exposition ends with `# EOF`.

use super::error::{respond, StDtleErrorBody, StError, StErrorBody};
use super::Api;
use std::collections::HashSet;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// OpenMetrics' content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text format as OpenMetrics text.
pub fn convert(prometheus: &str) -> String {
    // Counter families, by the name Prometheus' text gives them.
    let counters: HashSet<&str> = prometheus
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, kind)| kind.trim() == "counter")
        .map(|(name, _)| name)
        .collect();
    let family = |name: &str| name.strip_suffix("_total").unwrap_or(name).to_owned();
    let mut out = String::with_capacity(prometheus.len() + 8);
    for line in prometheus.lines() {
        let converted = if let Some(rest) = line.strip_prefix("# HELP ") {
            match rest.split_once(' ') {
                Some((name, help)) if counters.contains(name) => {
                    format!("# HELP {} {help}", family(name))
                }
                _ => line.to_owned(),
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.split_once(' ') {
                Some((name, kind)) if counters.contains(name) => {
                    format!("# TYPE {} {kind}", family(name))
                }
                _ => line.to_owned(),
            }
        } else if line.starts_with('#') || line.trim().is_empty() {
            // Other comments have no place in OpenMetrics.
            continue;
        } else {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            if counters.contains(name) && !name.ends_with("_total") {
                format!("{name}_total{}", &line[end..])
            } else {
                line.to_owned()
            }
        };
        out.push_str(&converted);
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

/// A failed scrape: the dtle API's error (the metrics do not render) or SeaTunnel's (the
/// rendered text cannot be read back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StScrapeFailure {
    /// The metrics do not render.
    Dtle(StDtleErrorBody),
    /// The rendered text cannot be read back.
    SeaTunnel(StErrorBody),
}

/// `GET /openmetrics`: the scrape.
#[utoipa::path(
    get,
    path = "/openmetrics",
    operation_id = "st_openmetrics",
    tag = "SeaTunnel",
    responses(
        (status = 200, description = "The metrics in the OpenMetrics text format, ending with `# EOF`", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "The metrics cannot be rendered", body = StScrapeFailure),
    )
)]
pub async fn scrape(api: Api) -> Response {
    let response = crate::api::metrics::scrape(api.orchestrator.clone()).await;
    if !response.status().is_success() {
        return response;
    }
    respond(
        async {
            let bytes = warp::hyper::body::to_bytes(response.into_body())
                .await
                .map_err(|e| {
                    StError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("reading the metrics: {e}"),
                    )
                })?;
            let text = convert(&String::from_utf8_lossy(&bytes));
            Ok(warp::reply::with_header(text, "content-type", CONTENT_TYPE).into_response())
        }
        .await,
    )
}

/// `GET /hazelcast/rest/maps/metrics`: the Prometheus scrape of `GET /metrics` (v1 only: the
/// root's `/metrics` is the dtle API's).
#[utoipa::path(
    get,
    path = "/hazelcast/rest/maps/metrics",
    operation_id = "st_v1_metrics",
    tag = "SeaTunnel v1",
    responses(
        (status = 200, description = "The metrics in Prometheus' text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 500, description = "The metrics cannot be rendered", body = StDtleErrorBody),
    )
)]
pub async fn v1_metrics(api: Api) -> Response {
    crate::api::metrics::scrape(api.orchestrator.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_lose_the_suffix_in_their_family_and_the_text_ends() {
        let text = "# HELP dtle_rows_read_total Rows read.\n# TYPE dtle_rows_read_total counter\n\
                    dtle_rows_read_total{job=\"a\",task=\"Src\"} 5\n\
                    # HELP dtle_odd Odd.\n# TYPE dtle_odd counter\ndtle_odd 1\n\
                    # HELP dtle_lag_seconds Lag.\n# TYPE dtle_lag_seconds gauge\n\
                    dtle_lag_seconds{job=\"a\",task=\"Src\"} 0\n";
        let open = convert(text);
        assert!(open.contains("# TYPE dtle_rows_read counter\n"), "{open}");
        assert!(
            open.contains("# HELP dtle_rows_read Rows read.\n"),
            "{open}"
        );
        assert!(open.contains("dtle_rows_read_total{job=\"a\",task=\"Src\"} 5\n"));
        assert!(open.contains("dtle_odd_total 1\n"), "{open}");
        assert!(open.contains("# TYPE dtle_lag_seconds gauge\n"));
        assert!(open.ends_with("# EOF\n"));
        assert_eq!(convert(""), "# EOF\n");
    }
}
