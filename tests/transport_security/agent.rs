//! `dtle agent` on the secure nats-server: the `[nats]` section of its config file, the password
//! in `DTLE_NATS_PASSWORD`, a job over TLS to both databases shown back by the API with its TLS
//! fields; no secret in the agent's log, the API's answers or its state folder.

use super::*;
use serde_json::Value;
use support::http;

/// Every file under `dir`, read as text (lossily).
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

/// A `dtle agent` process with a config file, killed when dropped.
struct Agent {
    child: std::process::Child,
    log: PathBuf,
    port: u16,
}

impl Agent {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(test: &str, port: u16, config: &str, env: &[(&str, &str)]) -> (Agent, PathBuf) {
    let dir = scratch(test);
    let state_dir = dir.join("agent-state");
    let _ = std::fs::remove_dir_all(&state_dir);
    let config_file = dir.join("agent.toml");
    std::fs::write(&config_file, config).expect("config file");
    let log = dir.join("agent.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_dtle"));
    for variable in NATS_VARIABLES {
        command.env_remove(variable);
    }
    let child = command
        .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config_file)
        .arg("--state-dir")
        .arg(&state_dir)
        .envs(env.iter().copied())
        .env("DTLE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("dtle agent starts");
    let agent = Agent { child, log, port };
    eventually_blocking("the agent listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| format!("{e}; log:\n{}", agent.log_text()))
    });
    (agent, state_dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_runs_a_job_through_the_secure_server_over_tls_to_both_databases() {
    let bed = bed();
    let name = "sec_agent";
    reset(name, name).await;
    let ca = bed.ca.display().to_string();
    let config = format!(
        "[nats]\nurl = \"{}\"\nuser = \"{name}\"\nca_file = \"{ca}\"\nrequire_tls = true\n",
        bed.nats_secure
    );
    let password = nats_password(name);
    let (agent, state_dir) = start_agent(
        name,
        18810,
        &config,
        &[("DTLE_NATS_PASSWORD", password.as_str())],
    );
    // The source by a name its certificate does not hold: VERIFY_CA checks the authority only.
    let source = connection(
        "localhost",
        bed.src,
        &bed.tls_user,
        &bed.tls_password,
        &format!(r#", "SslMode": "VERIFY_CA", "SslCa": "{ca}""#),
    );
    let target = connection(
        "127.0.0.1",
        bed.dst,
        &bed.tls_user,
        &bed.tls_password,
        r#", "SslMode": "REQUIRED""#,
    );
    let (status, body) = http(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&job(name, &source, &target)),
    );
    assert_eq!(status, 200, "{body}");
    converge(name).await;
    change_source(name).await;
    converge(name).await;

    let (status, shown) = http("GET", &agent.url(&format!("/v1/job/{name}")), None);
    assert_eq!(status, 200, "{shown}");
    let connection_of = |task: usize| shown["Tasks"][task]["Config"]["ConnectionConfig"].clone();
    let (src, dest): (Value, Value) = (connection_of(0), connection_of(1));
    assert_eq!(src["SslMode"], "VERIFY_CA", "{shown}");
    assert_eq!(src["SslCa"], ca.as_str(), "{shown}");
    assert_eq!(dest["SslMode"], "REQUIRED", "{shown}");
    assert_eq!(src["Password"], "*", "{shown}");
    assert_no_secret("GET /v1/job", &shown.to_string());

    let log = agent.log_text();
    assert!(
        log.contains("user \\\"sec_agent\\\"") || log.contains("user \"sec_agent\""),
        "{log}"
    );
    assert_no_secret("the agent's log", &log);
    // The NATS password is nowhere in the state folder (the job's database passwords are the
    // job store's business, not the transport's).
    for (path, text) in files_under(&state_dir) {
        assert!(
            !text.contains(&password),
            "{} holds the NATS password",
            path.display()
        );
    }
}

/// A NATS setting that cannot work stops the agent before it listens, naming the setting.
#[test]
fn the_agent_refuses_to_start_with_a_bad_nats_setting() {
    let dir = scratch("sec_agent_bad");
    let config_file = dir.join("agent.toml");
    std::fs::write(
        &config_file,
        "[nats]\nuser = \"sec_agent\"\nca_file = \"/nonexistent/sec/nats-ca.pem\"\n",
    )
    .expect("config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_dtle"));
    for variable in NATS_VARIABLES {
        command.env_remove(variable);
    }
    let out = command
        .args(["agent", "--listen", "127.0.0.1:18811", "--config"])
        .arg(&config_file)
        .arg("--state-dir")
        .arg(dir.join("agent-state"))
        .env("DTLE_NATS_PASSWORD", "sec_agent-pass")
        .output()
        .expect("dtle runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NATS settings") && stderr.contains("/nonexistent/sec/nats-ca.pem"),
        "{stderr}"
    );
    assert_no_secret("the agent's refusal", &stderr);
}
