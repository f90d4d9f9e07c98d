//! Errors as SeaTunnel answers them: `{"status": "fail", "message": "..."}`, with a 4xx status
//! for what the request got wrong (SeaTunnel's `IllegalArgumentException`: 400) and a 5xx one
//! for what failed here. The bodies are typed ([`StErrorBody`]) for the served OpenAPI document
//! ([`super::openapi`]), as are the failures every call to the orchestrator can end in
//! ([`StOrchestratorFailures`]).

use crate::orchestrator::OrchestratorError;
use jobs::seatunnel::SeaTunnelError;
use jobs::JobError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// The `status` of a failure: always `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StFailStatus {
    /// The request failed.
    Fail,
}

/// SeaTunnel's failure body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"status": "fail", "message": "job 7 not found"}))]
pub struct StErrorBody {
    /// `fail`.
    pub status: StFailStatus,
    /// What went wrong.
    pub message: String,
}

/// One problem of a dtle error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StDtleDiagnostic {
    /// Where in the request.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// The dtle API's error body (`crate::api::error::ApiError`), which the Prometheus scrape
/// answers with when it cannot render the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StDtleErrorBody {
    /// What went wrong.
    pub error: String,
    /// The problems found, if any.
    pub errors: Vec<StDtleDiagnostic>,
    /// The warnings, if any.
    pub warnings: Vec<StDtleDiagnostic>,
}

/// What a call to the orchestrator can fail with, on every operation that makes one
/// (`crate::api::error::status_of`).
#[derive(IntoResponses)]
pub enum StOrchestratorFailures {
    /// The orchestrator refused this agent (a Nomad ACL token without the rights).
    #[response(status = 403)]
    Forbidden(StErrorBody),
    /// The orchestrator failed.
    #[response(status = 500)]
    Internal(StErrorBody),
    /// What is behind the orchestrator (a database, a Nomad server) failed.
    #[response(status = 502)]
    Upstream(StErrorBody),
    /// The orchestrator cannot be reached.
    #[response(status = 503)]
    Unavailable(StErrorBody),
}

/// What warp answers on the submit and stop calls before their handler runs.
#[derive(IntoResponses)]
pub enum StBodyRejections {
    /// The body has no `Content-Length`.
    #[response(status = 411)]
    LengthRequired(StErrorBody),
    /// The body is larger than 16 MiB.
    #[response(status = 413)]
    TooLarge(StErrorBody),
}

/// A failed SeaTunnel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What to tell the client (never a password: jobs are only ever shown redacted).
    pub message: String,
}

impl StError {
    /// An error with its status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such job or file.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the job is in a state that does not allow this.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// The response.
    pub fn into_response(self) -> Response {
        let body = StErrorBody {
            status: StFailStatus::Fail,
            message: self.message,
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }

    /// The same error about the `n`th (1-based) of several jobs.
    pub fn for_item(self, n: usize, of: usize) -> Self {
        Self {
            status: self.status,
            message: format!("job {n} of {of}: {}", self.message),
        }
    }
}

impl From<OrchestratorError> for StError {
    fn from(err: OrchestratorError) -> Self {
        Self::new(crate::api::error::status_of(&err), err.to_string())
    }
}

impl From<SeaTunnelError> for StError {
    fn from(err: SeaTunnelError) -> Self {
        Self::bad_request(err.to_string())
    }
}

impl From<JobError> for StError {
    fn from(err: JobError) -> Self {
        Self::bad_request(err.to_string())
    }
}

/// Warp's rejections on SeaTunnel's paths (wrong method, body too large or without a length,
/// bad query) as SeaTunnel's errors. A path that is not SeaTunnel's is passed on untouched, for
/// the other APIs' routes.
///
/// # Errors
/// The rejection itself when no SeaTunnel path matched.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, warp::Rejection> {
    use warp::reject::{InvalidQuery, LengthRequired, MethodNotAllowed, PayloadTooLarge};
    if rejection.is_not_found() {
        return Err(rejection);
    }
    let error = if rejection.find::<PayloadTooLarge>().is_some() {
        StError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        StError::new(
            StatusCode::LENGTH_REQUIRED,
            "the request needs a Content-Length",
        )
    } else if let Some(err) = rejection.find::<InvalidQuery>() {
        StError::bad_request(format!("bad query string: {err}"))
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        StError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this path",
        )
    } else {
        return Err(rejection);
    };
    Ok(error.into_response())
}

/// The response for a handler's result.
pub fn respond(result: Result<Response, StError>) -> Response {
    result.unwrap_or_else(StError::into_response)
}

/// A JSON answer with status 200.
pub fn ok_json<T: Serialize>(body: &T) -> Response {
    warp::reply::json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn failures_read_as_seatunnel_writes_them() {
        let response = StError::bad_request("jobId cannot be empty.").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = warp::hyper::body::to_bytes(response.into_body())
            .await
            .expect("a body");
        let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            value,
            json!({"status": "fail", "message": "jobId cannot be empty."})
        );
        let missing: StError = OrchestratorError::JobNotFound("7".into()).into();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing.for_item(2, 3).message,
            "job 2 of 3: job 7 not found"
        );
    }
}
