//! The job queries: `/running-jobs`, `/job-info/:jobId`, the deprecated `/running-job/:jobId`,
//! `/finished-jobs[/:state]` and `/pending-jobs`.

use super::error::{ok_json, respond, StError};
use super::render::{finished_job, job_info as info_object, with_short_metrics};
use super::view::{self, seatunnel_time, JobView, StStatus};
use super::{id_value, Api};
use crate::orchestrator::now_ns;
use serde_json::{json, Value};
use std::collections::HashMap;
use warp::reply::Response;
use warp::Reply;

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// `GET /running-jobs`: every job that has not ended (running or pending), newest first, in the
/// deprecated shape (`metrics` with `sourceReceivedCount` and `sinkWriteCount` too).
pub async fn running_jobs(api: Api) -> Response {
    respond(
        async {
            let mut views = view::load_all(&api.orchestrator).await?;
            views.retain(|v| !v.status.is_ended());
            views.sort_by_key(|v| std::cmp::Reverse(v.created_ms));
            let now = now_ms();
            let list: Vec<Value> = views
                .iter()
                .map(|v| {
                    let info = info_object(v, api.started_with_savepoint(v), now);
                    Value::Object(with_short_metrics(info))
                })
                .collect();
            Ok(ok_json(&Value::Array(list)))
        }
        .await,
    )
}

/// `GET /job-info/:jobId` (`short`: the deprecated `/running-job/:jobId`). A job this agent
/// does not know (nor its history) answers `{"jobId": ""}`, as SeaTunnel does.
pub async fn job_info(api: Api, id: String, short: bool) -> Response {
    respond(
        async {
            let Some(view) = view::load_one(&api.orchestrator, &id).await? else {
                return Ok(ok_json(&json!({"jobId": ""})));
            };
            let info = info_object(&view, api.started_with_savepoint(&view), now_ms());
            let info = if short {
                with_short_metrics(info)
            } else {
                info
            };
            Ok(ok_json(&Value::Object(info)))
        }
        .await,
    )
}

/// `GET /finished-jobs/:state`: ended jobs in `state` (`FINISHED`, `CANCELED`, `FAILED`,
/// `SAVEPOINT_DONE`, `UNKNOWABLE`; any case; empty: every ended job), the latest ended first.
pub async fn finished_jobs(api: Api, state: String) -> Response {
    respond(
        async {
            let wanted = state.trim().to_ascii_uppercase();
            let mut views = view::load_all(&api.orchestrator).await?;
            views.retain(|v| {
                v.status.is_ended() && (wanted.is_empty() || v.status.as_str() == wanted)
            });
            views.sort_by_key(|v| std::cmp::Reverse(v.finished_ms));
            let now = now_ms();
            let list: Vec<Value> = views.iter().map(|v| finished_job(v, now)).collect();
            Ok(ok_json(&Value::Array(list)))
        }
        .await,
    )
}

/// A time as `/pending-jobs` shows it: ms, or with `pretty` `yyyy-MM-dd HH:mm:ss`.
fn timestamp(ms: Option<u64>, pretty: bool) -> Value {
    match (ms, pretty) {
        (None, _) => Value::Null,
        (Some(ms), true) => json!(seatunnel_time(ms)),
        (Some(ms), false) => json!(ms),
    }
}

/// The diagnostics of one task of a pending job (a SeaTunnel task group).
fn task_group(view: &JobView, task: &view::TaskView, group: u64) -> Value {
    let allocated = task.alloc.client_status == "running";
    let (reason, message) = if allocated {
        (Value::Null, Value::Null)
    } else {
        let (message, _, restoring) = view::pending_reason(&task.alloc);
        let reason = if restoring {
            "TASK_RESTARTING"
        } else {
            "TASK_STARTING"
        };
        (json!(reason), json!(message))
    };
    json!({
        "taskGroupLocation": {"jobId": id_value(&view.id), "pipelineId": 1, "taskGroupId": group},
        "taskFullName": if group == 1 { "Source[0]" } else { "Sink[0]" },
        "allocated": allocated,
        "failureReason": reason,
        "failureMessage": message,
    })
}

/// One entry of `pendingJobs`.
fn pending_job(view: &JobView, now: u64, pretty: bool) -> (Value, u64) {
    let groups: Vec<Value> = [(view.src.as_ref(), 1), (view.dest.as_ref(), 2)]
        .into_iter()
        .filter_map(|(task, group)| task.map(|t| task_group(view, t, group)))
        .collect();
    let lacking: Vec<Value> = groups
        .iter()
        .filter(|g| g["allocated"] == false)
        .cloned()
        .collect();
    let total = 2_u64;
    let lacking_count = if groups.is_empty() {
        total
    } else {
        lacking.len() as u64
    };
    let restarts: u64 = [view.src.as_ref(), view.dest.as_ref()]
        .into_iter()
        .flatten()
        .map(|t| t.alloc.task_state.restarts)
        .sum();
    let since = view.pending_since_ms.or(view.created_ms);
    let entry = json!({
        "jobId": id_value(&view.id),
        "jobName": view.name,
        "pendingSourceState": if view.restoring { "RESTORE" } else { "SUBMIT" },
        "jobStatus": "PENDING",
        "enqueueTimestamp": timestamp(since, pretty),
        "checkTime": timestamp(Some(now), pretty),
        "waitDurationMs": since.map_or(0, |s| now.saturating_sub(s)),
        "checkCount": restarts,
        "totalTaskGroups": total,
        "allocatedTaskGroups": total - lacking_count,
        "lackingTaskGroups": lacking_count,
        "failureReason": if view.restoring { "TASK_RESTARTING" } else { "TASK_STARTING" },
        "failureMessage": view.pending_reason,
        "tagFilter": {},
        "blockingJobIds": [],
        "pipelines": [{
            "pipelineId": 1,
            "pipelineName": format!("Job {}, Pipeline: [(1/1)]", view.name),
            "totalTaskGroups": total,
            "allocatedTaskGroups": total - lacking_count,
            "lackingTaskGroups": lacking_count,
            "taskGroupDiagnostics": groups,
        }],
        "lackingTaskGroupDiagnostics": lacking,
    });
    (entry, lacking_count)
}

/// `GET /pending-jobs[?jobId=][&limit=][&pretty=true]`: the jobs waiting for a task to start or
/// to be restarted after a failure, each with the reason (the task's last error). dtle has no
/// slots: the cluster's slot counts are 0, as SeaTunnel shows with dynamic slots.
pub async fn pending_jobs(api: Api, query: HashMap<String, String>) -> Response {
    respond(
        async {
            let pretty = query
                .get("pretty")
                .is_some_and(|p| p.eq_ignore_ascii_case("true"));
            let limit =
                match query.get("limit").filter(|l| !l.is_empty()) {
                    Some(l) => Some(l.parse::<usize>().map_err(|_| {
                        StError::bad_request(format!("limit `{l}` is not a number"))
                    })?),
                    None => None,
                };
            let job = query.get("jobId").filter(|j| !j.is_empty());
            let views = view::load_all(&api.orchestrator).await?;
            let mut pending: Vec<&JobView> = views
                .iter()
                .filter(|v| v.status == StStatus::Pending)
                .filter(|v| job.is_none_or(|j| *j == v.id))
                .collect();
            pending.sort_by_key(|v| v.pending_since_ms);
            if let (None, Some(limit)) = (job, limit) {
                pending.truncate(limit);
            }
            let now = now_ms();
            let entries: Vec<(Value, u64)> = pending
                .iter()
                .map(|v| pending_job(v, now, pretty))
                .collect();
            let since: Vec<u64> = pending.iter().filter_map(|v| v.pending_since_ms).collect();
            let nodes = api.orchestrator.nodes().await.unwrap_or_default();
            let workers: Vec<Value> = nodes
                .iter()
                .map(|n| {
                    let running: Vec<Value> = views
                        .iter()
                        .filter(|v| v.status == StStatus::Running)
                        .filter(|v| {
                            [v.src.as_ref(), v.dest.as_ref()]
                                .into_iter()
                                .flatten()
                                .any(|t| t.alloc.node_id == n.id)
                        })
                        .map(|v| id_value(&v.id))
                        .collect();
                    json!({
                        "address": n.http_addr,
                        "tags": {"datacenter": n.datacenter, "node": n.name},
                        "totalSlots": 0,
                        "freeSlots": 0,
                        "dynamicSlot": true,
                        "cpuUsage": Value::Null,
                        "memUsage": Value::Null,
                        "runningJobIds": running,
                    })
                })
                .collect();
            let body = json!({
                "queueSummary": {
                    "size": entries.len(),
                    "scheduleStrategy": "WAIT",
                    "oldestEnqueueTimestamp": timestamp(since.iter().min().copied(), pretty),
                    "newestEnqueueTimestamp": timestamp(since.iter().max().copied(), pretty),
                    "lackingTaskGroups": entries.iter().map(|e| e.1).sum::<u64>(),
                },
                "clusterSnapshot": {
                    "totalSlots": 0,
                    "freeSlots": 0,
                    "assignedSlots": 0,
                    "workerCount": nodes.len(),
                    "workers": workers,
                },
                "pendingJobs": entries.into_iter().map(|e| e.0).collect::<Vec<_>>(),
            });
            if pretty {
                let text = serde_json::to_string_pretty(&body).map_err(|e| {
                    StError::new(warp::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                })?;
                Ok(
                    warp::reply::with_header(text, "content-type", "application/json")
                        .into_response(),
                )
            } else {
                Ok(ok_json(&body))
            }
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

    async fn body(response: Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let bytes = warp::hyper::body::to_bytes(response.into_body())
            .await
            .expect("a body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn an_unknown_job_and_empty_lists() {
        let api = ApiState::new(Arc::new(NoJobs));
        assert_eq!(
            body(job_info(api.clone(), "42".into(), false).await).await,
            (200, json!({"jobId": ""}))
        );
        assert_eq!(
            body(running_jobs(api.clone()).await).await,
            (200, json!([]))
        );
        assert_eq!(
            body(finished_jobs(api.clone(), "FAILED".into()).await).await,
            (200, json!([]))
        );
        let (status, pending) = body(pending_jobs(api.clone(), HashMap::new()).await).await;
        assert_eq!(status, 200);
        assert_eq!(pending["queueSummary"]["size"], 0);
        assert_eq!(pending["clusterSnapshot"]["workerCount"], 1);
        let bad = HashMap::from([("limit".to_owned(), "x".to_owned())]);
        let (status, error) = body(pending_jobs(api, bad).await).await;
        assert_eq!((status, error["status"].as_str()), (400, Some("fail")));
    }
}
