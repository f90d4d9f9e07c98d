//! `POST /submit-job`, `/submit-jobs`, `/stop-job` and `/stop-jobs`.
//!
//! # What can be submitted
//! A SeaTunnel config (JSON, or HOCON with `?format=hocon`) whose source is `MySQL-CDC` and
//! sink `Jdbc` to MySQL/MariaDB, translated by [`jobs::seatunnel`]; or any job `POST /v1/jobs`
//! accepts (dtle 2.x JSON, Nomad JSON, Nomad HCL). Anything else is a 400 naming what is not
//! supported.
//!
//! # Job IDs and names
//! - `jobId` (query, or `params` of `/submit-jobs`) is the dtle job ID: a number as SeaTunnel's,
//!   or any dtle job ID (letters, digits, `_`, `-`).
//! - Without it, a SeaTunnel config gets a new ID as SeaTunnel makes them (a positive 64-bit
//!   number); a dtle job keeps its own (its `ID`, else its `Name`, as `/v1/jobs` does).
//! - `jobName` (else the config's `env.job.name`, else the dtle job's `Name`) is the dtle job's
//!   `Name`, which must be letters, digits, `_` and `-` (a 400 says so otherwise). A SeaTunnel
//!   config without a name, whose name would be SeaTunnel's default `SeaTunnel_Job`, is named
//!   `SeaTunnel_Job_<jobId>`: a dtle job's name keys its position on the target and its NATS
//!   subjects, so two jobs must not share one; a name already used by another job is a 409.
//!
//! # Savepoints
//! dtle's target always holds the position of what it has committed, so stopping keeps a
//! resumable position. `stop-job` with `isStopWithSavePoint: true` stops the Src, lets the Dest
//! apply everything in flight, stops it and records the committed position as a savepoint in
//! the job's history (`Orchestrator::stop_with_savepoint`; the job shows `SAVEPOINT_DONE`); an
//! orchestrator without savepoints (Nomad) pauses the job instead. Without it the job is
//! cancelled (`CANCELED`), its position still on the target.
//!
//! Submitting a job ID this agent knows (a purged job's history counts):
//! - with `isStartWithSavePoint=true`: the job starts again from the position the target has
//!   committed (a savepoint, or wherever a cancelled job had got to): nothing is lost or applied
//!   twice;
//! - without it: **afresh**: the target's position for the job is forgotten first (as
//!   `DELETE /v1/job/{ID}?purge_position=true`), so it starts as a new job would (a snapshot,
//!   or its configured start position);
//! - while it runs or waits to run: a 409 (stop it first).
//!
//! `isStartWithSavePoint=true` needs a `jobId` (a 400 otherwise, as SeaTunnel). A job ID this
//! agent does not know starts as posted; if its name has a position on the target (left by a
//! purged job), it continues from there, as every dtle job does.

use super::error::{ok_json, respond, StError};
use super::view::{self, JobView};
use super::{id_value, Api};
use crate::orchestrator::OrchestratorError;
use jobs::seatunnel::{self as st, ConfigFormat, SubmitParams};
use jobs::ParsedJob;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use warp::reply::Response;

/// SeaTunnel's default job name.
const DEFAULT_NAME: &str = "SeaTunnel_Job";

/// The request's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `jobId`.
    pub job_id: Option<String>,
    /// `jobName`.
    pub job_name: Option<String>,
    /// `isStartWithSavePoint` (Java's `Boolean.parseBoolean`: `true` in any case).
    pub start_with_savepoint: bool,
    /// `format`: `json` (default) or `hocon`.
    pub format: Option<String>,
}

impl Params {
    /// From a query string's (or `params` object's) values.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let text = |key: &str| {
            map.get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Params {
            job_id: text("jobId"),
            job_name: text("jobName"),
            start_with_savepoint: text("isStartWithSavePoint")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            format: text("format"),
        }
    }
}

/// A job ID or name the job model accepts: 1 to 64 letters, digits, `_` or `-`.
fn check_name(what: &str, value: &str) -> Result<(), StError> {
    let valid = !value.is_empty()
        && value.chars().count() <= jobs::MAX_NAME_LEN
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(StError::bad_request(format!(
            "{what} {value:?} is not valid: use 1 to {} letters, digits, '_' and '-' (a dtle job's ID and name are part of NATS subjects and SQL keys)",
            jobs::MAX_NAME_LEN
        )))
    }
}

/// A job ready to register, and how it is to start.
#[derive(Debug)]
pub struct Submission {
    /// The job.
    pub job: ParsedJob,
    /// `isStartWithSavePoint`.
    pub start_with_savepoint: bool,
}

/// Reads a SeaTunnel config through `read`, with a generated ID when none is given.
fn from_seatunnel(
    read: impl Fn(&SubmitParams) -> Result<ParsedJob, st::SeaTunnelError>,
    params: &Params,
    api: &Api,
) -> Result<ParsedJob, StError> {
    let id = params.job_id.clone().unwrap_or_else(|| api.generate_id());
    let mut st_params = SubmitParams {
        job_id: Some(id.clone()),
        job_name: params.job_name.clone(),
    };
    let job = read(&st_params)?;
    if params.job_name.is_none() && job.spec.name == DEFAULT_NAME {
        st_params.job_name = Some(format!("{DEFAULT_NAME}_{id}"));
        return Ok(read(&st_params)?);
    }
    Ok(job)
}

/// A dtle job, with the request's ID and name when given.
fn from_dtle(mut job: ParsedJob, params: &Params) -> Result<ParsedJob, StError> {
    if let Some(id) = &params.job_id {
        job.spec.id.clone_from(id);
    }
    if let Some(name) = &params.job_name {
        job.spec.name.clone_from(name);
    }
    Ok(job)
}

/// Reads one job from a request body.
pub fn parse(text: &str, params: &Params, api: &Api) -> Result<ParsedJob, StError> {
    if let Some(id) = &params.job_id {
        check_name("jobId", id)?;
    }
    if let Some(name) = &params.job_name {
        check_name("jobName", name)?;
    }
    if text.trim().is_empty() {
        return Err(StError::bad_request("Request body is empty."));
    }
    match ConfigFormat::from_param(params.format.as_deref())? {
        ConfigFormat::Hocon => from_seatunnel(
            |p| st::parse_seatunnel(text, ConfigFormat::Hocon, p),
            params,
            api,
        ),
        ConfigFormat::Json => match serde_json::from_str::<Value>(text) {
            Ok(value) => from_value(&value, params, api),
            Err(json_error) if params.format.is_none() && !text.trim_start().starts_with('{') => {
                // Not JSON: a Nomad HCL job, as `/v1/jobs` accepts.
                match jobs::parse_hcl(text) {
                    Ok(job) => from_dtle(job, params),
                    Err(hcl_error) => Err(StError::bad_request(format!(
                        "Invalid JSON format in request body: {json_error} (a HOCON config needs ?format=hocon; as a Nomad HCL job: {hcl_error})"
                    ))),
                }
            }
            Err(e) => Err(StError::bad_request(format!(
                "Invalid JSON format in request body: {e}"
            ))),
        },
    }
}

/// One job from a JSON document: a SeaTunnel config or a dtle/Nomad job.
fn from_value(value: &Value, params: &Params, api: &Api) -> Result<ParsedJob, StError> {
    if st::looks_like_seatunnel(value) {
        from_seatunnel(|p| st::from_seatunnel_value(value, p), params, api)
    } else {
        from_dtle(jobs::from_json_value(value)?, params)
    }
}

/// Whether, and how, a submitted job ID is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// A new ID.
    No,
    /// A job the orchestrator has (ended).
    Job,
    /// A purged job its history remembers.
    Purged,
}

/// Refuses a submission that would run a job twice or share a name with another job (see the
/// module docs); tells whether the ID is known.
fn check_conflicts(job: &ParsedJob, views: &[JobView]) -> Result<Known, StError> {
    let id = &job.spec.id;
    if let Some(other) = views
        .iter()
        .find(|v| v.name == job.spec.name && v.id != *id && !v.purged)
    {
        return Err(StError::conflict(format!(
            "job name {} is used by job {}: a dtle job's name keys its position on the target and its NATS subjects; choose another jobName",
            other.name, other.id
        )));
    }
    match views.iter().find(|v| v.id == *id) {
        Some(v) if !v.status.is_ended() => Err(StError::conflict(format!(
            "job {id} is {}: stop it first (POST /stop-job)",
            v.status.as_str()
        ))),
        Some(v) if v.purged => Ok(Known::Purged),
        Some(_) => Ok(Known::Job),
        None => Ok(Known::No),
    }
}

/// Registers a checked submission: afresh or from the savepoint when the job is known.
async fn start(api: &Api, sub: Submission, known: Known) -> Result<(String, String), StError> {
    let (id, name) = (sub.job.spec.id.clone(), sub.job.spec.name.clone());
    if !sub.start_with_savepoint {
        match known {
            Known::No => {}
            Known::Job => {
                tracing::info!(job = %id, "submitted without a savepoint: forgetting the job's position first");
                api.orchestrator.stop(&id, false, true).await?;
            }
            Known::Purged => {
                tracing::info!(job = %id, "submitted without a savepoint: forgetting the purged job's position first");
                driver::task::forget_position(&sub.job.spec)
                    .await
                    .map_err(|e| {
                        StError::new(
                            warp::http::StatusCode::BAD_GATEWAY,
                            format!("deleting the position of job {id} on the target: {e}"),
                        )
                    })?;
            }
        }
    }
    api.orchestrator.register(sub.job).await?;
    api.remember_start(&id, sub.start_with_savepoint);
    tracing::info!(job = %id, savepoint = sub.start_with_savepoint, "job submitted through SeaTunnel's API");
    Ok((id, name))
}

/// `POST /submit-job?jobId=&jobName=&isStartWithSavePoint=&format=`: `{"jobId", "jobName"}`.
pub async fn submit_job(api: Api, query: HashMap<String, String>, body: bytes::Bytes) -> Response {
    respond(
        async {
            let params = Params::from_map(&query);
            if params.start_with_savepoint && params.job_id.is_none() {
                return Err(StError::bad_request(
                    "Please provide jobId when start with save point.",
                ));
            }
            let text = std::str::from_utf8(&body)
                .map_err(|e| StError::bad_request(format!("the body is not UTF-8: {e}")))?;
            let job = parse(text, &params, &api)?;
            let views = view::load_all(&api.orchestrator).await?;
            let known = check_conflicts(&job, &views)?;
            let submission = Submission {
                job,
                start_with_savepoint: params.start_with_savepoint,
            };
            let (id, name) = start(&api, submission, known).await?;
            Ok(ok_json(&json!({"jobId": id_value(&id), "jobName": name})))
        }
        .await,
    )
}

/// `POST /submit-jobs`: an array of configs, each with its `params`. Every job is read and
/// checked before any is started: one bad job fails the request and starts none.
pub async fn submit_jobs(api: Api, body: bytes::Bytes) -> Response {
    respond(
        async {
            let items = json_body(&body)?;
            let Value::Array(items) = items else {
                return Err(StError::bad_request(
                    "the body must be an array of job configs, each with its params",
                ));
            };
            let views = view::load_all(&api.orchestrator).await?;
            let count = items.len();
            let mut checked: Vec<(Submission, Known)> = Vec::with_capacity(count);
            for (i, item) in items.into_iter().enumerate() {
                let one = || -> Result<(Submission, Known), StError> {
                    let Value::Object(mut config) = item.clone() else {
                        return Err(StError::bad_request("a job config is a JSON object"));
                    };
                    let params = params_object(config.remove("params"))?;
                    if params.start_with_savepoint && params.job_id.is_none() {
                        return Err(StError::bad_request(
                            "Please provide jobId when start with save point.",
                        ));
                    }
                    let job = from_value(&Value::Object(config), &params, &api)?;
                    for (earlier, _) in &checked {
                        let e = &earlier.job.spec;
                        if e.id == job.spec.id || e.name == job.spec.name {
                            return Err(StError::conflict(format!(
                                "job {} ({}) is submitted twice in this request",
                                job.spec.id, job.spec.name
                            )));
                        }
                    }
                    let known = check_conflicts(&job, &views)?;
                    let submission = Submission {
                        job,
                        start_with_savepoint: params.start_with_savepoint,
                    };
                    Ok((submission, known))
                };
                checked.push(one().map_err(|e| e.for_item(i + 1, count))?);
            }
            let mut answers = Vec::with_capacity(count);
            for (i, (submission, known)) in checked.into_iter().enumerate() {
                let (id, name) = start(&api, submission, known)
                    .await
                    .map_err(|e| e.for_item(i + 1, count))?;
                answers.push(json!({"jobId": id, "jobName": name}));
            }
            Ok(ok_json(&Value::Array(answers)))
        }
        .await,
    )
}

/// `params` of a `/submit-jobs` entry: string values (numbers and booleans taken as written).
fn params_object(params: Option<Value>) -> Result<Params, StError> {
    let map: HashMap<String, String> = match params {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(object)) => object
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
        Some(_) => return Err(StError::bad_request("params must be an object")),
    };
    Ok(Params::from_map(&map))
}

/// The body as JSON, with SeaTunnel's messages.
fn json_body(body: &[u8]) -> Result<Value, StError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(StError::bad_request("Request body is empty."));
    }
    serde_json::from_slice(body)
        .map_err(|e| StError::bad_request(format!("Invalid JSON format in request body: {e}")))
}

/// One entry of a stop request: the job ID as given (a number or a string) and whether to keep
/// a savepoint.
fn stop_request(value: &Map<String, Value>) -> Result<(Value, String, bool), StError> {
    let given = value.get("jobId").cloned().unwrap_or(Value::Null);
    let id = match &given {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err(StError::bad_request("jobId cannot be empty.")),
    };
    let savepoint = match value.get("isStopWithSavePoint") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok((given, id, savepoint))
}

/// Stops one job: with a savepoint, once the target has committed what the Src read, keeping
/// that position to resume from (an orchestrator without savepoints pauses the job, which
/// keeps the target's position too); without, cancelling it.
async fn stop(api: &Api, id: &str, savepoint: bool) -> Result<(), StError> {
    let record = api.orchestrator.job(id).await?;
    let view = view::load(&api.orchestrator, &record).await;
    if savepoint {
        match view.status {
            view::StStatus::SavepointDone => Ok(()),
            status if status.is_ended() => Err(StError::conflict(format!(
                "job {id} is not running ({}): there is no position to save",
                status.as_str()
            ))),
            _ => {
                match api.orchestrator.stop_with_savepoint(id).await {
                    Ok(checkpoint) => tracing::info!(
                        job = %id,
                        savepoint = checkpoint.id,
                        position = %checkpoint.position_text(),
                        "job stopped with a savepoint"
                    ),
                    Err(OrchestratorError::Unsupported(why)) => {
                        tracing::info!(job = %id, %why, "no savepoints here: pausing the job, which keeps its position");
                        api.orchestrator.pause(id).await?;
                    }
                    Err(err) => return Err(err.into()),
                }
                Ok(())
            }
        }
    } else {
        api.orchestrator.stop(id, false, false).await?;
        tracing::info!(job = %id, "job stopped");
        Ok(())
    }
}

/// `POST /stop-job` `{"jobId", "isStopWithSavePoint"}`: `{"jobId"}`.
pub async fn stop_job(api: Api, body: bytes::Bytes) -> Response {
    respond(
        async {
            let Value::Object(request) = json_body(&body)? else {
                return Err(StError::bad_request("the body must be a JSON object"));
            };
            let (given, id, savepoint) = stop_request(&request)?;
            stop(&api, &id, savepoint).await?;
            Ok(ok_json(&json!({"jobId": given})))
        }
        .await,
    )
}

/// `POST /stop-jobs` `[{"jobId", "isStopWithSavePoint"}, ...]`: `[{"jobId"}, ...]`. Stops them
/// in order; the first failure ends the request (the jobs before it are stopped).
pub async fn stop_jobs(api: Api, body: bytes::Bytes) -> Response {
    respond(
        async {
            let Value::Array(items) = json_body(&body)? else {
                return Err(StError::bad_request("the body must be a JSON array"));
            };
            let count = items.len();
            let mut requests = Vec::with_capacity(count);
            for (i, item) in items.iter().enumerate() {
                let Value::Object(request) = item else {
                    return Err(StError::bad_request("a stop request is a JSON object")
                        .for_item(i + 1, count));
                };
                requests.push(stop_request(request).map_err(|e| e.for_item(i + 1, count))?);
            }
            let mut answers = Vec::with_capacity(count);
            for (i, (given, id, savepoint)) in requests.into_iter().enumerate() {
                stop(&api, &id, savepoint)
                    .await
                    .map_err(|e| e.for_item(i + 1, count))?;
                answers.push(json!({"jobId": given}));
            }
            Ok(ok_json(&Value::Array(answers)))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::tests::NoJobs;
    use crate::api::seatunnel::ApiState;
    use std::sync::Arc;

    fn config(source: &str) -> String {
        format!(
            r#"{{"env": {{"job.mode": "STREAMING"}},
              "source": [{{"plugin_name": "{source}", "base-url": "jdbc:mysql://127.0.0.1:3307/st",
                "username": "u", "password": "secret", "table-names": ["st.t"]}}],
              "sink": [{{"plugin_name": "Jdbc", "url": "jdbc:mysql://127.0.0.1:3308/st",
                "user": "u", "password": "secret"}}]}}"#
        )
    }

    fn api() -> Api {
        ApiState::new(Arc::new(NoJobs))
    }

    #[test]
    fn ids_and_names() {
        let api = api();
        let job = parse(&config("MySQL-CDC"), &Params::default(), &api).expect("parsed");
        let id: i64 = job.spec.id.parse().expect("a numeric ID");
        assert!(id > 0);
        assert_eq!(job.spec.name, format!("SeaTunnel_Job_{id}"));
        let params = Params {
            job_id: Some("123456".into()),
            job_name: Some("st_orders".into()),
            ..Params::default()
        };
        let job = parse(&config("MySQL-CDC"), &params, &api).expect("parsed");
        assert_eq!(
            (job.spec.id.as_str(), job.spec.name.as_str()),
            ("123456", "st_orders")
        );
        let bad = Params {
            job_name: Some("my job".into()),
            ..Params::default()
        };
        let err = parse(&config("MySQL-CDC"), &bad, &api).expect_err("refused");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("\"my job\""), "{}", err.message);
    }

    #[test]
    fn other_connectors_and_bodies_are_refused_by_name() {
        let api = api();
        let err = parse(&config("Kafka"), &Params::default(), &api).expect_err("refused");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("Kafka"), "{}", err.message);
        let err = parse("  ", &Params::default(), &api).expect_err("refused");
        assert_eq!(err.message, "Request body is empty.");
        let sql = Params {
            format: Some("sql".into()),
            ..Params::default()
        };
        let err = parse(&config("MySQL-CDC"), &sql, &api).expect_err("refused");
        assert!(err.message.contains("sql"), "{}", err.message);
    }

    #[test]
    fn dtle_jobs_keep_their_ids_and_hocon_configs_are_read() {
        let api = api();
        let dtle = r#"{"ID": "orders", "Name": "st_orders", "Tasks": [
          {"Type": "Src", "Config": {"ConnectionConfig": {"Host": "h", "Port": 1, "User": "u", "Password": "p"}}},
          {"Type": "Dest", "Config": {"ConnectionConfig": {"Host": "h", "Port": 2, "User": "u", "Password": "p"}}}]}"#;
        let job = parse(dtle, &Params::default(), &api).expect("a dtle job");
        assert_eq!(job.spec.id, "orders");
        let hocon = r#"
            env { job.mode = "STREAMING", job.name = "st_h" }
            source { MySQL-CDC { base-url = "jdbc:mysql://127.0.0.1:3307/st", username = "u",
                                 password = "p", table-names = ["st.t"] } }
            sink { Jdbc { url = "jdbc:mysql://127.0.0.1:3308/st", user = "u", password = "p" } }
        "#;
        let params = Params {
            format: Some("hocon".into()),
            ..Params::default()
        };
        let job = parse(hocon, &params, &api).expect("a HOCON config");
        assert_eq!(job.spec.name, "st_h");
        let err = parse("source { x", &params, &api).expect_err("bad HOCON");
        assert!(err.message.contains("HOCON"), "{}", err.message);
    }

    #[test]
    fn stop_requests() {
        let request = |v: Value| stop_request(v.as_object().expect("an object"));
        let (given, id, savepoint) =
            request(json!({"jobId": 733584788375666689_i64, "isStopWithSavePoint": true}))
                .expect("read");
        assert_eq!(
            (given, id.as_str(), savepoint),
            (json!(733584788375666689_i64), "733584788375666689", true)
        );
        let (_, id, savepoint) =
            request(json!({"jobId": "orders", "isStopWithSavePoint": "false"})).expect("read");
        assert_eq!((id.as_str(), savepoint), ("orders", false));
        let err = request(json!({"isStopWithSavePoint": true})).expect_err("no ID");
        assert_eq!(err.message, "jobId cannot be empty.");
    }

    #[tokio::test]
    async fn savepoint_starts_need_a_job_id() {
        let response = submit_job(
            api(),
            HashMap::from([("isStartWithSavePoint".to_owned(), "true".to_owned())]),
            bytes::Bytes::from(config("MySQL-CDC")),
        )
        .await;
        assert_eq!(response.status(), 400);
        let response = stop_job(api(), bytes::Bytes::from(r#"{"jobId": 7}"#)).await;
        assert_eq!(response.status(), 404);
    }
}
