//! Errors as Flink's REST API answers them: a status and `{"errors": ["..."]}`.

use crate::orchestrator::OrchestratorError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// An error of the Flink API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct FlinkError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What to tell the client.
    pub message: String,
}

impl FlinkError {
    /// An error with this status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The response.
    pub fn into_response(self) -> Response {
        warp::reply::with_status(
            warp::reply::json(&ErrorBody {
                errors: vec![self.message],
            }),
            self.status,
        )
        .into_response()
    }
}

impl From<OrchestratorError> for FlinkError {
    fn from(err: OrchestratorError) -> Self {
        Self::new(crate::api::error::status_of(&err), err.to_string())
    }
}

/// The body of every error (Flink's `ErrorResponseBody`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = FlinkErrorBody)]
pub struct ErrorBody {
    /// What went wrong: one message.
    pub errors: Vec<String>,
}

/// The errors of the orchestrator behind every call that reads jobs.
#[derive(IntoResponses)]
pub enum OrchestratorErrors {
    /// The scheduler (Nomad) refused the agent's credentials.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The orchestrator itself failed (its state folder, say).
    #[response(status = 500)]
    Internal(ErrorBody),
    /// The scheduler (or a plugin) failed, or answered what the agent cannot read.
    #[response(status = 502)]
    Upstream(ErrorBody),
    /// The scheduler behind the agent (Nomad), or a node, cannot be reached.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The answer of a handler: a response, or the error to answer with.
pub fn respond(result: Result<Response, FlinkError>) -> Response {
    result.unwrap_or_else(FlinkError::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_flinks_shape() {
        let response = FlinkError::not_found("Job x not found").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = warp::hyper::body::to_bytes(response.into_body())
            .await
            .expect("body");
        let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value, serde_json::json!({"errors": ["Job x not found"]}));
        let conflict: FlinkError = OrchestratorError::Conflict("busy".into()).into();
        assert_eq!(conflict.status, StatusCode::CONFLICT);
    }
}
