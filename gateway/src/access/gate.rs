//! The filter in front of every route: authenticate, authorize, audit.
//!
//! A token comes as `Authorization: Bearer <token>` or, as Nomad's and dtle 2.x's Go clients
//! send it, `X-Nomad-Token: <token>`. `GET` and `HEAD` need a `read` or `admin` token, every
//! other method an `admin` one. With no token configured everyone is let in (the agent then
//! listens on loopback only) and writes are still audited, as `anonymous`.

use super::audit::{AuditLog, Entry};
use super::tokens::{AccessPolicy, Role};
use crate::api::error::ApiError;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// The caller, once let in.
#[derive(Debug, Clone)]
struct Caller {
    name: String,
    method: Method,
    path: String,
}

/// A refused call.
#[derive(Debug)]
struct Denied {
    status: StatusCode,
    caller: Caller,
}

impl warp::reject::Reject for Denied {}

/// `routes`, behind the tokens of `policy`, with writes recorded in `audit`.
pub fn guarded(
    policy: Arc<AccessPolicy>,
    audit: Arc<AuditLog>,
    routes: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    let admitted = warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, path: FullPath, headers: HeaderMap| {
            let decision = admit(&policy, method, path.as_str(), &headers);
            async move { decision.map_err(warp::reject::custom) }
        });
    let audit_allowed = audit.clone();
    admitted
        .and(routes)
        .then(move |caller: Caller, response: Response| {
            let audit = audit_allowed.clone();
            async move { audited(&audit, caller, response).await }
        })
        .recover(move |rejection: Rejection| {
            let audit = audit.clone();
            async move { refused(&audit, &rejection) }
        })
        .unify()
        .boxed()
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(warp::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer.or_else(|| {
        headers
            .get("x-nomad-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

fn admit(
    policy: &AccessPolicy,
    method: Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller, Denied> {
    let reads = method == Method::GET || method == Method::HEAD;
    let mut caller = Caller {
        name: "anonymous".to_owned(),
        method,
        path: path.to_owned(),
    };
    if !policy.is_enforced() {
        return Ok(caller);
    }
    let Some((name, role)) = presented(headers).and_then(|t| policy.identify(t)) else {
        return Err(Denied {
            status: StatusCode::UNAUTHORIZED,
            caller,
        });
    };
    caller.name = name.to_owned();
    if role == Role::Read && !reads {
        return Err(Denied {
            status: StatusCode::FORBIDDEN,
            caller,
        });
    }
    Ok(caller)
}

async fn audited(audit: &AuditLog, caller: Caller, response: Response) -> Response {
    if caller.method == Method::GET || caller.method == Method::HEAD {
        return response;
    }
    let status = response.status();
    let mut job = job_in_path(&caller.path);
    let response = if job.is_none() && status.is_success() {
        // The job named only in the body (a registration, SeaTunnel's submit and stop): its ID
        // is in the answer, which is small.
        let (parts, body) = response.into_parts();
        let bytes = warp::hyper::body::to_bytes(body).await.unwrap_or_default();
        job = job_in_answer(&bytes);
        Response::from_parts(parts, bytes.into())
    } else {
        response
    };
    audit.record(&Entry {
        who: &caller.name,
        method: caller.method.as_str(),
        path: &caller.path,
        job: job.as_deref(),
        status: status.as_u16(),
    });
    response
}

fn refused(audit: &AuditLog, rejection: &Rejection) -> Result<Response, std::convert::Infallible> {
    let Some(denied) = rejection.find::<Denied>() else {
        // Only the gate rejects: the routes answer everything themselves.
        return Ok(ApiError::new(StatusCode::NOT_FOUND, "no such route").into_response());
    };
    let caller = &denied.caller;
    if caller.method != Method::GET && caller.method != Method::HEAD {
        audit.record(&Entry {
            who: &caller.name,
            method: caller.method.as_str(),
            path: &caller.path,
            job: job_in_path(&caller.path).as_deref(),
            status: denied.status.as_u16(),
        });
    }
    let message = if denied.status == StatusCode::FORBIDDEN {
        "forbidden: this token may only read"
    } else {
        "unauthorized: send a valid API token (Authorization: Bearer <token>)"
    };
    let mut response = ApiError::new(denied.status, message).into_response();
    if denied.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dtle\""),
        );
    }
    Ok(response)
}

/// The job a path names: dtle's `/v1/job/<ID>...`, Flink's `[/v1]/jobs/<id>...`.
fn job_in_path(path: &str) -> Option<String> {
    let mut segments = path.trim_start_matches('/').split('/');
    let mut first = segments.next()?;
    if first == "v1" {
        first = segments.next()?;
    }
    match (first, segments.next()) {
        ("job" | "jobs", Some(id)) if !id.is_empty() && id != "overview" => Some(id.to_owned()),
        _ => None,
    }
}

/// The job an answer names: `ID` (dtle) or `jobId` (SeaTunnel).
fn job_in_answer(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = match &value {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    ["ID", "jobId"]
        .iter()
        .find_map(|key| match first.get(*key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_found_in_paths_and_answers() {
        assert_eq!(job_in_path("/v1/job/j1/pause").as_deref(), Some("j1"));
        assert_eq!(job_in_path("/jobs/abc").as_deref(), Some("abc"));
        assert_eq!(job_in_path("/v1/jobs/abc/stop").as_deref(), Some("abc"));
        assert_eq!(job_in_path("/v1/jobs"), None);
        assert_eq!(job_in_path("/submit-job"), None);
        assert_eq!(
            job_in_answer(br#"{"ID": "j2", "Changed": true}"#).as_deref(),
            Some("j2")
        );
        assert_eq!(job_in_answer(br#"{"jobId": 733}"#).as_deref(), Some("733"));
        assert_eq!(job_in_answer(br#"[{"jobId": "x"}]"#).as_deref(), Some("x"));
        assert_eq!(job_in_answer(b"not json"), None);
    }
}
