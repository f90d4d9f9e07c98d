//! Issue 14, the transport side: NATS with credentials and TLS, each job's subjects its own, and
//! TLS to the databases, against the test bed's real servers (`scripts/testbed.sh`: the secure
//! nats-server on 8194 with a NATS user per job, MariaDB offering TLS and a `REQUIRE SSL` user).
//!
//! - [`nats`]: replication through the TLS + auth server (a user and password, an NKey), every
//!   refusal (wrong password, no credentials, an untrusted CA, bad settings), a token (on a
//!   nats-server of the test's own), and job isolation (job A's user cannot read or inject job
//!   B's stream; B keeps replicating, and frames of a foreign epoch on its own subject change
//!   nothing);
//! - [`db`]: `SslMode` against the servers, each refusal by `dtle task run`;
//! - [`agent`]: `dtle agent` with a `[nats]` section and `DTLE_NATS_PASSWORD`, a job using
//!   `VERIFY_CA` (by a name the certificate does not hold) and `REQUIRED`, shown by the API;
//! - [`plugin`]: plugin mode with the `nats_*` keys, the job handed over from Src to Dest within
//!   the job's own subjects.
//!
//! Every test ends by reading the logs it captured for the secrets it used. The test bed is found
//! by running `scripts/testbed.sh env`, so `DTLE_TESTBED_*` move these tests to a second test bed.
//! Jobs and schemas are named `sec_*`; agents listen on 18810-18819.

#[path = "../support/mod.rs"]
mod support;

#[path = "../plugin/harness.rs"]
#[allow(dead_code)]
mod harness;

mod agent;
mod db;
mod nats;
mod plugin;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use support::{eventually, eventually_blocking, scratch};

/// The test bed, as `scripts/testbed.sh env` describes it.
pub struct Bed {
    pub src: u16,
    pub dst: u16,
    /// The plain nats-server.
    pub nats: String,
    /// The nats-server with TLS and per-job users.
    pub nats_secure: String,
    pub user: String,
    pub password: String,
    /// The MariaDB user created `REQUIRE SSL`.
    pub tls_user: String,
    pub tls_password: String,
    /// The CA that signed the servers' certificate (valid for 127.0.0.1 only).
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    pub nkey_job: String,
    pub nkey_seed: String,
}

/// The test bed (read once).
pub fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh"))
            .arg("env")
            .output()
            .expect("scripts/testbed.sh env runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let var = |name: &str| {
            vars.get(name)
                .unwrap_or_else(|| panic!("{name} missing from scripts/testbed.sh env:\n{text}"))
                .to_string()
        };
        let port = |name: &str| {
            var(name)
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{name} has no port"))
        };
        Bed {
            src: port("DTLE_TEST_SRC"),
            dst: port("DTLE_TEST_DST"),
            nats: var("DTLE_TEST_NATS"),
            nats_secure: var("DTLE_TEST_NATS_SECURE"),
            user: var("DTLE_TEST_USER"),
            password: var("DTLE_TEST_PASSWORD"),
            tls_user: var("DTLE_TEST_TLS_USER"),
            tls_password: var("DTLE_TEST_TLS_PASSWORD"),
            ca: PathBuf::from(var("DTLE_TEST_CA")),
            other_ca: PathBuf::from(var("DTLE_TEST_OTHER_CA")),
            nkey_job: var("DTLE_TEST_NATS_NKEY_JOB"),
            nkey_seed: var("DTLE_TEST_NATS_NKEY_SEED"),
        }
    })
}

/// The password of the secure nats-server's user for `job`.
pub fn nats_password(job: &str) -> String {
    format!("{job}-pass")
}

/// Every secret these tests use: none may appear in a log.
pub fn secrets() -> Vec<String> {
    let bed = bed();
    let mut all: Vec<String> = ["sec_a", "sec_b", "sec_agent", "sec_handoff"]
        .iter()
        .map(|job| nats_password(job))
        .collect();
    all.push("sec-token-value".into());
    all.extend([
        bed.nkey_seed.clone(),
        bed.password.clone(),
        bed.tls_password.clone(),
    ]);
    all
}

/// Fails when `text` (what `what` wrote) holds any secret.
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} shows a secret ({} characters):\n{text}",
            secret.len()
        );
    }
}

/// A plain connection as the test bed's all-privileges user, for setting up and comparing.
pub async fn db(port: u16) -> Conn {
    let bed = bed();
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(bed.user.clone()))
        .pass(Some(bed.password.clone()))
        .prefer_socket(false);
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("test bed on port {port} (scripts/testbed.sh up): {e}"))
}

/// Runs statements on a server.
pub async fn exec(port: u16, sql: &str) {
    let mut conn = db(port).await;
    conn.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("on port {port}: {e}\n{sql}"));
    conn.disconnect().await.ok();
}

/// The source fresh for `schema` (one table `t`), the target without it or `job`'s position.
pub async fn reset(schema: &str, job: &str) {
    let bed = bed();
    let mut src = db(bed.src).await;
    let have_ssl: Option<(String, String)> = src
        .query_first("SHOW VARIABLES LIKE 'have_ssl'")
        .await
        .expect("have_ssl");
    assert_eq!(
        have_ssl.map(|(_, v)| v).as_deref(),
        Some("YES"),
        "the test bed's MariaDB offers no TLS: restart it with this scripts/testbed.sh"
    );
    exec(
        bed.src,
        &format!(
            "DROP DATABASE IF EXISTS `{schema}`; CREATE DATABASE `{schema}`; \
             CREATE TABLE `{schema}`.t (id INT PRIMARY KEY, v VARCHAR(40)); \
             INSERT INTO `{schema}`.t SELECT seq, CONCAT('row ', seq) FROM `{schema}`.seq_1_to_200"
        ),
    )
    .await;
    exec(bed.dst, &format!("DROP DATABASE IF EXISTS `{schema}`")).await;
    let mut dst = db(bed.dst).await;
    for table in ["gtid_executed", "job_position", "snapshot_progress"] {
        // The position tables may not exist yet.
        let _ = dst
            .exec_drop(
                format!("DELETE FROM dtle.{table} WHERE job_name = ?"),
                (job,),
            )
            .await;
    }
}

/// Rows and checksum of `schema`.t on one server.
async fn table_state(port: u16, schema: &str) -> Result<(u64, Option<u64>), String> {
    let mut conn = db(port).await;
    let count: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM `{schema}`.t"))
        .await
        .map_err(|e| e.to_string())?;
    let sum: Option<(String, Option<u64>)> = conn
        .query_first(format!("CHECKSUM TABLE `{schema}`.t"))
        .await
        .map_err(|e| e.to_string())?;
    Ok((count.unwrap_or(0), sum.and_then(|(_, c)| c)))
}

/// Waits until the target's `schema`.t equals the source's.
pub async fn converge(schema: &str) {
    let bed = bed();
    eventually(
        &format!("{schema}.t converges"),
        Duration::from_secs(90),
        || async {
            let source = table_state(bed.src, schema).await?;
            let target = table_state(bed.dst, schema).await?;
            if source == target {
                Ok(())
            } else {
                Err(format!("source {source:?}, target {target:?}"))
            }
        },
    )
    .await;
}

/// Changes on the source after the snapshot: the binlog's way.
pub async fn change_source(schema: &str) {
    exec(
        bed().src,
        &format!(
            "INSERT INTO `{schema}`.t SELECT seq, 'later' FROM `{schema}`.seq_1001_to_1100; \
             UPDATE `{schema}`.t SET v = 'changed' WHERE id % 7 = 0; \
             DELETE FROM `{schema}`.t WHERE id % 11 = 0"
        ),
    )
    .await;
}

/// One server of a job: `ConnectionConfig` JSON with extra fields (`, "SslMode": ...`).
pub fn connection(host: &str, port: u16, user: &str, password: &str, extra: &str) -> String {
    format!(
        r#"{{"Host": "{host}", "Port": {port}, "User": "{user}", "Password": "{password}"{extra}}}"#
    )
}

/// A dtle 2.x job replicating `schema` (named as the job) between two servers.
pub fn job(name: &str, source: &str, target: &str) -> String {
    format!(
        r#"{{"Name": "{name}", "Tasks": [
          {{"Type": "Src", "Config": {{"ReplicateDoDb": [{{"TableSchema": "{name}"}}],
            "ConnectionConfig": {source}}}}},
          {{"Type": "Dest", "Config": {{"ConnectionConfig": {target}}}}}]}}"#
    )
}

/// A job between the test bed's servers as its plain user.
pub fn plain_job(name: &str) -> String {
    let bed = bed();
    job(
        name,
        &connection("127.0.0.1", bed.src, &bed.user, &bed.password, ""),
        &connection("127.0.0.1", bed.dst, &bed.user, &bed.password, ""),
    )
}

/// Writes `text` as the job file of `test` (one per test: several tasks may share it).
pub fn job_file(test: &str, text: &str) -> PathBuf {
    let path = scratch(test).join("job.json");
    std::fs::write(&path, text).expect("job file");
    path
}

/// The NATS variables a task is started with: nothing else of the test's environment leaks in.
const NATS_VARIABLES: [&str; 10] = [
    "DTLE_NATS",
    "DTLE_NATS_USER",
    "DTLE_NATS_PASSWORD",
    "DTLE_NATS_TOKEN",
    "DTLE_NATS_NKEY_SEED",
    "DTLE_NATS_NKEY_SEED_FILE",
    "DTLE_NATS_CREDS",
    "DTLE_NATS_CA",
    "DTLE_NATS_CERT",
    "DTLE_NATS_KEY",
];

/// A `dtle task run` process, its stderr in a file.
pub struct Task {
    child: Child,
    pub log: PathBuf,
}

impl Task {
    /// Starts the `role` task of `job_file` on `nats_url`, with extra flags and variables.
    pub fn start(
        role: &str,
        job_file: &Path,
        nats_url: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Task {
        let dir = job_file.parent().expect("job folder");
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("{role}-{n}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dtle"));
        for variable in NATS_VARIABLES {
            command.env_remove(variable);
        }
        let child = command
            .args(["task", "run", "--role", role, "--nats", nats_url])
            .args(args)
            .arg(job_file)
            .envs(env.iter().copied())
            .env("DTLE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dtle starts");
        Task { child, log }
    }

    /// Waits for the task to exit by itself: its exit code and its whole log.
    pub fn exit(&mut self, within: Duration) -> (Option<i32>, String) {
        let (child, log) = (&mut self.child, &self.log);
        let status = eventually_blocking("the task exits by itself", within, || {
            match child.try_wait() {
                Ok(Some(status)) => Ok(status),
                _ => Err(format!(
                    "still running; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )),
            }
        });
        (status.code(), self.log_text())
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a task expected to fail for good: its exit code must be `code`, its log must say
/// every word of `says`, and no secret.
pub fn refused(
    what: &str,
    (role, job_file, nats_url): (&str, &Path, &str),
    args: &[&str],
    env: &[(&str, &str)],
    code: i32,
    says: &[&str],
) {
    let mut task = Task::start(role, job_file, nats_url, args, env);
    let (exit, log) = task.exit(Duration::from_secs(60));
    assert_eq!(exit, Some(code), "{what}: exit code; log:\n{log}");
    for word in says {
        assert!(
            log.contains(word),
            "{what}: the log does not say {word:?}:\n{log}"
        );
    }
    assert_no_secret(what, &log);
}
