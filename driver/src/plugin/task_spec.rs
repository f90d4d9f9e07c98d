//! From a Nomad task (`TaskConfig`) to the job a dtle task runs, and the `driver_state` that
//! lets RecoverTask run it again.
//!
//! # How the job spec reaches each task
//! A Nomad job runs Src and Dest as two tasks, each started by its own StartTask with only its
//! own `config`; the plugin never sees the other task's. The task API runs one role of a whole
//! [`JobSpec`], and the job model only accepts a job with both tasks and both servers. So each
//! task's config must carry what its own role needs, and the plugin builds a dtle 2.x job JSON
//! `{"Name": job_name, "Tasks": [Src, Dest]}` around it, through the same `jobs` parser as every
//! other front-end (same defaults, same messages):
//! - a config giving **both** servers (`SrcConnectionConfig` and `DestConnectionConfig`, dtle's
//!   later shape, which a user may copy into both tasks) is the Src task's config, and the Dest
//!   task's config is empty: the job is exactly what that config says, whichever role runs;
//! - a config giving one server (`ConnectionConfig`, or `SrcConnectionConfig` on a Src task, or
//!   `DestConnectionConfig` on a Dest task: the older shape, one config per task) is its own
//!   role's config, and the other role's config is only `ConnectionConfig` holding a copy of that
//!   same server: a stand-in the running role never opens (the Src opens only the source, the Dest
//!   only the target), present only because the job model requires both;
//! - a Dest task whose config names no server at all (dtle 4's sample job gives it `DestType`
//!   alone) runs the job its Src task hands over at run time ([`super::job_handoff`]); the Src
//!   hands over its job when its config is the whole job (both servers).
//!
//! Fields of the other role that only it uses (`ReplicateDoDb` on a Dest-only config, say) are
//! simply absent from the job this task runs, which is harmless: a role reads only its own.
//!
//! # driver_state
//! [`DriverState`] as JSON: the job JSON built above, the role and the NATS URL used. The client
//! persists the handle, but not `msgpack_driver_config`, so this is all RecoverTask has; parsing
//! the same job again gives the same spec, and the task resumes from the target's position.

use super::cty::CtyError;
use jobs::{JobSpec, Role};
use rmpv::Value as Mp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a task config cannot become a job.
#[derive(Debug, thiserror::Error)]
pub enum TaskSpecError {
    #[error("task name {0:?}: a dtle task is named Src or Dest (case-insensitive)")]
    Role(String),
    #[error(transparent)]
    Cty(#[from] CtyError),
    #[error("the task config is not a go-cty object: {0}")]
    Shape(String),
    #[error("{0}")]
    Job(#[from] jobs::JobError),
    #[error("driver_state cannot be read: {0}")]
    State(String),
}

/// What RecoverTask needs, kept in the handle's `driver_state` (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverState {
    /// The dtle 2.x job JSON the task runs.
    pub job: Value,
    /// `Src` or `Dest`.
    pub role: Role,
    /// The NATS URL the task was started with (used when no SetConfig came since).
    pub nats_url: String,
    /// A Dest task that gets its job from its Src: `job` holds only the job's `Name`.
    #[serde(default)]
    pub job_from_src: bool,
}

/// Where a task's job comes from.
#[derive(Debug, Clone)]
pub enum TaskJob {
    /// From the task's own config.
    Spec(Box<JobSpec>),
    /// From the Src task of job `job_name`, at run time ([`super::job_handoff`]).
    FromSrc { job_name: String },
}

impl DriverState {
    /// The bytes for `TaskHandle.driver_state`.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads `TaskHandle.driver_state`.
    ///
    /// # Errors
    /// When the bytes are not a [`DriverState`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TaskSpecError> {
        serde_json::from_slice(bytes).map_err(|e| TaskSpecError::State(e.to_string()))
    }

    /// Parses the job again.
    ///
    /// # Errors
    /// The job model's message when the job is no longer valid.
    pub fn spec(&self) -> Result<JobSpec, TaskSpecError> {
        Ok(jobs::from_json_value(&self.job)?.spec)
    }

    /// The job the task runs, or where it will come from.
    ///
    /// # Errors
    /// The job model's message when the job is no longer valid.
    pub fn task_job(&self) -> Result<TaskJob, TaskSpecError> {
        if self.job_from_src {
            let job_name = self.job["Name"].as_str().unwrap_or_default().to_owned();
            return Ok(TaskJob::FromSrc { job_name });
        }
        Ok(TaskJob::Spec(Box::new(self.spec()?)))
    }

    /// The job a Src task hands over to a Dest that asks: its whole job, when its config named
    /// both servers.
    pub fn handed_over_job(&self) -> Option<&Value> {
        let config = self.job["Tasks"][0]["Config"].as_object()?;
        let whole = self.role == Role::Src
            && config.contains_key("SrcConnectionConfig")
            && config.contains_key("DestConnectionConfig");
        whole.then_some(&self.job)
    }
}

/// Whether a task config names any server.
fn names_a_server(config: &Map<String, Value>) -> bool {
    [
        "ConnectionConfig",
        "SrcConnectionConfig",
        "DestConnectionConfig",
    ]
    .iter()
    .any(|key| config.contains_key(*key))
}

/// The role a task name means: `Src` or `Dest`, any case.
///
/// # Errors
/// [`TaskSpecError::Role`] for any other name.
pub fn role_of(name: &str) -> Result<Role, TaskSpecError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "src" => Ok(Role::Src),
        "dest" => Ok(Role::Dest),
        _ => Err(TaskSpecError::Role(name.to_owned())),
    }
}

/// Decodes `msgpack_driver_config` into the JSON object `jobs` reads as a task `Config`: unset
/// (nil) attributes are left out, so the job model's defaults apply.
///
/// # Errors
/// When the bytes are not one msgpack map.
pub fn config_json(bytes: &[u8]) -> Result<Map<String, Value>, TaskSpecError> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value(&mut rest).map_err(|source| CtyError::Msgpack {
        what: "task config",
        source,
    })?;
    if !rest.is_empty() {
        return Err(CtyError::Trailing {
            what: "task config",
            extra: rest.len(),
        }
        .into());
    }
    match to_json(value)? {
        Some(Value::Object(map)) => Ok(map),
        other => Err(TaskSpecError::Shape(format!("found {other:?}"))),
    }
}

fn to_json(value: Mp) -> Result<Option<Value>, TaskSpecError> {
    Ok(Some(match value {
        Mp::Nil => return Ok(None),
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            _ => return Err(TaskSpecError::Shape(format!("integer {i}"))),
        },
        Mp::F32(f) => Value::from(f64::from(f)),
        Mp::F64(f) => Value::from(f),
        Mp::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => return Err(TaskSpecError::Shape("a string that is not UTF-8".into())),
        },
        Mp::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| to_json(v).map(|v| v.unwrap_or(Value::Null)))
                .collect::<Result<_, _>>()?,
        ),
        Mp::Map(pairs) => {
            let mut map = Map::new();
            for (key, value) in pairs {
                let Mp::String(key) = key else {
                    return Err(TaskSpecError::Shape(
                        "a map key that is not a string".into(),
                    ));
                };
                let key = key.into_str().unwrap_or_default();
                if let Some(value) = to_json(value)? {
                    map.insert(key, value);
                }
            }
            Value::Object(map)
        }
        other => return Err(TaskSpecError::Shape(format!("unexpected msgpack {other}"))),
    }))
}

/// The dtle job JSON one task of `role` runs, from its config (see the module doc).
pub fn job_json(job_name: &str, role: Role, config: Map<String, Value>) -> Value {
    let has = |key: &str| config.contains_key(key);
    let (src, dest) = if has("SrcConnectionConfig") && has("DestConnectionConfig") {
        (Value::Object(config), Value::Object(Map::new()))
    } else {
        let own_key = match role {
            Role::Src => "SrcConnectionConfig",
            Role::Dest => "DestConnectionConfig",
        };
        let stand_in = config
            .get("ConnectionConfig")
            .or_else(|| config.get(own_key))
            .map(|server| {
                let mut m = Map::new();
                m.insert("ConnectionConfig".into(), server.clone());
                m
            })
            .unwrap_or_default();
        match role {
            Role::Src => (Value::Object(config), Value::Object(stand_in)),
            Role::Dest => (Value::Object(stand_in), Value::Object(config)),
        }
    };
    serde_json::json!({
        "Name": job_name,
        "Tasks": [
            {"Type": "Src", "Config": src},
            {"Type": "Dest", "Config": dest},
        ],
    })
}

/// Everything StartTask needs from a task: the state to keep and the parsed job (or that it
/// comes from the Src).
///
/// # Errors
/// A bad name, undecodable bytes, or the job model's message for an invalid job.
pub fn from_task(
    name: &str,
    job_name: &str,
    msgpack_config: &[u8],
    nats_url: &str,
) -> Result<(DriverState, TaskJob), TaskSpecError> {
    let role = role_of(name)?;
    let config = config_json(msgpack_config)?;
    let job_from_src = role == Role::Dest && !names_a_server(&config);
    let job = if job_from_src {
        serde_json::json!({ "Name": job_name })
    } else {
        job_json(job_name, role, config)
    };
    let state = DriverState {
        job,
        role,
        nats_url: nats_url.to_owned(),
        job_from_src,
    };
    let job = state.task_job()?;
    Ok((state, job))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(job: TaskJob) -> JobSpec {
        match job {
            TaskJob::Spec(spec) => *spec,
            TaskJob::FromSrc { job_name } => {
                panic!("expected a job, got one from job {job_name}'s Src")
            }
        }
    }

    fn server(port: i64) -> Mp {
        Mp::Map(vec![
            ("Host".into(), "127.0.0.1".into()),
            ("Port".into(), Mp::from(port)),
            ("User".into(), "u".into()),
            ("Password".into(), Mp::Nil),
            ("Charset".into(), Mp::Nil),
        ])
    }

    fn bytes(pairs: Vec<(&str, Mp)>) -> Vec<u8> {
        let map = Mp::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect());
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &map).expect("encoding");
        out
    }

    #[test]
    fn older_shape_each_task_its_own_server() {
        let src = bytes(vec![
            ("ConnectionConfig", server(3307)),
            ("ChunkSize", Mp::from(500)),
            ("Gtid", Mp::Nil),
        ]);
        let (state, job) = from_task("src", "j1", &src, "nats://x").expect("a Src task");
        let spec = spec_of(job);
        assert_eq!(state.handed_over_job(), None, "one server is no whole job");
        assert_eq!(state.role, Role::Src);
        assert_eq!(spec.src.connection.port, 3307);
        assert_eq!(spec.src.extract.chunk_size, 500);
        let dest = bytes(vec![("ConnectionConfig", server(3308))]);
        let (_, job) = from_task("Dest", "j1", &dest, "nats://x").expect("a Dest task");
        let spec = spec_of(job);
        assert_eq!(spec.dest.connection.port, 3308);
        let again = DriverState::from_bytes(&state.to_bytes()).expect("round trip");
        assert_eq!(again, state);
    }

    #[test]
    fn later_shape_is_the_whole_job() {
        let both = bytes(vec![
            ("SrcConnectionConfig", server(3307)),
            ("DestConnectionConfig", server(3308)),
        ]);
        for name in ["Src", "DEST"] {
            let (state, job) = from_task(name, "j2", &both, "n").expect("either role");
            assert_eq!(
                state.handed_over_job().is_some(),
                name == "Src",
                "the Src hands its whole job over"
            );
            let spec = spec_of(job);
            assert_eq!(
                (spec.src.connection.port, spec.dest.connection.port),
                (3307, 3308)
            );
        }
    }

    #[test]
    fn a_dest_without_a_server_waits_for_its_src_also_after_recovery() {
        let only_type = bytes(vec![("DestType", "mysql".into())]);
        for config in [only_type, bytes(vec![])] {
            let (state, job) = from_task("dest", "j4", &config, "n").expect("a waiting Dest");
            assert!(matches!(&job, TaskJob::FromSrc { job_name } if job_name == "j4"));
            assert_eq!(state.handed_over_job(), None);
            let again = DriverState::from_bytes(&state.to_bytes()).expect("round trip");
            assert!(
                matches!(again.task_job(), Ok(TaskJob::FromSrc { job_name }) if job_name == "j4")
            );
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let only_type = bytes(vec![("DestType", "mysql".into())]);
        let err = from_task("Src", "j3", &only_type, "n").expect_err("no source");
        assert!(err.to_string().contains("Src"), "{err}");
        let err = from_task("Other", "j3", &only_type, "n").expect_err("bad name");
        assert!(matches!(err, TaskSpecError::Role(_)), "{err}");
        let bad_port = bytes(vec![("ConnectionConfig", {
            let Mp::Map(mut m) = server(0) else {
                unreachable!()
            };
            m[1].1 = "abc".into();
            Mp::Map(m)
        })]);
        let err = from_task("Src", "j3", &bad_port, "n").expect_err("bad port");
        assert!(err.to_string().contains("Port"), "{err}");
    }
}
