//! The API over TLS: a throwaway CA (rcgen) signs the agent's certificate and a client's; a
//! client that does not trust the CA is refused, one that does gets in, and with client
//! certificates required, only a client that presents one signed by the CA.

use crate::support::*;
use crate::{ADMIN, READ};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::path::{Path, PathBuf};

struct Pki {
    ca_pem: String,
    client_pem: String,
    other_client_pem: String,
    dir: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).expect("folder");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("server certificate");
    std::fs::write(dir.join("server.pem"), server.pem()).expect("write");
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).expect("write");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let client = |signer: Option<(&rcgen::Certificate, &KeyPair)>| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["client".to_owned()]).expect("params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = match signer {
            Some((ca, ca_key)) => params.signed_by(&key, ca, ca_key),
            None => params.self_signed(&key),
        }
        .expect("client certificate");
        format!("{}{}", cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        client_pem: client(Some((&ca_cert, &ca_key))),
        other_client_pem: client(None),
        dir: dir.to_path_buf(),
    }
}

fn config(pki: &Pki, client_ca: bool) -> PathBuf {
    let d = pki.dir.display();
    let mut text = format!("[api]\ntls_cert = \"{d}/server.pem\"\ntls_key = \"{d}/server.key\"\n");
    if client_ca {
        text.push_str(&format!("tls_client_ca = \"{d}/ca.pem\"\n"));
    }
    let path = pki
        .dir
        .join(if client_ca { "mtls.toml" } else { "tls.toml" });
    std::fs::write(&path, text).expect("write");
    path
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<u16, String> {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

fn trusting(pki: &Pki) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_over_tls_trusts_only_its_ca_and_can_require_client_certificates() {
    let pki = pki(&scratch("apisec_tls").join("pki"));
    let tokens = [("DTLE_ADMIN_TOKEN", ADMIN), ("DTLE_READ_TOKEN", READ)];

    let tls_config = config(&pki, false);
    let a = {
        let _ = std::fs::remove_dir_all(scratch("apisec_tls").join("agent-state"));
        Agent::start_env(
            "apisec_tls",
            18803,
            NATS_URL,
            &["--config", tls_config.to_str().expect("path")],
            &tokens,
        )
    };
    let https = "https://127.0.0.1:18803/v1/jobs";
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .expect("client");
    let refused = get(&stranger, https, READ).await;
    assert!(
        refused.is_err(),
        "a client without the CA gets in: {refused:?}"
    );
    let friend = trusting(&pki).build().expect("client");
    assert_eq!(get(&friend, https, READ).await, Ok(200));
    assert_eq!(get(&friend, https, "wrong-token-0123456789").await, Ok(401));
    let plain = reqwest::Client::new()
        .get("http://127.0.0.1:18803/v1/jobs")
        .send()
        .await;
    assert!(
        plain.map(|r| r.status().as_u16() != 200).unwrap_or(true),
        "plain HTTP is not served"
    );
    // The CLI: trusts the agent's CA through DTLE_CACERT, else refuses the connection.
    let cli = |cacert: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dtle"));
        command
            .args(["job", "status", "--address", "https://127.0.0.1:18803"])
            .env_remove("DTLE_CACERT")
            .env("DTLE_TOKEN", READ);
        if let Some(ca) = cacert {
            command.env("DTLE_CACERT", ca);
        }
        let out = command.output().expect("dtle runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = cli(Some(&pki.dir.join("ca.pem")));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = cli(None);
    assert_ne!(
        code,
        Some(0),
        "an agent signed by an unknown CA is trusted: {stderr}"
    );
    drop(a);

    let mtls_config = config(&pki, true);
    let _b = {
        let _ = std::fs::remove_dir_all(scratch("apisec_mtls").join("agent-state"));
        Agent::start_env(
            "apisec_mtls",
            18804,
            NATS_URL,
            &["--config", mtls_config.to_str().expect("path")],
            &tokens,
        )
    };
    let https = "https://127.0.0.1:18804/v1/jobs";
    let no_cert = trusting(&pki).build().expect("client");
    let refused = get(&no_cert, https, READ).await;
    assert!(
        refused.is_err(),
        "a client without a certificate gets in: {refused:?}"
    );
    let foreign = trusting(&pki)
        .identity(reqwest::Identity::from_pem(pki.other_client_pem.as_bytes()).expect("identity"))
        .build()
        .expect("client");
    let refused = get(&foreign, https, READ).await;
    assert!(
        refused.is_err(),
        "a certificate of another CA gets in: {refused:?}"
    );
    let signed = trusting(&pki)
        .identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).expect("identity"))
        .build()
        .expect("client");
    assert_eq!(get(&signed, https, READ).await, Ok(200));
}
