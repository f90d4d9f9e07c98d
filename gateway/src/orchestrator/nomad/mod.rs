//! The orchestrator in front of Nomad: dtle jobs registered with Nomad's HTTP API, run by the
//! `dtle` task-driver plugin on Nomad's clients.
//!
//! # The mapping
//! | dtle API (the trait)   | Nomad                                                              |
//! |------------------------|--------------------------------------------------------------------|
//! | register               | `POST /v1/jobs` of the job [`job::to_nomad`] writes               |
//! | jobs / job             | `GET /v1/jobs`, `GET /v1/job/:id`, read by [`job::from_nomad`]     |
//! | stop                   | `DELETE /v1/job/:id` (`?purge=true` to forget it)                  |
//! | pause / resume         | `POST /v1/job/:id`: the same job with `Stop` and `Meta.dtle_paused`|
//! | allocations            | `GET /v1/job/:id/allocations`, one per task ([`allocation`])       |
//! | allocation stats       | `GET /v1/allocation/:id`, `GET /v1/node/:node`, then the plugin's  |
//! |                        | `GET /v1/plugin/allocation/:id/stats` on that node                 |
//! | nodes / leader         | `GET /v1/nodes` (nodes with the dtle driver), `/v1/status/leader`  |
//! | wait_index             | the same reads as Nomad's blocking queries (`?index=&wait=`)       |
//!
//! Requests carry the ACL token, region and namespace of the agent's config ([`client`]); the
//! token needs `submit-job`, `read-job` and `list-jobs` in the namespace and `node:read`.
//! Nomad's errors become the gateway's: 404 the job's or allocation's "not found", 403 the token's
//! refusal, 400 a refused job, others `Nomad answered <status>`, and no answer `cannot reach
//! Nomad at <address>`.
//!
//! # Invariants
//! - Nomad holds the only record of a job; this orchestrator keeps no state, so several gateways
//!   may front one cluster, and one that restarts has lost nothing.
//! - Posting an unchanged job (read back through the job model and compared with
//!   [`job::same_definition`]) to a running job does not register it again: the answer says
//!   `Changed: false`, as the embedded orchestrator's does, and Nomad makes no evaluation.
//! - A Nomad job with the ID of a posted job that is not a dtle job is never overwritten.
//! - A job posted again is read against Nomad's copy ([`jobs::JobSpec::reconciled_with`]: the
//!   passwords shown as `*` are Nomad's, an executed `Gtid` is no new start); posted without an
//!   `ID` (its name is its ID), it never replaces a different job: that is a conflict (409).
//!   Unlike the embedded orchestrator, a second job under another ID with a taken `Name` is not
//!   looked for (it would take listing every job on each registration).
//!
//! # Pause and resume
//! Pausing re-registers the job as Nomad has it with `Stop = true` and `Meta.dtle_paused =
//! "true"` (check-and-set on its `JobModifyIndex`): Nomad stops the allocations, and the mark
//! lives in the job itself. Resuming registers it again without either, and Nomad places new
//! allocations, whose tasks continue from the position stored on the target. That is what the
//! embedded orchestrator does (pause stops the tasks), and it stays true whatever happens next:
//! no restart policy, node failure or client restart can bring a paused task back, and
//! [`job::from_nomad`] reports `paused` from the job alone. Signalling the tasks instead (the
//! plugin maps SIGSTOP/SIGCONT to pause/resume, as dtle 3.x signalled "pause") would leave the
//! mark where a task restarted by Nomad never reads it: it would come back running while the
//! job says paused. The price: a resumed task is a new allocation (on another node, unless the
//! task is pinned) that connects afresh; it loses nothing, the target's position being the
//! resume point. Stopping a paused job clears the mark (the job stays stopped).
//!
//! # Stopping with `purge_position`
//! The position rows on the target may only go once no task writes them: the job is stopped
//! without purge, the allocations are polled until every one has ended (at most
//! [`NomadConfig::stop_timeout`]), then the rows are deleted from here (the gateway must reach the
//! target, as the embedded agent does), and the job is purged if asked.

pub mod allocation;
pub mod client;
pub mod duration;
pub mod job;
pub mod settings;

use super::{Allocation, JobRecord, Node, Orchestrator, OrchestratorError, Registered, Watched};
use client::{CallError, ClientConfig, NomadClient};
use driver::stats::StatsSnapshot;
use jobs::{ParsedJob, Role};
use serde_json::{json, Value};
use std::time::Duration;

/// How the orchestrator reaches Nomad.
#[derive(Debug, Clone)]
pub struct NomadConfig {
    /// Address, region, namespace, token and request timeout.
    pub client: ClientConfig,
    /// How long a stop with `purge_position` waits for the allocations to end.
    pub stop_timeout: Duration,
}

/// The Nomad orchestrator; cheap to clone.
#[derive(Clone, Debug)]
pub struct NomadOrchestrator {
    client: NomadClient,
    stop_timeout: Duration,
    /// Ends the blocking queries' waits (the agent is shutting down).
    watchers: tokio_util::sync::CancellationToken,
    /// Opens passwords posted sealed (`/encrypt-config`) before the job goes to Nomad, and
    /// seals for `/encrypt-config`; none without `DTLE_SECRET_KEY` (no state folder here).
    keys: Option<std::sync::Arc<crate::secrets::KeyRing>>,
}

impl NomadOrchestrator {
    /// An orchestrator for the Nomad at `config.client.address`; nothing is sent yet.
    ///
    /// # Errors
    /// When the address is not an http(s) URL.
    pub fn new(config: NomadConfig) -> Result<Self, OrchestratorError> {
        Ok(Self {
            client: NomadClient::new(config.client)?,
            stop_timeout: config.stop_timeout,
            watchers: tokio_util::sync::CancellationToken::new(),
            keys: None,
        })
    }

    /// This orchestrator, opening and sealing passwords with `keys`.
    #[must_use]
    pub fn with_keys(mut self, keys: std::sync::Arc<crate::secrets::KeyRing>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Opens the sealed passwords of `spec`: Nomad's tasks get them in clear, as they get any.
    fn open_passwords(&self, spec: &mut jobs::JobSpec) -> Result<(), OrchestratorError> {
        match &self.keys {
            Some(keys) => keys.open_job(spec).map(drop).map_err(|why| {
                OrchestratorError::Rejected(format!("a password of the job was {why}"))
            }),
            None if spec
                .passwords_mut()
                .iter()
                .any(|p| crate::secrets::is_sealed(p.expose())) =>
            {
                Err(OrchestratorError::Rejected(
                    "a password of the job is sealed, and this agent has no key to open it: \
                     start it with DTLE_SECRET_KEY set to the key of the agent that sealed it"
                        .into(),
                ))
            }
            None => Ok(()),
        }
    }

    /// The Nomad job with this ID, `None` if Nomad has none.
    async fn nomad_job(&self, id: &str) -> Result<Option<Value>, OrchestratorError> {
        match self.client.get(&["v1", "job", id], &[]).await {
            Ok(job) => Ok(Some(job)),
            Err(err) if err.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
            Err(err) => Err(err.into_error(|| OrchestratorError::JobNotFound(id.to_owned()))),
        }
    }

    /// The dtle job with this ID, as Nomad has it, and its record.
    async fn dtle_job(&self, id: &str) -> Result<(Value, JobRecord), OrchestratorError> {
        let job = self
            .nomad_job(id)
            .await?
            .ok_or_else(|| OrchestratorError::JobNotFound(id.to_owned()))?;
        let record =
            job::from_nomad(&job).map_err(|e| OrchestratorError::Conflict(e.to_string()))?;
        Ok((job, record))
    }

    /// Registers `job` (`POST /v1/job/:id`), only if Nomad's copy is still at `index`.
    async fn update(
        &self,
        id: &str,
        job: Value,
        index: u64,
    ) -> Result<Registered, OrchestratorError> {
        let body = json!({"Job": job, "EnforceIndex": true, "JobModifyIndex": index});
        let answer = self
            .client
            .post(&["v1", "job", id], &body)
            .await
            .map_err(|e| e.into_error(|| OrchestratorError::JobNotFound(id.to_owned())))?;
        Ok(registered(id, &answer, true))
    }

    /// Stops a job without forgetting it (`DELETE /v1/job/:id[?purge=true]`).
    async fn deregister(&self, id: &str, purge: bool) -> Result<Registered, OrchestratorError> {
        let query: &[(&str, &str)] = if purge { &[("purge", "true")] } else { &[] };
        let answer = self
            .client
            .delete(&["v1", "job", id], query)
            .await
            .map_err(|e| e.into_error(|| OrchestratorError::JobNotFound(id.to_owned())))?;
        Ok(registered(id, &answer, true))
    }

    /// The job's allocations as Nomad lists them (every one, ended ones too).
    async fn nomad_allocations(&self, id: &str) -> Result<Vec<Value>, OrchestratorError> {
        let list = self
            .client
            .get(&["v1", "job", id, "allocations"], &[])
            .await
            .map_err(|e| e.into_error(|| OrchestratorError::JobNotFound(id.to_owned())))?;
        match list {
            Value::Array(items) => Ok(items),
            other => Err(unreadable("the allocation list", &other)),
        }
    }

    /// Polls until every allocation of the job has ended, at most `stop_timeout`.
    async fn wait_ended(&self, id: &str) -> Result<(), OrchestratorError> {
        let deadline = tokio::time::Instant::now() + self.stop_timeout;
        loop {
            let running: Vec<String> = self
                .nomad_allocations(id)
                .await?
                .iter()
                .filter(|a| {
                    let status = a.get("ClientStatus").and_then(Value::as_str).unwrap_or("");
                    !allocation::TERMINAL.contains(&status)
                })
                .filter_map(|a| a.get("ID").and_then(Value::as_str).map(str::to_owned))
                .collect();
            if running.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} was stopped, but its allocations {running:?} have not ended within \
                     {:?}: its position on the target was not deleted; stop it again with \
                     purge_position once they have",
                    self.stop_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One allocation, by full ID or prefix.
    async fn find_allocation(&self, alloc_id: &str) -> Result<Value, OrchestratorError> {
        let not_found = || OrchestratorError::AllocationNotFound(alloc_id.to_owned());
        if alloc_id.is_empty() {
            return Err(not_found());
        }
        if alloc_id.len() == 36 {
            return self
                .client
                .get(&["v1", "allocation", alloc_id], &[])
                .await
                .map_err(|e| e.into_error(not_found));
        }
        let list = self
            .client
            .get(&["v1", "allocations"], &[("prefix", alloc_id)])
            .await
            .map_err(|e| e.into_error(not_found))?;
        let mut items = match list {
            Value::Array(items) => items,
            other => return Err(unreadable("the allocation list", &other)),
        };
        match items.len() {
            0 => Err(not_found()),
            1 => Ok(items.remove(0)),
            _ => {
                let mut candidates: Vec<String> = items
                    .iter()
                    .filter_map(|a| a.get("ID").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                candidates.sort();
                Err(OrchestratorError::AmbiguousPrefix {
                    prefix: alloc_id.to_owned(),
                    candidates,
                })
            }
        }
    }

    /// A running allocation's task stats, from the dtle plugin on its node.
    async fn stats_of(
        &self,
        alloc: &Allocation,
    ) -> Result<(StatsSnapshot, Option<Duration>), OrchestratorError> {
        if allocation::TERMINAL.contains(&alloc.client_status.as_str()) {
            return Err(OrchestratorError::Conflict(format!(
                "allocation {} has ended ({}): its task's stats ended with it",
                alloc.id, alloc.client_status
            )));
        }
        let node_id = alloc.node_id.as_str();
        if node_id.is_empty() {
            return Err(OrchestratorError::Conflict(format!(
                "allocation {} is not placed on a node yet",
                alloc.id
            )));
        }
        let node = self
            .client
            .get(&["v1", "node", node_id], &[])
            .await
            .map_err(|e| {
                e.into_error(|| {
                    OrchestratorError::Conflict(format!(
                        "allocation {} is on node {node_id}, which Nomad no longer knows",
                        alloc.id
                    ))
                })
            })?;
        let address = allocation::plugin_address(&node).map_err(|why| {
            OrchestratorError::Unavailable(format!(
                "the stats of allocation {} are on node {node_id}, but {why}",
                alloc.id
            ))
        })?;
        let path = ["v1", "plugin", "allocation", alloc.id.as_str(), "stats"];
        let answer = self
            .client
            .plugin_get(&address, &path)
            .await
            .map_err(|err| plugin_error(err, alloc, node_id))?;
        allocation::task_stats(&answer, alloc.role).map_err(|why| {
            OrchestratorError::Upstream(format!(
                "the dtle plugin at {address} (node {node_id}) answered for allocation {}: {why}",
                alloc.id
            ))
        })
    }

    /// The GTID set the target has committed, as the job's running Src task knows it; `None`
    /// when it cannot be had (logged).
    async fn executed_gtid(&self, id: &str) -> Option<String> {
        let allocations = self.allocations(id).await.ok()?;
        let src = allocations
            .iter()
            .find(|a| a.role == Role::Src && a.client_status == "running")?;
        match self.stats_of(src).await {
            Ok((stats, _)) => stats.executed?.gtid_set.map(|set| set.to_string()),
            Err(err) => {
                tracing::debug!(job = %id, %err, "the Src's executed position is unknown");
                None
            }
        }
    }
}

fn plugin_error(err: CallError, alloc: &Allocation, node_id: &str) -> OrchestratorError {
    match err {
        CallError::Status { status, body, .. } if status == reqwest::StatusCode::NOT_FOUND => {
            OrchestratorError::Conflict(format!(
                "allocation {} has no dtle task running on node {node_id} (the plugin says: {body})",
                alloc.id
            ))
        }
        unreachable @ CallError::Unreachable { .. } => {
            OrchestratorError::Unavailable(format!("{unreachable} (node {node_id})"))
        }
        other => OrchestratorError::Upstream(format!("{other} (node {node_id})")),
    }
}

fn unreadable(what: &str, value: &Value) -> OrchestratorError {
    let shape = match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::Null => "nothing",
        _ => "a value",
    };
    OrchestratorError::Upstream(format!("Nomad answered {shape} for {what}"))
}

/// The answer to a registration, a deregistration or an update: `{EvalID, JobModifyIndex, ...}`.
fn registered(id: &str, answer: &Value, changed: bool) -> Registered {
    if let Some(warnings) = answer
        .get("Warnings")
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
    {
        tracing::warn!(job = %id, %warnings, "Nomad's warnings");
    }
    Registered {
        job_id: id.to_owned(),
        eval_id: answer
            .get("EvalID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        job_modify_index: answer
            .get("JobModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        changed,
    }
}

/// `job` with its pause mark set or removed, and `Stop` as given.
fn with_pause(mut job: Value, paused: bool, stop: bool) -> Value {
    job["Stop"] = json!(stop);
    if !job.get("Meta").is_some_and(Value::is_object) {
        job["Meta"] = json!({});
    }
    if let Some(meta) = job["Meta"].as_object_mut() {
        if paused {
            meta.insert(job::META_PAUSED.into(), json!("true"));
        } else {
            meta.remove(job::META_PAUSED);
        }
    }
    job
}

#[async_trait::async_trait]
impl Orchestrator for NomadOrchestrator {
    async fn register(&self, parsed: ParsedJob) -> Result<Registered, OrchestratorError> {
        let ParsedJob {
            mut spec,
            posted,
            explicit_id,
            ..
        } = parsed;
        self.open_passwords(&mut spec)?;
        if let Some(region) = self
            .client
            .config()
            .region
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            // The cluster's region, whatever the job says (dtle 2.x jobs say "global").
            spec.region = region.to_owned();
        }
        let id = spec.id.clone();
        if let Some(existing) = self.nomad_job(&id).await? {
            let record = job::from_nomad(&existing).map_err(|e| {
                OrchestratorError::Conflict(format!("{e}; give the dtle job another ID"))
            })?;
            // The executed position is asked of the plugin only when it may matter.
            let executed = if spec.src.extract.start == record.spec.src.extract.start {
                None
            } else {
                self.executed_gtid(&id)
                    .await
                    .and_then(|g| jobs::GtidSet::parse(&g).ok())
            };
            spec = spec.reconciled_with(&record.spec, &record.shown(executed.as_ref()));
            let running = !record.paused && !job::stopped(&existing);
            let same = job::same_definition(&record.spec, &spec);
            if running && same {
                tracing::info!(job = %id, "job posted again unchanged");
                return Ok(Registered {
                    job_id: id,
                    eval_id: String::new(),
                    job_modify_index: record.job_modify_index,
                    changed: false,
                });
            }
            if !same && !explicit_id {
                return Err(OrchestratorError::Conflict(format!(
                    "job {id} exists, and this job, posted without an ID under its name, differs \
                     from it: a job without an ID never replaces another. Post it with \"ID\": \
                     \"{id}\" to update job {id}, or give it another Name"
                )));
            }
        }
        let mut nomad = job::to_nomad(&spec, self.client.config().namespace.as_deref())
            .map_err(|e| OrchestratorError::Rejected(e.to_string()))?;
        job::keep_posted(&mut nomad.body, &posted);
        for path in &nomad.left_out {
            tracing::warn!(job = %id, %path, "a Nomad stanza the gateway does not carry to Nomad");
        }
        let answer = self
            .client
            .post(&["v1", "jobs"], &json!({ "Job": nomad.body }))
            .await
            .map_err(|e| e.into_error(|| OrchestratorError::JobNotFound(id.clone())))?;
        tracing::info!(job = %id, "job registered with Nomad");
        Ok(registered(&id, &answer, true))
    }

    async fn jobs(&self) -> Result<Vec<JobRecord>, OrchestratorError> {
        let list = self.client.get(&["v1", "jobs"], &[]).await.map_err(|e| {
            e.into_error(|| OrchestratorError::Upstream("Nomad has no job list".into()))
        })?;
        let Value::Array(stubs) = list else {
            return Err(unreadable("the job list", &list));
        };
        let mut ids: Vec<String> = stubs
            .iter()
            .filter_map(|s| s.get("ID").and_then(Value::as_str).map(str::to_owned))
            .collect();
        ids.sort();
        let mut records = Vec::new();
        for id in ids {
            // Gone since the list was read: not listed.
            let Some(job) = self.nomad_job(&id).await? else {
                continue;
            };
            match job::from_nomad(&job) {
                Ok(record) => records.push(record),
                Err(why) => tracing::debug!(%why, "not listed"),
            }
        }
        Ok(records)
    }

    async fn job(&self, id: &str) -> Result<JobRecord, OrchestratorError> {
        let (_, mut record) = self.dtle_job(id).await?;
        record.executed_gtid = self.executed_gtid(id).await;
        Ok(record)
    }

    async fn stop(
        &self,
        id: &str,
        purge: bool,
        forget_position: bool,
    ) -> Result<Registered, OrchestratorError> {
        let (job, record) = self.dtle_job(id).await?;
        let mut reply = if record.paused {
            // Already stopped: clear the mark, keep it stopped.
            self.update(id, with_pause(job, false, true), record.job_modify_index)
                .await?
        } else {
            self.deregister(id, purge && !forget_position).await?
        };
        if forget_position {
            self.wait_ended(id).await?;
            driver::task::forget_position(&record.spec)
                .await
                .map_err(|e| {
                    OrchestratorError::Internal(format!(
                        "deleting the position of job {id} on the target: {e}"
                    ))
                })?;
        }
        if purge && (forget_position || record.paused) {
            reply = self.deregister(id, true).await?;
        }
        tracing::info!(job = %id, purge, forget_position, "job stopped");
        Ok(reply)
    }

    async fn pause(&self, id: &str) -> Result<Registered, OrchestratorError> {
        let (job, record) = self.dtle_job(id).await?;
        if record.paused {
            return Err(OrchestratorError::Conflict(format!(
                "job {id} is already paused"
            )));
        }
        if job::stopped(&job) || record.status == "dead" {
            return Err(OrchestratorError::Conflict(format!(
                "job {id} is not running"
            )));
        }
        let reply = self
            .update(id, with_pause(job, true, true), record.job_modify_index)
            .await?;
        tracing::info!(job = %id, "job paused");
        Ok(reply)
    }

    async fn resume(&self, id: &str) -> Result<Registered, OrchestratorError> {
        let (job, record) = self.dtle_job(id).await?;
        if !record.paused {
            return Err(OrchestratorError::Conflict(format!(
                "job {id} is not paused"
            )));
        }
        let reply = self
            .update(id, with_pause(job, false, false), record.job_modify_index)
            .await?;
        tracing::info!(job = %id, "job resumed");
        Ok(reply)
    }

    async fn allocations(&self, id: &str) -> Result<Vec<Allocation>, OrchestratorError> {
        let items = self.nomad_allocations(id).await?;
        if items.is_empty() {
            // Nomad lists no allocations for an unknown job either: tell the two apart.
            self.dtle_job(id).await?;
        }
        let mut out = Vec::new();
        for item in &items {
            match allocation::allocation(item) {
                Ok(Some(alloc)) => out.push(alloc),
                Ok(None) => {}
                Err(why) => {
                    return Err(OrchestratorError::Upstream(format!(
                        "Nomad's allocation list: {why}"
                    )))
                }
            }
        }
        // Src then Dest, the newest first.
        out.sort_by(|a, b| a.role.cmp(&b.role).then(b.create_time.cmp(&a.create_time)));
        Ok(out)
    }

    async fn allocation_stats(
        &self,
        alloc_id: &str,
    ) -> Result<(Allocation, StatsSnapshot, Option<Duration>), OrchestratorError> {
        let value = self.find_allocation(alloc_id).await?;
        let alloc = allocation::allocation(&value)
            .map_err(|why| OrchestratorError::Upstream(format!("Nomad's allocation: {why}")))?
            .ok_or_else(|| OrchestratorError::AllocationNotFound(alloc_id.to_owned()))?;
        let (stats, eta) = self.stats_of(&alloc).await?;
        Ok((alloc, stats, eta))
    }

    async fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        let list = self.client.get(&["v1", "nodes"], &[]).await.map_err(|e| {
            e.into_error(|| OrchestratorError::Upstream("Nomad has no node list".into()))
        })?;
        let Value::Array(items) = list else {
            return Err(unreadable("the node list", &list));
        };
        Ok(items.iter().filter_map(allocation::node).collect())
    }

    async fn wait_index(
        &self,
        watched: Watched<'_>,
        min_index: u64,
        wait: Duration,
    ) -> Result<u64, OrchestratorError> {
        let segments: Vec<&str> = match watched {
            Watched::Jobs => vec!["v1", "jobs"],
            Watched::Job(id) => vec!["v1", "job", id],
            Watched::Allocations(id) => vec!["v1", "job", id, "allocations"],
        };
        let blocking = self.client.blocking_index(&segments, min_index, wait);
        tokio::select! {
            index = blocking => index.map_err(|e| {
                e.into_error(|| OrchestratorError::Upstream("Nomad has no such path".into()))
            }),
            // Shutting down: answer as if nothing changed; the watcher asks again.
            () = self.watchers.cancelled() => Ok(min_index.max(1)),
        }
    }

    fn seal_secret(&self, plain: &str) -> Result<String, OrchestratorError> {
        match &self.keys {
            Some(keys) => Ok(keys.seal(plain)),
            None => Err(OrchestratorError::Unsupported(
                "this agent has no key to seal passwords with: start it with DTLE_SECRET_KEY"
                    .into(),
            )),
        }
    }

    fn release_watchers(&self) {
        self.watchers.cancel();
    }

    async fn leader(&self) -> Result<String, OrchestratorError> {
        let answer = self
            .client
            .get(&["v1", "status", "leader"], &[])
            .await
            .map_err(|e| {
                e.into_error(|| OrchestratorError::Upstream("Nomad knows no leader".into()))
            })?;
        match answer {
            Value::String(leader) => Ok(leader),
            other => Err(unreadable("the leader", &other)),
        }
    }
}

#[cfg(test)]
mod sealed_tests {
    use super::*;
    use crate::secrets::KeyRing;

    fn orchestrator() -> NomadOrchestrator {
        NomadOrchestrator::new(NomadConfig {
            client: ClientConfig {
                address: "http://127.0.0.1:1".into(),
                region: None,
                namespace: None,
                token: None,
                timeout: Duration::from_secs(1),
            },
            stop_timeout: Duration::from_secs(1),
        })
        .expect("orchestrator")
    }

    #[test]
    fn sealed_passwords_are_opened_with_the_key_and_refused_without_one() {
        let keys = std::sync::Arc::new(KeyRing::from_keys(&[9; 32], &[]));
        let sealed = keys.seal("s3cret");
        let text = format!(
            r#"{{"Name": "n", "Tasks": [
              {{"Type": "Src", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "{sealed}"}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u", "Password": "plain"}}}}}}]}}"#
        );
        let spec = jobs::parse_job(&text).expect("valid").spec;
        let mut without = spec.clone();
        assert!(matches!(
            orchestrator().open_passwords(&mut without),
            Err(OrchestratorError::Rejected(_))
        ));
        let with = orchestrator().with_keys(keys.clone());
        let mut opened = spec;
        with.open_passwords(&mut opened).expect("opened");
        assert_eq!(opened.src.connection.password.expose(), "s3cret");
        assert_eq!(opened.dest.connection.password.expose(), "plain");
        assert!(with
            .seal_secret("x")
            .is_ok_and(|s| crate::secrets::is_sealed(&s)));
        assert!(matches!(
            orchestrator().seal_secret("x"),
            Err(OrchestratorError::Unsupported(_))
        ));
    }
}
