//! The job queries: `/running-jobs`, `/job-info/{jobId}`, the deprecated `/running-job/{jobId}`,
//! `/finished-jobs[/{state}]` and `/pending-jobs`.

use super::error::{ok_json, respond, StError, StErrorBody, StOrchestratorFailures};
use super::render::{finished_job, job_info as info_object, with_short_metrics};
use super::render::{StFinishedJob, StJobInfo};
use super::view::{self, seatunnel_time, JobView, StStatus};
use super::{Api, StJobId};
use crate::orchestrator::now_ns;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;
use warp::reply::Response;
use warp::Reply;

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// `GET /running-jobs`: every job that has not ended (running or pending), newest first, in the
/// deprecated shape (`metrics` with `sourceReceivedCount` and `sinkWriteCount` too).
#[utoipa::path(
    get,
    path = "/running-jobs",
    operation_id = "st_running_jobs",
    tag = "SeaTunnel",
    responses(
        (status = 200, description = "The jobs that have not ended, newest first", body = Vec<StJobInfo>),
        StOrchestratorFailures,
    )
)]
pub async fn running_jobs(api: Api) -> Response {
    respond(
        async {
            let mut views = view::load_all(&api.orchestrator).await?;
            views.retain(|v| !v.status.is_ended());
            views.sort_by_key(|v| std::cmp::Reverse(v.created_ms));
            let now = now_ms();
            let list: Vec<StJobInfo> = views
                .iter()
                .map(|v| with_short_metrics(info_object(v, api.started_with_savepoint(v), now)))
                .collect();
            Ok(ok_json(&list))
        }
        .await,
    )
}

/// What SeaTunnel answers for a job it does not know: `{"jobId": ""}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StUnknownJob {
    /// Empty.
    #[schema(max_length = 0)]
    pub job_id: String,
}

/// `/job-info/{jobId}`'s answer: the job's info, or `{"jobId": ""}` for a job this agent does
/// not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StJobInfoAnswer {
    /// The job's info.
    Known(Box<StJobInfo>),
    /// No such job.
    Unknown(StUnknownJob),
}

/// A job's info, in the deprecated shape when `short`.
pub async fn job_info(api: Api, id: String, short: bool) -> Response {
    respond(
        async {
            let Some(view) = view::load_one(&api.orchestrator, &id).await? else {
                return Ok(ok_json(&StJobInfoAnswer::Unknown(StUnknownJob {
                    job_id: String::new(),
                })));
            };
            let info = info_object(&view, api.started_with_savepoint(&view), now_ms());
            let info = if short {
                with_short_metrics(info)
            } else {
                info
            };
            Ok(ok_json(&StJobInfoAnswer::Known(Box::new(info))))
        }
        .await,
    )
}

/// `GET /job-info/{jobId}`. A job this agent does not know (nor its history) answers
/// `{"jobId": ""}`, as SeaTunnel does.
#[utoipa::path(
    get,
    path = "/job-info/{jobId}",
    operation_id = "st_job_info",
    tag = "SeaTunnel",
    params(("jobId" = String, Path, description = "The job ID (a number for SeaTunnel's jobs, else the dtle job ID)")),
    responses(
        (status = 200, description = "The job, or `{\"jobId\": \"\"}` when this agent does not know it", body = StJobInfoAnswer),
        StOrchestratorFailures,
    )
)]
pub async fn get_job_info(id: String, api: Api) -> Response {
    job_info(api, id, false).await
}

/// `GET /running-job/{jobId}` (deprecated in SeaTunnel): as `/job-info/{jobId}`, with
/// `metrics.sourceReceivedCount` and `metrics.sinkWriteCount` too.
#[utoipa::path(
    get,
    path = "/running-job/{jobId}",
    operation_id = "st_running_job",
    tag = "SeaTunnel",
    params(("jobId" = String, Path, description = "The job ID")),
    responses(
        (status = 200, description = "The job in the deprecated shape, or `{\"jobId\": \"\"}` when this agent does not know it", body = StJobInfoAnswer),
        StOrchestratorFailures,
    )
)]
pub async fn get_running_job(id: String, api: Api) -> Response {
    job_info(api, id, true).await
}

/// Ended jobs in `state` (empty: every ended job), the latest ended first.
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
            let list: Vec<StFinishedJob> = views.iter().map(|v| finished_job(v, now)).collect();
            Ok(ok_json(&list))
        }
        .await,
    )
}

/// `GET /finished-jobs`: every ended job, the latest ended first.
#[utoipa::path(
    get,
    path = "/finished-jobs",
    operation_id = "st_finished_jobs",
    tag = "SeaTunnel",
    responses(
        (status = 200, description = "Every ended job, the latest ended first", body = Vec<StFinishedJob>),
        StOrchestratorFailures,
    )
)]
pub async fn all_finished_jobs(api: Api) -> Response {
    finished_jobs(api, String::new()).await
}

/// `GET /finished-jobs/{state}`: ended jobs in `state` (`FINISHED`, `CANCELED`, `FAILED`,
/// `SAVEPOINT_DONE`, `UNKNOWABLE`; any case), the latest ended first.
#[utoipa::path(
    get,
    path = "/finished-jobs/{state}",
    operation_id = "st_finished_jobs_in_state",
    tag = "SeaTunnel",
    params(("state" = String, Path, description = "`FINISHED`, `CANCELED`, `FAILED`, `SAVEPOINT_DONE` or `UNKNOWABLE`, in any case (another word lists no job)")),
    responses(
        (status = 200, description = "The ended jobs in that state, the latest ended first", body = Vec<StFinishedJob>),
        StOrchestratorFailures,
    )
)]
pub async fn finished_jobs_in_state(state: String, api: Api) -> Response {
    finished_jobs(api, state).await
}

/// A time as `/pending-jobs` shows it: ms since the epoch, or with `pretty`
/// `yyyy-MM-dd HH:mm:ss` (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StTimestamp {
    /// ms since the epoch.
    Ms(u64),
    /// `yyyy-MM-dd HH:mm:ss` (UTC), with `pretty=true`.
    Pretty(String),
}

fn timestamp(ms: u64, pretty: bool) -> StTimestamp {
    if pretty {
        StTimestamp::Pretty(seatunnel_time(ms))
    } else {
        StTimestamp::Ms(ms)
    }
}

/// Why a task group (or job) waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StPendingReason {
    /// The task waits to start.
    TaskStarting,
    /// The task failed and waits to be restarted.
    TaskRestarting,
}

/// Where a task group is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StTaskGroupLocation {
    /// The job ID.
    pub job_id: StJobId,
    /// Always 1.
    pub pipeline_id: u32,
    /// 1 (the Src) or 2 (the Dest).
    pub task_group_id: u64,
}

/// The diagnostics of one task of a pending job (a SeaTunnel task group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StTaskGroup {
    /// Where it is.
    pub task_group_location: StTaskGroupLocation,
    /// `Source[0]` (the Src) or `Sink[0]` (the Dest).
    pub task_full_name: String,
    /// Whether the task runs.
    pub allocated: bool,
    /// Why it waits (null when it runs).
    #[schema(required = true)]
    pub failure_reason: Option<StPendingReason>,
    /// The task's last error or state (null when it runs).
    #[schema(required = true)]
    pub failure_message: Option<String>,
}

/// The diagnostics of one task of a pending job (a SeaTunnel task group).
fn task_group(view: &JobView, task: &view::TaskView, group: u64) -> StTaskGroup {
    let allocated = task.alloc.client_status == "running";
    let (reason, message) = if allocated {
        (None, None)
    } else {
        let (message, _, restoring) = view::pending_reason(&task.alloc);
        let reason = if restoring {
            StPendingReason::TaskRestarting
        } else {
            StPendingReason::TaskStarting
        };
        (Some(reason), Some(message))
    };
    StTaskGroup {
        task_group_location: StTaskGroupLocation {
            job_id: StJobId::of(&view.id),
            pipeline_id: 1,
            task_group_id: group,
        },
        task_full_name: if group == 1 { "Source[0]" } else { "Sink[0]" }.into(),
        allocated,
        failure_reason: reason,
        failure_message: message,
    }
}

/// Whether a pending job is new or being restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StPendingSource {
    /// Submitted, waiting to start.
    Submit,
    /// A task is being restarted after a failure.
    Restore,
}

/// The state of a pending job: `PENDING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StPendingStatus {
    /// Waiting.
    Pending,
}

/// The one pipeline of a pending job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StPendingPipeline {
    /// Always 1.
    pub pipeline_id: u32,
    /// `Job <name>, Pipeline: [(1/1)]`.
    pub pipeline_name: String,
    /// Always 2: the Src and the Dest.
    pub total_task_groups: u64,
    /// The tasks that run.
    pub allocated_task_groups: u64,
    /// The tasks that wait.
    pub lacking_task_groups: u64,
    /// Each task.
    pub task_group_diagnostics: Vec<StTaskGroup>,
}

/// One entry of `pendingJobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StPendingJob {
    /// The job ID.
    pub job_id: StJobId,
    /// The job's name.
    pub job_name: String,
    /// `SUBMIT`, or `RESTORE` when a task is being restarted.
    pub pending_source_state: StPendingSource,
    /// `PENDING`.
    pub job_status: StPendingStatus,
    /// Since when the job waits (null when unknown).
    #[schema(required = true)]
    pub enqueue_timestamp: Option<StTimestamp>,
    /// Now.
    pub check_time: StTimestamp,
    /// ms the job has waited.
    pub wait_duration_ms: u64,
    /// How often its tasks were restarted.
    pub check_count: u64,
    /// Always 2.
    pub total_task_groups: u64,
    /// The tasks that run.
    pub allocated_task_groups: u64,
    /// The tasks that wait.
    pub lacking_task_groups: u64,
    /// Why it waits.
    pub failure_reason: StPendingReason,
    /// The waiting task's last error or state (null when unknown).
    #[schema(required = true)]
    pub failure_message: Option<String>,
    /// Always empty: dtle has no tag filters.
    pub tag_filter: BTreeMap<String, String>,
    /// Always empty: no job blocks another.
    pub blocking_job_ids: Vec<StJobId>,
    /// The job's one pipeline.
    pub pipelines: Vec<StPendingPipeline>,
    /// The tasks that wait.
    pub lacking_task_group_diagnostics: Vec<StTaskGroup>,
}

/// One entry of `pendingJobs`, and how many of its tasks wait.
fn pending_job(view: &JobView, now: u64, pretty: bool) -> (StPendingJob, u64) {
    let groups: Vec<StTaskGroup> = [(view.src.as_ref(), 1), (view.dest.as_ref(), 2)]
        .into_iter()
        .filter_map(|(task, group)| task.map(|t| task_group(view, t, group)))
        .collect();
    let lacking: Vec<StTaskGroup> = groups.iter().filter(|g| !g.allocated).cloned().collect();
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
    let reason = if view.restoring {
        StPendingReason::TaskRestarting
    } else {
        StPendingReason::TaskStarting
    };
    let entry = StPendingJob {
        job_id: StJobId::of(&view.id),
        job_name: view.name.clone(),
        pending_source_state: if view.restoring {
            StPendingSource::Restore
        } else {
            StPendingSource::Submit
        },
        job_status: StPendingStatus::Pending,
        enqueue_timestamp: since.map(|s| timestamp(s, pretty)),
        check_time: timestamp(now, pretty),
        wait_duration_ms: since.map_or(0, |s| now.saturating_sub(s)),
        check_count: restarts,
        total_task_groups: total,
        allocated_task_groups: total - lacking_count,
        lacking_task_groups: lacking_count,
        failure_reason: reason,
        failure_message: view.pending_reason.clone(),
        tag_filter: BTreeMap::new(),
        blocking_job_ids: Vec::new(),
        pipelines: vec![StPendingPipeline {
            pipeline_id: 1,
            pipeline_name: format!("Job {}, Pipeline: [(1/1)]", view.name),
            total_task_groups: total,
            allocated_task_groups: total - lacking_count,
            lacking_task_groups: lacking_count,
            task_group_diagnostics: groups,
        }],
        lacking_task_group_diagnostics: lacking,
    };
    (entry, lacking_count)
}

/// How the queue is served: `WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StScheduleStrategy {
    /// Jobs wait for their tasks.
    Wait,
}

/// The queue of pending jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StQueueSummary {
    /// How many jobs wait.
    pub size: usize,
    /// `WAIT`.
    pub schedule_strategy: StScheduleStrategy,
    /// Since when the longest-waiting job waits (null when none).
    #[schema(required = true)]
    pub oldest_enqueue_timestamp: Option<StTimestamp>,
    /// Since when the latest job waits (null when none).
    #[schema(required = true)]
    pub newest_enqueue_timestamp: Option<StTimestamp>,
    /// Tasks that wait, over every pending job.
    pub lacking_task_groups: u64,
}

/// The tags of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StWorkerTags {
    /// The node's datacenter.
    pub datacenter: String,
    /// The node's name.
    pub node: String,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StWorker {
    /// Its HTTP address.
    pub address: String,
    /// Its tags.
    pub tags: StWorkerTags,
    /// 0: dtle has no slots.
    pub total_slots: u64,
    /// 0.
    pub free_slots: u64,
    /// Always true (as SeaTunnel with dynamic slots).
    pub dynamic_slot: bool,
    /// Always null: not measured per node.
    #[schema(required = true)]
    pub cpu_usage: Option<f64>,
    /// Always null: not measured per node.
    #[schema(required = true)]
    pub mem_usage: Option<f64>,
    /// The running jobs with a task on this node.
    pub running_job_ids: Vec<StJobId>,
}

/// The cluster: no slots, its nodes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StClusterSnapshot {
    /// 0: dtle has no slots.
    pub total_slots: u64,
    /// 0.
    pub free_slots: u64,
    /// 0.
    pub assigned_slots: u64,
    /// How many nodes.
    pub worker_count: usize,
    /// The nodes.
    pub workers: Vec<StWorker>,
}

/// `/pending-jobs`' answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StPendingJobs {
    /// The queue.
    pub queue_summary: StQueueSummary,
    /// The cluster.
    pub cluster_snapshot: StClusterSnapshot,
    /// The pending jobs, the longest-waiting first.
    pub pending_jobs: Vec<StPendingJob>,
}

/// `/pending-jobs`' query.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StPendingQuery {
    /// Only this job (then `limit` does not apply).
    #[param(rename = "jobId")]
    pub job_id: Option<String>,
    /// At most this many jobs.
    pub limit: Option<usize>,
    /// `true` (any case): times as `yyyy-MM-dd HH:mm:ss`, and the JSON indented.
    pub pretty: Option<bool>,
}

impl StPendingQuery {
    /// From the query string's values (empty ones count as absent; others are ignored).
    ///
    /// # Errors
    /// A 400 when `limit` is not a number.
    pub fn from_map(query: &HashMap<String, String>) -> Result<Self, StError> {
        let limit = match query.get("limit").filter(|l| !l.is_empty()) {
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| StError::bad_request(format!("limit `{l}` is not a number")))?,
            ),
            None => None,
        };
        Ok(Self {
            job_id: query.get("jobId").filter(|j| !j.is_empty()).cloned(),
            limit,
            pretty: query.get("pretty").map(|p| p.eq_ignore_ascii_case("true")),
        })
    }
}

/// `GET /pending-jobs[?jobId=][&limit=][&pretty=true]`: the jobs waiting for a task to start or
/// to be restarted after a failure, each with the reason (the task's last error). dtle has no
/// slots: the cluster's slot counts are 0, as SeaTunnel shows with dynamic slots.
#[utoipa::path(
    get,
    path = "/pending-jobs",
    operation_id = "st_pending_jobs",
    tag = "SeaTunnel",
    params(StPendingQuery),
    responses(
        (status = 200, description = "The pending jobs and the cluster", body = StPendingJobs),
        (status = 400, description = "`limit` is not a number", body = StErrorBody),
        StOrchestratorFailures,
    )
)]
pub async fn pending_jobs(api: Api, query: HashMap<String, String>) -> Response {
    respond(
        async {
            let query = StPendingQuery::from_map(&query)?;
            let pretty = query.pretty.unwrap_or(false);
            let (job, limit) = (query.job_id.as_ref(), query.limit);
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
            let entries: Vec<(StPendingJob, u64)> = pending
                .iter()
                .map(|v| pending_job(v, now, pretty))
                .collect();
            let since: Vec<u64> = pending.iter().filter_map(|v| v.pending_since_ms).collect();
            let nodes = api.orchestrator.nodes().await.unwrap_or_default();
            let workers: Vec<StWorker> = nodes
                .iter()
                .map(|n| {
                    let running: Vec<StJobId> = views
                        .iter()
                        .filter(|v| v.status == StStatus::Running)
                        .filter(|v| {
                            [v.src.as_ref(), v.dest.as_ref()]
                                .into_iter()
                                .flatten()
                                .any(|t| t.alloc.node_id == n.id)
                        })
                        .map(|v| StJobId::of(&v.id))
                        .collect();
                    StWorker {
                        address: n.http_addr.clone(),
                        tags: StWorkerTags {
                            datacenter: n.datacenter.clone(),
                            node: n.name.clone(),
                        },
                        total_slots: 0,
                        free_slots: 0,
                        dynamic_slot: true,
                        cpu_usage: None,
                        mem_usage: None,
                        running_job_ids: running,
                    }
                })
                .collect();
            let body = StPendingJobs {
                queue_summary: StQueueSummary {
                    size: entries.len(),
                    schedule_strategy: StScheduleStrategy::Wait,
                    oldest_enqueue_timestamp: since.iter().min().map(|s| timestamp(*s, pretty)),
                    newest_enqueue_timestamp: since.iter().max().map(|s| timestamp(*s, pretty)),
                    lacking_task_groups: entries.iter().map(|e| e.1).sum::<u64>(),
                },
                cluster_snapshot: StClusterSnapshot {
                    total_slots: 0,
                    free_slots: 0,
                    assigned_slots: 0,
                    worker_count: nodes.len(),
                    workers,
                },
                pending_jobs: entries.into_iter().map(|e| e.0).collect(),
            };
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
    use serde_json::{json, Value};
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
