//! Tokens: who gets in, what a read-only token may do, the audit log, the CLI.

use crate::support::*;
use crate::{agent, assert_not_written, call, ADMIN, READ, WITH_TOKENS};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_who_reads_and_who_writes_and_every_write_is_audited() {
    let (job, schema) = ("apisec_tokens", "apisec_tokens");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY); INSERT INTO {schema}.t VALUES (1), (2)"
        ),
    )
    .await;
    let a = agent("apisec_tokens", 18800, WITH_TOKENS);
    let jobs = a.url("/v1/jobs");
    let body = job_json(job, schema, "");

    // No token, a wrong one: 401 with a challenge, on every API alike.
    for path in [
        "/v1/jobs",
        "/running-jobs",
        "/jobs/overview",
        "/metrics",
        "/openapi.json",
    ] {
        let (status, challenge, answer) = call("GET", &a.url(path), None, None);
        assert_eq!(status, 401, "GET {path}: {answer}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"dtle\""));
    }
    let (status, _, wrong) = call(
        "GET",
        &jobs,
        Some("apisec-admin-token-0123456789abcdeF"),
        None,
    );
    assert_eq!(status, 401);
    let (_, _, none) = call("GET", &jobs, None, None);
    assert_eq!(wrong, none, "a near miss tells no more than no token");

    // A read-only token reads, and may not write: 403.
    let (status, _, _) = call("GET", &jobs, Some(READ), None);
    assert_eq!(status, 200);
    let (status, _, answer) = call("POST", &jobs, Some(READ), Some(&body));
    assert_eq!(status, 403, "{answer}");
    let (status, _, _) = call("POST", &a.url("/submit-job"), Some(READ), Some(&body));
    assert_eq!(status, 403);

    // The admin token registers; Nomad's header works too.
    let (status, _, answer) = call("POST", &jobs, Some(ADMIN), Some(&body));
    assert_eq!(status, 200, "{answer}");
    let nomad_client = ureq::get(&a.url(&format!("/v1/job/{job}")))
        .set("X-Nomad-Token", READ)
        .call()
        .expect("X-Nomad-Token is accepted");
    assert_eq!(nomad_client.status(), 200);
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let (status, _, _) = call(
        "DELETE",
        &a.url(&format!("/v1/job/{job}?purge=true")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);

    // The audit log: who, what, which job, the status; reads are not in it.
    let audit = std::fs::read_to_string(a.state_dir.join("audit.log")).expect("audit log");
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let seen: Vec<(String, String, String, Option<String>, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["who"].as_str().unwrap_or_default().to_owned(),
                l["method"].as_str().unwrap_or_default().to_owned(),
                l["path"].as_str().unwrap_or_default().to_owned(),
                l["job"].as_str().map(str::to_owned),
                l["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let expected = vec![
        ("read".into(), "POST".into(), "/v1/jobs".into(), None, 403),
        (
            "read".into(),
            "POST".into(),
            "/submit-job".into(),
            None,
            403,
        ),
        (
            "admin".into(),
            "POST".into(),
            "/v1/jobs".into(),
            Some(job.to_owned()),
            200,
        ),
        (
            "admin".into(),
            "DELETE".into(),
            format!("/v1/job/{job}"),
            Some(job.to_owned()),
            200,
        ),
    ];
    assert_eq!(seen, expected, "{audit}");
    assert!(lines.iter().all(|l| l["time"].is_string()));
    drop(a);
    let dir = scratch("apisec_tokens");
    for secret in [PASSWORD, ADMIN, READ] {
        assert_not_written(&dir, secret);
    }
}

#[test]
fn the_cli_sends_its_token_from_the_environment_only() {
    let a = agent("apisec_cli", 18801, WITH_TOKENS);
    let dtle = env!("CARGO_BIN_EXE_dtle");
    let status = |envs: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(dtle)
            .args(["job", "status", "--address", &a.url("")])
            .args(args)
            .env_remove("DTLE_TOKEN")
            .envs(envs.iter().copied())
            .output()
            .expect("dtle runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _) = status(&[("DTLE_TOKEN", READ)], &[]);
    assert_eq!(code, Some(0));
    let (code, stderr) = status(&[], &[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("401"), "{stderr}");
    let (code, stderr) = status(&[], &["--token", READ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("DTLE_TOKEN") && !stderr.contains(READ),
        "{stderr}"
    );
}

#[test]
fn an_open_api_stays_on_loopback_and_tokens_never_come_as_flags() {
    let dtle = env!("CARGO_BIN_EXE_dtle");
    let state = scratch("apisec_start").join("state");
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let out = Command::new(dtle)
            .arg("agent")
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .env_remove("DTLE_ADMIN_TOKEN")
            .env_remove("DTLE_READ_TOKEN")
            .envs(envs.iter().copied())
            .output()
            .expect("dtle runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["--listen", "0.0.0.0:18802"], &[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("without a token"), "{stderr}");
    let (code, stderr) = run(
        &["--listen", "127.0.0.1:18802", "--admin-token", ADMIN],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("DTLE_ADMIN_TOKEN") && !stderr.contains(ADMIN),
        "{stderr}"
    );
    let (code, stderr) = run(
        &["--listen", "127.0.0.1:18802"],
        &[("DTLE_ADMIN_TOKEN", "short")],
    );
    assert_ne!(code, Some(0));
    assert!(stderr.contains("at least 16"), "{stderr}");
    let help = Command::new(dtle)
        .args(["agent", "--help"])
        .output()
        .expect("dtle runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "DTLE_ADMIN_TOKEN",
        "DTLE_READ_TOKEN",
        "DTLE_SECRET_KEY",
        "DTLE_SECRET_KEY_PREVIOUS",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} in:\n{help}"
        );
    }
}
