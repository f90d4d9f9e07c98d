//! The `dtle` binary as a user runs it: `dtle job validate FILE`.

use std::process::Command;

fn dtle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dtle"))
}

fn fixture(name: &str) -> String {
    format!("{}/jobs/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_valid_job_prints_its_normalised_form_without_passwords() {
    let out = dtle()
        .args(["job", "validate", &fixture("same_nomad.hcl")])
        .output()
        .expect("dtle runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let spec: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(spec["id"], "demo");
    assert_eq!(spec["src"]["connection"]["port"], 3307);
    assert_eq!(spec["src"]["connection"]["password"], "*");
    assert!(!stdout.contains("src-secret") && !stdout.contains("dst-secret"));
}

#[test]
fn an_invalid_job_lists_every_problem_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("dtle-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.json");
    let text = std::fs::read_to_string(fixture("same_dtle2x.json"))
        .expect("fixture")
        .replace("\"Port\": \"3307\"", "\"Port\": \"abc\"")
        .replace("\"Name\": \"demo\"", "\"Name\": \"de.mo\"");
    std::fs::write(&file, text).expect("write job");
    let out = dtle()
        .args(["job", "validate"])
        .arg(&file)
        .output()
        .expect("dtle runs");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert!(
        stderr.contains("the job is invalid (2 problem(s))"),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"Tasks[0].Config.ConnectionConfig.Port: expected 1-65535, got "abc""#),
        "{stderr}"
    );
    assert!(stderr.contains(r#"Name: "de.mo" contains '.'"#), "{stderr}");
    assert!(!stderr.contains("src-secret"), "{stderr}");
}
