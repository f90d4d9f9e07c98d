//! Plugin mode through the protocol a Nomad client speaks: `dtle` started with go-plugin's
//! environment, its handshake line read from stdout, then gRPC over TCP (health, BasePlugin,
//! GRPCController). Needs no database or NATS server.

use driver::plugin::handshake::MAGIC_COOKIE_VALUE;
use driver::plugin::proto::base::{
    base_plugin_client::BasePluginClient, ConfigSchemaRequest, NomadConfig, NomadDriverConfig,
    PluginInfoRequest, PluginType, SetConfigRequest,
};
use driver::plugin::proto::drivers::{
    driver_capabilities::{FsIsolation, MountConfigs},
    driver_client::DriverClient,
    CapabilitiesRequest, FingerprintRequest, TaskConfigSchemaRequest,
};
use driver::plugin::proto::go_plugin::{grpc_controller_client::GrpcControllerClient, Empty};
use driver::plugin::proto::hclspec::spec::Block;
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
async fn describes_the_task_driver_and_runs_no_task_yet() {
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
    assert!(!capabilities.send_signals && !capabilities.exec);
    assert_eq!(capabilities.fs_isolation, FsIsolation::None as i32);
    assert_eq!(capabilities.mount_configs, MountConfigs::NoMounts as i32);

    let err = driver
        .fingerprint(FingerprintRequest {})
        .await
        .expect_err("Fingerprint is not served yet");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(err.message().contains("Fingerprint"), "{}", err.message());
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
