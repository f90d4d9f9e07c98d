//! The `Driver` service (`hashicorp.nomad.plugins.drivers.proto.Driver`).
//!
//! TaskConfigSchema and Capabilities describe the driver; Fingerprint ([`streams`]) reports it
//! healthy. The task calls run dtle tasks in this process through the [`Registry`]:
//! - StartTask builds the task's job ([`task_spec`]), starts it and answers a RUNNING handle whose
//!   `driver_state` holds everything RecoverTask needs; an invalid config is InvalidArgument with
//!   the job model's message, a task id already running is AlreadyExists;
//! - WaitTask answers when the task ends: exit code 0 (stopped, or finished), 1 (gave up on a
//!   transient error), 2 (a definite error), with the error text;
//! - StopTask cancels and waits up to its timeout (5 s when unset), then answers OK either way;
//! - DestroyTask removes an ended task; a running one is FailedPrecondition unless `force`, which
//!   stops it first;
//! - InspectTask, TaskStats and TaskEvents report; RecoverTask answers OK for a task still in the
//!   registry and otherwise starts it again from `driver_state` (it resumes from the target's
//!   position);
//! - SignalTask: SIGSTOP pauses a task (its replication stops; it stays RUNNING to Nomad and
//!   WaitTask keeps waiting), SIGCONT resumes it from the target's position; other signals are
//!   InvalidArgument;
//! - every call naming an unknown task id answers NotFound.
//!
//! Exec and networks are not served.

use super::base::PluginState;
use super::config::DEFAULT_NATS_URL;
use super::pause_marks::PauseMarks;
use super::proto::drivers::{
    driver_capabilities::{FsIsolation, MountConfigs},
    driver_server::Driver,
    network_isolation_spec::NetworkIsolationMode,
    CapabilitiesRequest, CapabilitiesResponse, CreateNetworkRequest, CreateNetworkResponse,
    DestroyNetworkRequest, DestroyNetworkResponse, DestroyTaskRequest, DestroyTaskResponse,
    DriverCapabilities, DriverTaskEvent, ExecTaskRequest, ExecTaskResponse,
    ExecTaskStreamingRequest, ExecTaskStreamingResponse, FingerprintRequest, FingerprintResponse,
    InspectTaskRequest, InspectTaskResponse, RecoverTaskRequest, RecoverTaskResponse,
    SignalTaskRequest, SignalTaskResponse, StartTaskRequest, StartTaskResponse, StopTaskRequest,
    StopTaskResponse, TaskConfigSchemaRequest, TaskConfigSchemaResponse, TaskEventsRequest,
    TaskStatsRequest, TaskStatsResponse, WaitTaskRequest, WaitTaskResponse,
};
use super::proto::drivers::{ExitResult, TaskHandle, TaskState, TaskStatus};
use super::registry::{pause_signal, Completion, Registry, RunningTask, StartRequest};
use super::streams::{self, GrpcStream};
use super::task_schema;
use super::task_spec::{self, DriverState, TaskSpecError};
use crate::transport::security::NatsSecurity;
use futures::stream::Empty;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};

/// StopTask's wait when the request has no timeout (Nomad's default kill_timeout).
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The Driver service.
#[derive(Debug, Clone)]
pub struct DriverService {
    state: Arc<PluginState>,
    registry: Arc<Registry>,
}

/// What dtle tasks need from a Nomad client: no filesystem isolation or mounts (a task is a
/// database client inside the plugin process), the host's or the group's network, no exec.
/// `send_signals`: SIGSTOP and SIGCONT pause and resume a task (SignalTask).
pub fn capabilities() -> DriverCapabilities {
    DriverCapabilities {
        send_signals: true,
        exec: false,
        fs_isolation: FsIsolation::None.into(),
        network_isolation_modes: vec![
            NetworkIsolationMode::Host.into(),
            NetworkIsolationMode::Group.into(),
        ],
        must_create_network: false,
        mount_configs: MountConfigs::NoMounts.into(),
        remote_tasks: false,
        disable_log_collection: false,
    }
}

impl DriverService {
    /// The service over the plugin's settings (for the NATS URL) and a task registry.
    pub fn new(state: Arc<PluginState>, registry: Arc<Registry>) -> Self {
        DriverService { state, registry }
    }

    fn nats_url(&self) -> Option<String> {
        self.state.settings().map(|s| s.config.nats_url)
    }

    /// The NATS credentials and TLS of the plugin config (none before SetConfig).
    fn nats_security(&self) -> NatsSecurity {
        self.state
            .settings()
            .map(|s| s.config.nats_security)
            .unwrap_or_default()
    }

    /// Where pauses are kept across plugin restarts, when the config names a `data_dir`.
    fn pause_marks(&self) -> Option<PauseMarks> {
        let settings = self.state.settings()?;
        Some(PauseMarks::new(settings.config.data_dir.as_deref()?))
    }

    fn task(&self, id: &str) -> Result<RunningTask, Status> {
        self.registry
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no dtle task with id {id:?}")))
    }
}

fn invalid(err: TaskSpecError) -> Status {
    Status::invalid_argument(err.to_string())
}

fn exit_result(c: &Completion) -> ExitResult {
    ExitResult {
        exit_code: c.exit_code,
        signal: 0,
        oom_killed: false,
    }
}

#[tonic::async_trait]
impl Driver for DriverService {
    async fn task_config_schema(
        &self,
        _request: Request<TaskConfigSchemaRequest>,
    ) -> Result<Response<TaskConfigSchemaResponse>, Status> {
        Ok(Response::new(TaskConfigSchemaResponse {
            spec: Some(task_schema::schema()),
        }))
    }

    async fn capabilities(
        &self,
        _request: Request<CapabilitiesRequest>,
    ) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse {
            capabilities: Some(capabilities()),
        }))
    }

    type FingerprintStream = GrpcStream<FingerprintResponse>;

    async fn fingerprint(
        &self,
        _request: Request<FingerprintRequest>,
    ) -> Result<Response<Self::FingerprintStream>, Status> {
        Ok(Response::new(streams::fingerprint(Arc::clone(&self.state))))
    }

    async fn recover_task(
        &self,
        request: Request<RecoverTaskRequest>,
    ) -> Result<Response<RecoverTaskResponse>, Status> {
        let request = request.into_inner();
        let handle = request
            .handle
            .ok_or_else(|| Status::invalid_argument("RecoverTask without a handle"))?;
        let config = handle.config.unwrap_or_default();
        let id = if request.task_id.is_empty() {
            config.id.clone()
        } else {
            request.task_id
        };
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "RecoverTask names no task: both task_id and handle.config.id are empty",
            ));
        }
        if self.registry.get(&id).is_some() {
            return Ok(Response::new(RecoverTaskResponse {}));
        }
        let state = DriverState::from_bytes(&handle.driver_state).map_err(invalid)?;
        let job = state.task_job().map_err(invalid)?;
        let nats_url = self.nats_url().unwrap_or_else(|| state.nats_url.clone());
        let paused = self.pause_marks().is_some_and(|marks| marks.is_paused(&id));
        tracing::info!(task = %id, role = %state.role, paused, "recovering a task from its handle");
        // Started concurrently by two recoveries: the second finds it and is fine.
        self.registry.start(StartRequest {
            id,
            name: config.name,
            alloc_id: config.alloc_id,
            role: state.role,
            job,
            hand_over: state.handed_over_job().cloned(),
            nats_url,
            nats_security: self.nats_security(),
            paused,
        });
        Ok(Response::new(RecoverTaskResponse {}))
    }

    async fn start_task(
        &self,
        request: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        let config = request
            .into_inner()
            .task
            .ok_or_else(|| Status::invalid_argument("StartTask without a task config"))?;
        if config.id.is_empty() {
            return Err(Status::invalid_argument("StartTask with an empty task id"));
        }
        let nats_url = self
            .nats_url()
            .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned());
        let (state, job) = task_spec::from_task(
            &config.name,
            &config.job_name,
            &config.msgpack_driver_config,
            &nats_url,
        )
        .map_err(invalid)?;
        let started = self.registry.start(StartRequest {
            id: config.id.clone(),
            name: config.name.clone(),
            alloc_id: config.alloc_id.clone(),
            role: state.role,
            job,
            hand_over: state.handed_over_job().cloned(),
            nats_url,
            nats_security: self.nats_security(),
            paused: false,
        });
        if !started {
            return Err(Status::already_exists(format!(
                "a dtle task with id {:?} is already known",
                config.id
            )));
        }
        if let Some(marks) = self.pause_marks() {
            // A new task is not paused, whatever an earlier task of that id left behind.
            if let Err(err) = marks.forget(&config.id) {
                tracing::warn!(task = %config.id, %err, "cannot clear a stale pause mark");
            }
        }
        Ok(Response::new(StartTaskResponse {
            result: 0,
            driver_error_msg: String::new(),
            handle: Some(TaskHandle {
                version: 1,
                config: Some(config),
                state: TaskState::Running.into(),
                driver_state: state.to_bytes(),
            }),
            network_override: None,
        }))
    }

    async fn wait_task(
        &self,
        request: Request<WaitTaskRequest>,
    ) -> Result<Response<WaitTaskResponse>, Status> {
        let task = self.task(&request.into_inner().task_id)?;
        let completion = task.wait().await;
        Ok(Response::new(WaitTaskResponse {
            result: Some(exit_result(&completion)),
            err: completion.err,
        }))
    }

    async fn stop_task(
        &self,
        request: Request<StopTaskRequest>,
    ) -> Result<Response<StopTaskResponse>, Status> {
        let request = request.into_inner();
        let task = self.task(&request.task_id)?;
        let timeout = request
            .timeout
            .and_then(|t| Duration::try_from(t).ok())
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        task.cancel.cancel();
        if task.wait_timeout(timeout).await.is_none() {
            tracing::warn!(task = %task.id, ?timeout, "the task has not stopped within the timeout");
        }
        Ok(Response::new(StopTaskResponse {}))
    }

    async fn destroy_task(
        &self,
        request: Request<DestroyTaskRequest>,
    ) -> Result<Response<DestroyTaskResponse>, Status> {
        let request = request.into_inner();
        let task = self.task(&request.task_id)?;
        if task.completed().is_none() {
            if !request.force {
                return Err(Status::failed_precondition(format!(
                    "the dtle task {:?} is still running: stop it first, or destroy with force",
                    task.id
                )));
            }
            task.cancel.cancel();
            if task.wait_timeout(DEFAULT_STOP_TIMEOUT).await.is_none() {
                tracing::warn!(task = %task.id, "destroyed while still stopping");
            }
        }
        self.registry.remove(&task.id);
        if let Some(marks) = self.pause_marks() {
            if let Err(err) = marks.forget(&task.id) {
                tracing::warn!(task = %task.id, %err, "cannot remove the destroyed task's pause mark");
            }
        }
        Ok(Response::new(DestroyTaskResponse {}))
    }

    async fn inspect_task(
        &self,
        request: Request<InspectTaskRequest>,
    ) -> Result<Response<InspectTaskResponse>, Status> {
        let task = self.task(&request.into_inner().task_id)?;
        let completion = task.completed();
        let state = match completion {
            None => TaskState::Running,
            Some(_) => TaskState::Exited,
        };
        Ok(Response::new(InspectTaskResponse {
            task: Some(TaskStatus {
                id: task.id.clone(),
                name: task.name.clone(),
                state: state.into(),
                started_at: Some(task.started_at.into()),
                completed_at: completion.as_ref().map(|c| c.at.into()),
                result: completion.as_ref().map(exit_result),
            }),
            driver: None,
            network_override: None,
        }))
    }

    type TaskStatsStream = GrpcStream<TaskStatsResponse>;

    async fn task_stats(
        &self,
        request: Request<TaskStatsRequest>,
    ) -> Result<Response<Self::TaskStatsStream>, Status> {
        let request = request.into_inner();
        let task = self.task(&request.task_id)?;
        let interval = request
            .collection_interval
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        Ok(Response::new(streams::task_stats(
            Arc::clone(&self.registry),
            task.id,
            interval,
        )))
    }

    type TaskEventsStream = GrpcStream<DriverTaskEvent>;

    async fn task_events(
        &self,
        _request: Request<TaskEventsRequest>,
    ) -> Result<Response<Self::TaskEventsStream>, Status> {
        Ok(Response::new(streams::task_events(&self.registry)))
    }

    async fn signal_task(
        &self,
        request: Request<SignalTaskRequest>,
    ) -> Result<Response<SignalTaskResponse>, Status> {
        let request = request.into_inner();
        let task = self.task(&request.task_id)?;
        let paused = pause_signal(&request.signal).ok_or_else(|| {
            Status::invalid_argument(format!(
                "signal {:?}: a dtle task takes SIGSTOP (pause) or SIGCONT (resume)",
                request.signal
            ))
        })?;
        if task.completed().is_some() {
            return Err(Status::failed_precondition(format!(
                "the dtle task {:?} has exited",
                task.id
            )));
        }
        // The mark is written before a pause takes effect and removed after a resume did, so a
        // crash in between leaves the task paused rather than running against the user's wish.
        let marks = self.pause_marks();
        if let (Some(marks), true) = (&marks, paused) {
            marks.set(&task.id, true).map_err(|err| {
                Status::internal(format!(
                    "cannot keep the pause of {:?} in the plugin's data_dir: {err}",
                    task.id
                ))
            })?;
        }
        self.registry.set_paused(&task, paused);
        if let (Some(marks), false) = (&marks, paused) {
            if let Err(err) = marks.set(&task.id, false) {
                tracing::warn!(task = %task.id, %err, "resumed, but the pause mark stays: a recovery after a crash would start the task paused");
            }
        }
        Ok(Response::new(SignalTaskResponse {}))
    }

    async fn exec_task(
        &self,
        _request: Request<ExecTaskRequest>,
    ) -> Result<Response<ExecTaskResponse>, Status> {
        Err(Status::unimplemented(
            "dtle tasks run no commands: the driver does not declare exec",
        ))
    }

    type ExecTaskStreamingStream = Empty<Result<ExecTaskStreamingResponse, Status>>;

    async fn exec_task_streaming(
        &self,
        _request: Request<Streaming<ExecTaskStreamingRequest>>,
    ) -> Result<Response<Self::ExecTaskStreamingStream>, Status> {
        Err(Status::unimplemented(
            "dtle tasks run no commands: the driver does not declare exec",
        ))
    }

    async fn create_network(
        &self,
        _request: Request<CreateNetworkRequest>,
    ) -> Result<Response<CreateNetworkResponse>, Status> {
        Err(Status::unimplemented(
            "the dtle driver creates no networks: it does not declare must_create_network",
        ))
    }

    async fn destroy_network(
        &self,
        _request: Request<DestroyNetworkRequest>,
    ) -> Result<Response<DestroyNetworkResponse>, Status> {
        Err(Status::unimplemented(
            "the dtle driver creates no networks: it does not declare must_create_network",
        ))
    }
}
