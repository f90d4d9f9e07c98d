//! This API's part of the served OpenAPI document (see `crate::api::openapi`).
//!
//! The paths come from the handlers' `#[utoipa::path]` annotations, the schemas from the types
//! they answer with (all named `St*`, operation IDs `st_*`, so nothing collides with the other
//! APIs' parts). The v2 paths are at the root; v1 serves the same handlers under
//! `/hazelcast/rest/maps`, so the v2 paths are copied there (operation IDs `st_v1_*`, tag
//! `SeaTunnel v1`), beside v1's own `/hazelcast/rest/maps/metrics`. `/overview` is this API's
//! (it answers Flink's keys too); the root's `/metrics` is the dtle API's.

use super::error::{StDtleErrorBody, StErrorBody};
use super::{jobs, logs, openmetrics, submit, system};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::OpenApi as _;

/// Where v1 serves the v2 paths.
pub const V1_PREFIX: &str = "/hazelcast/rest/maps";

/// The v2 paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        system::overview,
        system::monitoring,
        system::thread_dump,
        jobs::running_jobs,
        jobs::get_job_info,
        jobs::get_running_job,
        jobs::all_finished_jobs,
        jobs::finished_jobs_in_state,
        jobs::pending_jobs,
        submit::submit_job,
        submit::submit_jobs,
        submit::stop_job,
        submit::stop_jobs,
        logs::all_logs,
        logs::job_or_file,
        logs::node_logs,
        logs::file,
        openmetrics::scrape,
    ),
    components(schemas(StErrorBody)),
    tags((name = "SeaTunnel", description = "SeaTunnel Zeta's REST API v2 over dtle jobs (docs/seatunnel-api.md)"))
)]
struct V2;

/// v1's own paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(openmetrics::v1_metrics),
    components(schemas(StDtleErrorBody)),
    tags((name = "SeaTunnel v1", description = "SeaTunnel Zeta's REST API v1 (deprecated in SeaTunnel): the v2 paths under /hazelcast/rest/maps"))
)]
struct V1;

/// The operations of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Every path of this API, with the schemas of its bodies.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = V2::openapi();
    let mut v1 = V1::openapi();
    for (path, item) in &doc.paths.paths {
        let mut item = item.clone();
        for operation in operations(&mut item) {
            operation.operation_id = operation
                .operation_id
                .as_ref()
                .map(|id| id.replacen("st_", "st_v1_", 1));
            operation.tags = Some(vec!["SeaTunnel v1".to_owned()]);
            operation.deprecated = Some(utoipa::openapi::Deprecated::True);
        }
        v1.paths.paths.insert(format!("{V1_PREFIX}{path}"), item);
    }
    doc.merge(v1);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The paths the router serves (`super::super::routes`), in OpenAPI's spelling, with their
    /// methods: a route added without its documentation fails here.
    const ROUTES: [(&str, &str); 18] = [
        ("get", "/overview"),
        ("get", "/system-monitoring-information"),
        ("get", "/thread-dump"),
        ("get", "/running-jobs"),
        ("get", "/job-info/{jobId}"),
        ("get", "/running-job/{jobId}"),
        ("get", "/finished-jobs"),
        ("get", "/finished-jobs/{state}"),
        ("get", "/pending-jobs"),
        ("post", "/submit-job"),
        ("post", "/submit-jobs"),
        ("post", "/stop-job"),
        ("post", "/stop-jobs"),
        ("get", "/logs"),
        ("get", "/logs/{item}"),
        ("get", "/log"),
        ("get", "/log/{file}"),
        ("get", "/openmetrics"),
    ];

    fn served() -> BTreeSet<(String, String)> {
        let mut all: BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|(method, path)| {
                [
                    ((*method).to_owned(), (*path).to_owned()),
                    ((*method).to_owned(), format!("{V1_PREFIX}{path}")),
                ]
            })
            .collect();
        all.insert(("get".into(), format!("{V1_PREFIX}/metrics")));
        all
    }

    fn documented(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("get", item.get.is_some()),
                ("put", item.put.is_some()),
                ("post", item.post.is_some()),
                ("delete", item.delete.is_some()),
                ("patch", item.patch.is_some()),
                ("head", item.head.is_some()),
                ("options", item.options.is_some()),
                ("trace", item.trace.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    all.insert((method.to_owned(), path.clone()));
                }
            }
        }
        all
    }

    #[test]
    fn every_route_is_documented_once_with_a_unique_operation_id() {
        let doc = document();
        assert_eq!(documented(&doc), served());
        let mut ids = BTreeSet::new();
        for item in doc.paths.paths.values() {
            let mut item = item.clone();
            for operation in operations(&mut item) {
                let id = operation.operation_id.clone().expect("an operation ID");
                assert!(id.starts_with("st_"), "{id}");
                assert!(ids.insert(id.clone()), "{id} twice");
            }
        }
        assert_eq!(ids.len(), served().len());
    }

    #[test]
    fn the_document_serialises_and_names_its_schemas_apart() {
        let doc = document();
        let text = doc.to_json().expect("JSON");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let schemas = value["components"]["schemas"].as_object().expect("schemas");
        assert!(schemas.contains_key("StErrorBody"), "{schemas:?}");
        assert!(schemas.contains_key("StJobInfo"), "{schemas:?}");
        for name in schemas.keys() {
            assert!(
                name.starts_with("St"),
                "{name} may collide with another API's"
            );
        }
        // Every reference resolves.
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced, not defined"
            );
        }
        let overview = &value["paths"]["/overview"]["get"];
        assert_eq!(overview["operationId"], "st_overview");
        assert_eq!(
            value["paths"]["/hazelcast/rest/maps/overview"]["get"]["operationId"],
            "st_v1_overview"
        );
    }
}
