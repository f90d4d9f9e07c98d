//! The plugin under test and the calls every test makes: spawning `dtle` as a Nomad client does,
//! the handshake, go-cty msgpack configs, and the task life cycle.

use crate::support;
use driver::plugin::handshake::MAGIC_COOKIE_VALUE;
use driver::plugin::proto::base::{base_plugin_client::BasePluginClient, SetConfigRequest};
use driver::plugin::proto::base::{NomadConfig, NomadDriverConfig};
use driver::plugin::proto::drivers::{
    driver_client::DriverClient, DestroyTaskRequest, InspectTaskRequest, RecoverTaskRequest,
    SignalTaskRequest, StartTaskRequest, StopTaskRequest, TaskConfig, TaskHandle, TaskState,
    WaitTaskRequest, WaitTaskResponse,
};
use rmpv::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A plugin process, killed when dropped.
pub(crate) struct Plugin {
    pub(crate) child: Child,
    pub(crate) stderr: Option<ChildStderr>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Plugin {
    /// Starts `dtle` as a Nomad client does: no arguments, the cookie and go-plugin's variables.
    pub(crate) fn spawn(cookie: &str) -> Plugin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dtle"))
            .env("NOMAD_PLUGIN_MAGIC_COOKIE", cookie)
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env_remove("DTLE_LOG")
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
    pub(crate) fn handshake(&mut self) -> String {
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
    pub(crate) fn drain_stderr(&mut self) {
        if let Some(mut stderr) = self.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            });
        }
    }

    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
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

pub(crate) async fn connect(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint URI")
        .connect_timeout(WAIT)
        .connect()
        .await
        .expect("connecting to the plugin")
}

/// A config block as go-cty msgpack encodes it: a map of every attribute of the plugin's
/// schema, nil when unset.
pub(crate) fn cty_config(nats_url: Value, data_dir: Value, api_addr: Value) -> Vec<u8> {
    cty_config_with(&[
        ("nats_url", nats_url),
        ("data_dir", data_dir),
        ("api_addr", api_addr),
    ])
}

/// [`cty_config`] with any attributes set.
pub(crate) fn cty_config_with(set: &[(&str, Value)]) -> Vec<u8> {
    let object = Value::Map(
        driver::plugin::config::attribute_names()
            .into_iter()
            .map(|name| {
                let value = set
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map_or(Value::Nil, |(_, value)| value.clone());
                (Value::from(name), value)
            })
            .collect(),
    );
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &object).expect("encoding to a Vec");
    bytes
}

pub(crate) fn cty_server(port: u16) -> Value {
    Value::Map(vec![
        (Value::from("Host"), Value::from("127.0.0.1")),
        (Value::from("Port"), Value::from(port)),
        (Value::from("User"), Value::from(support::USER)),
        (Value::from("Password"), Value::from(support::PASSWORD)),
        (Value::from("Charset"), Value::Nil),
    ])
}

/// A task config as go-cty msgpack (only the attributes the tests use, unset ones nil).
pub(crate) fn cty_task(pairs: Vec<(&str, Value)>) -> Vec<u8> {
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
pub(crate) fn task_config(job: &str, role: &str, schema: &str) -> TaskConfig {
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
pub(crate) fn whole_job_config(job: &str, role: &str, schema: &str) -> TaskConfig {
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
pub(crate) async fn configured_plugin() -> (Plugin, DriverClient<Channel>) {
    configured_plugin_with(Value::Nil, Value::Nil).await
}

/// A plugin configured as a Nomad client configures its long-lived instance (with the client's
/// settings), with `data_dir` and `api_addr` as given.
pub(crate) async fn configured_plugin_with(
    data_dir: Value,
    api_addr: Value,
) -> (Plugin, DriverClient<Channel>) {
    let mut plugin = Plugin::spawn(MAGIC_COOKIE_VALUE);
    plugin.drain_stderr();
    let channel = connect(&plugin.handshake()).await;
    BasePluginClient::new(channel.clone())
        .set_config(long_lived(cty_config(
            Value::from(support::NATS_URL),
            data_dir,
            api_addr,
        )))
        .await
        .expect("SetConfig");
    (plugin, DriverClient::new(channel))
}

pub(crate) async fn start(driver: &mut DriverClient<Channel>, task: TaskConfig) -> TaskHandle {
    driver
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .expect("StartTask")
        .into_inner()
        .handle
        .expect("a handle")
}

pub(crate) async fn state_of(driver: &mut DriverClient<Channel>, id: &str) -> TaskState {
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
pub(crate) fn wait_in_background(
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

pub(crate) async fn stop_wait_destroy(driver: &mut DriverClient<Channel>, ids: [&str; 2]) {
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

pub(crate) async fn signal(driver: &mut DriverClient<Channel>, id: &str, signal: &str) {
    driver
        .signal_task(SignalTaskRequest {
            task_id: id.into(),
            signal: signal.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("SignalTask {signal}: {e}"));
}

pub(crate) async fn target_rows(schema: &str) -> u64 {
    use mysql_async::prelude::Queryable;
    let mut dst = support::connect(support::DST_PORT).await;
    dst.query_first(format!("SELECT COUNT(*) FROM `{schema}`.t"))
        .await
        .expect("counting")
        .expect("a row")
}

/// SetConfig as the client sends it to its long-lived instance: the block and the client's own
/// settings (its default plugin port range).
pub(crate) fn long_lived(msgpack_config: Vec<u8>) -> SetConfigRequest {
    SetConfigRequest {
        msgpack_config,
        nomad_config: Some(NomadConfig {
            driver: Some(NomadDriverConfig {
                client_max_port: 14512,
                client_min_port: 14000,
            }),
        }),
        plugin_api_version: "v0.1.0".into(),
    }
}

/// A loopback port nothing listens on (at the moment of asking).
pub(crate) fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A fresh `schema` on the source with table `t (id, v)` holding `rows` (SQL tuples), and no
/// position of `job` on the target.
pub(crate) async fn table_t(schema: &str, job: &str, rows: &str) {
    support::reset(schema, job).await;
    support::exec(
        support::SRC_PORT,
        &format!(
            "CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO `{schema}`.t VALUES {rows}"
        ),
    )
    .await;
}

/// RecoverTask for each handle as a restarted client reloads it (no task config bytes, no
/// task_id in the request), `times` times each; the tasks' ids.
pub(crate) async fn recover_reloaded(
    driver: &mut DriverClient<Channel>,
    handles: &[TaskHandle],
    times: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for handle in handles {
        let mut handle = handle.clone();
        if let Some(config) = handle.config.as_mut() {
            config.msgpack_driver_config.clear();
            ids.push(config.id.clone());
        }
        for _ in 0..times {
            driver
                .recover_task(RecoverTaskRequest {
                    task_id: String::new(),
                    handle: Some(handle.clone()),
                })
                .await
                .expect("RecoverTask");
        }
    }
    ids
}
