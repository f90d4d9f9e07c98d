//! `dtle agent`: the HTTP gateway, the embedded orchestrator and the driver in one process; or,
//! with a Nomad address (`--nomad-addr`, or `address` in the config file's `nomad` section), the
//! HTTP gateway alone in front of a Nomad cluster whose clients run the tasks in the dtle plugin.
//!
//! Settings come from flags, then a config file (TOML, or HCL when the file ends in `.hcl`),
//! then defaults. The address the API advertises (`/v1/leader`, members, nodes) is `--advertise`
//! (or `advertise`), else derived from the listen address, never `0.0.0.0` ([`super::advertise`]). Logs go to stderr; passwords are never logged (jobs are logged by ID only).
//! Nomad's ACL token comes from the config file or `NOMAD_TOKEN`, never from a flag (a flag would
//! show in the process list). So do the NATS secrets: the config file's `[nats]` section or
//! `DTLE_NATS_PASSWORD`, `DTLE_NATS_TOKEN`, `DTLE_NATS_NKEY_SEED` ([`super::nats`]); the tasks
//! connect with them, and they are checked (files read, the seed parsed) before the agent starts.
//!
//! On Ctrl-C or SIGTERM the HTTP server stops taking requests, then every task is cancelled and
//! awaited, at most `kill_timeout_s` (the orchestrator's shutdown); a task still running after
//! that is dropped with the async runtime.

use anyhow::Context;
use clap::Args;
use driver::retry::RetryPolicy;
use gateway::access::{AccessPolicy, AuditLog, Role, TokenError};
use gateway::orchestrator::embedded::supervisor::RestartPolicy;
use gateway::orchestrator::embedded::{EmbeddedConfig, EmbeddedOrchestrator, DEFAULT_KILL_TIMEOUT};
use gateway::orchestrator::nomad::client::ClientConfig;
use gateway::orchestrator::nomad::{NomadConfig, NomadOrchestrator};
use gateway::secrets::{self, KeyRing};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warp::Filter as _;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// A config file (TOML, or HCL if it ends in .hcl).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the HTTP API listens.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where others reach the HTTP API (`host[:port]`), as `/v1/leader`, members and nodes show
    /// it; default: the listen address, or this host's primary address when it listens on all.
    #[arg(long)]
    advertise: Option<String>,
    /// The NATS server the tasks use.
    #[arg(long)]
    nats: Option<String>,
    /// Where jobs and allocations are kept.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Nomad's HTTP address (e.g. http://127.0.0.1:4646): serve the API in front of Nomad
    /// instead of running the tasks here. The ACL token: the config file, or NOMAD_TOKEN.
    #[arg(long)]
    nomad_addr: Option<String>,
    /// The API token that may do everything (named `admin` in the audit log). From the
    /// environment (or `[[api.tokens]]` in the config file) only: a value on the command line is
    /// refused, it would show in the process list. Without any token the API is open and the
    /// agent listens on loopback only.
    #[arg(
        long,
        env = "DTLE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    admin_token: Option<String>,
    /// The API token that may only read (`GET`; named `read` in the audit log). From the
    /// environment or the config file only.
    #[arg(
        long,
        env = "DTLE_READ_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    read_token: Option<String>,
    /// The key that seals job passwords at rest (32 random bytes in base64, e.g. `head -c 32
    /// /dev/urandom | base64`). Environment only. Default: `<state_dir>/secret.key`, created on
    /// first start (mode 0600).
    #[arg(
        long,
        env = "DTLE_SECRET_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    secret_key: Option<String>,
    /// Former keys, comma-separated, that may still open sealed passwords (which are then sealed
    /// again under the current key). Environment only.
    #[arg(
        long,
        env = "DTLE_SECRET_KEY_PREVIOUS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    secret_key_previous: Option<String>,
    /// The tasks' NATS credentials and TLS (over the config file's `[nats]` section).
    #[command(flatten)]
    nats_security: super::nats::NatsArgs,
}

/// `DTLE_SECRET_KEY_PREVIOUS`: former keys, comma-separated.
fn previous_keys(text: Option<&str>) -> Result<Vec<[u8; 32]>, secrets::SecretError> {
    text.unwrap_or_default()
        .split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| secrets::parse_key(k, "DTLE_SECRET_KEY_PREVIOUS"))
        .collect()
}

/// The keys that seal job passwords: the environment's, else the state folder's.
fn key_ring(
    secret_key: Option<&str>,
    secret_key_previous: Option<&str>,
    state_dir: &Path,
) -> anyhow::Result<KeyRing> {
    let previous = previous_keys(secret_key_previous)?;
    let ring = match secret_key.filter(|k| !k.trim().is_empty()) {
        Some(key) => {
            let key = secrets::parse_key(key, "DTLE_SECRET_KEY")?;
            KeyRing::with_current(&key, &previous, state_dir)?
        }
        None if previous.is_empty() => KeyRing::for_state_dir(state_dir)?,
        None => anyhow::bail!(
            "DTLE_SECRET_KEY_PREVIOUS is set without DTLE_SECRET_KEY: give the new key too"
        ),
    };
    tracing::info!(key = ring.key_id(), "job passwords are sealed at rest");
    Ok(ring)
}

/// The agent's config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// `host:port` of the HTTP API (default 127.0.0.1:8190).
    listen: Option<SocketAddr>,
    /// `host[:port]` others reach the HTTP API at (`--advertise` wins).
    advertise: Option<String>,
    /// NATS URL (default nats://127.0.0.1:8193); or `url` in the `nats` section.
    nats_url: Option<String>,
    /// The tasks' NATS URL, credentials and TLS.
    nats: Option<super::nats::NatsSection>,
    /// State folder (default ./state/agent).
    state_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `driver=debug` (default info; DTLE_LOG overrides).
    log_level: Option<String>,
    /// This node's name (default the host name).
    node_name: Option<String>,
    /// This node's datacenter (default dc1).
    datacenter: Option<String>,
    /// How failed tasks are restarted.
    restart: Option<RestartConfig>,
    /// How long stopping a task (stop, pause, update, the agent's own shutdown) waits for it
    /// to end, seconds, before it is reported killed and left behind (default 10).
    kill_timeout_s: Option<u64>,
    /// The Nomad cluster to serve the API in front of; without an `address` (here or
    /// `--nomad-addr`) the agent runs the tasks itself.
    nomad: Option<NomadSection>,
    /// Who may call the API, and over what.
    api: Option<ApiSection>,
}

/// The config file's `api` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiSection {
    /// Named tokens: `[[api.tokens]]` with `name`, `role` (`read` or `admin`) and `token`.
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    /// PEM certificate chain of the API's TLS listener (with `tls_key`): HTTPS only.
    tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate signed by it.
    tls_client_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: String,
    token: String,
}

impl std::fmt::Debug for ApiSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, &str)> = self
            .tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role.as_str()))
            .collect();
        f.debug_struct("ApiSection")
            .field("tokens", &names)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_client_ca", &self.tls_client_ca)
            .finish()
    }
}

/// The API's listener: who may call it, and TLS.
struct Listener {
    addr: SocketAddr,
    access: Arc<AccessPolicy>,
    tls: Option<ApiTls>,
}

struct ApiTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// The tokens from the environment and the config file, and the rule that an open API stays on
/// loopback.
fn listener(args: &AgentArgs, file: &FileConfig, addr: SocketAddr) -> anyhow::Result<Listener> {
    let section = file.api.as_ref();
    let mut access = AccessPolicy::open()
        .with_admin_and_read(args.admin_token.as_deref(), args.read_token.as_deref())?;
    for entry in section.map(|s| s.tokens.as_slice()).unwrap_or_default() {
        let role = Role::parse(&entry.role).ok_or_else(|| TokenError::UnknownRole {
            name: entry.name.clone(),
            role: entry.role.clone(),
        })?;
        access = access.with_token(&entry.name, role, &entry.token)?;
    }
    if !access.is_enforced() {
        if !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve the API on {addr} without a token: anyone who reaches it could \
                 create and delete jobs. Set DTLE_ADMIN_TOKEN (and DTLE_READ_TOKEN), or \
                 [[api.tokens]] in the config file, or listen on 127.0.0.1"
            );
        }
        tracing::warn!(
            %addr,
            "no API token is configured: the API is open to every user of this machine, so it \
             listens on loopback only (set DTLE_ADMIN_TOKEN to serve it further)"
        );
    }
    let tls = match section.map(|s| (&s.tls_cert, &s.tls_key, &s.tls_client_ca)) {
        Some((Some(cert), Some(key), client_ca)) => Some(ApiTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: client_ca.clone(),
        }),
        Some((None, None, None)) | None => None,
        Some(_) => anyhow::bail!(
            "the [api] section needs both tls_cert and tls_key (and tls_client_ca only with them)"
        ),
    };
    Ok(Listener {
        addr,
        access: Arc::new(access),
        tls,
    })
}

/// A running HTTP server; ends after its graceful shutdown.
type Server = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Serves `routes` behind the listener's tokens until `shutdown`; answers the bound address.
fn serve(
    listener: &Listener,
    audit: AuditLog,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, Server)> {
    let guarded = gateway::access::guarded(listener.access.clone(), Arc::new(audit), routes);
    let addr = listener.addr;
    match &listener.tls {
        None => {
            let (bound, server) = warp::serve(guarded)
                .try_bind_with_graceful_shutdown(addr, shutdown)
                .with_context(|| format!("listening on {addr}"))?;
            Ok((bound, Box::pin(server)))
        }
        Some(tls) => {
            let mut server = warp::serve(guarded)
                .tls()
                .cert_path(&tls.cert)
                .key_path(&tls.key);
            if let Some(ca) = &tls.client_ca {
                server = server.client_auth_required_path(ca);
            }
            let (bound, server) = server
                .try_bind_with_graceful_shutdown(addr, shutdown)
                .with_context(|| {
                    format!(
                        "listening with TLS on {addr} (certificate {}, key {})",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            Ok((bound, Box::pin(server)))
        }
    }
}

/// The config file's `nomad` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NomadSection {
    /// Nomad's HTTP address, e.g. `http://127.0.0.1:4646` (`--nomad-addr` wins).
    address: Option<String>,
    /// The region jobs are registered in and requests go to (default: the Nomad agent's).
    region: Option<String>,
    /// The namespace of the jobs (default: Nomad's `default`).
    namespace: Option<String>,
    /// The ACL token (`X-Nomad-Token`); without one, `NOMAD_TOKEN` is used, if set.
    token: Option<String>,
    /// How long one request to Nomad may take, seconds (default 30).
    timeout_s: Option<u64>,
    /// How long a stop with `purge_position` waits for the job's allocations to end, seconds
    /// (default 60).
    stop_timeout_s: Option<u64>,
}

impl std::fmt::Debug for NomadSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NomadSection")
            .field("address", &self.address)
            .field("region", &self.region)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "*"))
            .field("timeout_s", &self.timeout_s)
            .field("stop_timeout_s", &self.stop_timeout_s)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartConfig {
    /// Restarts allowed within `interval_s` (default 10).
    attempts: Option<u32>,
    /// The window, seconds (default 1800).
    interval_s: Option<u64>,
    /// First delay, seconds (default 1).
    delay_s: Option<u64>,
    /// Longest delay, seconds (default 60).
    max_delay_s: Option<u64>,
    /// Attempts at a transient failure inside a task before the task fails and is restarted
    /// (default 6).
    task_attempts: Option<u32>,
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().and_then(|e| e.to_str()) == Some("hcl") {
        hcl::from_str(&text)
            .with_context(|| format!("{} is not a valid agent config", path.display()))
    } else {
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid agent config", path.display()))
    }
}

/// The log filter the agent should use, read before logging starts.
pub fn log_level(args: &AgentArgs) -> Option<String> {
    args.config
        .as_deref()
        .and_then(|p| read_config(p).ok())
        .and_then(|c| c.log_level)
}

/// Where the embedded orchestrator's per-job log files go (`<state_dir>/logs`); none in front of
/// Nomad, where no task runs here.
pub fn job_log_dir(args: &AgentArgs) -> Option<PathBuf> {
    let file = args
        .config
        .as_deref()
        .and_then(|p| read_config(p).ok())
        .unwrap_or_default();
    if nomad_config(args, &file).is_some() {
        return None;
    }
    Some(state_dir(args.state_dir.clone(), file.state_dir).join("logs"))
}

/// The state folder: the flag, else the config file's, else `state/agent`.
fn state_dir(flag: Option<PathBuf>, file: Option<PathBuf>) -> PathBuf {
    flag.or(file)
        .unwrap_or_else(|| PathBuf::from("state/agent"))
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8190)));
    if let Some(nomad) = nomad_config(&args, &file) {
        for (given, what) in [
            (
                args.nats.is_some() || file.nats_url.is_some(),
                "the NATS URL",
            ),
            (file.nats.is_some(), "the nats section"),
            (
                args.state_dir.is_some() || file.state_dir.is_some(),
                "the state folder",
            ),
            (file.restart.is_some(), "the restart section"),
            (file.kill_timeout_s.is_some(), "kill_timeout_s"),
            (
                args.advertise.is_some() || file.advertise.is_some(),
                "the advertised address (Nomad's own addresses are shown)",
            ),
        ] {
            if given {
                tracing::warn!(
                    "{what} is not used in front of Nomad: the dtle plugin's config block (on \
                     each Nomad client) and the job's restart stanza say how tasks run"
                );
            }
        }
        let listener = listener(&args, &file, listen)?;
        // No state folder in front of Nomad: a key only from the environment.
        let keys = match args.secret_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(key) => {
                let key = secrets::parse_key(key, "DTLE_SECRET_KEY")?;
                let previous = previous_keys(args.secret_key_previous.as_deref())?;
                Some(KeyRing::from_keys(&key, &previous))
            }
            None => None,
        };
        return run_nomad(listener, nomad, keys);
    }
    let listener = listener(&args, &file, listen)?;
    let http_addr = super::advertise::advertised(
        args.advertise.as_deref().or(file.advertise.as_deref()),
        listen,
    )?;
    let nats_security = super::nats::security(&args.nats_security, file.nats.as_ref())
        .context("the agent's NATS settings")?;
    let section_url = file.nats.as_ref().and_then(|n| n.url.clone());
    if let (Some(top), Some(section)) = (&file.nats_url, &section_url) {
        anyhow::bail!(
            "the config file gives the NATS URL twice (nats_url = {top:?} and [nats] url = \
             {section:?}); keep one"
        );
    }
    let restart = file.restart.unwrap_or_default();
    let defaults = RestartPolicy::default();
    let config = EmbeddedConfig {
        state_dir: state_dir(args.state_dir, file.state_dir),
        nats_url: args
            .nats
            .or(file.nats_url)
            .or(section_url)
            .unwrap_or_else(|| "nats://127.0.0.1:8193".into()),
        node_name: file.node_name.unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "dtle".into())
        }),
        datacenter: file.datacenter.unwrap_or_else(|| "dc1".into()),
        http_addr,
        restart: RestartPolicy {
            attempts: restart.attempts.unwrap_or(defaults.attempts),
            interval: restart
                .interval_s
                .map_or(defaults.interval, Duration::from_secs),
            delay: restart.delay_s.map_or(defaults.delay, Duration::from_secs),
            max_delay: restart
                .max_delay_s
                .map_or(defaults.max_delay, Duration::from_secs),
        },
        task_retry: RetryPolicy {
            attempts: restart
                .task_attempts
                .unwrap_or(RetryPolicy::default().attempts),
            ..RetryPolicy::default()
        },
        kill_timeout: file
            .kill_timeout_s
            .map_or(DEFAULT_KILL_TIMEOUT, Duration::from_secs),
    };
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let keys = key_ring(
        args.secret_key.as_deref(),
        args.secret_key_previous.as_deref(),
        &config.state_dir,
    )?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let nats = nats_security.describe();
        let orchestrator =
            EmbeddedOrchestrator::start_secured(config.clone(), Arc::new(keys), nats_security)
                .map_err(|e| anyhow::anyhow!("starting the orchestrator: {e}"))?;
        let shared: gateway::api::handlers::Shared = Arc::new(orchestrator.clone());
        let routes = gateway::api::routes::routes(shared.clone()).boxed();
        let audit_path = config.state_dir.join("audit.log");
        let audit = AuditLog::open(&audit_path)
            .with_context(|| format!("opening the audit log {}", audit_path.display()))?;
        let (addr, server) = serve(&listener, audit, routes, stopping(shared))?;
        tracing::info!(%addr, tls = listener.tls.is_some(), advertise = %config.http_addr, state_dir = %config.state_dir.display(), nats = %config.nats_url, nats_security = %nats, "dtle agent listening");
        server.await;
        tracing::info!("stopping the tasks");
        // Waits until every task has ended, at most the kill timeout.
        let left = orchestrator.shutdown().await;
        if left.is_empty() {
            tracing::info!("every task has ended");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    // Force: whatever task is still running is dropped here, with the runtime (this waits only
    // for blocking work, at most 5 s).
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(ExitCode::SUCCESS)
}

/// Resolves at Ctrl-C or SIGTERM, once the blocking queries have been told to answer: the
/// server's graceful shutdown waits for every request in flight, and a watcher may be waiting
/// for minutes.
async fn stopping(orchestrator: gateway::api::handlers::Shared) {
    super::shutdown_signal().await;
    orchestrator.release_watchers();
}

/// The Nomad orchestrator's settings, when the agent is to run in front of Nomad.
fn nomad_config(args: &AgentArgs, file: &FileConfig) -> Option<NomadConfig> {
    let section = file.nomad.as_ref();
    let address = args
        .nomad_addr
        .clone()
        .or_else(|| section.and_then(|n| n.address.clone()))
        .filter(|a| !a.trim().is_empty())?;
    let token = section
        .and_then(|n| n.token.clone())
        .or_else(|| std::env::var("NOMAD_TOKEN").ok())
        .filter(|t| !t.is_empty());
    Some(NomadConfig {
        client: ClientConfig {
            address,
            region: section.and_then(|n| n.region.clone()),
            namespace: section.and_then(|n| n.namespace.clone()),
            token,
            timeout: Duration::from_secs(section.and_then(|n| n.timeout_s).unwrap_or(30)),
        },
        stop_timeout: Duration::from_secs(section.and_then(|n| n.stop_timeout_s).unwrap_or(60)),
    })
}

/// Serves the API in front of Nomad until Ctrl-C or SIGTERM: nothing runs here, so nothing is
/// left to stop.
fn run_nomad(
    listener: Listener,
    config: NomadConfig,
    keys: Option<KeyRing>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let client = &config.client;
        tracing::info!(
            nomad = %client.address,
            region = client.region.as_deref().unwrap_or("(the Nomad agent's)"),
            namespace = client.namespace.as_deref().unwrap_or("default"),
            token = if client.token.is_some() { "set" } else { "none" },
            "serving the API in front of Nomad"
        );
        let mut orchestrator = NomadOrchestrator::new(config.clone())
            .map_err(|e| anyhow::anyhow!("the Nomad orchestrator: {e}"))?;
        if let Some(keys) = keys {
            orchestrator = orchestrator.with_keys(Arc::new(keys));
        }
        let shared: gateway::api::handlers::Shared = Arc::new(orchestrator);
        let routes = gateway::api::routes::routes(shared.clone()).boxed();
        // No state folder in front of Nomad: the audit lines go to the log only.
        let (addr, server) = serve(&listener, AuditLog::to_tracing(), routes, stopping(shared))?;
        tracing::info!(%addr, tls = listener.tls.is_some(), "dtle agent listening");
        server.await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
