//! The one mapping from errors to HTTP statuses, with JSON bodies.
//!
//! # Rejections
//! warp tries every route; when none answers, the rejections of all of them are combined, and a
//! route with the same path but another method always adds "method not allowed". So the specific
//! rejection of the route that matched the path and method (a body too large, a body without a
//! length, a query that does not parse) is looked for first; "method not allowed" only when
//! there is none, "not found" when no route had the path.

use crate::orchestrator::OrchestratorError;
use jobs::{Diagnostic, JobError};
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// An API error: a status and what to tell the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    problems: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl ApiError {
    /// A bare error.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The response.
    pub fn into_response(self) -> Response {
        let problem = |d: Diagnostic| Problem {
            path: d.path,
            message: d.message,
        };
        let body = ErrorBody {
            error: self.message,
            errors: self.problems.into_iter().map(problem).collect(),
            warnings: self.warnings.into_iter().map(problem).collect(),
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}

/// The body of every dtle 2.x error, and of a request no route answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleError)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
    /// A rejected job's problems, one per field.
    pub errors: Vec<Problem>,
    /// What the job model noted without refusing.
    pub warnings: Vec<Problem>,
}

/// What any call on the orchestrator may answer instead of success, for the document (the
/// handlers answer these through [`ApiError`] and [`status_of`]).
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "never built: the document's list of error responses"
)]
pub enum OrchestratorFailure {
    /// The request or the job is refused (a bad job or query, an ambiguous allocation prefix,
    /// Nomad refusing the job).
    #[response(status = 400)]
    Rejected(ErrorBody),
    /// Nomad refused the agent's token.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such job or allocation.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The change conflicts with the job's state (another job has the Name, the job is not
    /// running, ...).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The agent failed (its state folder cannot be written, ...).
    #[response(status = 500)]
    Internal(ErrorBody),
    /// The orchestrator in use cannot do this.
    #[response(status = 501)]
    Unsupported(ErrorBody),
    /// Nomad answered something the agent cannot read.
    #[response(status = 502)]
    Upstream(ErrorBody),
    /// Nomad (or a node's agent) cannot be reached.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// What a request with a body may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "never built: the document's list of error responses"
)]
pub enum BodyFailure {
    /// The body has no Content-Length.
    #[response(status = 411)]
    LengthRequired(ErrorBody),
    /// The body is over 16 MiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
}

/// A problem at one place of a posted job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleJobProblem)]
pub struct Problem {
    /// Where in the posted document, e.g. `Tasks[0].Config.ConnectionConfig.Port`.
    pub path: String,
    pub message: String,
}

impl From<JobError> for ApiError {
    fn from(err: JobError) -> Self {
        let message = err.to_string();
        match err {
            JobError::Invalid { errors, warnings } => Self {
                status: StatusCode::BAD_REQUEST,
                message,
                problems: errors,
                warnings,
            },
            JobError::Json { .. } | JobError::Hcl { .. } => {
                Self::new(StatusCode::BAD_REQUEST, message)
            }
        }
    }
}

/// The HTTP status of an orchestrator error, for every API family alike.
pub fn status_of(err: &OrchestratorError) -> StatusCode {
    match err {
        OrchestratorError::JobNotFound(_) | OrchestratorError::AllocationNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        OrchestratorError::Conflict(_) => StatusCode::CONFLICT,
        OrchestratorError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The gateway is up; what is behind it is not.
        OrchestratorError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OrchestratorError::Forbidden(_) => StatusCode::FORBIDDEN,
        OrchestratorError::Rejected(_) | OrchestratorError::AmbiguousPrefix { .. } => {
            StatusCode::BAD_REQUEST
        }
        OrchestratorError::Upstream(_) => StatusCode::BAD_GATEWAY,
        OrchestratorError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(err: OrchestratorError) -> Self {
        Self::new(status_of(&err), err.to_string())
    }
}

/// Turns warp's rejections into JSON errors, each with its own status (see the module).
pub async fn recover(rejection: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    use warp::reject::{
        InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader,
        PayloadTooLarge, UnsupportedMediaType,
    };
    let error = if rejection.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "no such route")
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large (at most 16 MiB)",
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "the request body needs a Content-Length",
        )
    } else if let Some(err) = rejection.find::<UnsupportedMediaType>() {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, err.to_string())
    } else if let Some(err) = rejection.find::<InvalidQuery>() {
        ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {err}"))
    } else if let Some(err) = rejection.find::<InvalidHeader>() {
        ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<MissingHeader>() {
        ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this route",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, format!("{rejection:?}"))
    };
    Ok(error.into_response())
}
