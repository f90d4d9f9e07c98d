//! This API's part of the served OpenAPI document (see `crate::api::openapi`).
//!
//! The handlers are annotated with their paths at the root; the document adds a copy of each
//! under `/v1` (Flink's versioned prefix), as the router serves them, with its own operation
//! IDs (`flink_v1_…`). Two paths are left out where another API answers them: `/v1/jobs` (GET
//! and POST are dtle 2.x's) and `/overview` at the root (SeaTunnel's handler answers it, with
//! Flink's keys too, and documents it); `/v1/overview` is this API's.
//!
//! Every status a path answers is listed with its body: the handler's own (`FlinkErrorBody`),
//! and those of the orchestrator behind it (403, 500, 502, 503). The router adds none on these
//! paths: query strings are read as a map, which any query fits (so the dtle API's 400 for a
//! query that does not parse cannot happen), and a body too large is the handler's 413.

use super::{control, handlers, inapplicable};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::OpenApi as _;

/// The paths at the root, from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        handlers::config,
        handlers::overview,
        handlers::jobs,
        handlers::jobs_overview,
        handlers::jobs_metrics,
        handlers::job,
        control::terminate,
        handlers::plan,
        handlers::vertex,
        handlers::job_config,
        handlers::exceptions,
        handlers::job_metrics,
        handlers::job_checkpoints,
        handlers::checkpoint_config,
        handlers::checkpoint_details,
        control::stop,
        control::savepoint,
        control::savepoint_status,
        handlers::jars,
        inapplicable::submit_job,
        inapplicable::jar_upload,
        inapplicable::jar_delete,
        inapplicable::jar_plan,
        inapplicable::jar_plan_post,
        inapplicable::jar_run,
        inapplicable::rescale,
        inapplicable::rescale_status,
        inapplicable::dispose,
        inapplicable::dispose_status,
        inapplicable::shutdown,
    ),
    // Not collected from the paths: bodies named only by `OrchestratorErrors`, and the
    // schemas of parameters.
    components(schemas(super::error::ErrorBody, control::TerminationMode)),
    tags((
        name = "Flink",
        description = "Flink's monitoring REST API over replication jobs: each dtle job is a \
                       streaming job of two vertices, Src feeding Dest. Every path is served at \
                       the root and under /v1 (but /v1/jobs, which is dtle 2.x's)."
    ))
)]
struct RootPaths;

/// The paths at the root that another API answers (its document lists them).
const ANSWERED_ELSEWHERE_AT_ROOT: [&str; 1] = ["/overview"];

/// The root paths not copied under `/v1`: `/v1/jobs` is dtle 2.x's.
const NOT_UNDER_V1: [&str; 1] = ["/jobs"];

/// `item`'s operations, each with `prefix` put before its operation ID.
fn with_operation_ids(mut item: PathItem, prefix: &str) -> PathItem {
    let operations: [&mut Option<Operation>; 8] = [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ];
    for operation in operations.into_iter().flatten() {
        if let Some(id) = &operation.operation_id {
            operation.operation_id = Some(id.replacen("flink_", prefix, 1));
        }
    }
    item
}

/// Every path of this API, with the schemas of its bodies.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = RootPaths::openapi();
    let versioned: Vec<(String, PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(path, _)| !NOT_UNDER_V1.contains(&path.as_str()))
        .map(|(path, item)| {
            (
                format!("/v1{path}"),
                with_operation_ids(item.clone(), "flink_v1_"),
            )
        })
        .collect();
    doc.paths.paths.extend(versioned);
    doc.paths
        .paths
        .retain(|path, _| !ANSWERED_ELSEWHERE_AT_ROOT.contains(&path.as_str()));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::handlers::Shared;
    use std::collections::HashSet;
    use std::sync::Arc;

    /// Every route of `super::super::routes`, at the root (each is served under `/v1` too).
    /// A route added there must be added here, and documented.
    const ROUTES: [(&str, &str); 30] = [
        ("GET", "/config"),
        ("GET", "/overview"),
        ("GET", "/jobs"),
        ("GET", "/jobs/overview"),
        ("GET", "/jobs/metrics"),
        ("GET", "/jobs/{jobid}"),
        ("PATCH", "/jobs/{jobid}"),
        ("GET", "/jobs/{jobid}/plan"),
        ("GET", "/jobs/{jobid}/vertices/{vertexid}"),
        ("GET", "/jobs/{jobid}/config"),
        ("GET", "/jobs/{jobid}/exceptions"),
        ("GET", "/jobs/{jobid}/metrics"),
        ("GET", "/jobs/{jobid}/checkpoints"),
        ("GET", "/jobs/{jobid}/checkpoints/config"),
        ("GET", "/jobs/{jobid}/checkpoints/details/{checkpointid}"),
        ("POST", "/jobs/{jobid}/stop"),
        ("POST", "/jobs/{jobid}/savepoints"),
        ("GET", "/jobs/{jobid}/savepoints/{triggerid}"),
        ("GET", "/jars"),
        ("POST", "/jobs"),
        ("POST", "/jars/upload"),
        ("DELETE", "/jars/{jarid}"),
        ("GET", "/jars/{jarid}/plan"),
        ("POST", "/jars/{jarid}/plan"),
        ("POST", "/jars/{jarid}/run"),
        ("PATCH", "/jobs/{jobid}/rescaling"),
        ("GET", "/jobs/{jobid}/rescaling/{triggerid}"),
        ("POST", "/savepoint-disposal"),
        ("GET", "/savepoint-disposal/{triggerid}"),
        ("DELETE", "/cluster"),
    ];

    /// The (method, path) pairs the document lists.
    fn documented(doc: &utoipa::openapi::OpenApi) -> HashSet<(String, String)> {
        let mut out = HashSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ] {
                if operation.is_some() {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    /// The routes as served: each at the root and under `/v1`, but for those another API
    /// answers.
    fn served() -> HashSet<(String, String)> {
        let mut out = HashSet::new();
        for (method, path) in ROUTES {
            if !ANSWERED_ELSEWHERE_AT_ROOT.contains(&path) {
                out.insert((method.to_owned(), path.to_owned()));
            }
            if !NOT_UNDER_V1.contains(&path) {
                out.insert((method.to_owned(), format!("/v1{path}")));
            }
        }
        out
    }

    #[test]
    fn the_document_lists_every_route_and_serialises() {
        let doc = document();
        let (documented, served) = (documented(&doc), served());
        let mut missing: Vec<_> = served.difference(&documented).collect();
        missing.sort();
        assert!(missing.is_empty(), "served, not documented: {missing:?}");
        let mut extra: Vec<_> = documented.difference(&served).collect();
        extra.sort();
        assert!(extra.is_empty(), "documented, not a route: {extra:?}");
        assert!(!doc.paths.paths.contains_key("/overview"), "SeaTunnel's");
        assert!(!doc.paths.paths.contains_key("/v1/jobs"), "dtle 2.x's");

        let json = doc.to_json().expect("the document serialises");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        let mut ids = HashSet::new();
        for item in value["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("a path item").values() {
                let id = operation["operationId"].as_str().expect("an operation ID");
                assert!(id.starts_with("flink_"), "{id}");
                assert!(ids.insert(id.to_owned()), "operation ID {id} twice");
            }
        }
        let schemas = value["components"]["schemas"].as_object().expect("schemas");
        for name in schemas.keys() {
            assert!(name.starts_with("Flink"), "schema {name} lacks the prefix");
        }
        // Every schema referred to is there.
        for reference in json.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referred to, not defined"
            );
        }
    }

    /// Each documented operation, its parameters filled in, is answered by the router (not
    /// rejected as an unknown path or method).
    #[tokio::test(start_paused = true)]
    async fn every_documented_operation_is_served() {
        let dir = tempfile::tempdir().expect("temp dir");
        let o = super::super::tests::orchestrator(&dir);
        let routes = super::super::routes(Arc::new(o.clone()) as Shared);
        for (method, path) in documented(&document()) {
            let concrete = path
                .replace("{jobid}", "0123456789abcdef0123456789abcdef")
                .replace("{checkpointid}", "1")
                .replace(['{', '}'], "");
            let answer = warp::test::request()
                .method(&method)
                .path(&concrete)
                .filter(&routes)
                .await;
            assert!(answer.is_ok(), "{method} {concrete} is not served");
        }
        o.shutdown().await;
    }
}
