//! The served contract: `GET /openapi.json`, one OpenAPI 3.1 document of every path the agent
//! answers (dtle 2.x, SeaTunnel Zeta v1 and v2, Flink's monitoring API).
//!
//! Nothing here is written by hand beside the handlers: each API's paths come from the
//! `#[utoipa::path]` annotations on its handlers, and every body schema from the types the
//! handlers serialise (`#[derive(Serialize, ToSchema)]`), so a response and its schema cannot
//! drift apart. Each API builds its own document (`seatunnel::openapi`, `flink::openapi`);
//! this module merges them. Schema names are unique across the three (a merge keeps the first
//! of two schemas with the same name), and a path served by two APIs (`/overview`, `/metrics`)
//! is documented once, by the API that answers it.
//!
//! `scripts/contract.sh` holds the server to this document with schemathesis.

use super::{encrypt, handlers, metrics};
use std::collections::HashSet;
use std::sync::OnceLock;
use utoipa::OpenApi as _;
use warp::Filter;

/// The dtle 2.x API's part, with the document itself.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "dtle-rs agent",
        description = "The dtle 2.x job API, SeaTunnel Zeta's REST API (v2 at the root, v1 under \
                       /hazelcast/rest/maps) and Flink's monitoring REST API, over MySQL/MariaDB \
                       replication jobs."
    ),
    paths(
        handlers::list,
        handlers::register_job,
        handlers::get,
        handlers::register_at,
        handlers::stop,
        handlers::pause,
        handlers::resume,
        handlers::allocations,
        handlers::stats,
        handlers::leader,
        handlers::nodes,
        handlers::members,
        metrics::scrape,
        encrypt::encrypt_config,
        served,
    ),
    tags(
        (name = "dtle", description = "dtle 2.x's job API (Nomad-style keys)"),
        (name = "contract", description = "This document"),
    )
)]
struct DtleApi;

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "contract",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)),
)]
#[allow(
    dead_code,
    reason = "the document's entry for `route`, which serves it"
)]
fn served() {}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = DtleApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let v1_encrypt = doc.paths.paths.get("/encrypt-config").cloned();
    if let Some(mut item) = v1_encrypt {
        if let Some(post) = item.post.as_mut() {
            post.operation_id = Some("encrypt_config_v1".into());
        }
        doc.paths
            .paths
            .insert("/hazelcast/rest/maps/encrypt-config".into(), item);
    }
    doc.merge(super::seatunnel::openapi::document());
    doc.merge(super::flink::openapi::document());
    unique_operation_ids(&mut doc);
    guarded(&mut doc);
    doc
}

/// The gate in front of every route ([`crate::access`]): a bearer token (or Nomad's
/// `X-Nomad-Token`) when the agent has tokens configured, 401 without a valid one, 403 for a
/// read-only token on a write.
fn guarded(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{AnyOfBuilder, Schema};
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
    use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token of the agent (DTLE_ADMIN_TOKEN, DTLE_READ_TOKEN or \
                     [[api.tokens]]); none when the agent has no token (loopback only)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "nomad_token",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Nomad-Token"))),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("nomad_token", Vec::<String>::new()),
        SecurityRequirement::default(),
    ]);
    let refused = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("DtleError")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (false, &mut item.get),
            (true, &mut item.put),
            (true, &mut item.post),
            (true, &mut item.delete),
            (true, &mut item.patch),
        ];
        for (writes, operation) in operations {
            let Some(operation) = operation else { continue };
            let responses = &mut operation.responses.responses;
            responses
                .entry("401".to_owned())
                .or_insert_with(|| refused("No valid API token").into());
            if writes {
                match responses.get_mut("403") {
                    // The API's own 403 (Nomad refusing the agent): the gate's body is the other
                    // possible one.
                    Some(RefOr::T(own)) => {
                        for content in own.content.values_mut() {
                            if let Some(schema) = content.schema.take() {
                                let either = AnyOfBuilder::new()
                                    .item(schema)
                                    .item(Ref::from_schema_name("DtleError"))
                                    .build();
                                content.schema = Some(RefOr::T(Schema::AnyOf(either)));
                            }
                        }
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        responses.insert(
                            "403".to_owned(),
                            refused("A read-only token on a write").into(),
                        );
                    }
                }
            }
        }
    }
}

/// One handler documented for several methods (`POST` and `PUT`) gets one operation ID per
/// method: OpenAPI wants them unique.
fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    let mut seen = HashSet::new();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let Some(id) = operation.operation_id.clone() else {
                continue;
            };
            if !seen.insert(id.clone()) {
                let renamed = format!("{id}_{method}");
                seen.insert(renamed.clone());
                operation.operation_id = Some(renamed);
            }
        }
    }
}

/// `GET /openapi.json`: the document, rendered once.
pub fn route() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    static RENDERED: OnceLock<String> = OnceLock::new();
    warp::path!("openapi.json").and(warp::get()).map(|| {
        let body = RENDERED.get_or_init(|| document().to_json().unwrap_or_default());
        let mut response = warp::reply::Response::new(body.clone().into());
        response.headers_mut().insert(
            warp::http::header::CONTENT_TYPE,
            warp::http::HeaderValue::from_static("application/json"),
        );
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn served() -> Value {
        serde_json::from_str(&document().to_json().expect("serialises")).expect("JSON")
    }

    #[test]
    fn every_dtle_route_is_documented_with_its_methods() {
        let doc = served();
        let routes = [
            ("/v1/jobs", &["get", "post", "put"][..]),
            ("/v1/job/{ID}", &["get", "post", "put", "delete"]),
            ("/v1/job/{ID}/pause", &["post"]),
            ("/v1/job/{ID}/resume", &["post"]),
            ("/v1/job/{ID}/allocations", &["get"]),
            ("/v1/agent/allocation/{allocID}/stats", &["get"]),
            ("/v1/leader", &["get"]),
            ("/v1/nodes", &["get"]),
            ("/v1/members", &["get"]),
            ("/metrics", &["get"]),
            ("/openapi.json", &["get"]),
            ("/encrypt-config", &["post"]),
            ("/hazelcast/rest/maps/encrypt-config", &["post"]),
        ];
        for (path, methods) in routes {
            for method in methods {
                assert!(
                    doc["paths"][path][method].is_object(),
                    "{method} {path} is not documented"
                );
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_schemas_resolve() {
        let doc = served();
        let mut ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(ids.insert(id.to_owned()), "{method} {path}: {id} twice");
            }
        }
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced, not defined"
            );
        }
    }
}
