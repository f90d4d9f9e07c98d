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

use std::sync::OnceLock;
use utoipa::OpenApi as _;
use warp::Filter;

/// The dtle 2.x API's part.
#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "dtle-rs agent",
    description = "The dtle 2.x job API, SeaTunnel Zeta's REST API (v2 at the root, v1 under \
                   /hazelcast/rest/maps) and Flink's monitoring REST API, over MySQL/MariaDB \
                   replication jobs."
))]
struct DtleApi;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = DtleApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.merge(super::seatunnel::openapi::document());
    doc.merge(super::flink::openapi::document());
    doc
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
