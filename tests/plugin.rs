//! Plugin mode through the protocol a Nomad client speaks: `dtle` started with go-plugin's
//! environment, its handshake line read from stdout, then gRPC over TCP (health, BasePlugin,
//! GRPCController, Driver). The task tests replicate through the test bed (source, target, NATS);
//! the others need no server.

mod support;

use driver::plugin::handshake::MAGIC_COOKIE_VALUE;
use driver::plugin::proto::base::{
    base_plugin_client::BasePluginClient, ConfigSchemaRequest, NomadConfig, NomadDriverConfig,
    PluginInfoRequest, PluginType, SetConfigRequest,
};
use driver::plugin::proto::drivers::{
    driver_capabilities::{FsIsolation, MountConfigs},
    driver_client::DriverClient,
    fingerprint_response::HealthState,
    CapabilitiesRequest, DestroyTaskRequest, FingerprintRequest, InspectTaskRequest,
    RecoverTaskRequest, SignalTaskRequest, StartTaskRequest, StopTaskRequest, TaskConfig,
    TaskConfigSchemaRequest, TaskEventsRequest, TaskHandle, TaskState, TaskStatsRequest,
    WaitTaskRequest, WaitTaskResponse,
};
use driver::plugin::proto::go_plugin::{grpc_controller_client::GrpcControllerClient, Empty};
use driver::plugin::proto::hclspec::spec::Block;
use driver::plugin::proto::structs::attribute::Value as AttrValue;
use rmpv::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

const WAIT: Duration = Duration::from_secs(30);

/// A plugin process, killed when dropped.
struct Plugin {
    child: Child,
    stderr: Option<ChildStderr>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Plugin {
    /// Starts `dtle` as a Nomad client does: no arguments, the cookie and go-plugin's variables.
    fn spawn(cookie: &str) -> Plugin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dtle"))
            .env("NOMAD_PLUGIN_MAGIC_COOKIE", cookie)
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning dtle");
        let stderr = child.stderr.take();
        Plugin { child, stderr }
    }

    /// Reads the handshake line (with a timeout) and returns the address it announces. The rest
    /// of stdout is drained on a thread, which fails the test if anything more arrives.
    fn handshake(&mut self) -> String {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            assert!(
                rest.is_empty(),
                "dtle wrote to stdout after the handshake: {rest:?}"
            );
        });
        let line = rx.recv_timeout(WAIT).expect("no handshake line in time");
        let fields: Vec<&str> = line.trim_end_matches('\n').split('|').collect();
        assert_eq!(fields.len(), 5, "handshake line {line:?}");
        assert_eq!(&fields[..3], ["1", "2", "tcp"], "handshake line {line:?}");
        assert_eq!(fields[4], "grpc", "handshake line {line:?}");
        let addr = fields[3].to_owned();
        let port: u16 = addr
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a loopback TCP address: {addr}"));
        assert!(
            (10000..=25000).contains(&port),
            "port {port} outside the range"
        );
        addr
    }

    /// Keeps reading stderr on a thread so that logs never block the plugin.
    fn drain_stderr(&mut self) {
        if let Some(mut stderr) = self.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            });
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for dtle") {
                return status;
            }
            assert!(Instant::now() < deadline, "dtle did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn connect(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint URI")
        .connect_timeout(WAIT)
        .connect()
        .await
        .expect("connecting to the plugin")
}

/// A config block as go-cty msgpack encodes it: a map of every attribute, nil when unset.
fn cty_config(nats_url: Value, data_dir: Value, api_addr: Value) -> Vec<u8> {
    let object = Value::Map(vec![
        (Value::from("api_addr"), api_addr),
        (Value::from("data_dir"), data_dir),
        (Value::from("nats_url"), nats_url),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &object).expect("encoding to a Vec");
    bytes
}

#[tokio::test]
async fn serves_health_and_the_base_plugin() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let channel = connect(&plugin.handshake()).await;

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("Health/Check")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let mut base = BasePluginClient::new(channel);
    let info = base
        .plugin_info(PluginInfoRequest {})
        .await
        .expect("PluginInfo")
        .into_inner();
    assert_eq!(info.r#type, PluginType::Driver as i32);
    assert_eq!(info.name, "dtle");
    assert_eq!(info.plugin_api_versions, ["v0.1.0"]);
    assert_eq!(info.plugin_version, env!("CARGO_PKG_VERSION"));

    let schema = base
        .config_schema(ConfigSchemaRequest {})
        .await
        .expect("ConfigSchema")
        .into_inner();
    let Some(Block::Object(root)) = schema.spec.and_then(|s| s.block) else {
        panic!("the config schema is not an Object");
    };
    let Some(Block::Default(nats)) = root.attributes["nats_url"].block.clone() else {
        panic!("nats_url has no default");
    };
    let Some(Block::Literal(literal)) = nats.default.and_then(|d| d.block) else {
        panic!("nats_url's default is not a Literal");
    };
    assert_eq!(literal.value, "\"nats://127.0.0.1:8193\"");
    for name in ["data_dir", "api_addr"] {
        assert!(
            matches!(&root.attributes[name].block, Some(Block::Attr(a)) if a.r#type == "string"),
            "{name}"
        );
    }

    // The long-lived instance's SetConfig: the block and the client's port range.
    base.set_config(SetConfigRequest {
        msgpack_config: cty_config(
            Value::from("nats://127.0.0.1:4222"),
            Value::from("/var/lib/dtle"),
            Value::Nil,
        ),
        nomad_config: Some(NomadConfig {
            driver: Some(NomadDriverConfig {
                client_max_port: 14512,
                client_min_port: 14000,
            }),
        }),
        plugin_api_version: "v0.1.0".into(),
    })
    .await
    .expect("SetConfig");

    // A mistyped attribute is refused with its name.
    let err = base
        .set_config(SetConfigRequest {
            msgpack_config: cty_config(Value::from(4222), Value::Nil, Value::Nil),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await
        .expect_err("a number for nats_url");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("`nats_url`"), "{}", err.message());

    let err = base
        .set_config(SetConfigRequest {
            msgpack_config: Vec::new(),
            nomad_config: None,
            plugin_api_version: "v0.2.0".into(),
        })
        .await
        .expect_err("an unknown API version");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn describes_the_task_driver_and_fingerprints_healthy() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let mut driver = DriverClient::new(connect(&plugin.handshake()).await);

    let schema = driver
        .task_config_schema(TaskConfigSchemaRequest {})
        .await
        .expect("TaskConfigSchema")
        .into_inner();
    let Some(Block::Object(root)) = schema.spec.and_then(|s| s.block) else {
        panic!("the task config schema is not an Object");
    };
    for name in [
        "SrcConnectionConfig",
        "DestConnectionConfig",
        "ConnectionConfig",
    ] {
        assert!(
            matches!(&root.attributes[name].block, Some(Block::BlockValue(b)) if b.name == name),
            "{name}"
        );
    }
    assert!(matches!(
        &root.attributes["ReplicateDoDb"].block,
        Some(Block::BlockList(_))
    ));
    for (name, hcl_type) in [("Gtid", "string"), ("ChunkSize", "number")] {
        assert!(
            matches!(&root.attributes[name].block, Some(Block::Attr(a)) if a.r#type == hcl_type),
            "{name}"
        );
    }

    let capabilities = driver
        .capabilities(CapabilitiesRequest {})
        .await
        .expect("Capabilities")
        .into_inner()
        .capabilities
        .expect("capabilities are set");
    assert!(capabilities.send_signals && !capabilities.exec);
    assert_eq!(capabilities.fs_isolation, FsIsolation::None as i32);
    assert_eq!(capabilities.mount_configs, MountConfigs::NoMounts as i32);

    // The first fingerprint comes at once (the client waits for it), healthy, with attributes.
    let mut fingerprints = driver
        .fingerprint(FingerprintRequest {})
        .await
        .expect("Fingerprint")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), fingerprints.message())
        .await
        .expect("a fingerprint at once")
        .expect("the stream is healthy")
        .expect("the stream is open");
    assert_eq!(first.health, HealthState::Healthy as i32);
    assert_eq!(
        first.attributes["driver.dtle"].value,
        Some(AttrValue::BoolVal(true))
    );
    assert_eq!(
        first.attributes["driver.dtle.version"].value,
        Some(AttrValue::StringVal(env!("CARGO_PKG_VERSION").into()))
    );
    // Open, not ended, after the first message.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fingerprints.message())
            .await
            .is_err(),
        "the fingerprint stream ended or repeated at once"
    );
}

#[tokio::test]
async fn shutdown_exits_zero() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let channel = connect(&plugin.handshake()).await;
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown");
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn survives_a_dead_stderr_pipe() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    let channel = connect(&plugin.handshake()).await;
    // As after a client restart: nobody reads stderr any more (SetConfig logs a line each time).
    // Stdout is still read by the handshake thread, but nothing may be written there anyway.
    drop(plugin.stderr.take());
    let mut base = BasePluginClient::new(channel);
    for _ in 0..3 {
        base.set_config(SetConfigRequest {
            msgpack_config: cty_config(Value::Nil, Value::Nil, Value::Nil),
            nomad_config: None,
            plugin_api_version: "0.1.0".into(),
        })
        .await
        .unwrap_or_else(|err| {
            let status = plugin.child.try_wait();
            panic!("SetConfig with stderr closed: {err:?}; dtle: {status:?}")
        });
    }
    base.plugin_info(PluginInfoRequest {})
        .await
        .expect("PluginInfo with stderr closed");
    assert!(plugin.child.try_wait().expect("try_wait").is_none());
}

#[test]
fn a_wrong_cookie_exits_one_with_a_sentence() {
    let mut plugin = Plugin::spawn("not-the-cookie");
    let mut stderr = String::new();
    if let Some(mut pipe) = plugin.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("reading stderr");
    }
    let mut stdout = String::new();
    if let Some(mut pipe) = plugin.child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("reading stdout");
    }
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(stdout.is_empty(), "stdout: {stdout:?}");
    let stderr = stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(
        stderr.contains("NOMAD_PLUGIN_MAGIC_COOKIE") && stderr.ends_with('.'),
        "stderr: {stderr:?}"
    );
}

/// A server block as go-cty encodes it.
fn cty_server(port: u16) -> Value {
    Value::Map(vec![
        (Value::from("Host"), Value::from("127.0.0.1")),
        (Value::from("Port"), Value::from(port)),
        (Value::from("User"), Value::from(support::USER)),
        (Value::from("Password"), Value::from(support::PASSWORD)),
        (Value::from("Charset"), Value::Nil),
    ])
}

/// A task config as go-cty msgpack (only the attributes the tests use, unset ones nil).
fn cty_task(pairs: Vec<(&str, Value)>) -> Vec<u8> {
    let object = Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    );
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &object).expect("encoding to a Vec");
    bytes
}

/// dtle's older shape: each task its own ConnectionConfig; the Src replicates `schema`.
fn task_config(job: &str, role: &str, schema: &str) -> TaskConfig {
    let config = match role {
        "Src" => cty_task(vec![
            ("ConnectionConfig", cty_server(support::SRC_PORT)),
            (
                "ReplicateDoDb",
                Value::Array(vec![Value::Map(vec![
                    (Value::from("TableSchema"), Value::from(schema)),
                    (Value::from("TableSchemaRegex"), Value::Nil),
                    (Value::from("Tables"), Value::Array(vec![])),
                ])]),
            ),
            ("Gtid", Value::Nil),
        ]),
        _ => cty_task(vec![("ConnectionConfig", cty_server(support::DST_PORT))]),
    };
    TaskConfig {
        id: format!("0a1b2c3d-{job}/{role}/0123abcd"),
        name: role.into(),
        job_name: job.into(),
        task_group_name: role.to_lowercase(),
        alloc_id: format!("0a1b2c3d-{job}"),
        msgpack_driver_config: config,
        ..TaskConfig::default()
    }
}

/// dtle's later shape, one config for the whole job, given to both tasks alike.
fn whole_job_config(job: &str, role: &str, schema: &str) -> TaskConfig {
    let mut task = task_config(job, role, schema);
    task.msgpack_driver_config = cty_task(vec![
        ("SrcConnectionConfig", cty_server(support::SRC_PORT)),
        ("DestConnectionConfig", cty_server(support::DST_PORT)),
        (
            "ReplicateDoDb",
            Value::Array(vec![Value::Map(vec![
                (Value::from("TableSchema"), Value::from(schema)),
                (Value::from("Tables"), Value::Array(vec![])),
            ])]),
        ),
        ("DestType", Value::from("mysql")),
        ("ChunkSize", Value::from(2)),
    ]);
    task
}

/// A configured plugin and its Driver client.
async fn configured_plugin() -> (Plugin, DriverClient<Channel>) {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let channel = connect(&plugin.handshake()).await;
    BasePluginClient::new(channel.clone())
        .set_config(SetConfigRequest {
            msgpack_config: cty_config(Value::from(support::NATS_URL), Value::Nil, Value::Nil),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await
        .expect("SetConfig");
    (plugin, DriverClient::new(channel))
}

async fn start(driver: &mut DriverClient<Channel>, task: TaskConfig) -> TaskHandle {
    driver
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .expect("StartTask")
        .into_inner()
        .handle
        .expect("a handle")
}

async fn state_of(driver: &mut DriverClient<Channel>, id: &str) -> TaskState {
    let status = driver
        .inspect_task(InspectTaskRequest { task_id: id.into() })
        .await
        .expect("InspectTask")
        .into_inner()
        .task
        .expect("a status");
    assert_eq!(status.id, id);
    assert!(status.started_at.is_some());
    TaskState::try_from(status.state).expect("a known state")
}

/// Waits on a task from a task of its own (so that many waits can be pending at once).
fn wait_in_background(
    driver: &DriverClient<Channel>,
    id: &str,
) -> tokio::task::JoinHandle<WaitTaskResponse> {
    let mut driver = driver.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        driver
            .wait_task(WaitTaskRequest { task_id: id })
            .await
            .expect("WaitTask")
            .into_inner()
    })
}

async fn stop_wait_destroy(driver: &mut DriverClient<Channel>, ids: [&str; 2]) {
    let waits: Vec<_> = ids
        .iter()
        .flat_map(|id| {
            [
                wait_in_background(driver, id),
                wait_in_background(driver, id),
            ]
        })
        .collect();
    for id in ids {
        driver
            .stop_task(StopTaskRequest {
                task_id: id.into(),
                timeout: None,
                signal: String::new(),
            })
            .await
            .expect("StopTask");
    }
    for wait in waits {
        let exit = tokio::time::timeout(WAIT, wait)
            .await
            .expect("WaitTask answers after StopTask")
            .expect("the waiter");
        assert_eq!(exit.result.expect("a result").exit_code, 0, "{}", exit.err);
        assert_eq!(exit.err, "");
    }
    for id in ids {
        assert_eq!(state_of(driver, id).await, TaskState::Exited);
        driver
            .destroy_task(DestroyTaskRequest {
                task_id: id.into(),
                force: false,
            })
            .await
            .expect("DestroyTask");
        let err = driver
            .inspect_task(InspectTaskRequest { task_id: id.into() })
            .await
            .expect_err("destroyed");
        assert_eq!(err.code(), tonic::Code::NotFound);
    }
}

#[tokio::test]
async fn runs_src_and_dest_through_start_wait_stop_destroy() {
    let (schema, job) = ("e2e_plugin_repl", "e2e_plugin_repl");
    support::reset(schema, job).await;
    support::exec(
        support::SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO `{schema}`.t VALUES (1, 'before')"
        ),
    )
    .await;
    let (_plugin, mut driver) = configured_plugin().await;
    let mut events = driver
        .task_events(TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();

    // A Dest without a target is refused with the job model's words.
    let mut bad = task_config(job, "Dest", schema);
    bad.msgpack_driver_config = cty_task(vec![("DestType", Value::from("mysql"))]);
    let err = driver
        .start_task(StartTaskRequest { task: Some(bad) })
        .await
        .expect_err("no target");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("Dest task needs"),
        "{}",
        err.message()
    );

    let dest = start(&mut driver, task_config(job, "Dest", schema)).await;
    let src = start(&mut driver, task_config(job, "Src", schema)).await;
    assert_eq!(dest.state, TaskState::Running as i32);
    assert_eq!(dest.version, 1);
    assert!(!src.driver_state.is_empty());
    let (dest_id, src_id) = (
        dest.config.expect("echoed").id,
        src.config.expect("echoed").id,
    );
    let event = tokio::time::timeout(WAIT, events.message())
        .await
        .expect("an event")
        .expect("the stream")
        .expect("open");
    assert_eq!(event.task_id, dest_id);

    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (2, 'after')"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    for id in [&dest_id, &src_id] {
        assert_eq!(state_of(&mut driver, id).await, TaskState::Running);
    }

    let mut stats = driver
        .task_stats(TaskStatsRequest {
            task_id: src_id.clone(),
            collection_interval: None,
        })
        .await
        .expect("TaskStats")
        .into_inner();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), stats.message())
            .await
            .expect("stats every second")
            .expect("the stream")
            .expect("open")
            .stats
            .expect("stats");
        assert_eq!(message.id, src_id);
        assert!(message.timestamp.is_some());
        let usage = message.agg_resource_usage.expect("usage");
        assert!(usage.memory.expect("memory").rss > 0);
    }

    let err = driver
        .destroy_task(DestroyTaskRequest {
            task_id: src_id.clone(),
            force: false,
        })
        .await
        .expect_err("running");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    stop_wait_destroy(&mut driver, [&src_id, &dest_id]).await;

    let unknown = "no-such-alloc/Src/00000000".to_owned();
    let err = driver
        .wait_task(WaitTaskRequest {
            task_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = driver
        .stop_task(StopTaskRequest {
            task_id: unknown.clone(),
            timeout: None,
            signal: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = driver
        .task_stats(TaskStatsRequest {
            task_id: unknown,
            collection_interval: None,
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn recovers_tasks_from_driver_state_after_kill_9() {
    let (schema, job) = ("e2e_plugin_recover", "e2e_plugin_recover");
    support::reset(schema, job).await;
    support::exec(
        support::SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO `{schema}`.t VALUES (1, 'first')"
        ),
    )
    .await;
    let (mut first, mut driver) = configured_plugin().await;
    let handles = [
        start(&mut driver, task_config(job, "Dest", schema)).await,
        start(&mut driver, task_config(job, "Src", schema)).await,
    ];
    for i in 2..=20 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'before kill')"),
        )
        .await;
    }
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;

    // SIGKILL, then rows written while no task runs.
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    for i in 21..=40 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'while down')"),
        )
        .await;
    }

    // A new plugin, and the handles as a restarted client reloads them: no task config bytes,
    // no task_id in the request.
    let (_second, mut driver) = configured_plugin().await;
    let mut ids = Vec::new();
    for handle in &handles {
        let mut handle = handle.clone();
        if let Some(config) = handle.config.as_mut() {
            config.msgpack_driver_config.clear();
            ids.push(config.id.clone());
        }
        for _ in 0..2 {
            // The second finds the task running.
            driver
                .recover_task(RecoverTaskRequest {
                    task_id: String::new(),
                    handle: Some(handle.clone()),
                })
                .await
                .expect("RecoverTask");
        }
    }
    for i in 41..=60 {
        support::exec(
            support::SRC_PORT,
            &format!("INSERT INTO `{schema}`.t VALUES ({i}, 'after recovery')"),
        )
        .await;
    }
    support::converge(schema, "t", "id", Duration::from_secs(120)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    for id in &ids {
        assert_eq!(state_of(&mut driver, id).await, TaskState::Running);
    }
    stop_wait_destroy(&mut driver, [&ids[1], &ids[0]]).await;
}

#[tokio::test]
async fn runs_a_job_whose_tasks_share_one_whole_job_config() {
    let (schema, job) = ("e2e_plugin_shared", "e2e_plugin_shared");
    support::reset(schema, job).await;
    support::exec(
        support::SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO `{schema}`.t VALUES (1, 'a'), (2, 'b'), (3, 'c')"
        ),
    )
    .await;
    let (_plugin, mut driver) = configured_plugin().await;
    let dest = start(&mut driver, whole_job_config(job, "dest", schema)).await;
    let src = start(&mut driver, whole_job_config(job, "SRC", schema)).await;
    support::exec(
        support::SRC_PORT,
        &format!("UPDATE `{schema}`.t SET v = 'changed' WHERE id = 2"),
    )
    .await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    let ids = [
        src.config.expect("echoed").id,
        dest.config.expect("echoed").id,
    ];
    stop_wait_destroy(&mut driver, [&ids[0], &ids[1]]).await;
}

async fn signal(driver: &mut DriverClient<Channel>, id: &str, signal: &str) {
    driver
        .signal_task(SignalTaskRequest {
            task_id: id.into(),
            signal: signal.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("SignalTask {signal}: {e}"));
}

async fn target_rows(schema: &str) -> u64 {
    use mysql_async::prelude::Queryable;
    let mut dst = support::connect(support::DST_PORT).await;
    dst.query_first(format!("SELECT COUNT(*) FROM `{schema}`.t"))
        .await
        .expect("counting")
        .expect("a row")
}

#[tokio::test]
async fn sigstop_pauses_and_sigcont_resumes_a_task() {
    let (schema, job) = ("e2e_plugin_pause", "e2e_plugin_pause");
    support::reset(schema, job).await;
    support::exec(
        support::SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO `{schema}`.t VALUES (1, 'a')"
        ),
    )
    .await;
    let (_plugin, mut driver) = configured_plugin().await;
    let dest = start(&mut driver, task_config(job, "Dest", schema)).await;
    let src = start(&mut driver, task_config(job, "Src", schema)).await;
    let ids = [
        src.config.expect("echoed").id,
        dest.config.expect("echoed").id,
    ];
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;

    let err = driver
        .signal_task(SignalTaskRequest {
            task_id: ids[0].clone(),
            signal: "SIGHUP".into(),
        })
        .await
        .expect_err("not a pause or resume");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    signal(&mut driver, &ids[0], "SIGSTOP").await;
    let waiting = wait_in_background(&driver, &ids[0]);
    support::exec(
        support::SRC_PORT,
        &format!("INSERT INTO `{schema}`.t VALUES (2, 'while paused')"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(target_rows(schema).await, 1, "replicated while paused");
    assert_eq!(state_of(&mut driver, &ids[0]).await, TaskState::Running);
    assert!(
        !waiting.is_finished(),
        "WaitTask answered for a paused task"
    );
    waiting.abort();

    signal(&mut driver, &ids[0], "SIGCONT").await;
    support::converge(schema, "t", "id", Duration::from_secs(90)).await;
    assert!(support::gtids_recorded_once(job).await > 0);
    stop_wait_destroy(&mut driver, [&ids[0], &ids[1]]).await;
}
