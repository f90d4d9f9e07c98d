//! SeaTunnel job configs as dtle jobs: what `POST /submit-job` accepts besides dtle's own shapes.
//!
//! A SeaTunnel job that reads a MySQL/MariaDB server's binlog (`MySQL-CDC` source) and writes
//! rows into another one (`Jdbc` sink with a MySQL or MariaDB URL) is what a dtle job does, so it
//! is translated into the dtle 2.x job JSON (the later shape: both servers on the Src task) and
//! read by the same job model as every other shape: same defaults, same checks, same messages.
//! Anything else is refused by name: another connector, several sources or sinks, transforms,
//! a sink `query`, a start position dtle cannot take.
//!
//! The config comes as JSON (`"source": [{"plugin_name": "MySQL-CDC", ...}]`) or HOCON
//! (`source { MySQL-CDC { ... } }`, which reads as `"source": {"MySQL-CDC": {...}}`); both are
//! accepted in either layout. HOCON reads `job.mode = x` as a path (`{"job": {"mode": x}}`)
//! where JSON keeps the dotted key, so keys are looked up both ways.
//!
//! # The mapping
//! | SeaTunnel | dtle |
//! |---|---|
//! | `env.job.mode` `STREAMING` / `BATCH` (SeaTunnel's default) | snapshot then binlog / snapshot only (`SkipIncrementalCopy`) |
//! | `env.job.name`, or the request's `jobName` | `Name` (and `ID`: the request's `jobId`) |
//! | source `base-url` (`jdbc:mysql://host:port/...`), `username`, `password` | `SrcConnectionConfig` |
//! | source `table-names` (`db.table`), `database-names` | `ReplicateDoDb` |
//! | source `startup.mode` `initial` / `latest` / `specific` | snapshot / `AutoGtid` / `Gtid` (`startup.specific-offset.gtid-set`) or `BinlogFile`+`BinlogPos` (`.file`, `.pos`) |
//! | source `snapshot.split.size` | `ChunkSize` |
//! | sink `url`, `user`, `password` | `DestConnectionConfig` |
//! | sink `database`, `table` (one source table; `${database_name}`/`${table_name}` keep the name) | `TableSchemaRename`, `TableRename` |
//!
//! Source and sink options with no dtle meaning (`server-id`, `batch_size`, `generate_sink_sql`,
//! ...) are accepted and listed as warnings of the parsed job.

mod options;
#[cfg(test)]
mod tests;

use crate::{from_json_value, Diagnostic, JobError, ParsedJob};
use options::{jdbc_server, list, lookup, required, single_plugin, text, unsupported};
use serde_json::{json, Map, Value};

/// How the config is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// JSON, SeaTunnel's default for `/submit-job`.
    Json,
    /// HOCON (`.conf` files).
    Hocon,
}

impl ConfigFormat {
    /// The `format` query parameter of `/submit-job` (`json`, `hocon`; `sql` is refused).
    ///
    /// # Errors
    /// [`SeaTunnelError::Unsupported`] for any other format.
    pub fn from_param(format: Option<&str>) -> Result<Self, SeaTunnelError> {
        match format.map(|f| f.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("json") => Ok(ConfigFormat::Json),
            Some("hocon") | Some("conf") | Some("config") => Ok(ConfigFormat::Hocon),
            Some(other) => Err(SeaTunnelError::Unsupported(format!(
                "config format `{other}` is not supported: send the job as json or hocon"
            ))),
        }
    }
}

/// The request's own settings (`/submit-job?jobId=&jobName=`, or `params` in `/submit-jobs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitParams {
    /// The job's ID.
    pub job_id: Option<String>,
    /// The job's name (wins over `env.job.name`).
    pub job_name: Option<String>,
}

/// Why a SeaTunnel config cannot become a dtle job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeaTunnelError {
    /// The text is not JSON or HOCON.
    #[error("the SeaTunnel config is not valid {format}: {message}")]
    Syntax {
        /// `JSON` or `HOCON`.
        format: &'static str,
        /// The parser's words.
        message: String,
    },
    /// A connector, option or layout dtle-rs cannot run.
    #[error("{0}")]
    Unsupported(String),
    /// Translated, but the job model refused the job.
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Reads a SeaTunnel config from text.
///
/// # Errors
/// [`SeaTunnelError`]: syntax, an unsupported connector or option (named), or the job model's
/// problems.
pub fn parse_seatunnel(
    text: &str,
    format: ConfigFormat,
    params: &SubmitParams,
) -> Result<ParsedJob, SeaTunnelError> {
    let config: Value = match format {
        ConfigFormat::Json => serde_json::from_str(text).map_err(|e| SeaTunnelError::Syntax {
            format: "JSON",
            message: e.to_string(),
        })?,
        ConfigFormat::Hocon => hocon::from_str(text).map_err(|e| SeaTunnelError::Syntax {
            format: "HOCON",
            message: e.to_string(),
        })?,
    };
    from_seatunnel_value(&config, params)
}

/// Reads a SeaTunnel config already parsed as JSON.
///
/// # Errors
/// As [`parse_seatunnel`].
pub fn from_seatunnel_value(
    config: &Value,
    params: &SubmitParams,
) -> Result<ParsedJob, SeaTunnelError> {
    let (job, unused) = dtle_job(config, params)?;
    let mut parsed = from_json_value(&job)?;
    parsed.warnings.extend(unused);
    Ok(parsed)
}

/// Whether a JSON document looks like a SeaTunnel config rather than a dtle or Nomad job.
pub fn looks_like_seatunnel(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.contains_key("source") || o.contains_key("sink"))
}

const SOURCE_KEYS: [&str; 9] = [
    "plugin_name",
    "base-url",
    "username",
    "password",
    "table-names",
    "database-names",
    "startup.mode",
    "startup.specific-offset",
    "snapshot.split.size",
];

const SINK_KEYS: [&str; 7] = [
    "plugin_name",
    "url",
    "user",
    "password",
    "database",
    "table",
    "driver",
];

/// The options of a plugin that dtle does not use, as warnings.
fn unused_options(
    plugin: &Map<String, Value>,
    used: &[&str],
    section: &str,
    name: &str,
) -> Vec<Diagnostic> {
    plugin
        .keys()
        .filter(|key| {
            !used
                .iter()
                .any(|u| *key == u || key.strip_prefix(u).is_some_and(|r| r.starts_with('.')))
        })
        .map(|key| Diagnostic {
            path: format!("{section}.{name}.{key}"),
            message: "a SeaTunnel option dtle does not use; kept out of the job".into(),
        })
        .collect()
}

/// The dtle job JSON for a SeaTunnel config, and the options it leaves unused.
fn dtle_job(
    config: &Value,
    params: &SubmitParams,
) -> Result<(Value, Vec<Diagnostic>), SeaTunnelError> {
    let config = config
        .as_object()
        .ok_or_else(|| unsupported("a SeaTunnel config is an object with env, source and sink"))?;
    let empty = Map::new();
    let env = config
        .get("env")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if config.get("transform").is_some_and(|t| {
        t.as_array().map_or(!t.is_null(), |a| !a.is_empty())
            && t.as_object().is_none_or(|o| !o.is_empty())
    }) {
        return Err(unsupported(
            "transforms are not supported: a dtle job copies rows unchanged (rename schemas and tables with the sink's `database` and `table`)",
        ));
    }
    let mode = text(env, "job.mode", "env")?.unwrap_or_else(|| "BATCH".into());
    let streaming = match mode.to_ascii_uppercase().as_str() {
        "STREAMING" => true,
        "BATCH" => false,
        _ => {
            return Err(unsupported(format!(
                "env `job.mode` is `{mode}`; use STREAMING (snapshot, then the binlog) or BATCH (snapshot only)"
            )))
        }
    };
    let name = params
        .job_name
        .clone()
        .or(text(env, "job.name", "env")?)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "SeaTunnel_Job".into());

    let (source_name, source) = single_plugin(config, "source")?;
    if !source_name.eq_ignore_ascii_case("MySQL-CDC") {
        return Err(unsupported(format!(
            "source connector `{source_name}` is not supported: dtle-rs replicates from MySQL-CDC sources (MySQL or MariaDB binlog)"
        )));
    }
    let (sink_name, sink) = single_plugin(config, "sink")?;
    if !sink_name.eq_ignore_ascii_case("Jdbc") {
        return Err(unsupported(format!(
            "sink connector `{sink_name}` is not supported: dtle-rs writes into MySQL or MariaDB through a Jdbc sink"
        )));
    }

    let what = "source MySQL-CDC";
    let (src_host, src_port, _) =
        jdbc_server(&required(source, "base-url", what)?, "source `base-url`")?;
    let src_server = json!({
        "Host": src_host,
        "Port": src_port,
        "User": required(source, "username", what)?,
        "Password": text(source, "password", what)?.unwrap_or_default(),
    });
    let tables = list(source, "table-names", what)?;
    let databases = list(source, "database-names", what)?;
    if tables.is_empty() && databases.is_empty() {
        return Err(unsupported(
            "source MySQL-CDC needs `table-names` (database.table) or `database-names`",
        ));
    }

    let what = "sink Jdbc";
    if lookup(sink, "query").is_some() {
        return Err(unsupported(
            "sink Jdbc `query` is not supported: dtle writes each row change itself (leave `query` out; `database` and `table` rename)",
        ));
    }
    if let Some(driver) = text(sink, "driver", what)? {
        let lower = driver.to_ascii_lowercase();
        if !lower.contains("mysql") && !lower.contains("mariadb") {
            return Err(unsupported(format!(
                "sink Jdbc `driver` `{driver}` is not a MySQL or MariaDB driver"
            )));
        }
    }
    let (dst_host, dst_port, url_database) =
        jdbc_server(&required(sink, "url", what)?, "sink `url`")?;
    let dst_server = json!({
        "Host": dst_host,
        "Port": dst_port,
        "User": required(sink, "user", what)?,
        "Password": text(sink, "password", what)?.unwrap_or_default(),
    });
    let keep_name = |v: &String| v.is_empty() || v.starts_with("${");
    // Without `database`, SeaTunnel writes into the URL's database.
    let sink_database = match text(sink, "database", what)? {
        Some(database) if keep_name(&database) => None,
        Some(database) => Some(database),
        None => url_database,
    };
    let sink_table = text(sink, "table", what)?.filter(|t| !keep_name(t));

    let do_db = replicate_do_db(&tables, &databases, sink_database, sink_table)?;
    let mut src_config = json!({
        "SrcConnectionConfig": src_server,
        "DestConnectionConfig": dst_server,
        "ReplicateDoDb": do_db,
    });
    let src = src_config.as_object_mut().expect("an object");
    if !streaming {
        src.insert("SkipIncrementalCopy".into(), Value::Bool(true));
    }
    start_position(source, src)?;
    if let Some(size) = text(source, "snapshot.split.size", "source MySQL-CDC")? {
        let size: u64 = size.parse().map_err(|_| {
            unsupported(format!(
                "source MySQL-CDC `snapshot.split.size` `{size}` is not a row count"
            ))
        })?;
        src.insert("ChunkSize".into(), size.into());
    }

    let mut job = json!({
        "Name": name,
        "Tasks": [
            {"Type": "Src", "Config": src_config},
            {"Type": "Dest", "Config": {"DestType": "mysql"}},
        ],
    });
    if let Some(id) = params.job_id.as_ref().filter(|id| !id.is_empty()) {
        job["ID"] = Value::String(id.clone());
    }
    let mut unused = unused_options(source, &SOURCE_KEYS, "source", &source_name);
    unused.extend(unused_options(sink, &SINK_KEYS, "sink", &sink_name));
    Ok((job, unused))
}

/// `ReplicateDoDb` from the source's tables and databases and the sink's renames.
fn replicate_do_db(
    tables: &[String],
    databases: &[String],
    sink_database: Option<String>,
    sink_table: Option<String>,
) -> Result<Value, SeaTunnelError> {
    let mut by_db: Vec<(String, Vec<String>)> = databases
        .iter()
        .map(|db| (db.clone(), Vec::new()))
        .collect();
    for full in tables {
        let parts: Vec<&str> = full.split('.').collect();
        let (db, table) = match parts.as_slice() {
            [db, table] => (*db, *table),
            [db, _schema, table] => (*db, *table),
            _ => {
                return Err(unsupported(format!(
                    "source MySQL-CDC `table-names` entry `{full}` is not database.table"
                )))
            }
        };
        match by_db.iter_mut().find(|(d, _)| d == db) {
            Some((_, list)) => list.push(table.to_owned()),
            None => by_db.push((db.to_owned(), vec![table.to_owned()])),
        }
    }
    if sink_database.is_some() && by_db.len() > 1 {
        return Err(unsupported(
            "sink Jdbc `database` renames one source database; this source reads several (leave `database` out or use ${database_name})",
        ));
    }
    let single_table = by_db.len() == 1 && by_db[0].1.len() == 1;
    if sink_table.is_some() && !single_table {
        return Err(unsupported(
            "sink Jdbc `table` renames one source table; this source reads several (leave `table` out or use ${table_name})",
        ));
    }
    let rules: Vec<Value> = by_db
        .into_iter()
        .map(|(db, tables)| {
            let mut rule = json!({"TableSchema": db});
            if let Some(rename) = sink_database.as_ref().filter(|r| **r != db) {
                rule["TableSchemaRename"] = Value::String(rename.clone());
            }
            if !tables.is_empty() {
                let tables: Vec<Value> = tables
                    .into_iter()
                    .map(|t| {
                        let mut table = json!({"TableName": t});
                        if let Some(rename) = sink_table.as_ref().filter(|r| **r != t) {
                            table["TableRename"] = Value::String(rename.clone());
                        }
                        table
                    })
                    .collect();
                rule["Tables"] = Value::Array(tables);
            }
            rule
        })
        .collect();
    Ok(Value::Array(rules))
}

/// The dtle start position for `startup.mode`.
fn start_position(
    source: &Map<String, Value>,
    src: &mut Map<String, Value>,
) -> Result<(), SeaTunnelError> {
    let what = "source MySQL-CDC";
    let mode = text(source, "startup.mode", what)?.unwrap_or_else(|| "initial".into());
    match mode.to_ascii_lowercase().as_str() {
        "initial" => {}
        "latest" => {
            src.insert("AutoGtid".into(), Value::Bool(true));
        }
        "specific" => {
            let gtid = text(source, "startup.specific-offset.gtid-set", what)?;
            let file = text(source, "startup.specific-offset.file", what)?;
            let pos = text(source, "startup.specific-offset.pos", what)?;
            match (gtid, file) {
                (Some(gtid), None) => {
                    src.insert("Gtid".into(), Value::String(gtid));
                }
                (None, Some(file)) => {
                    src.insert("BinlogFile".into(), Value::String(file));
                    if let Some(pos) = pos {
                        let pos: u64 = pos.parse().map_err(|_| {
                            unsupported(format!(
                                "source MySQL-CDC `startup.specific-offset.pos` `{pos}` is not a position"
                            ))
                        })?;
                        src.insert("BinlogPos".into(), pos.into());
                    }
                }
                _ => {
                    return Err(unsupported(
                        "source MySQL-CDC `startup.mode = specific` needs `startup.specific-offset.gtid-set`, or `startup.specific-offset.file` (and `.pos`)",
                    ))
                }
            }
        }
        other => {
            return Err(unsupported(format!(
                "source MySQL-CDC `startup.mode = {other}` has no dtle equivalent: use initial (snapshot, then the binlog), latest or specific"
            )))
        }
    }
    Ok(())
}
