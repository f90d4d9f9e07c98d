//! Plugin mode: the `dtle` binary as a Nomad task-driver plugin (go-plugin over gRPC).
//!
//! # Launch and handshake
//! A Nomad client runs every executable in its `plugin_dir`, with no arguments, its own cwd and
//! environment plus `NOMAD_PLUGIN_MAGIC_COOKIE`, `PLUGIN_MIN_PORT`, `PLUGIN_MAX_PORT` and
//! `PLUGIN_PROTOCOL_VERSIONS=2`. `dtle` enters this mode when the cookie variable is present
//! (`src/main.rs`), then [`run`]:
//! 1. refuses a wrong cookie with one sentence on stderr and exit status 1;
//! 2. binds the first free port of the range on 127.0.0.1;
//! 3. writes the one handshake line `1|2|tcp|127.0.0.1:PORT|grpc` to stdout and flushes it. Stdout
//!    is never written again, and all logs go to stderr (which the client relays; after the client
//!    restarts and reattaches, both may be dead pipes, so no write may panic: Rust ignores SIGPIPE
//!    and the log writer drops write errors);
//! 4. serves plain HTTP/2 gRPC until go-plugin's `GRPCController/Shutdown`, then exits 0. Ctrl-C
//!    in the client's terminal reaches the plugin too and is ignored, as go-plugin's servers do.
//!
//! The client starts the binary up to three times at agent start (PluginInfo and ConfigSchema;
//! SetConfig to validate the block; then the long-lived instance), so starting is cheap and
//! nothing is bound or started before SetConfig.
//!
//! # Served so far
//! - `grpc.health.v1.Health`: service `plugin` is SERVING (go-plugin's servers report it);
//! - `plugin.GRPCController/Shutdown` ([`controller`]);
//! - `hashicorp.nomad.plugins.base.proto.BasePlugin` ([`base`]): PluginInfo (driver `dtle`, API
//!   v0.1.0), ConfigSchema ([`config::schema`]), SetConfig (go-cty msgpack, [`cty`]).
//!
//! - `hashicorp.nomad.plugins.drivers.proto.Driver` ([`task_driver`]): TaskConfigSchema
//!   ([`task_schema`]), Capabilities, Fingerprint, and the task calls: StartTask (the job each
//!   task runs is built from its own config, [`task_spec`]), WaitTask, StopTask, DestroyTask,
//!   InspectTask, RecoverTask (from `driver_state` alone), the TaskStats and TaskEvents streams
//!   ([`streams`], [`usage`]); tasks run in this process, in the [`registry`], through the same
//!   task API (`crate::task::run`) as the embedded orchestrator; SignalTask pauses (SIGSTOP) and
//!   resumes (SIGCONT) a task, a pause kept in `data_dir` across plugin restarts
//!   ([`pause_marks`]). Exec and networks are not declared.
//! - With `api_addr` in its config, the long-lived instance serves the tasks' replication stats
//!   over HTTP for `dtle agent` ([`api`]), and publishes the address in its fingerprint.
//!
//! Not served: `plugin.GRPCStdio` (the client logs a warning without it) and `plugin.GRPCBroker`
//! (unused by Nomad drivers).

pub mod api;
pub mod base;
pub mod config;
pub mod controller;
pub mod cty;
pub mod handshake;
pub mod hclspec;
pub mod job_handoff;
pub mod pause_marks;
pub mod proto;
pub mod registry;
pub mod streams;
pub mod task_driver;
pub mod task_schema;
pub mod task_spec;
pub mod usage;

use base::{BaseService, PluginState};
use controller::ControllerService;
use handshake::HandshakeError;
use proto::base::base_plugin_server::BasePluginServer;
use proto::drivers::driver_server::DriverServer;
use proto::go_plugin::grpc_controller_server::GrpcControllerServer;
use registry::Registry;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long open calls (streams) may run on after Shutdown before the process exits anyway;
/// go-plugin's client SIGKILLs at 2 s.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Why plugin mode stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot use the listening socket: {0}")]
    Listener(std::io::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Applies a log level (trace, debug, info, warn, error) to the process's logs.
pub type SetLogLevel = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds the routes the plugin's API serves besides the stats, from the plugin's config.
pub type ApiRoutes =
    Arc<dyn Fn(&config::PluginConfig) -> Result<api::MoreRoutes, String> + Send + Sync>;

/// What the binary adds to plugin mode: the parts that live outside the driver crate.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Applies the config's `log_level`.
    pub set_log_level: Option<SetLogLevel>,
    /// The dtle 2.x API at `api_addr` (the gateway lives outside this crate).
    pub api_routes: Option<ApiRoutes>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("set_log_level", &self.set_log_level.is_some())
            .field("api_routes", &self.api_routes.is_some())
            .finish()
    }
}

/// Runs plugin mode to the end; the caller has set up logging to stderr.
pub fn run(hooks: Hooks) -> ExitCode {
    match serve_plugin(hooks) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Written directly, errors ignored: stderr may be a dead pipe.
            let _ = writeln!(std::io::stderr(), "{err}");
            ExitCode::FAILURE
        }
    }
}

fn serve_plugin(hooks: Hooks) -> Result<(), PluginError> {
    handshake::check_cookie(std::env::var_os(handshake::MAGIC_COOKIE_KEY).as_deref())?;
    let ports = handshake::port_range(
        std::env::var("PLUGIN_MIN_PORT").ok(),
        std::env::var("PLUGIN_MAX_PORT").ok(),
    )?;
    let listener = handshake::bind(ports)?;
    listener
        .set_nonblocking(true)
        .map_err(PluginError::Listener)?;
    let addr = listener.local_addr().map_err(PluginError::Listener)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(PluginError::Runtime)?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(PluginError::Listener)?;
        handshake::announce(addr)?;
        tracing::info!(%addr, "dtle plugin serving");
        serve(listener, hooks).await
    })
}

async fn serve(listener: tokio::net::TcpListener, hooks: Hooks) -> Result<(), PluginError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(ignore_interrupts());

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let state = Arc::new(PluginState::default());
    let registry = Arc::new(Registry::default());

    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(ControllerService::new(
            shutdown_tx,
        )))
        .add_service(BasePluginServer::new(BaseService::new(
            Arc::clone(&state),
            Arc::clone(&registry),
            hooks,
        )))
        .add_service(DriverServer::new(task_driver::DriverService::new(
            state, registry,
        )))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown_requested(shutdown_rx.clone()),
        );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        () = async {
            shutdown_requested(shutdown_rx).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("calls still open {SHUTDOWN_GRACE:?} after Shutdown; exiting anyway"),
    }
    tracing::info!("dtle plugin stopped");
    Ok(())
}

/// Resolves once Shutdown was called (or every sender is gone).
async fn shutdown_requested(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|&stop| stop).await;
}

/// Ctrl-C in the Nomad client's terminal signals the whole process group; the client stops its
/// plugins itself, so the plugin logs the interrupt and carries on.
async fn ignore_interrupts() {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        tracing::info!("interrupt ignored: the plugin client stops this plugin");
    }
}
