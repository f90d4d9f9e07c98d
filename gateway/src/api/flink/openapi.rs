//! This API's part of the served OpenAPI document (see `crate::api::openapi`).

/// Every path of this API, with the schemas of its bodies.
pub fn document() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApi::default()
}
