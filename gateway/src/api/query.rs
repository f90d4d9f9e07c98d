//! Query strings as dtle 2.x and Nomad read them, and the index headers of their answers.
//!
//! - `?purge=` (and `?purge_position=`) is read as Go's `strconv.ParseBool` reads it: `1`, `t`,
//!   `T`, `TRUE`, `true`, `True` and `0`, `f`, `F`, `FALSE`, `false`, `False`; absent or empty is
//!   false (as Nomad's handler reads it); anything else is a 400.
//! - Blocking queries as Nomad serves them: `?index=N` waits until what is read has an index
//!   above N, at most `?wait=` (a Go duration; 5 minutes when not given, 10 at most; the
//!   orchestrator adds up to a sixteenth at random, as Nomad does to spread the wake-ups).
//!   Without `index` (or with 0) nothing waits. Every answer of such a read carries `X-Nomad-Index` (and Nomad's
//!   `X-Nomad-KnownLeader`, `X-Nomad-LastContact`), so a watcher knows what to pass next.

use super::error::ApiError;
use crate::orchestrator::nomad::duration::parse_duration;
use serde::Deserialize;
use std::time::Duration;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// The wait of a blocking query that gives none.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// The longest wait of a blocking query.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// The header holding the index of what an answer shows.
pub const INDEX_HEADER: &str = "X-Nomad-Index";

fn bad(message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("bad query string: {message}"),
    )
}

/// Go's `strconv.ParseBool`; absent or empty is false.
///
/// # Errors
/// A 400 naming the parameter and what is accepted.
pub fn go_bool(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.unwrap_or_default() {
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        other => Err(bad(format!(
            "{name}={other:?} is not a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, \
             False)"
        ))),
    }
}

/// The query of a read that may block (`GET /v1/jobs`, `/v1/job/{ID}`, its allocations).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// Wait until the index of what is read passes this (a blocking query; absent or 0: no
    /// wait).
    pub index: Option<String>,
    /// For at most this long (a Go duration: `30s`, `5m`; default 5m, at most 10m).
    pub wait: Option<String>,
    /// `GET /v1/jobs`: only jobs whose ID starts with this.
    pub prefix: Option<String>,
}

impl ReadQuery {
    /// The index to wait past (0: no wait) and how long to wait at most.
    ///
    /// # Errors
    /// A 400 when `index` is not a whole number or `wait` not a duration.
    pub fn blocking(&self) -> Result<(u64, Duration), ApiError> {
        let index = match self.index.as_deref().filter(|i| !i.is_empty()) {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| bad(format!("index={text:?} is not an index (a whole number)")))?,
        };
        let wait = match self.wait.as_deref().filter(|w| !w.is_empty()) {
            None => Duration::ZERO,
            Some(text) => Duration::from_nanos(
                parse_duration(text).map_err(|why| bad(format!("wait: {why}")))?,
            ),
        };
        Ok((index, bounded(wait)))
    }
}

/// Nomad's bounds: no wait (or none given) is the default, longer than the maximum is the
/// maximum.
fn bounded(wait: Duration) -> Duration {
    if wait.is_zero() {
        DEFAULT_WAIT
    } else {
        wait.min(MAX_WAIT)
    }
}

/// `response` with the index headers of a read at `index`.
pub fn with_index(mut response: Response, index: u64) -> Response {
    let headers = response.headers_mut();
    headers.insert(INDEX_HEADER, HeaderValue::from(index));
    headers.insert("X-Nomad-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Nomad-LastContact", HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_go_reads_them() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(go_bool("purge", Some(yes)).expect("true"), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False", ""] {
            assert!(!go_bool("purge", Some(no)).expect("false"), "{no}");
        }
        assert!(!go_bool("purge", None).expect("absent"));
        for bad in ["yes", "tRUE", "2", "on"] {
            assert!(go_bool("purge", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn waits_are_bounded_as_nomads_are() {
        let query = |index: &str, wait: &str| ReadQuery {
            index: Some(index.into()),
            wait: Some(wait.into()),
            prefix: None,
        };
        assert_eq!(
            query("7", "30s").blocking().expect("valid"),
            (7, Duration::from_secs(30))
        );
        assert_eq!(query("7", "").blocking().expect("valid").1, DEFAULT_WAIT);
        assert_eq!(query("7", "2h").blocking().expect("valid").1, MAX_WAIT);
        assert_eq!(ReadQuery::default().blocking().expect("valid").0, 0);
        assert!(query("-1", "1s").blocking().is_err());
        assert!(query("1", "soon").blocking().is_err());
    }
}
