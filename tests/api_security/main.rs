//! Issue 14 on the API side, against live agents and the test bed: who may call the API
//! ([`tokens`]: 401, 403, the audit log, the CLI's token, secrets refused as flags, an open API
//! kept on loopback), over what ([`tls`]: rustls, client certificates) and what the agent keeps
//! ([`at_rest`]: sealed passwords, a state folder without its key, key rotation,
//! `/encrypt-config`). Every test also checks that no password or token comes back in an
//! answer, a log line or a file of the state folder.
//!
//! Agents listen on 18800-18809; schemas and jobs are named `apisec_*`.

#[path = "../support/mod.rs"]
mod support;

mod at_rest;
mod tls;
mod tokens;

use serde_json::Value;
use std::path::Path;
use support::*;

pub const ADMIN: &str = "apisec-admin-token-0123456789abcdef";
pub const READ: &str = "apisec-read-token-0123456789abcdef";

/// An HTTP call with an optional bearer token: status, `WWW-Authenticate` and JSON body.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = ureq::request(method, url);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some(b) => request.send_string(b),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let challenge = response.header("WWW-Authenticate").map(str::to_owned);
    let text = response.into_string().unwrap_or_default();
    for secret in [PASSWORD, ADMIN, READ] {
        assert!(
            !text.contains(secret),
            "{method} {url} answered a secret: {text}"
        );
    }
    (
        status,
        challenge,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Fails when `secret` is written in any file under `dir` (or in `dir` itself, a file).
pub fn assert_not_written(dir: &Path, secret: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("readable folder").flatten() {
                stack.push(entry.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds a secret in clear", path.display());
        }
    }
}

/// The agent's environment with both tokens.
pub const WITH_TOKENS: &[(&str, &str)] = &[("DTLE_ADMIN_TOKEN", ADMIN), ("DTLE_READ_TOKEN", READ)];

/// Starts an agent for `test` on `port` with `envs`, its state folder fresh.
pub fn agent(test: &str, port: u16, envs: &[(&str, &str)]) -> Agent {
    let _ = std::fs::remove_dir_all(scratch(test).join("agent-state"));
    Agent::start_env(test, port, NATS_URL, &[], envs)
}
