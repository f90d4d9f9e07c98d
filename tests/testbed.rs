//! The shared test bed is what every end-to-end test relies on: check that it is up and configured
//! as `scripts/testbed.sh` promises (see ../shared/notes/mariadb-binlog.md for why each setting).
//! Run `scripts/testbed.sh up` first (`scripts/test.sh` does).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const USER: &str = "dtle";
const PASSWORD: &str = "dtle-pass";

/// Runs one query with the `mariadb` client over TCP and returns its tab-separated first row.
fn query(port: u16, sql: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{USER}"),
            &format!("-p{PASSWORD}"),
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .output()
        .expect("the mariadb client is installed (scripts/testbed.sh up installs it)");
    assert!(
        out.status.success(),
        "test bed on port {port} does not answer (run scripts/testbed.sh up): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::to_owned)
        .collect()
}

#[test]
fn source_writes_a_full_row_binlog_with_gtids() {
    let row = query(
        3307,
        "SELECT @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image, \
         @@binlog_row_metadata, @@binlog_checksum, @@gtid_strict_mode, @@character_set_server, \
         @@max_allowed_packet >= 1073741824",
    );
    assert_eq!(
        row,
        ["1", "1", "ROW", "FULL", "FULL", "CRC32", "1", "utf8mb4", "1"]
    );
}

#[test]
fn target_is_a_separate_server_with_its_own_binlog() {
    let row = query(3308, "SELECT @@server_id, @@log_bin, @@port");
    assert_eq!(row, ["2", "1", "3308"]);
}

#[test]
fn nats_answers_on_its_port() {
    let stream = TcpStream::connect(("127.0.0.1", 8193))
        .expect("nats-server listens on 127.0.0.1:8193 (run scripts/testbed.sh up)");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("nats-server greets");
    assert!(line.starts_with("INFO {"), "not a NATS greeting: {line:?}");
    let info: serde_json::Value =
        serde_json::from_str(line.trim_start_matches("INFO ").trim()).expect("INFO is JSON");
    assert_eq!(info["port"], 8193);
    assert_eq!(info["jetstream"], true);
}
