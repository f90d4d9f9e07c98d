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

use super::error::StOrchestratorFailures;
use super::error::{ok_json, respond, StBodyRejections, StError, StErrorBody};
use super::view::{self, JobView};
use super::{Api, StJobId};
use crate::orchestrator::OrchestratorError;
use jobs::seatunnel::{self as st, ConfigFormat, SubmitParams};
use jobs::ParsedJob;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use warp::reply::Response;

/// SeaTunnel's default job name.
const DEFAULT_NAME: &str = "SeaTunnel_Job";

/// The request's own settings: `/submit-job`'s query, or `params` of a `/submit-jobs` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[schema(as = StSubmitParams)]
pub struct Params {
    /// The dtle job ID: a number as SeaTunnel's, or letters, digits, `_` and `-` (at most 64).
    /// Without it a SeaTunnel config gets a new number, a dtle job keeps its own.
    #[param(rename = "jobId")]
    #[schema(rename = "jobId")]
    pub job_id: Option<String>,
    /// The job's name: letters, digits, `_` and `-` (at most 64); else the config's
    /// `env.job.name`, else the dtle job's `Name`.
    #[param(rename = "jobName")]
    #[schema(rename = "jobName")]
    pub job_name: Option<String>,
    /// `true` (any case): start a known job from the position its target committed (needs
    /// `jobId`); otherwise a known job starts afresh.
    #[param(rename = "isStartWithSavePoint", required = false, value_type = Option<bool>)]
    #[schema(rename = "isStartWithSavePoint", required = false, value_type = Option<bool>)]
    pub start_with_savepoint: bool,
    /// How the body is written: `json` (default) or `hocon` (also `conf`, `config`).
    #[param(example = "hocon")]
    #[schema(example = "hocon")]
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

/// What `/submit-job` answers: the job's ID and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StSubmitted {
    /// The job ID (a number when it is one).
    pub job_id: StJobId,
    /// The job's name.
    pub job_name: String,
}

/// What `/submit-jobs` answers for each job: its ID (as text) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StSubmittedItem {
    /// The job ID, as text.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
}

/// `env` of a SeaTunnel config.
#[derive(Debug, Clone, ToSchema)]
pub struct StConfigEnv {
    /// `STREAMING` (snapshot, then the binlog) or `BATCH` (SeaTunnel's default: the snapshot only).
    #[schema(rename = "job.mode")]
    pub job_mode: Option<String>,
    /// The job's name (unless the request's `jobName` gives one).
    #[schema(rename = "job.name")]
    pub job_name: Option<String>,
}

/// The source of a SeaTunnel config: `MySQL-CDC`.
#[derive(Debug, Clone, ToSchema)]
pub struct StSourceConfig {
    /// `MySQL-CDC` (any other connector is refused by name).
    #[schema(example = "MySQL-CDC")]
    pub plugin_name: String,
    /// `jdbc:mysql://host:port/...`.
    #[schema(rename = "base-url")]
    pub base_url: String,
    /// The source server's user.
    pub username: String,
    /// Its password (never shown back).
    pub password: String,
    /// The tables to replicate, `db.table`.
    #[schema(rename = "table-names")]
    pub table_names: Option<Vec<String>>,
    /// The schemas to replicate.
    #[schema(rename = "database-names")]
    pub database_names: Option<Vec<String>>,
    /// `initial` (a snapshot first), `latest` (from now) or `specific`.
    #[schema(rename = "startup.mode")]
    pub startup_mode: Option<String>,
    /// With `specific`: `gtid-set`, or `file` and `pos`.
    #[schema(rename = "startup.specific-offset", value_type = Option<Object>)]
    pub startup_specific_offset: Option<Value>,
    /// Rows per snapshot chunk.
    #[schema(rename = "snapshot.split.size")]
    pub snapshot_split_size: Option<u64>,
}

/// The sink of a SeaTunnel config: `Jdbc` to MySQL/MariaDB.
#[derive(Debug, Clone, ToSchema)]
pub struct StSinkConfig {
    /// `Jdbc`.
    #[schema(example = "Jdbc")]
    pub plugin_name: String,
    /// `jdbc:mysql://host:port/...` (or `jdbc:mariadb:`).
    pub url: String,
    /// The target server's user.
    pub user: String,
    /// Its password (never shown back).
    pub password: String,
    /// The target schema (`${database_name}`: the source's).
    pub database: Option<String>,
    /// The target table, for one source table (`${table_name}`: the source's).
    pub table: Option<String>,
    /// The JDBC driver class (not used).
    pub driver: Option<String>,
}

/// A SeaTunnel job config as JSON: one `MySQL-CDC` source and one `Jdbc` sink (a list of one,
/// or HOCON's layout `{"MySQL-CDC": {...}}`). Options with no dtle meaning are accepted and
/// ignored; transforms, a sink `query` and other connectors are refused by name.
#[derive(Debug, Clone, ToSchema)]
pub struct StSeaTunnelConfig {
    /// The job's settings.
    pub env: Option<StConfigEnv>,
    /// The source.
    pub source: Vec<StSourceConfig>,
    /// Must be empty: dtle has no transforms.
    #[schema(value_type = Option<Vec<Object>>, max_items = 0)]
    pub transform: Option<Vec<Value>>,
    /// The sink.
    pub sink: Vec<StSinkConfig>,
}

/// A job as `POST /v1/jobs` takes it: dtle 2.x JSON (`{"Name", "Tasks": [{"Type": "Src"}, {"Type":
/// "Dest"}]}`, or a client's `{"Job": {...}}`) or Nomad JSON (`{"Job": {"TaskGroups": ...}}`);
/// see `docs/job-format.md`.
#[derive(Debug, Clone, ToSchema)]
#[schema(as = StDtleJob, value_type = Object)]
pub struct StDtleJob(pub Map<String, Value>);

/// A JSON body of `/submit-job`: a SeaTunnel config (it has `source` or `sink`) or a dtle job.
#[derive(Debug, Clone, ToSchema)]
#[serde(untagged)]
pub enum StSubmitBody {
    /// A SeaTunnel config.
    SeaTunnel(StSeaTunnelConfig),
    /// A dtle or Nomad job.
    Dtle(StDtleJob),
}

/// One entry of `/submit-jobs`: a job as `/submit-job` takes it (JSON), with its `params`.
#[derive(Debug, Clone, ToSchema)]
pub struct StSubmitItem {
    /// The config or job.
    #[serde(flatten)]
    pub job: StSubmitBody,
    /// `jobId`, `jobName`, `isStartWithSavePoint` (`format` does not apply).
    pub params: Option<Params>,
}

/// `POST /submit-job?jobId=&jobName=&isStartWithSavePoint=&format=`: `{"jobId", "jobName"}`.
#[utoipa::path(
    post,
    path = "/submit-job",
    operation_id = "st_submit_job",
    tag = "SeaTunnel",
    params(Params),
    request_body(description = "A SeaTunnel config (JSON, or HOCON with `format=hocon`) whose source is MySQL-CDC and sink Jdbc, or a dtle job (dtle 2.x JSON, Nomad JSON or HCL)", content(
        (StSubmitBody = "application/json"),
        (String = "text/plain"),
    )),
    responses(
        (status = 200, description = "The job is registered", body = StSubmitted),
        (status = 400, description = "The body or a parameter is not valid, or asks for what dtle cannot do", body = StErrorBody),
        (status = 404, description = "The job was removed while being replaced", body = StErrorBody),
        (status = 409, description = "The job runs or waits to run, or its name is another job's", body = StErrorBody),
        (status = 501, description = "The orchestrator cannot do what the submission needs", body = StErrorBody),
        StBodyRejections,
        StOrchestratorFailures,
    )
)]
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
            Ok(ok_json(&StSubmitted {
                job_id: StJobId::of(&id),
                job_name: name,
            }))
        }
        .await,
    )
}

/// `POST /submit-jobs`: an array of configs, each with its `params`. Every job is read and
/// checked before any is started: one bad job fails the request and starts none.
#[utoipa::path(
    post,
    path = "/submit-jobs",
    operation_id = "st_submit_jobs",
    tag = "SeaTunnel",
    request_body(description = "The jobs, each with its `params`", content(
        (Vec<StSubmitItem> = "application/json"),
    )),
    responses(
        (status = 200, description = "Every job is registered, in order", body = Vec<StSubmittedItem>),
        (status = 400, description = "A job or its params is not valid (`job <n> of <count>: ...`)", body = StErrorBody),
        (status = 404, description = "A job was removed while being replaced", body = StErrorBody),
        (status = 409, description = "A job runs or waits to run, its name is another job's, or it is given twice", body = StErrorBody),
        (status = 501, description = "The orchestrator cannot do what a submission needs", body = StErrorBody),
        StBodyRejections,
        StOrchestratorFailures,
    )
)]
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
                answers.push(StSubmittedItem {
                    job_id: id,
                    job_name: name,
                });
            }
            Ok(ok_json(&answers))
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

/// A job ID given as a JSON number, written back as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct StJobNumber(pub serde_json::Number);

/// A job ID as a stop request gave it: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StGivenJobId {
    /// A number.
    Number(StJobNumber),
    /// A string.
    Text(String),
}

/// A request to stop a job.
#[derive(Debug, Clone, ToSchema)]
pub struct StStopRequest {
    /// The job ID (a number or a string).
    #[schema(rename = "jobId")]
    pub job_id: StGivenJobId,
    /// `true` (or `"true"`, any case): stop with a savepoint, keeping the committed position to
    /// resume from.
    #[schema(rename = "isStopWithSavePoint", value_type = Option<bool>)]
    pub is_stop_with_save_point: Option<Value>,
}

/// What a stop answers: the job ID as it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StStopped {
    /// The job ID as given.
    pub job_id: StGivenJobId,
}

/// One entry of a stop request: the job ID as given (a number or a string) and whether to keep
/// a savepoint.
fn stop_request(value: &Map<String, Value>) -> Result<(StGivenJobId, String, bool), StError> {
    let (given, id) = match value.get("jobId") {
        Some(Value::Number(n)) => (StGivenJobId::Number(StJobNumber(n.clone())), n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            (StGivenJobId::Text(s.clone()), s.trim().to_owned())
        }
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
#[utoipa::path(
    post,
    path = "/stop-job",
    operation_id = "st_stop_job",
    tag = "SeaTunnel",
    request_body(content((StStopRequest = "application/json"))),
    responses(
        (status = 200, description = "The job is stopped", body = StStopped),
        (status = 400, description = "The body is not a JSON object with a jobId", body = StErrorBody),
        (status = 404, description = "No such job", body = StErrorBody),
        (status = 409, description = "The job has ended: there is no position to save", body = StErrorBody),
        (status = 501, description = "The orchestrator can neither stop with a savepoint nor pause", body = StErrorBody),
        StBodyRejections,
        StOrchestratorFailures,
    )
)]
pub async fn stop_job(api: Api, body: bytes::Bytes) -> Response {
    respond(
        async {
            let Value::Object(request) = json_body(&body)? else {
                return Err(StError::bad_request("the body must be a JSON object"));
            };
            let (given, id, savepoint) = stop_request(&request)?;
            stop(&api, &id, savepoint).await?;
            Ok(ok_json(&StStopped { job_id: given }))
        }
        .await,
    )
}

/// `POST /stop-jobs` `[{"jobId", "isStopWithSavePoint"}, ...]`: `[{"jobId"}, ...]`. Stops them
/// in order; the first failure ends the request (the jobs before it are stopped).
#[utoipa::path(
    post,
    path = "/stop-jobs",
    operation_id = "st_stop_jobs",
    tag = "SeaTunnel",
    request_body(content((Vec<StStopRequest> = "application/json"))),
    responses(
        (status = 200, description = "Every job is stopped, in order", body = Vec<StStopped>),
        (status = 400, description = "The body is not a JSON array of objects with a jobId", body = StErrorBody),
        (status = 404, description = "No such job (`job <n> of <count>: ...`; the jobs before it are stopped)", body = StErrorBody),
        (status = 409, description = "A job has ended: there is no position to save", body = StErrorBody),
        (status = 501, description = "The orchestrator can neither stop with a savepoint nor pause", body = StErrorBody),
        StBodyRejections,
        StOrchestratorFailures,
    )
)]
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
            let mut answers: Vec<StStopped> = Vec::with_capacity(count);
            for (i, (given, id, savepoint)) in requests.into_iter().enumerate() {
                stop(&api, &id, savepoint)
                    .await
                    .map_err(|e| e.for_item(i + 1, count))?;
                answers.push(StStopped { job_id: given });
            }
            Ok(ok_json(&answers))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::seatunnel::tests::NoJobs;
    use crate::api::seatunnel::ApiState;
    use serde_json::json;
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
        let given = serde_json::to_value(given).expect("JSON");
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
