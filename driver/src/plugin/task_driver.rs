//! The `Driver` service (`hashicorp.nomad.plugins.drivers.proto.Driver`): so far what describes
//! the driver. TaskConfigSchema and Capabilities answer; every task call answers Unimplemented,
//! naming itself, until it runs the task API for real (issue 12). In particular Fingerprint is
//! Unimplemented, so a Nomad client does not yet consider the driver healthy and places no task.

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
use super::task_schema;
use futures::stream::Empty;
use tonic::{Request, Response, Status, Streaming};

/// The Driver service.
#[derive(Debug, Clone, Default)]
pub struct DriverService;

/// What dtle tasks need from a Nomad client: no filesystem isolation or mounts (a task is a
/// database client inside the plugin process), the host's or the group's network, no exec.
/// `send_signals` stays false until SignalTask (pause/resume) is served.
pub fn capabilities() -> DriverCapabilities {
    DriverCapabilities {
        send_signals: false,
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

fn not_yet(call: &str) -> Status {
    Status::unimplemented(format!(
        "{call} is not implemented by this dtle plugin yet: it cannot run tasks"
    ))
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

    type FingerprintStream = Empty<Result<FingerprintResponse, Status>>;

    async fn fingerprint(
        &self,
        _request: Request<FingerprintRequest>,
    ) -> Result<Response<Self::FingerprintStream>, Status> {
        Err(not_yet("Fingerprint"))
    }

    async fn recover_task(
        &self,
        _request: Request<RecoverTaskRequest>,
    ) -> Result<Response<RecoverTaskResponse>, Status> {
        Err(not_yet("RecoverTask"))
    }

    async fn start_task(
        &self,
        _request: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        Err(not_yet("StartTask"))
    }

    async fn wait_task(
        &self,
        _request: Request<WaitTaskRequest>,
    ) -> Result<Response<WaitTaskResponse>, Status> {
        Err(not_yet("WaitTask"))
    }

    async fn stop_task(
        &self,
        _request: Request<StopTaskRequest>,
    ) -> Result<Response<StopTaskResponse>, Status> {
        Err(not_yet("StopTask"))
    }

    async fn destroy_task(
        &self,
        _request: Request<DestroyTaskRequest>,
    ) -> Result<Response<DestroyTaskResponse>, Status> {
        Err(not_yet("DestroyTask"))
    }

    async fn inspect_task(
        &self,
        _request: Request<InspectTaskRequest>,
    ) -> Result<Response<InspectTaskResponse>, Status> {
        Err(not_yet("InspectTask"))
    }

    type TaskStatsStream = Empty<Result<TaskStatsResponse, Status>>;

    async fn task_stats(
        &self,
        _request: Request<TaskStatsRequest>,
    ) -> Result<Response<Self::TaskStatsStream>, Status> {
        Err(not_yet("TaskStats"))
    }

    type TaskEventsStream = Empty<Result<DriverTaskEvent, Status>>;

    async fn task_events(
        &self,
        _request: Request<TaskEventsRequest>,
    ) -> Result<Response<Self::TaskEventsStream>, Status> {
        Err(not_yet("TaskEvents"))
    }

    async fn signal_task(
        &self,
        _request: Request<SignalTaskRequest>,
    ) -> Result<Response<SignalTaskResponse>, Status> {
        Err(not_yet("SignalTask"))
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
