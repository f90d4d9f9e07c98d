//! What comes in: every rejection's own status (point 1), PUT and Go's booleans (point 2), a job
//! without `ID` (point 5).

use crate::support::*;
use crate::*;
use serde_json::json;

/// Point 1: a 16 MiB+ body is a 413, a body without a length a 411, a bad `?purge` a 400, though
/// another route shares each path (warp then also reports "method not allowed").
#[tokio::test(flavor = "multi_thread")]
async fn every_rejection_answers_with_its_own_status() {
    let agent = Agent::fresh("letter_rejections", 18740);
    let too_large = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{{",
        16 * 1024 * 1024 + 1
    );
    let (status, text) = raw(agent.port, too_large.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("too large"), "{text}");

    let chunked = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let (status, text) = raw(agent.port, chunked.as_bytes());
    assert_eq!(status, 411, "{text}");

    for query in ["purge=maybe", "purge=2", "purge_position=yes"] {
        let answer = call(
            "DELETE",
            &agent.url(&format!("/v1/job/letter_none?{query}")),
            None,
        );
        assert_eq!(answer.status, 400, "?{query}: {:?}", answer);
        assert!(
            answer.body["Error"]
                .as_str()
                .is_some_and(|e| e.contains("bad query string")),
            "{:?}",
            answer
        );
    }
    // What was right stays right.
    let answer = call("DELETE", &agent.url("/v1/jobs"), None);
    assert_eq!(answer.status, 405, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/job/letter_none?purge=maybe"), None);
    assert_eq!(answer.status, 404, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/nothing"), None);
    assert_eq!(answer.status, 404, "{:?}", answer);
}

/// Point 2: dtle 2.x's Go client registers with PUT (its `write` is a PUT, its body a
/// `RegisterJobRequest` `{"Job": {...}}`); `/v1/job/{ID}` registers too; `?purge` reads what Go's
/// `strconv.ParseBool` reads.
#[tokio::test(flavor = "multi_thread")]
async fn go_clients_register_with_put_and_purge_reads_as_go_does() {
    let agent = Agent::fresh("letter_put", 18741);
    for n in 1..=3 {
        reset(&format!("letter_put{n}"), &format!("letter_put{n}")).await;
    }
    let answer = call(
        "PUT",
        &agent.url("/v1/jobs"),
        Some(&with_id(
            "letter_put1",
            &job_json("letter_put1", "letter_put1", ""),
        )),
    );
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put1"))
    );
    let wrapped = format!(
        r#"{{"Job": {}, "EnforceIndex": false}}"#,
        job_json("letter_put2", "letter_put2", "")
    );
    let answer = call("PUT", &agent.url("/v1/job/letter_put2"), Some(&wrapped));
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put2")),
        "{:?}",
        answer
    );
    let answer = call(
        "POST",
        &agent.url("/v1/job/letter_put3"),
        Some(&job_json("letter_put3", "letter_put3", "")),
    );
    assert_eq!(
        (answer.status, &answer.body["ID"]),
        (200, &json!("letter_put3")),
        "{:?}",
        answer
    );
    // The ID in the path and the one in the job must agree.
    let answer = call(
        "PUT",
        &agent.url("/v1/job/letter_elsewhere"),
        Some(&with_id(
            "letter_put1",
            &job_json("letter_put1", "letter_put1", ""),
        )),
    );
    assert_eq!(answer.status, 400, "{:?}", answer);

    for n in 1..=3 {
        let answer = call("GET", &agent.url(&format!("/v1/job/letter_put{n}")), None);
        assert_eq!(answer.status, 200, "{:?}", answer);
    }
    let answer = call("DELETE", &agent.url("/v1/job/letter_put1?purge=yes"), None);
    assert_eq!(answer.status, 400, "{:?}", answer);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_put1"), None).status,
        200,
        "a rejected purge leaves the job"
    );
    for (job, purge) in [("letter_put1", "T"), ("letter_put2", "1")] {
        let answer = call(
            "DELETE",
            &agent.url(&format!("/v1/job/{job}?purge={purge}")),
            None,
        );
        assert_eq!(answer.status, 200, "{:?}", answer);
        assert_eq!(
            call("GET", &agent.url(&format!("/v1/job/{job}")), None).status,
            404,
            "purge={purge} purges"
        );
    }
    let answer = call(
        "DELETE",
        &agent.url("/v1/job/letter_put3?purge=FALSE"),
        None,
    );
    assert_eq!(answer.status, 200, "{:?}", answer);
    let answer = call("GET", &agent.url("/v1/job/letter_put3"), None);
    assert_eq!(
        (answer.status, &answer.body["Status"]),
        (200, &json!("dead"))
    );
    let answer = call("DELETE", &agent.url("/v1/job/letter_put3?purge=True"), None);
    assert_eq!(answer.status, 200, "{:?}", answer);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_put3"), None).status,
        404
    );
}

/// Point 5: a job posted without `ID` whose `Name` is taken does not replace the job that has it
/// (dtle-rs refuses with 409: names key NATS subjects and the target's position rows).
#[tokio::test(flavor = "multi_thread")]
async fn a_job_without_id_never_replaces_one_of_the_same_name() {
    let (job, schema) = ("letter_same", "letter_same");
    reset(schema, job).await;
    let agent = Agent::fresh(job, 18744);
    let first = job_json(job, schema, "");
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&first));
    assert_eq!((answer.status, &answer.body["ID"]), (200, &json!(job)));
    let before = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;

    let other = job_json(job, schema, r#""ChunkSize": 100,"#);
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&other));
    assert_eq!(answer.status, 409, "{:?}", answer);
    let error = answer.body["Error"].as_str().unwrap_or_default();
    assert!(error.contains(job) && error.contains("\"ID\""), "{error}");
    let answer = call(
        "POST",
        &agent.url("/v1/jobs"),
        Some(&with_id("letter_same_2", &first)),
    );
    assert_eq!(
        answer.status, 409,
        "another ID, the same Name: {:?}",
        answer
    );

    let after = call("GET", &agent.url(&format!("/v1/job/{job}")), None).body;
    assert_eq!(after["JobModifyIndex"], before["JobModifyIndex"]);
    assert_eq!(after["Tasks"][0]["Config"]["ChunkSize"], 2000);
    assert_eq!(
        call("GET", &agent.url("/v1/job/letter_same_2"), None).status,
        404
    );
    // The same job again is no replacement: nothing happens. With its ID, it is an update.
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&first));
    assert_eq!(
        (answer.status, &answer.body["Changed"]),
        (200, &json!(false)),
        "{:?}",
        answer
    );
    let answer = call("POST", &agent.url("/v1/jobs"), Some(&with_id(job, &other)));
    assert_eq!(
        (answer.status, &answer.body["Changed"]),
        (200, &json!(true)),
        "{:?}",
        answer
    );
    purge(&agent, job);
}
