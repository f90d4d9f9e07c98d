//! go-plugin's GRPCController: the client's `Kill` calls Shutdown and SIGKILLs the plugin if it
//! has not exited within 2 s. Shutdown answers, then the server stops and the process exits 0.

use super::proto::go_plugin::{grpc_controller_server::GrpcController, Empty};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The GRPCController service; Shutdown flips the watch the server waits on.
#[derive(Debug, Clone)]
pub struct ControllerService {
    shutdown: watch::Sender<bool>,
}

impl ControllerService {
    pub fn new(shutdown: watch::Sender<bool>) -> Self {
        ControllerService { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcController for ControllerService {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("shutdown requested by the plugin client");
        self.shutdown.send_replace(true);
        Ok(Response::new(Empty {}))
    }
}
