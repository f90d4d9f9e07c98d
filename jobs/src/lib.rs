//! The dtle-rs job model: every job shape dtle users write, parsed and validated into one
//! [`JobSpec`]. Pure code: no I/O, no dependency on the rest of dtle-rs.
//!
//! # Shapes
//! - dtle 2.x JSON, as POSTed to `/v1/jobs`: `{"Name", "Tasks": [{"Type": "Src", "Config": {...}},
//!   {"Type": "Dest", "Config": {...}}]}`, each config with its own `ConnectionConfig`, or the later
//!   shape with `SrcConnectionConfig` and `DestConnectionConfig` on the Src task and only `DestType`
//!   on Dest (`dtle_json`);
//! - the same wrapped as dtle 2.x's Go client sends it (`{"Job": {"Name", "Tasks": [...]},
//!   "EnforceIndex", "JobModifyIndex"}`);
//! - Nomad JSON (`{"Job": {"ID", "TaskGroups": [...]}}`) and Nomad HCL (`job "x" { group "src" {
//!   task "src" { driver = "dtle" config { ... } } } ... }`) running dtle tasks (`nomad`).
//!
//! # Pipeline
//! A front-end turns its document into JSON values and finds the job's name and tasks; `assemble`
//! checks the job-wide rules; `task_config` and `replicate` read the two task configs through a
//! path-aware `read::ObjectReader`. Problems are collected, not thrown: a rejected job lists every
//! error at once, each with its path in the user's document
//! (`Tasks[0].Config.ConnectionConfig.Port: expected 1-65535, got "abc"`). Fields the model does not
//! use are kept on the [`JobSpec`] and reported as warnings, never dropped silently.
//!
//! # Values as posted
//! The spec holds parsed values; [`ParsedJob::posted`] keeps the task configs as written (secrets
//! masked) so that views can show `"ChunkSize": "2000"` as the user wrote it ([`posted`]). A job
//! fetched from the API and posted back is read against the stored one by
//! [`JobSpec::reconciled_with`] ([`repost`]): what only echoes the server's view (`*` passwords,
//! the executed `Gtid`, the node a task runs on) is the stored value.
//!
//! # Secrets
//! Passwords are [`Password`]s (`Debug`/`Display` print `*`); [`JobSpec::redacted`] is the form to
//! show anyone.

mod assemble;
mod connection;
pub mod diagnostic;
mod dtle_json;
pub mod gtid;
mod nomad;
pub mod posted;
mod read;
mod redact;
pub mod render;
mod replicate;
pub mod repost;
pub mod seatunnel;
pub mod spec;
pub mod sql_filter;
mod task_config;
pub mod where_clause;

pub use assemble::{check_id, role_from_name, MAX_NAME_LEN};
pub use diagnostic::Diagnostic;
pub use gtid::{GtidParseError, GtidSet, MariaDbGtid, ServerUuid};
pub use posted::Posted;
pub use redact::redact_value;
pub use repost::Shown;
pub use spec::*;
pub use sql_filter::{SqlFilter, SqlFilterWord};

use diagnostic::{Diagnostics, Path};
use serde_json::{Map, Value};
use std::fmt;

/// Which shape a job was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JobFormat {
    /// dtle 2.x job JSON (`Tasks` with `Type` Src/Dest), either connection shape.
    DtleJson,
    /// A Nomad job in JSON (`Job.TaskGroups`).
    NomadJson,
    /// A Nomad job in HCL.
    NomadHcl,
}

impl fmt::Display for JobFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobFormat::DtleJson => "dtle job JSON",
            JobFormat::NomadJson => "Nomad job JSON",
            JobFormat::NomadHcl => "Nomad job HCL",
        })
    }
}

/// A valid job and what the user may want to know about it.
#[derive(Debug, Clone)]
pub struct ParsedJob {
    /// The job.
    pub spec: JobSpec,
    /// The shape it was written in.
    pub format: JobFormat,
    /// Fields kept but not used, values overridden by the other task, deprecated forms.
    pub warnings: Vec<Diagnostic>,
    /// The task configs in the form they were written ([`posted`]), for showing the job.
    pub posted: Posted,
    /// Whether the document named the job's ID (Nomad jobs always do; a dtle job may leave it
    /// out, and its ID is then its name).
    pub explicit_id: bool,
}

/// Why a job was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The text is not JSON.
    #[error("the job is not valid JSON: {message} at line {line}, column {column}")]
    Json {
        /// The parser's description.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The text is not HCL.
    #[error("the job is not valid HCL: {message}")]
    Hcl {
        /// The parser's description, with the position.
        message: String,
    },
    /// The document was read but the job is not valid.
    #[error("the job is invalid ({} problem(s)):\n{}", errors.len(), lines(errors))]
    Invalid {
        /// Every problem found, each with its path.
        errors: Vec<Diagnostic>,
        /// Warnings found on the way.
        warnings: Vec<Diagnostic>,
    },
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses a job in any shape: JSON (dtle or Nomad) when the text starts with `{`, else Nomad HCL.
///
/// # Errors
/// [`JobError`] with the syntax error's position, or every validation problem at once.
pub fn parse_job(text: &str) -> Result<ParsedJob, JobError> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_hcl(text)
    }
}

/// Parses a job written as JSON, dtle's or Nomad's.
///
/// # Errors
/// As [`parse_job`].
pub fn parse_json(text: &str) -> Result<ParsedJob, JobError> {
    let value: Value = serde_json::from_str(text).map_err(|e| JobError::Json {
        message: json_message(&e),
        line: e.line(),
        column: e.column(),
    })?;
    from_json_value(&value)
}

fn json_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads a job from an already-parsed JSON document, dtle's or Nomad's.
///
/// # Errors
/// As [`parse_job`].
pub fn from_json_value(value: &Value) -> Result<ParsedJob, JobError> {
    let mut diags = Diagnostics::default();
    let empty = Map::new();
    let Value::Object(doc) = value else {
        diags.error(
            &Path::root(),
            format!("expected a JSON object, got {}", read::describe(value)),
        );
        return Err(rejected(diags));
    };
    // dtle 2.x's Go client sends a `RegisterJobRequest`: `{"Job": <a dtle job>, "EnforceIndex",
    // "JobModifyIndex"}`.
    if let Some(Value::Object(job)) = doc.get("Job") {
        if job.contains_key("Tasks") && !job.contains_key("TaskGroups") {
            for (key, _) in doc.iter().filter(|(k, _)| k.as_str() != "Job") {
                diags.warning(
                    &Path::root().key(key),
                    "a field of the client's request, not of the job; not used",
                );
            }
            let raw = dtle_json::read(job, Path::root().key("Job"), &empty, &mut diags);
            return finish(raw, JobFormat::DtleJson, diags);
        }
    }
    let nomad_job = match doc.get("Job") {
        Some(Value::Object(job)) => Some((job, Path::root().key("Job"))),
        _ if doc.contains_key("TaskGroups") => Some((doc, Path::root())),
        _ => None,
    };
    match nomad_job {
        Some((job, path)) => {
            for (key, value) in doc.iter().filter(|(k, _)| k.as_str() != "Job") {
                if path != Path::root() {
                    diags.keep_unrecognised(
                        &Path::root().key(key),
                        value,
                        "outside the job; kept but not used",
                    );
                }
            }
            let job = nomad::NomadJob::from_json(job, path, &mut diags);
            let raw = job.read(&empty, &mut diags);
            finish(raw, JobFormat::NomadJson, diags)
        }
        None => {
            let raw = dtle_json::read(doc, Path::root(), &empty, &mut diags);
            finish(raw, JobFormat::DtleJson, diags)
        }
    }
}

/// Parses a Nomad job written in HCL.
///
/// # Errors
/// As [`parse_job`].
pub fn parse_hcl(text: &str) -> Result<ParsedJob, JobError> {
    let mut diags = Diagnostics::default();
    let empty = Map::new();
    let job = nomad::NomadJob::from_hcl(text, &mut diags).map_err(|e| JobError::Hcl {
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })?;
    let raw = job.read(&empty, &mut diags);
    finish(raw, JobFormat::NomadHcl, diags)
}

fn finish(
    raw: assemble::RawJob<'_>,
    format: JobFormat,
    mut diags: Diagnostics,
) -> Result<ParsedJob, JobError> {
    let explicit_id = raw.id.is_some();
    let config_of = |role: Role| {
        raw.tasks
            .iter()
            .find(|t| t.role == Some(role))
            .map(|t| t.config.map())
    };
    let posted = Posted::new(config_of(Role::Src), config_of(Role::Dest));
    match assemble::assemble(raw, &mut diags) {
        Some(spec) if diags.errors.is_empty() => Ok(ParsedJob {
            spec,
            format,
            warnings: diags.warnings,
            posted,
            explicit_id,
        }),
        _ => Err(rejected(diags)),
    }
}

fn rejected(diags: Diagnostics) -> JobError {
    JobError::Invalid {
        errors: diags.errors,
        warnings: diags.warnings,
    }
}
