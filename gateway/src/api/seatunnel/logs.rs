//! `GET /logs`, `/logs/{jobId}`, `/logs/{file}`, `/log` and `/log/{file}`: the per-job log files
//! the agent writes ([`crate::joblog`]). Lists are HTML by default and
//! `[{node, logLink, logName}]` with `?format=json`; a file is its text. This agent is the only
//! node whose files it can list, so `/logs` (every node) and `/log` (this node) list the same.
//! In front of Nomad the tasks, and their logs, are on Nomad's clients: the lists are empty.

use super::error::{respond, StError, StErrorBody};
use super::Api;
use crate::joblog::{self, LogFile};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use warp::reply::Response;
use warp::Reply;

/// One log file, as `?format=json` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StLogLink {
    /// The node that has the file (the address this agent was reached at).
    pub node: String,
    /// Where to read it.
    pub log_link: String,
    /// The file's name, `job-<ID>.log` (or `.log.1`, the previous one).
    pub log_name: String,
}

/// How a list of log files is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StLogFormat {
    /// An HTML page (the default).
    Html,
    /// `[{node, logLink, logName}]`.
    Json,
}

/// The query of a list of log files.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StLogsQuery {
    /// `html` (default) or `json`, in any case.
    #[param(inline)]
    pub format: Option<StLogFormat>,
}

impl StLogsQuery {
    /// From the query string's values (others are ignored).
    ///
    /// # Errors
    /// A 400 for a format other than `html` or `json`.
    pub fn from_map(query: &HashMap<String, String>) -> Result<Self, StError> {
        let format = match query
            .get("format")
            .map(|f| f.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") => None,
            Some("html") => Some(StLogFormat::Html),
            Some("json") => Some(StLogFormat::Json),
            Some(other) => {
                return Err(StError::bad_request(format!(
                    "format `{other}` is not supported: use html or json"
                )))
            }
        };
        Ok(Self { format })
    }
}

/// Whether `item` names a job log file rather than a job.
fn is_file_name(item: &str) -> bool {
    item.starts_with("job-") && (item.ends_with(".log") || item.ends_with(".log.1"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The list as HTML.
fn html(title: &str, node: &str, files: &[LogFile], link: &dyn Fn(&str) -> String) -> String {
    let items: String = files
        .iter()
        .map(|f| {
            format!(
                "<li><a href=\"{}\">{}</a> ({} bytes)</li>\n",
                escape(&link(&f.name)),
                escape(&f.name),
                f.size
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h2>{title}</h2>\n<p>Node {}</p>\n<ul>\n{items}</ul>\n</body></html>\n",
        escape(node),
    )
}

/// A list of log files (those of `job` when given) in the format asked for; links go to
/// `<base>/<kind>/<file>` on `host`.
pub async fn list(
    api: Api,
    job: Option<String>,
    query: HashMap<String, String>,
    host: Option<String>,
    base: &'static str,
    kind: &'static str,
) -> Response {
    respond(
        async {
            let node = match host.filter(|h| !h.is_empty()) {
                Some(host) => host,
                None => api.orchestrator.leader().await.unwrap_or_default(),
            };
            let files = api
                .orchestrator
                .job_log_dir()
                .map(|dir| joblog::list(&dir, job.as_deref()))
                .unwrap_or_default();
            let path = |name: &str| format!("{base}/{kind}/{name}");
            let format = StLogsQuery::from_map(&query)?.format;
            match format.unwrap_or(StLogFormat::Html) {
                StLogFormat::Html => {
                    let title = match &job {
                        Some(job) => format!("Logs of job {job}"),
                        None => "Job logs".to_owned(),
                    };
                    let page = html(&escape(&title), &node, &files, &path);
                    Ok(
                        warp::reply::with_header(page, "content-type", "text/html; charset=utf-8")
                            .into_response(),
                    )
                }
                StLogFormat::Json => {
                    let list: Vec<StLogLink> = files
                        .iter()
                        .map(|f| StLogLink {
                            node: node.clone(),
                            log_link: format!("http://{node}{}", path(&f.name)),
                            log_name: f.name.clone(),
                        })
                        .collect();
                    Ok(warp::reply::json(&list).into_response())
                }
            }
        }
        .await,
    )
}

/// `GET /logs`: every job log file (of every node: this agent's).
#[utoipa::path(
    get,
    path = "/logs",
    operation_id = "st_logs",
    tag = "SeaTunnel",
    params(StLogsQuery),
    responses(
        (status = 200, description = "The job log files", content(
            (String = "text/html"),
            (Vec<StLogLink> = "application/json"),
        )),
        (status = 400, description = "A format other than html or json", body = StErrorBody),
    )
)]
pub async fn all_logs(
    api: Api,
    query: HashMap<String, String>,
    host: Option<String>,
    base: &'static str,
) -> Response {
    list(api, None, query, host, base, "logs").await
}

/// `GET /log`: this node's job log files (the same as `/logs`: this agent is the only node
/// whose files it can list).
#[utoipa::path(
    get,
    path = "/log",
    operation_id = "st_log",
    tag = "SeaTunnel",
    params(StLogsQuery),
    responses(
        (status = 200, description = "This node's job log files", content(
            (String = "text/html"),
            (Vec<StLogLink> = "application/json"),
        )),
        (status = 400, description = "A format other than html or json", body = StErrorBody),
    )
)]
pub async fn node_logs(
    api: Api,
    query: HashMap<String, String>,
    host: Option<String>,
    base: &'static str,
) -> Response {
    list(api, None, query, host, base, "log").await
}

/// `GET /logs/{item}`: a file's text when `item` is a log file's name (`job-<ID>.log`,
/// `job-<ID>.log.1`), else the list of job `item`'s files.
#[utoipa::path(
    get,
    path = "/logs/{item}",
    operation_id = "st_logs_of_job_or_file",
    tag = "SeaTunnel",
    params(
        ("item" = String, Path, description = "A job ID, or a log file's name (`job-<ID>.log`, `job-<ID>.log.1`)"),
        StLogsQuery,
    ),
    responses(
        (status = 200, description = "The job's log files (HTML or JSON), or the file's text", content(
            (String = "text/html"),
            (Vec<StLogLink> = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "A format other than html or json", body = StErrorBody),
        (status = 404, description = "No such log file, or this agent runs no task (in front of Nomad)", body = StErrorBody),
    )
)]
pub async fn job_or_file(
    api: Api,
    item: String,
    query: HashMap<String, String>,
    host: Option<String>,
    base: &'static str,
) -> Response {
    if is_file_name(&item) {
        file(item, api).await
    } else {
        list(api, Some(item), query, host, base, "logs").await
    }
}

/// `GET /log/{file}` (and `/logs/{file}`): the file's text.
#[utoipa::path(
    get,
    path = "/log/{file}",
    operation_id = "st_log_file",
    tag = "SeaTunnel",
    params(("file" = String, Path, description = "The file's name: `job-<ID>.log` or `job-<ID>.log.1`")),
    responses(
        (status = 200, description = "The file's text", body = String, content_type = "text/plain"),
        (status = 404, description = "No such log file, or this agent runs no task (in front of Nomad)", body = StErrorBody),
    )
)]
pub async fn file(name: String, api: Api) -> Response {
    respond((|| {
        let dir = api.orchestrator.job_log_dir().ok_or_else(|| {
            StError::not_found(
                "this agent runs no task (it serves a Nomad cluster): the job logs are on the Nomad clients",
            )
        })?;
        let text = joblog::read(&dir, &name)
            .ok_or_else(|| StError::not_found(format!("no log file {name}")))?;
        Ok(
            warp::reply::with_header(text, "content-type", "text/plain; charset=utf-8")
                .into_response(),
        )
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pages() {
        assert!(is_file_name("job-733.log"));
        assert!(is_file_name("job-733.log.1"));
        assert!(!is_file_name("733"));
        let files = [LogFile {
            name: "job-<7>.log".into(),
            size: 3,
        }];
        let page = html("Job logs", "h:1", &files, &|n| format!("/logs/{n}"));
        assert!(
            page.contains("<a href=\"/logs/job-&lt;7&gt;.log\">"),
            "{page}"
        );
        assert!(!page.contains("<7>"));
    }
}
