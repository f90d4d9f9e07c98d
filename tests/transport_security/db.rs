//! TLS to the databases: each refusal `SslMode` promises, as `dtle task run` reports it (the Src
//! task checks its source first). The modes that work replicate in [`super::nats`] (REQUIRED,
//! VERIFY_IDENTITY) and [`super::agent`] (VERIFY_CA).

use super::*;

/// A Src task whose source connection is `source` (the target is the plain one).
fn src_refused(test: &str, source: &str, says: &[&str]) {
    let bed = bed();
    let target = connection("127.0.0.1", bed.dst, &bed.user, &bed.password, "");
    let file = job_file(test, &job("sec_db", source, &target));
    refused(test, ("src", &file, &bed.nats), &[], &[], 2, says);
}

#[test]
fn each_ssl_mode_refuses_what_it_must() {
    let bed = bed();
    let ca = bed.ca.display().to_string();
    let other_ca = bed.other_ca.display().to_string();
    let tls_user = |host: &str, extra: &str| {
        connection(host, bed.src, &bed.tls_user, &bed.tls_password, extra)
    };
    src_refused(
        "sec_db_disabled",
        &tls_user("127.0.0.1", r#", "SslMode": "DISABLED""#),
        &["Access denied", "SslMode", "REQUIRE"],
    );
    src_refused(
        "sec_db_wrong_ca",
        &tls_user(
            "127.0.0.1",
            &format!(r#", "SslMode": "VERIFY_CA", "SslCa": "{other_ca}""#),
        ),
        &[
            "TLS refused (SslMode VERIFY_CA)",
            "not signed by",
            &other_ca,
        ],
    );
    src_refused(
        "sec_db_other_name",
        &tls_user(
            "localhost",
            &format!(r#", "SslMode": "VERIFY_IDENTITY", "SslCa": "{ca}""#),
        ),
        &[
            "TLS refused (SslMode VERIFY_IDENTITY)",
            "valid for 127.0.0.1 only",
        ],
    );
    src_refused(
        "sec_db_unreadable_ca",
        &tls_user(
            "127.0.0.1",
            r#", "SslMode": "VERIFY_CA", "SslCa": "/nonexistent/sec/db-ca.pem""#,
        ),
        &["SslCa /nonexistent/sec/db-ca.pem cannot be read"],
    );
}

/// A job naming TLS files without TLS is refused before it runs, at the field's path.
#[test]
fn files_without_tls_are_refused_by_the_job_model() {
    let bed = bed();
    let source = connection(
        "127.0.0.1",
        bed.src,
        &bed.user,
        &bed.password,
        r#", "SslCa": "/etc/ca.pem""#,
    );
    let target = connection("127.0.0.1", bed.dst, &bed.user, &bed.password, "");
    let file = job_file("sec_db_model", &job("sec_db", &source, &target));
    refused(
        "SslCa without SslMode",
        ("src", &file, &bed.nats),
        &[],
        &[],
        1,
        &["ConnectionConfig.SslCa", "no TLS"],
    );
}
