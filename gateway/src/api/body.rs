//! A job's request body, read once the route is known to be dtle's.
//!
//! warp's body limits reject: a rejected request goes on to the next route, and the Flink routes
//! also serve `POST /v1/jobs` (to say that Flink's client submits nothing here). So once the
//! path and method are a dtle job registration, a body that is too large (over 16 MiB) or has no
//! length becomes that route's own answer (413, 411), never another route's.

use super::error::ApiError;
use std::convert::Infallible;
use warp::http::StatusCode;
use warp::Filter;

/// Largest job body accepted.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The body, or the error to answer with.
pub fn job_body(
) -> impl Filter<Extract = (Result<bytes::Bytes, ApiError>,), Error = Infallible> + Clone {
    warp::body::content_length_limit(MAX_BODY)
        .and(warp::body::bytes())
        .map(Ok)
        .recover(|rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(Err(refused(&rejection)))
        })
        .unify()
}

fn refused(rejection: &warp::Rejection) -> ApiError {
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large (at most 16 MiB)",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "the request body needs a Content-Length",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body cannot be read: {rejection:?}"),
        )
    }
}
