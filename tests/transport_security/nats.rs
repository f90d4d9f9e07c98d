//! NATS with credentials and TLS: replication through the secure server, each refusal, and one
//! job's user kept out of another job's stream.

use super::*;
use driver::transport::codec::{encode_frame, FrameHeader};
use futures::StreamExt;
use std::sync::{Arc, Mutex};

/// The flags and variables of job `job`'s NATS user: its password from the environment.
fn user_of(job: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DTLE_NATS_USER", job.to_owned()),
        ("DTLE_NATS_PASSWORD", nats_password(job)),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Job `sec_a` through the TLS + auth server with its own user (password in the environment),
/// over TLS to both databases (VERIFY_IDENTITY to the source, REQUIRED to the target, as the
/// `REQUIRE SSL` user: the binlog stream too must be TLS).
#[tokio::test(flavor = "multi_thread")]
async fn replication_through_the_tls_and_auth_nats_server() {
    let bed = bed();
    let name = "sec_a";
    reset(name, name).await;
    let ca = bed.ca.display().to_string();
    let source = connection(
        "127.0.0.1",
        bed.src,
        &bed.tls_user,
        &bed.tls_password,
        &format!(r#", "SslMode": "VERIFY_IDENTITY", "SslCa": "{ca}""#),
    );
    let target = connection(
        "127.0.0.1",
        bed.dst,
        &bed.tls_user,
        &bed.tls_password,
        r#", "SslMode": "required""#,
    );
    let file = job_file(name, &job(name, &source, &target));
    let env = user_of(name);
    let flags = ["--nats-ca", ca.as_str()];
    let dest = Task::start("dest", &file, &bed.nats_secure, &flags, &env_refs(&env));
    let src = Task::start("src", &file, &bed.nats_secure, &flags, &env_refs(&env));
    converge(name).await;
    change_source(name).await;
    converge(name).await;
    for task in [&src, &dest] {
        let log = task.log_text();
        assert!(log.contains("connected to NATS"), "{log}");
        assert_no_secret("a task of sec_a", &log);
    }
}

/// Job `sec_nkey` with its NKey user's seed from `DTLE_NATS_NKEY_SEED`.
#[tokio::test(flavor = "multi_thread")]
async fn an_nkey_user_replicates_its_own_job() {
    let bed = bed();
    let name = bed.nkey_job.as_str();
    reset(name, name).await;
    let file = job_file(name, &plain_job(name));
    let ca = bed.ca.display().to_string();
    let env = [("DTLE_NATS_NKEY_SEED", bed.nkey_seed.as_str())];
    let flags = ["--nats-ca", ca.as_str()];
    let dest = Task::start("dest", &file, &bed.nats_secure, &flags, &env);
    let src = Task::start("src", &file, &bed.nats_secure, &flags, &env);
    converge(name).await;
    for task in [&src, &dest] {
        assert_no_secret("a task of sec_nkey", &task.log_text());
    }
}

/// Every way to be refused ends the task at once with a message saying what to fix.
#[test]
fn refusals_are_definite_and_say_what_to_fix() {
    let bed = bed();
    let file = job_file("sec_refusals", &plain_job("sec_a"));
    let ca = bed.ca.display().to_string();
    let other_ca = bed.other_ca.display().to_string();
    let with_ca = ["--nats-ca", ca.as_str()];
    let on_secure = ("dest", file.as_path(), bed.nats_secure.as_str());
    refused(
        "a wrong password",
        on_secure,
        &with_ca,
        &[
            ("DTLE_NATS_USER", "sec_a"),
            ("DTLE_NATS_PASSWORD", "sec_b-pass"),
        ],
        2,
        &["authorization violation", "user \"sec_a\""],
    );
    refused(
        "no credentials",
        on_secure,
        &with_ca,
        &[],
        2,
        &["authorization violation", "no credentials"],
    );
    let right = [
        ("DTLE_NATS_USER", "sec_a"),
        ("DTLE_NATS_PASSWORD", "sec_a-pass"),
    ];
    refused(
        "an untrusted CA",
        on_secure,
        &["--nats-ca", other_ca.as_str()],
        &right,
        2,
        &["not signed by an authority", "NATS CA file"],
    );
    refused(
        "no CA (the system's authorities)",
        on_secure,
        &[],
        &right,
        2,
        &["not signed by an authority"],
    );
    // Settings that cannot work are errors before any connection (exit 1: not a task failure).
    refused(
        "a malformed NKey seed",
        on_secure,
        &with_ca,
        &[("DTLE_NATS_NKEY_SEED", "SUAAAAnotaseed")],
        1,
        &["NKey user seed"],
    );
    refused(
        "an unreadable CA file",
        on_secure,
        &["--nats-ca", "/nonexistent/sec/ca.pem"],
        &right,
        1,
        &["/nonexistent/sec/ca.pem", "cannot be read"],
    );
    refused(
        "require_tls against a server without TLS",
        ("dest", file.as_path(), bed.nats.as_str()),
        &["--nats-require-tls"],
        &[],
        2,
        &["TLS to the NATS server", "refused"],
    );
    refused(
        "two ways to authenticate",
        on_secure,
        &with_ca,
        &[
            ("DTLE_NATS_USER", "sec_a"),
            ("DTLE_NATS_PASSWORD", "sec_a-pass"),
            ("DTLE_NATS_TOKEN", "sec_a-pass"),
        ],
        1,
        &["one way to authenticate"],
    );
    let mut flag = Task::start(
        "dest",
        &file,
        &bed.nats_secure,
        &["--nats-password", "sec_a-pass"],
        &[],
    );
    let (code, log) = flag.exit(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(2),
        "a password as a flag: clap's usage error\n{log}"
    );
    assert!(log.contains("DTLE_NATS_PASSWORD"), "{log}");
    assert_no_secret("a password given as a flag", &log);
}

/// What a raw client with job `sec_a`'s user sees when it reaches for job `sec_b`'s subjects.
async fn intruder() -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let bed = bed();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let errors = seen.clone();
    let client =
        async_nats::ConnectOptions::with_user_and_password("sec_a".into(), nats_password("sec_a"))
            .add_root_certificates(bed.ca.clone())
            .custom_inbox_prefix("_INBOX.dtle.sec_a")
            .event_callback(move |event| {
                let errors = errors.clone();
                async move {
                    if let async_nats::Event::ServerError(err) = event {
                        errors.lock().expect("events").push(err.to_string());
                    }
                }
            })
            .connect(bed.nats_secure.as_str())
            .await
            .expect("sec_a's user connects");
    (client, seen)
}

/// Job `sec_a`'s user can neither read nor inject job `sec_b`'s stream: nats-server answers
/// with permissions violations, a task of `sec_b` run as `sec_a` stops saying so, and `sec_b`
/// replicates on, also through frames of a foreign epoch published on its own data subject.
#[tokio::test(flavor = "multi_thread")]
async fn one_jobs_user_cannot_read_or_inject_another_jobs_stream() {
    let bed = bed();
    let name = "sec_b";
    reset(name, name).await;
    let file = job_file(name, &plain_job(name));
    let ca = bed.ca.display().to_string();
    let flags = ["--nats-ca", ca.as_str()];
    let env = user_of(name);
    let dest = Task::start("dest", &file, &bed.nats_secure, &flags, &env_refs(&env));
    let src = Task::start("src", &file, &bed.nats_secure, &flags, &env_refs(&env));
    converge(name).await;

    // A raw client as sec_a: subscriptions refused, publishes dropped, each answered with -ERR.
    let (client, violations) = intruder().await;
    let mut data = client.subscribe("dtle.sec_b.data").await.expect("sent");
    let mut inboxes = client.subscribe("_INBOX.dtle.sec_b.>").await.expect("sent");
    for subject in ["dtle.sec_b.data", "dtle.sec_b.ack", "dtle.sec_b.resync"] {
        let frame = encode_frame(FrameHeader { epoch: 1, seq: 1 }, b"forged");
        client.publish(subject, frame.into()).await.expect("sent");
    }
    client.flush().await.expect("flushed");
    change_source(name).await;
    converge(name).await;
    let got = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::select! { m = data.next() => m, m = inboxes.next() => m }
    })
    .await;
    assert!(
        !matches!(got, Ok(Some(_))),
        "sec_a's user read a message of sec_b"
    );
    let violations = eventually("nats-server refuses sec_a", Duration::from_secs(10), || {
        let seen = violations.lock().expect("events").clone();
        async move {
            let subscribe = seen.iter().any(|e| {
                e.contains("Permissions Violation for Subscription to \"dtle.sec_b.data\"")
            });
            let publish = seen
                .iter()
                .any(|e| e.contains("Permissions Violation for Publish to \"dtle.sec_b.data\""));
            if subscribe && publish {
                Ok(seen)
            } else {
                Err(format!("{seen:?}"))
            }
        }
    })
    .await;
    assert!(!violations.is_empty());

    // A Src task of sec_b run with sec_a's user stops, saying why.
    let as_a = user_of("sec_a");
    refused(
        "sec_b's Src with sec_a's user",
        ("src", &file, &bed.nats_secure),
        &flags,
        &env_refs(&as_a),
        2,
        &["Permissions Violation", "docs/security.md"],
    );

    // With sec_b's own user (allowed on its subjects), frames of an epoch never synced and of an
    // old one are refused by the applier; the job goes on exactly.
    let insider =
        async_nats::ConnectOptions::with_user_and_password(name.into(), nats_password(name))
            .add_root_certificates(bed.ca.clone())
            .connect(bed.nats_secure.as_str())
            .await
            .expect("sec_b's user connects");
    for epoch in [1, u64::MAX] {
        let frame = encode_frame(FrameHeader { epoch, seq: 1 }, b"not an item");
        insider
            .publish("dtle.sec_b.data", frame.into())
            .await
            .expect("sent");
    }
    insider.flush().await.expect("flushed");
    exec(
        bed.src,
        "INSERT INTO sec_b.t SELECT seq, 'after the forgery' FROM sec_b.seq_2001_to_2050",
    )
    .await;
    converge(name).await;
    let (mut src, mut dest) = (src, dest);
    assert!(
        src.is_running() && dest.is_running(),
        "sec_b's tasks stopped"
    );
    let log = dest.log_text();
    assert!(
        log.contains("frames of an epoch this applier has not synced"),
        "the applier did not notice the forged frames:\n{log}"
    );
    for task in [&src, &dest] {
        assert_no_secret("a task of sec_b", &task.log_text());
    }
}

/// A nats-server of this test's own, protected by a token (nats-server takes a token or users,
/// not both, so the test bed's secure server cannot hold one): killed when dropped.
struct TokenServer {
    child: std::process::Child,
    url: String,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_server(token: &str) -> TokenServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let binary = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|path| Path::new(path).exists())
    .unwrap_or("nats-server");
    let child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--auth", token])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts (scripts/testbed.sh up installs it)");
    eventually_blocking(
        "the token nats-server listens",
        Duration::from_secs(10),
        || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        },
    );
    TokenServer {
        child,
        url: format!("nats://127.0.0.1:{port}"),
    }
}

/// `DTLE_NATS_TOKEN` against a server that wants a token: the right one replicates, a wrong one
/// is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_replicates_and_a_wrong_token_is_refused() {
    let name = "sec_token";
    reset(name, name).await;
    let token = "sec-token-value";
    let server = token_server(token);
    let file = job_file(name, &plain_job(name));
    refused(
        "a wrong token",
        ("dest", &file, &server.url),
        &[],
        &[("DTLE_NATS_TOKEN", "sec-not-the-token")],
        2,
        &["authorization violation", "a token"],
    );
    let env = [("DTLE_NATS_TOKEN", token)];
    let dest = Task::start("dest", &file, &server.url, &[], &env);
    let src = Task::start("src", &file, &server.url, &[], &env);
    converge(name).await;
    for task in [&src, &dest] {
        let log = task.log_text();
        assert!(!log.contains(token), "the token is logged:\n{log}");
        assert_no_secret("a task of sec_token", &log);
    }
}
