//! The launch, the handshake, health, BasePlugin, Fingerprint and Shutdown: no server needed.

use crate::harness::*;
use crate::support;
use driver::plugin::handshake::MAGIC_COOKIE_VALUE;
use driver::plugin::proto::base::{
    base_plugin_client::BasePluginClient, ConfigSchemaRequest, NomadConfig, NomadDriverConfig,
    PluginInfoRequest, PluginType, SetConfigRequest,
};
use driver::plugin::proto::drivers::{
    driver_capabilities::{FsIsolation, MountConfigs},
    driver_client::DriverClient,
    fingerprint_response::HealthState,
    CapabilitiesRequest, FingerprintRequest, TaskConfigSchemaRequest,
};
use driver::plugin::proto::go_plugin::{grpc_controller_client::GrpcControllerClient, Empty};
use driver::plugin::proto::hclspec::spec::Block;
use driver::plugin::proto::structs::attribute::Value as AttrValue;
use rmpv::Value;
use std::io::Read;
use std::time::Duration;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

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
    // Every key of dtle's own block is named too, so a dtle node's config loads unchanged; the
    // NATS URL's default is decided by the plugin (nats_url, else dtle's nats_advertise).
    for name in [
        "nats_url",
        "nats_advertise",
        "nats_bind",
        "data_dir",
        "api_addr",
        "nomad_addr",
        "consul",
    ] {
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

/// go-plugin's client logs a stderr line at its own level only when the line is hclog JSON.
#[tokio::test]
async fn logs_are_hclog_json_lines_on_stderr() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    let _addr = plugin.handshake();
    let stderr = plugin.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = rx.recv_timeout(WAIT).expect("a log line once serving");
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(entry["@level"], "info", "{line}");
    assert_eq!(entry["@message"], "dtle plugin serving", "{line}");
    assert!(entry["@timestamp"].is_string(), "{line}");
    assert!(
        entry["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{line}"
    );
}

/// The config's `log_level` applies from SetConfig on (hclog's names, any case).
#[tokio::test]
async fn log_level_from_the_config_applies() {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    let channel = connect(&plugin.handshake()).await;
    let stderr = plugin.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let configured_within = |rx: &std::sync::mpsc::Receiver<String>, wait: Duration| {
        let deadline = std::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("plugin configured") => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    let mut base = BasePluginClient::new(channel);
    for (level, logged) in [("ERROR", false), ("Info", true)] {
        base.set_config(SetConfigRequest {
            msgpack_config: cty_config_with(&[("log_level", Value::from(level))]),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await
        .expect("SetConfig");
        assert_eq!(
            configured_within(&rx, Duration::from_secs(2)),
            logged,
            "log_level {level}"
        );
    }
    let err = base
        .set_config(SetConfigRequest {
            msgpack_config: cty_config_with(&[("log_level", Value::from("loud"))]),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await
        .expect_err("not a level");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("log_level"), "{}", err.message());
}

/// As dtle's plugin did, `api_addr` serves the dtle 2.x API in front of the Nomad at
/// `nomad_addr`, beside the task stats.
#[tokio::test]
async fn api_addr_serves_the_dtle_api_in_front_of_nomad() {
    let api = format!("127.0.0.1:{}", free_loopback_port());
    // Nobody listens there: every job call must say Nomad cannot be reached.
    let nomad = format!("127.0.0.1:{}", free_loopback_port());
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let channel = connect(&plugin.handshake()).await;
    BasePluginClient::new(channel)
        .set_config(long_lived(cty_config_with(&[
            ("api_addr", Value::from(&*api)),
            ("nomad_addr", Value::from(&*nomad)),
        ])))
        .await
        .expect("SetConfig");
    let jobs = format!("http://{api}/v1/jobs");
    let (status, body) = tokio::task::spawn_blocking(move || support::http("GET", &jobs, None))
        .await
        .expect("the request");
    assert_eq!(status, 503, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("cannot reach Nomad") && text.contains(&nomad),
        "{text}"
    );
    let api2 = api.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        support::http(
            "GET",
            &format!("http://{api2}/v1/plugin/allocation/none/stats"),
            None,
        )
    })
    .await
    .expect("the request");
    assert_eq!(status, 404, "the plugin's own stats answer first: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("plugin")),
        "{body}"
    );
}
