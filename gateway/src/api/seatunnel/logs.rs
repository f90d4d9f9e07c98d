//! `GET /logs`, `/logs/:jobId`, `/logs/<file>`, `/log` and `/log/<file>`: the per-job log files
//! the agent writes ([`crate::joblog`]). Lists are HTML by default and
//! `[{node, logLink, logName}]` with `?format=json`; a file is its text. This agent is the only
//! node whose files it can list, so `/logs` (every node) and `/log` (this node) list the same.
//! In front of Nomad the tasks, and their logs, are on Nomad's clients: the lists are empty.

use super::error::{respond, StError};
use super::Api;
use crate::joblog::{self, LogFile};
use serde_json::{json, Value};
use std::collections::HashMap;
use warp::reply::Response;
use warp::Reply;

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
            let format = query.get("format").map(|f| f.to_ascii_lowercase());
            match format.as_deref() {
                None | Some("") | Some("html") => {
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
                Some("json") => {
                    let list: Vec<Value> = files
                        .iter()
                        .map(|f| {
                            json!({
                                "node": node,
                                "logLink": format!("http://{node}{}", path(&f.name)),
                                "logName": f.name,
                            })
                        })
                        .collect();
                    Ok(warp::reply::json(&list).into_response())
                }
                Some(other) => Err(StError::bad_request(format!(
                    "format `{other}` is not supported: use html or json"
                ))),
            }
        }
        .await,
    )
}

/// `GET /logs/:item`: a file's text when `item` is a log file's name, else the list of job
/// `item`'s files.
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

/// `GET /log/<file>` (and `/logs/<file>`): the file's text.
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
