//! The stats dtle 2.x users read, through a real `dtle agent`: the Src shows what the target
//! executed, the job's `Gtid` follows the executed position, the lag reads as
//! `Seconds_Behind_Master` (0 when caught up, growing while the target is held up), and NATS
//! reconnections are counted.

mod support;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// The lag tests watch a quiet source: the others' writes would be lag to read through.
static QUIET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The IDs of a job's Src and Dest allocations, once both run.
async fn running(agent: &Agent, job: &str) -> (String, String) {
    let url = agent.url(&format!("/v1/job/{job}/allocations"));
    let mut ids = (String::new(), String::new());
    eventually("both tasks running", Duration::from_secs(60), || {
        let (status, body) = http("GET", &url, None);
        let found = body.as_array().and_then(|allocs| {
            let id = |task: &str| {
                allocs
                    .iter()
                    .find(|a| a["Task"] == task && a["ClientStatus"] == "running")
                    .and_then(|a| a["ID"].as_str())
                    .map(str::to_owned)
            };
            Some((id("Src")?, id("Dest")?))
        });
        let result = match found {
            Some(found) => {
                ids = found;
                Ok(())
            }
            None => Err(format!("{status} {body}")),
        };
        async move { result }
    })
    .await;
    ids
}

/// One task's dtle stats object.
fn stats(agent: &Agent, alloc: &str, task: &str) -> Value {
    let (status, body) = http(
        "GET",
        &agent.url(&format!("/v1/agent/allocation/{alloc}/stats")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["Tasks"][task].clone()
}

fn number(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {stats}"))
}

/// The lag shown (`DelayCount.Time`), if any.
fn lag(stats: &Value) -> Option<u64> {
    stats["DelayCount"]["Time"].as_u64()
}

/// Whether a MariaDB GTID list holds `gtid` (`domain-server-seq`): its domain is at least there.
fn covers(list: &str, gtid: &str) -> bool {
    let split = |g: &str| -> Option<(u64, u64)> {
        let mut parts = g.trim().split('-');
        let domain = parts.next()?.parse().ok()?;
        let seq = parts.nth(1)?.parse().ok()?;
        Some((domain, seq))
    };
    let Some((domain, seq)) = split(gtid) else {
        return false;
    };
    list.split(',')
        .filter_map(split)
        .any(|(d, s)| d == domain && s >= seq)
}

/// The value of one Prometheus sample, if present.
fn metric(agent: &Agent, name: &str, job: &str, task: &str) -> Option<f64> {
    let text = ureq::get(&agent.url("/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    let prefix = format!("{name}{{job=\"{job}\",task=\"{task}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

fn post(agent: &Agent, job: &str, schema: &str) {
    let (status, body) = http(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&job_json(job, schema, "")),
    );
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_src_shows_what_the_target_executed_and_no_lag_once_caught_up() {
    let _quiet = QUIET.lock().await;
    let (job, schema) = ("st-exec", "st_exec");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT);
             INSERT INTO {schema}.t (v) SELECT seq FROM {schema}.seq_1_to_10;
             CREATE TABLE {schema}.big (id INT PRIMARY KEY, b LONGBLOB)"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18601);
    post(&agent, job, schema);
    let (src, dest) = running(&agent, job).await;
    // The snapshot waits for a quiet moment on the shared source.
    converge(schema, "t", "id", Duration::from_secs(180)).await;
    eventually(
        "the Src to have everything it read executed",
        Duration::from_secs(60),
        || {
            let s = stats(&agent, &src, "Src");
            let settled = number(&s, "ReadMasterRowCount") == number(&s, "ExecMasterRowCount")
                && number(&s, "ReadMasterTxCount") == number(&s, "ExecMasterTxCount");
            async move { settled.then_some(()).ok_or(s.to_string()) }
        },
    )
    .await;
    let (src_before, dest_before) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));

    // 20 transactions of 3 rows each, then one of 2 rows that spans several NATS frames.
    let mut conn = connect(SRC_PORT).await;
    for i in 0..20 {
        conn.query_drop(format!(
            "INSERT INTO {schema}.t (v) VALUES ({i}), ({i}), ({i})"
        ))
        .await
        .expect("insert");
    }
    conn.query_drop(format!(
        "INSERT INTO {schema}.big VALUES (1, REPEAT('x', 1500000)), (2, REPEAT('y', 1500000))"
    ))
    .await
    .expect("insert big rows");
    let last_gtid: String = conn
        .query_first("SELECT @@last_gtid")
        .await
        .expect("last_gtid")
        .expect("a GTID");
    conn.disconnect().await.ok();
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    converge(schema, "big", "id", Duration::from_secs(60)).await;

    let grew = |after: &Value, before: &Value, key: &str| number(after, key) - number(before, key);
    eventually("the Src's executed counts", Duration::from_secs(30), || {
        let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
        let got = [
            grew(&s, &src_before, "ExecMasterTxCount"),
            grew(&s, &src_before, "ExecMasterRowCount"),
            grew(&s, &src_before, "ReadMasterTxCount"),
            grew(&s, &src_before, "ReadMasterRowCount"),
            grew(&d, &dest_before, "ExecMasterTxCount"),
            grew(&d, &dest_before, "ExecMasterRowCount"),
        ];
        let result = (got == [21, 62, 21, 62, 21, 62])
            .then_some(())
            .ok_or(format!("{got:?}\nSrc {s}\nDest {d}"));
        async move { result }
    })
    .await;

    // The job's Gtid is what the target executed, not the "" posted; passwords stay masked.
    eventually(
        "Gtid follows the executed position",
        Duration::from_secs(30),
        || {
            let (_, one) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
            let gtid = one["Tasks"][0]["Config"]["Gtid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let result = covers(&gtid, &last_gtid)
                .then_some(())
                .ok_or(format!("Gtid {gtid:?} lacks {last_gtid}: {one}"));
            async move { result }
        },
    )
    .await;
    let (_, one) = http("GET", &agent.url(&format!("/v1/job/{job}")), None);
    assert_eq!(one["Tasks"][0]["Type"], "Src");
    for task in 0..2 {
        assert_eq!(
            one["Tasks"][task]["Config"]["ConnectionConfig"]["Password"],
            "*"
        );
    }
    assert!(!one.to_string().contains(PASSWORD), "{one}");
    let (_, list) = http("GET", &agent.url("/v1/jobs"), None);
    let listed = list
        .as_array()
        .and_then(|l| l.iter().find(|j| j["ID"] == job))
        .expect("listed")["JobSummary"]["Tasks"][0]["Config"]["Gtid"]
        .clone();
    assert!(
        listed.as_str().is_some_and(|g| covers(g, &last_gtid)),
        "{listed}"
    );
    let executed = stats(&agent, &src, "Src")["CurrentCoordinates"]["ExecutedGtidSet"].clone();
    assert!(
        executed.as_str().is_some_and(|g| covers(g, &last_gtid)),
        "{executed}"
    );

    // Caught up: the lag is 0 on both tasks, and stays 0 while nothing new comes.
    eventually("no lag once caught up", Duration::from_secs(60), || {
        let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
        let result = (lag(&s) == Some(0) && lag(&d) == Some(0))
            .then_some(())
            .ok_or(format!("Src {}\nDest {}", s["DelayCount"], d["DelayCount"]));
        async move { result }
    })
    .await;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(5) {
        let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
        assert_eq!(
            (lag(&s), lag(&d)),
            (Some(0), Some(0)),
            "the lag of a caught-up job moved after {:?}",
            watched.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(metric(&agent, "dtle_lag_seconds", job, "Src"), Some(0.0));
    same_table(schema, "t", "id").await.expect("same rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lag_grows_while_the_target_is_held_up_and_returns_to_zero() {
    let _quiet = QUIET.lock().await;
    let (job, schema) = ("st-lag", "st_lag");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT);
             INSERT INTO {schema}.t VALUES (1, 0), (2, 0)"
        ),
    )
    .await;
    let agent = Agent::fresh(job, 18602);
    post(&agent, job, schema);
    let (src, dest) = running(&agent, job).await;
    // The snapshot waits for a quiet moment on the shared source.
    converge(schema, "t", "id", Duration::from_secs(180)).await;
    let both_caught_up = || {
        let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
        let result = (lag(&s) == Some(0) && lag(&d) == Some(0))
            .then_some(())
            .ok_or(format!("Src {}\nDest {}", s["DelayCount"], d["DelayCount"]));
        async move { result }
    };
    // A GTID connect scans the source's binlog file from its start, which may be large here.
    eventually("no lag at first", Duration::from_secs(120), both_caught_up).await;

    // A row lock on the target holds the applier on the next transaction.
    let mut blocker = connect(DST_PORT).await;
    blocker.query_drop("BEGIN").await.expect("begin");
    let _: Option<i32> = blocker
        .query_first(format!("SELECT v FROM {schema}.t WHERE id = 1 FOR UPDATE"))
        .await
        .expect("lock");
    exec(
        SRC_PORT,
        &format!("UPDATE {schema}.t SET v = 1 WHERE id = 1"),
    )
    .await;
    eventually(
        "a lag that grows while the target is held up",
        Duration::from_secs(30),
        || {
            let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
            let behind = lag(&s).is_some_and(|l| l >= 2)
                && lag(&d).is_some_and(|l| l >= 2)
                && number(&s, "ExecMasterTxCount") < number(&s, "ReadMasterTxCount")
                && metric(&agent, "dtle_lag_seconds", job, "Src").is_some_and(|l| l >= 2.0);
            let result = behind
                .then_some(())
                .ok_or(format!("Src {s}\nDest {}", d["DelayCount"]));
            async move { result }
        },
    )
    .await;
    blocker.query_drop("ROLLBACK").await.expect("rollback");
    blocker.disconnect().await.ok();
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    eventually(
        "no lag once applied",
        Duration::from_secs(30),
        both_caught_up,
    )
    .await;
}

/// A NATS server of this test's own, on a port of its own.
struct OwnNats {
    child: Child,
    port: u16,
}

impl OwnNats {
    fn start(port: u16) -> OwnNats {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnNats { child, port }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_reconnections_are_counted_and_replication_goes_on() {
    let _quiet = QUIET.lock().await;
    let (job, schema) = ("st-nats", "st_nats");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!(
            "CREATE TABLE {schema}.t (id INT PRIMARY KEY, v INT);
             INSERT INTO {schema}.t VALUES (1, 0)"
        ),
    )
    .await;
    let nats = OwnNats::start(18693);
    let _ = std::fs::remove_dir_all(scratch(job).join("agent-state"));
    let agent = Agent::start_on(job, 18603, &nats.url(), &[]);
    post(&agent, job, schema);
    let (src, dest) = running(&agent, job).await;
    // The snapshot waits for a quiet moment on the shared source.
    converge(schema, "t", "id", Duration::from_secs(180)).await;
    for (alloc, task) in [(&src, "Src"), (&dest, "Dest")] {
        assert_eq!(
            stats(&agent, alloc, task)["MsgStat"]["Reconnects"],
            0,
            "{task}"
        );
    }

    // The server goes away and comes back on the same port.
    drop(nats);
    let nats = OwnNats::start(18693);
    eventually(
        "both tasks count a reconnection",
        Duration::from_secs(60),
        || {
            let (s, d) = (stats(&agent, &src, "Src"), stats(&agent, &dest, "Dest"));
            let counted = [&s, &d]
                .iter()
                .all(|t| t["MsgStat"]["Reconnects"].as_u64().is_some_and(|n| n >= 1));
            let result = counted
                .then_some(())
                .ok_or(format!("Src {}\nDest {}", s["MsgStat"], d["MsgStat"]));
            async move { result }
        },
    )
    .await;
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t VALUES (2, 2); UPDATE {schema}.t SET v = 1 WHERE id = 1"),
    )
    .await;
    // After the reconnection the extractor connects to the binlog again (a scan of its file).
    converge(schema, "t", "id", Duration::from_secs(180)).await;
    eventually(
        "the metrics count the reconnection and the resync",
        Duration::from_secs(30),
        || {
            let reconnects = metric(&agent, "dtle_nats_reconnects_total", job, "Src");
            let resyncs = metric(&agent, "dtle_transport_resyncs_total", job, "Src");
            let result = (reconnects.is_some_and(|n| n >= 1.0)
                && resyncs.is_some_and(|n| n >= 1.0))
            .then_some(())
            .ok_or(format!("reconnects {reconnects:?}, resyncs {resyncs:?}"));
            async move { result }
        },
    )
    .await;
    drop(agent);
    drop(nats);
}
