//! Plugin mode on the secure nats-server: the `nats_*` keys of the plugin block, the password in
//! the plugin's environment (the Nomad client's), and dtle 4's job handoff (a Dest task with
//! `DestType` alone asks its Src for the job on `dtle.<job>.job`), all within the job's own
//! subjects and inboxes.

use super::*;
use driver::plugin::handshake::MAGIC_COOKIE_VALUE;
use driver::plugin::proto::base::base_plugin_client::BasePluginClient;
use driver::plugin::proto::drivers::driver_client::DriverClient;
use driver::plugin::proto::drivers::TaskConfig;
use harness::{connect, cty_config_with, cty_task, long_lived, start, stop_wait_destroy, Plugin};
use rmpv::Value;

/// `dtle` as a Nomad client starts it, with `env`; its stderr copied to `log`.
fn spawn(env: &[(&str, &str)], log: &Path) -> Plugin {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dtle"));
    for variable in NATS_VARIABLES {
        command.env_remove(variable);
    }
    let mut child = command
        .env("NOMAD_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE_VALUE)
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_PROTOCOL_VERSIONS", "2")
        .env("DTLE_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning dtle");
    if let Some(mut stderr) = child.stderr.take() {
        let mut file = std::fs::File::create(log).expect("log file");
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut file);
        });
    }
    Plugin {
        child,
        stderr: None,
    }
}

fn server(port: u16) -> Value {
    let bed = bed();
    Value::Map(vec![
        (Value::from("Host"), Value::from("127.0.0.1")),
        (Value::from("Port"), Value::from(port)),
        (Value::from("User"), Value::from(bed.user.as_str())),
        (Value::from("Password"), Value::from(bed.password.as_str())),
    ])
}

fn task(job: &str, role: &str, config: Vec<u8>) -> TaskConfig {
    TaskConfig {
        id: format!("0a1b2c3d-{job}/{role}/0123abcd"),
        name: role.into(),
        job_name: job.into(),
        task_group_name: role.to_lowercase(),
        alloc_id: format!("0a1b2c3d-{job}-{role}"),
        msgpack_driver_config: config,
        ..TaskConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_hands_the_job_over_within_the_jobs_own_subjects() {
    let bed = bed();
    let name = "sec_handoff";
    reset(name, name).await;
    let log = scratch(name).join("plugin.log");
    let password = nats_password(name);
    let mut plugin = spawn(&[("DTLE_NATS_PASSWORD", password.as_str())], &log);
    let channel = connect(&plugin.handshake()).await;
    let ca = bed.ca.display().to_string();
    BasePluginClient::new(channel.clone())
        .set_config(long_lived(cty_config_with(&[
            ("nats_url", Value::from(bed.nats_secure.as_str())),
            ("nats_user", Value::from(name)),
            ("nats_ca_file", Value::from(ca.as_str())),
        ])))
        .await
        .expect("SetConfig");
    let mut driver = DriverClient::new(channel);
    let dest = task(
        name,
        "dest",
        cty_task(vec![("DestType", Value::from("mysql"))]),
    );
    let whole_job = cty_task(vec![
        ("SrcConnectionConfig", server(bed.src)),
        ("DestConnectionConfig", server(bed.dst)),
        (
            "ReplicateDoDb",
            Value::Array(vec![Value::Map(vec![(
                Value::from("TableSchema"),
                Value::from(name),
            )])]),
        ),
        ("DestType", Value::from("mysql")),
    ]);
    let dest_id = start(&mut driver, dest).await.config.expect("echoed").id;
    let src_id = start(&mut driver, task(name, "src", whole_job))
        .await
        .config
        .expect("echoed")
        .id;
    converge(name).await;
    change_source(name).await;
    converge(name).await;
    stop_wait_destroy(&mut driver, [&src_id, &dest_id]).await;
    // The Dest's config names no target: the rows arrived because the handoff worked.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains(r#""nats":"user \"sec_handoff\""#), "{text}");
    assert_no_secret("the plugin's log", &text);
}

/// A `nats_*` key that cannot work fails SetConfig, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn set_config_refuses_a_nats_setting_that_cannot_work() {
    let log = scratch("sec_plugin_bad").join("plugin.log");
    let mut plugin = spawn(&[], &log);
    let channel = connect(&plugin.handshake()).await;
    let err = BasePluginClient::new(channel)
        .set_config(long_lived(cty_config_with(&[
            ("nats_user", Value::from("sec_handoff")),
            ("nats_password", Value::from("sec_handoff-pass")),
            (
                "nats_ca_file",
                Value::from("/nonexistent/sec/plugin-ca.pem"),
            ),
        ])))
        .await
        .expect_err("refused");
    let message = err.message();
    assert!(
        message.contains("nats_*") && message.contains("/nonexistent/sec/plugin-ca.pem"),
        "{message}"
    );
    assert_no_secret("SetConfig's refusal", message);
}
