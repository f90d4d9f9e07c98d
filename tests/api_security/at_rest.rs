//! What the agent keeps: passwords sealed in the state folder, `/encrypt-config`, a state
//! folder copied without its key, and a key rotation.

use crate::support::*;
use crate::{agent, assert_not_written, call, ADMIN, WITH_TOKENS};
use std::path::Path;
use std::time::Duration;

fn copy_dir(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("folder").flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if name == skip {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name), skip);
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

fn job_file_text(state: &Path, job: &str) -> String {
    std::fs::read_to_string(state.join("jobs").join(format!("{job}.json"))).expect("job file")
}

/// The key id a job file's passwords are sealed under.
fn sealed_key_id(text: &str) -> String {
    let at = text.find("dtle:sealed:v1:").expect("a sealed password") + "dtle:sealed:v1:".len();
    text[at..at + 8].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_are_sealed_at_rest_and_a_folder_without_its_key_says_why() {
    let (job, schema) = ("apisec_rest", "apisec_rest");
    reset(schema, job).await;
    exec(
        SRC_PORT,
        &format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO {schema}.t SELECT seq, 'a' FROM {schema}.seq_1_to_100"),
    )
    .await;
    let mut a = agent("apisec_rest", 18805, WITH_TOKENS);

    // Sealed by /encrypt-config (both paths), then registered sealed: it replicates.
    let plain = job_json(job, schema, "");
    for path in ["/encrypt-config", "/hazelcast/rest/maps/encrypt-config"] {
        let (status, _, sealed) = call("POST", &a.url(path), Some(ADMIN), Some(&plain));
        assert_eq!(status, 200, "{sealed}");
        let password = &sealed["Tasks"][0]["Config"]["ConnectionConfig"]["Password"];
        assert!(
            password
                .as_str()
                .is_some_and(|p| p.starts_with("dtle:sealed:v1:")),
            "{sealed}"
        );
    }
    let (_, _, sealed) = call("POST", &a.url("/encrypt-config"), Some(ADMIN), Some(&plain));
    let (status, _, answer) = call(
        "POST",
        &a.url("/v1/jobs"),
        Some(ADMIN),
        Some(&sealed.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let state = a.state_dir.clone();
    let first_key = sealed_key_id(&job_file_text(&state, job));
    assert_not_written(&state, PASSWORD);
    assert!(a.terminate(Duration::from_secs(20)), "the agent stops");

    // Copied without its key: the job is kept, stopped, and says why.
    let moved = scratch("apisec_rest_moved").join("agent-state");
    let _ = std::fs::remove_dir_all(&moved);
    copy_dir(&state, &moved, "secret.key");
    let b = Agent::start_env("apisec_rest_moved", 18806, NATS_URL, &[], WITH_TOKENS);
    let (status, _, shown) = call("GET", &b.url(&format!("/v1/job/{job}")), Some(ADMIN), None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["Status"], "dead", "{shown}");
    let why = shown["StatusDescription"].as_str().unwrap_or_default();
    assert!(
        why.contains(&first_key) && why.contains("DTLE_SECRET_KEY"),
        "{why}"
    );
    assert!(
        b.log_text().contains("cannot be opened"),
        "{}",
        b.log_text()
    );
    drop(b);

    // Rotation: a new key, the old one given as previous; the job runs and is sealed anew.
    let old_key = std::fs::read_to_string(state.join("secret.key")).expect("key file");
    let new_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    exec(
        SRC_PORT,
        &format!("INSERT INTO {schema}.t SELECT seq, 'b' FROM {schema}.seq_101_to_200"),
    )
    .await;
    let c = Agent::start_env(
        "apisec_rest",
        18807,
        NATS_URL,
        &[],
        &[
            ("DTLE_ADMIN_TOKEN", ADMIN),
            ("DTLE_SECRET_KEY", new_key),
            ("DTLE_SECRET_KEY_PREVIOUS", old_key.trim()),
        ],
    );
    converge(schema, "t", "id", Duration::from_secs(60)).await;
    let second_key = sealed_key_id(&job_file_text(&state, job));
    assert_ne!(first_key, second_key, "sealed again under the new key");
    assert_not_written(&state, PASSWORD);
    assert!(!c.log_text().contains(new_key) && !c.log_text().contains(old_key.trim()));
    let (status, _, _) = call(
        "DELETE",
        &c.url(&format!("/v1/job/{job}?purge=true")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
}
