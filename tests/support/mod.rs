//! What the end-to-end tests share: the test bed's servers, jobs written to files, `dtle task run`
//! processes (which the fault tests kill), and the source/target comparison every test ends with.
#![allow(dead_code)]

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SRC_PORT: u16 = 3307;
pub const DST_PORT: u16 = 3308;
pub const NATS_URL: &str = "nats://127.0.0.1:8193";
pub const USER: &str = "dtle";
pub const PASSWORD: &str = "dtle-pass";

/// A connection to a test-bed server, set up to read values exactly (raw bytes, UTC).
pub async fn connect(port: u16) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(USER))
        .pass(Some(PASSWORD))
        .prefer_socket(false)
        .max_allowed_packet(Some(1 << 30))
        .init(vec!["SET time_zone = '+00:00'", "SET NAMES utf8mb4"]);
    Conn::new(opts).await.unwrap_or_else(|e| {
        panic!("test bed on port {port} does not answer (scripts/testbed.sh up): {e}")
    })
}

/// Runs statements separated by `;\n` on a server.
pub async fn exec(port: u16, sql: &str) {
    let mut conn = connect(port).await;
    conn.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("on port {port}: {e}\n{sql}"));
    conn.disconnect().await.ok();
}

/// Source and target fresh for `schema` (the target also loses the job's position rows).
pub async fn reset(schema: &str, job: &str) {
    exec(
        SRC_PORT,
        &format!("DROP DATABASE IF EXISTS `{schema}`; CREATE DATABASE `{schema}`"),
    )
    .await;
    exec(DST_PORT, &format!("DROP DATABASE IF EXISTS `{schema}`")).await;
    let mut dst = connect(DST_PORT).await;
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

/// A dtle 2.x job replicating `schema`, with extra Src config fields.
pub fn job_json(name: &str, schema: &str, extra_src: &str) -> String {
    format!(
        r#"{{"Name": "{name}", "Tasks": [
          {{"Type": "Src", "Config": {{"ReplicateDoDb": [{{"TableSchema": "{schema}"}}], {extra_src}
            "ConnectionConfig": {{"Host": "127.0.0.1", "Port": {SRC_PORT}, "User": "{USER}", "Password": "{PASSWORD}"}}}}}},
          {{"Type": "Dest", "Config": {{
            "ConnectionConfig": {{"Host": "127.0.0.1", "Port": {DST_PORT}, "User": "{USER}", "Password": "{PASSWORD}"}}}}}}]}}"#
    )
}

/// A folder for one test's files, under the build's target folder.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Writes a job file.
pub fn write_job(test: &str, text: &str) -> PathBuf {
    let path = scratch(test).join("job.json");
    std::fs::write(&path, text).expect("job file");
    path
}

/// A running `dtle task run` process.
pub struct Task {
    child: Child,
    pub log: PathBuf,
}

impl Task {
    /// Starts the `role` task of the job in `job_file`; its stderr goes to `<dir>/<role>.log`.
    pub fn start(role: &str, job_file: &Path) -> Task {
        Self::start_with(role, job_file, &[])
    }

    /// As [`Task::start`] with extra arguments.
    pub fn start_with(role: &str, job_file: &Path, args: &[&str]) -> Task {
        let dir = job_file.parent().expect("job folder");
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("{role}-{n}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dtle"))
            .args(["task", "run", "--role", role, "--nats", NATS_URL])
            .args(args)
            .arg(job_file)
            .env("DTLE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dtle starts");
        Task { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself; returns its exit code and last stderr line.
    /// A process still running at the deadline is killed (when the panic drops it).
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let (child, log) = (&mut self.child, &self.log);
        let status = eventually_blocking("the task exits by itself", timeout, || {
            match child.try_wait() {
                Ok(Some(status)) => Ok(status),
                _ => Err(format!(
                    "still running; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )),
            }
        });
        let log = self.log_text();
        let last = log.lines().last().unwrap_or_default().to_owned();
        (status.code(), last)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The task's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Rows of a table in key order, every value as the server's raw bytes.
async fn rows(
    conn: &mut Conn,
    schema: &str,
    table: &str,
    order: &str,
) -> Vec<Vec<mysql_async::Value>> {
    conn.query_drop("SET character_set_results = binary")
        .await
        .expect("session");
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT * FROM `{schema}`.`{table}` ORDER BY {order}"
        ))
        .await
        .unwrap_or_else(|e| panic!("reading {schema}.{table}: {e}"));
    rows.into_iter().map(Row::unwrap).collect()
}

async fn checksum(conn: &mut Conn, schema: &str, table: &str) -> Option<u64> {
    let row: Option<(String, Option<u64>)> = conn
        .query_first(format!("CHECKSUM TABLE `{schema}`.`{table}`"))
        .await
        .ok()
        .flatten();
    row.and_then(|(_, c)| c)
}

/// Whether source and target hold the same rows in `schema`.`table` (checksums and every row).
pub async fn same_table(schema: &str, table: &str, order: &str) -> Result<(), String> {
    let mut src = connect(SRC_PORT).await;
    let mut dst = connect(DST_PORT).await;
    let (a, b) = (
        checksum(&mut src, schema, table).await,
        checksum(&mut dst, schema, table).await,
    );
    if a != b || a.is_none() {
        return Err(format!(
            "CHECKSUM TABLE differs: source {a:?}, target {b:?}"
        ));
    }
    let (ra, rb) = (
        rows(&mut src, schema, table, order).await,
        rows(&mut dst, schema, table, order).await,
    );
    if ra.len() != rb.len() {
        return Err(format!("source has {} rows, target {}", ra.len(), rb.len()));
    }
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        if x != y {
            return Err(format!("row {i} differs:\n source {x:?}\n target {y:?}"));
        }
    }
    Ok(())
}

/// Waits until `same_table` holds, or fails with the last difference.
pub async fn converge(schema: &str, table: &str, order: &str, timeout: Duration) {
    eventually(&format!("{schema}.{table} converges"), timeout, || {
        same_table(schema, table, order)
    })
    .await;
}

/// Every GTID recorded for `job` exactly once, and how many there are.
pub async fn gtids_recorded_once(job: &str) -> u64 {
    let mut dst = connect(DST_PORT).await;
    let (rows, distinct): (u64, u64) = dst
        .exec_first(
            "SELECT COUNT(*), COUNT(DISTINCT source_id, gno) FROM dtle.gtid_executed WHERE job_name = ?",
            (job,),
        )
        .await
        .expect("position table")
        .expect("a row");
    assert_eq!(rows, distinct, "a GTID is recorded twice for {job}");
    rows
}

/// Restarts one test-bed service (`src`, `dst` or `nats`).
pub fn restart_service(service: &str) {
    let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh"))
        .args(["restart", service])
        .status()
        .expect("testbed.sh runs");
    assert!(status.success(), "restarting {service} failed");
}

/// A running `dtle agent` on its own port and state folder.
pub struct Agent {
    child: Child,
    pub port: u16,
    pub state_dir: PathBuf,
    pub log: PathBuf,
}

impl Agent {
    /// Starts an agent for `test` on `port`, keeping the state folder of an earlier start.
    pub fn start(test: &str, port: u16) -> Agent {
        Self::start_with(test, port, &[])
    }

    /// As [`Agent::start`] with extra arguments.
    pub fn start_with(test: &str, port: u16, args: &[&str]) -> Agent {
        Self::start_on(test, port, NATS_URL, args)
    }

    /// As [`Agent::start_with`], with the tasks on the NATS server at `nats_url`.
    pub fn start_on(test: &str, port: u16, nats_url: &str, args: &[&str]) -> Agent {
        Self::start_env(test, port, nats_url, args, &[])
    }

    /// As [`Agent::start_on`], with extra environment variables.
    pub fn start_env(
        test: &str,
        port: u16,
        nats_url: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Agent {
        let dir = scratch(test);
        let state_dir = dir.join("agent-state");
        let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("agent-{n}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dtle"))
            .args([
                "agent",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--nats",
                nats_url,
            ])
            .arg("--state-dir")
            .arg(&state_dir)
            .args(args)
            .env("DTLE_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dtle agent starts");
        let agent = Agent {
            child,
            port,
            state_dir,
            log,
        };
        eventually_blocking("the agent listens", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| format!("{e}; log:\n{}", agent.log_text()))
        });
        agent
    }

    /// Forgets the state folder of an earlier run.
    pub fn fresh(test: &str, port: u16) -> Agent {
        let _ = std::fs::remove_dir_all(scratch(test).join("agent-state"));
        Self::start(test, port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a clean shutdown) and waits at most `timeout` for the agent to exit;
    /// whether it did.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            return false;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP call: status and JSON body (Null when the body is not JSON).
pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let request = ureq::request(method, url);
    let result = match body {
        Some(b) => request.send_string(b),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// How often a waited-for condition is probed again.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// The deadline of one wait for a condition, shared by [`eventually`] and
/// [`eventually_blocking`]: the only place where tests decide that they have waited long enough.
struct Patience<'a> {
    what: &'a str,
    timeout: Duration,
    deadline: Instant,
}

impl<'a> Patience<'a> {
    fn new(what: &'a str, timeout: Duration) -> Self {
        Self {
            what,
            timeout,
            deadline: Instant::now() + timeout,
        }
    }

    /// After a failed probe: how long to pause before the next one.
    ///
    /// # Panics
    /// With the probe's last complaint once the deadline has passed.
    fn pause_after(&self, last: &str) -> Duration {
        if Instant::now() > self.deadline {
            panic!("{}: not within {:?}: {last}", self.what, self.timeout);
        }
        PROBE_EVERY
    }
}

/// Retries `probe` every 200 ms until it succeeds and returns what it found; fails with its last
/// complaint after `timeout`. Every wait for a condition in the tests goes through here (or
/// through [`eventually_blocking`] outside async code).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let patience = Patience::new(what, timeout);
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) => tokio::time::sleep(patience.pause_after(&last)).await,
        }
    }
}

/// [`eventually`] for code that is not async: the same deadline, blocking the thread between
/// probes.
pub fn eventually_blocking<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let patience = Patience::new(what, timeout);
    loop {
        match probe() {
            Ok(found) => return found,
            Err(last) => std::thread::sleep(patience.pause_after(&last)),
        }
    }
}

/// Writes a new row to `{schema}.marker` on the source (creating the table if need be) and
/// waits until the target has it: whatever the source wrote before it, and a running job
/// replicating `schema` would apply, has had its chance to arrive.
pub async fn marker_arrives(schema: &str, timeout: Duration) {
    let n: u64 = first_value(SRC_PORT, "SELECT FLOOR(RAND() * 1000000000)")
        .await
        .unwrap_or(7);
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE IF NOT EXISTS `{schema}`.marker (n BIGINT PRIMARY KEY); \
             INSERT INTO `{schema}`.marker VALUES ({n})"
        ),
    )
    .await;
    eventually("the marker row arrives", timeout, || async {
        let found: Option<u64> = first_value(
            DST_PORT,
            &format!("SELECT n FROM `{schema}`.marker WHERE n = {n}"),
        )
        .await;
        found
            .map(drop)
            .ok_or_else(|| format!("marker {n} not on the target yet"))
    })
    .await;
}

/// The first column of the first row of `sql` on `port`, if any (errors count as none).
pub async fn first_value<T: mysql_async::prelude::FromValue + Send + 'static>(
    port: u16,
    sql: &str,
) -> Option<T> {
    let mut conn = connect(port).await;
    conn.query_first(sql).await.ok().flatten()
}

/// The phase `job` has recorded on the target (`snapshot`, `binlog`), if any.
pub async fn job_phase(job: &str) -> Option<String> {
    first_value(
        DST_PORT,
        &format!("SELECT phase FROM dtle.job_position WHERE job_name = '{job}'"),
    )
    .await
}

/// Waits until `job` has finished its snapshot and applies the binlog.
pub async fn in_binlog_phase(job: &str, timeout: Duration) {
    eventually(
        &format!("{job} reaches the binlog phase"),
        timeout,
        || async {
            match job_phase(job).await.as_deref() {
                Some("binlog") => Ok(()),
                other => Err(format!("phase {other:?}")),
            }
        },
    )
    .await;
}

/// Every row of every table of `schema`, compared as `HEX(CAST(col AS BINARY))` on both sides,
/// and the tables' definitions (`SHOW CREATE TABLE`, AUTO_INCREMENT counters aside).
pub async fn same_schema(schema: &str) -> Result<(), String> {
    let mut src = connect(SRC_PORT).await;
    let mut dst = connect(DST_PORT).await;
    let list_sql = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
                    AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME";
    let tables: Vec<String> = src
        .exec(list_sql, (schema,))
        .await
        .map_err(|e| e.to_string())?;
    let target_tables: Vec<String> = dst
        .exec(list_sql, (schema,))
        .await
        .map_err(|e| e.to_string())?;
    if tables != target_tables {
        return Err(format!(
            "tables differ: source {tables:?}, target {target_tables:?}"
        ));
    }
    for table in &tables {
        let show = format!("SHOW CREATE TABLE `{schema}`.`{table}`");
        let strip = |text: String| {
            text.split(' ')
                .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let a: Option<(String, String)> =
            src.query_first(&show).await.map_err(|e| e.to_string())?;
        let b: Option<(String, String)> =
            dst.query_first(&show).await.map_err(|e| e.to_string())?;
        let (a, b) = (a.map(|r| strip(r.1)), b.map(|r| strip(r.1)));
        if a != b {
            return Err(format!(
                "definitions of {table} differ:\n source {a:?}\n target {b:?}"
            ));
        }
        same_rows(&mut src, &mut dst, schema, table).await?;
    }
    Ok(())
}

/// Every row of a table on both sides, each column as `HEX(CAST(col AS BINARY))`, sorted;
/// names the first differing row and column.
pub async fn same_rows(
    src: &mut Conn,
    dst: &mut Conn,
    schema: &str,
    table: &str,
) -> Result<(), String> {
    let columns: Vec<String> = src
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        .await
        .map_err(|e| e.to_string())?;
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("HEX(CAST(`{c}` AS BINARY))"))
        .collect();
    let sql = format!(
        "SELECT {} FROM `{schema}`.`{table}` ORDER BY {}",
        list.join(", "),
        (1..=list.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let a: Vec<Row> = src.query(&sql).await.map_err(|e| e.to_string())?;
    let b: Vec<Row> = dst.query(&sql).await.map_err(|e| e.to_string())?;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        for (c, name) in columns.iter().enumerate() {
            let (vx, vy) = (x.as_ref(c), y.as_ref(c));
            if vx != vy {
                return Err(format!(
                    "{schema}.{table} row {i} column {name}: source {vx:?}, target {vy:?}"
                ));
            }
        }
    }
    if a.len() != b.len() {
        return Err(format!(
            "{schema}.{table}: source has {} rows, target {}",
            a.len(),
            b.len()
        ));
    }
    Ok(())
}
