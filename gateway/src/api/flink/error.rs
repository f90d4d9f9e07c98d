//! Errors as Flink's REST API answers them: a status and `{"errors": ["..."]}`.

use crate::orchestrator::OrchestratorError;
use serde_json::json;
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
            warp::reply::json(&json!({ "errors": [self.message] })),
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
        assert_eq!(value, json!({"errors": ["Job x not found"]}));
        let conflict: FlinkError = OrchestratorError::Conflict("busy".into()).into();
        assert_eq!(conflict.status, StatusCode::CONFLICT);
    }
}
