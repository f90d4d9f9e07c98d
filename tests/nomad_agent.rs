//! `dtle agent` in front of Nomad, as users start it: the `nomad` section of its config file
//! (TOML or HCL), `--nomad-addr`, and the ACL token from the file or `NOMAD_TOKEN`, checked
//! against a fake Nomad that records what it is asked. No MariaDB, no NATS: nothing runs here.

mod support;

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually_blocking, http, scratch};
use warp::Filter;

/// What the fake saw: `METHOD /path?query`, and the token.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A fake Nomad on 127.0.0.1 answering the job list (empty) and the leader, each with the
/// `X-Nomad-Index` Nomad gives every read.
fn fake_nomad() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("x-nomad-token"))
        .map(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  token: Option<String>| {
                let line = if query.is_empty() {
                    format!("{method} {}", path.as_str())
                } else {
                    format!("{method} {}?{query}", path.as_str())
                };
                record.lock().expect("seen").push((line, token));
                let body = match path.as_str() {
                    "/v1/status/leader" => json!("127.0.0.1:4647"),
                    _ => json!([]),
                };
                warp::reply::with_header(warp::reply::json(&body), "X-Nomad-Index", "7")
            },
        );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
            let _ = tx.send(addr);
            server.await;
        });
    });
    let addr = rx.recv().expect("the fake's address");
    (format!("http://{addr}"), seen)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("an address").port()
}

/// `dtle agent` with `args`, `NOMAD_TOKEN` as given; killed when dropped.
struct Agent(Child, u16);

/// Each agent its own fixed port (18820-18829): a port found free and released may be taken by
/// a test running beside, whose agent would then answer this one's requests.
fn agent_port(test: &str) -> u16 {
    match test {
        "nomad_agent_toml" => 18820,
        "nomad_agent_hcl" => 18821,
        _ => 18822,
    }
}

impl Agent {
    fn start(test: &str, args: &[&str], nomad_token: Option<&str>) -> Agent {
        let port = agent_port(test);
        let log = scratch(test).join("agent.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dtle"));
        command
            .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("DTLE_LOG", "info")
            .env_remove("NOMAD_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        if let Some(token) = nomad_token {
            command.env("NOMAD_TOKEN", token);
        }
        let agent = Agent(command.spawn().expect("dtle agent starts"), port);
        eventually_blocking("the agent listens", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| {
                    format!(
                        "{e}; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
        });
        agent
    }

    fn get(&self, path: &str) -> (u16, Value) {
        http("GET", &format!("http://127.0.0.1:{}{path}", self.1), None)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_config_files_nomad_section_with_its_token() {
    let (nomad, seen) = fake_nomad();
    let config = scratch("nomad_agent_toml").join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[nomad]\naddress = \"{nomad}\"\nregion = \"eu\"\nnamespace = \"dtle\"\ntoken = \"file-token\"\n"
        ),
    )
    .expect("config written");
    let config = config.to_string_lossy().into_owned();
    // The file's token wins over NOMAD_TOKEN.
    let agent = Agent::start(
        "nomad_agent_toml",
        &["--config", &config],
        Some("env-token"),
    );
    assert_eq!(agent.get("/v1/jobs"), (200, json!([])));
    assert_eq!(agent.get("/v1/leader"), (200, json!("127.0.0.1:4647")));
    let seen = seen.lock().expect("seen").clone();
    // The list is read twice: for its index (X-Nomad-Index, as a blocking query would), then
    // itself.
    assert_eq!(
        seen,
        vec![
            (
                "GET /v1/jobs?region=eu&namespace=dtle".to_owned(),
                Some("file-token".to_owned())
            ),
            (
                "GET /v1/jobs?region=eu&namespace=dtle".to_owned(),
                Some("file-token".to_owned())
            ),
            (
                "GET /v1/status/leader?region=eu&namespace=dtle".to_owned(),
                Some("file-token".to_owned())
            ),
        ]
    );
}

#[test]
fn the_flag_wins_and_the_token_comes_from_the_environment() {
    let (nomad, seen) = fake_nomad();
    let config = scratch("nomad_agent_hcl").join("agent.hcl");
    std::fs::write(&config, "nomad {\n  address = \"http://127.0.0.1:1\"\n}\n")
        .expect("config written");
    let config = config.to_string_lossy().into_owned();
    let agent = Agent::start(
        "nomad_agent_hcl",
        &["--config", &config, "--nomad-addr", &nomad],
        Some("env-token"),
    );
    assert_eq!(agent.get("/v1/jobs"), (200, json!([])));
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec![("GET /v1/jobs".to_owned(), Some("env-token".to_owned())); 2]
    );
    drop(agent);

    // No token anywhere: none sent; Nomad unreachable: the API says so.
    let closed = free_port();
    let agent = Agent::start(
        "nomad_agent_none",
        &["--nomad-addr", &format!("http://127.0.0.1:{closed}")],
        None,
    );
    let (status, body) = agent.get("/v1/jobs");
    assert_eq!(status, 503, "{body}");
    let error = body["Error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("cannot reach Nomad at http://127.0.0.1:{closed}")),
        "{body}"
    );
}

#[test]
fn a_misspelt_nomad_setting_is_refused() {
    let config = scratch("nomad_agent_bad").join("agent.toml");
    std::fs::write(&config, "[nomad]\nadress = \"http://127.0.0.1:4646\"\n")
        .expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_dtle"))
        .args([
            "agent",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("dtle runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("adress"), "{stderr}");
}
