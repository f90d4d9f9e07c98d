//! A connection's `SslMode` carried out with mysql_async's `SslOpts`, and what a failed TLS
//! connection means.
//!
//! # Modes (MySQL's `--ssl-mode`)
//! - `DISABLED`: no `SslOpts`: the client never asks for TLS.
//! - `PREFERRED`: TLS without verifying the certificate; when the server offers no TLS at all
//!   (mysql_async's `NoClientSslFlagFromServer`), once more without it.
//! - `REQUIRED`: TLS without verifying the certificate, or no connection.
//! - `VERIFY_IDENTITY`: the certificate must chain to `SslCa` (or, without it, a built-in set of
//!   public authorities) and be valid for the job's `Host`.
//! - `VERIFY_CA`: the chain as above; the name is not checked. mysql_async 0.37.1's switch for
//!   that (`skip_domain_validation`) spots a name mismatch by a word rustls 0.23 no longer prints,
//!   so it never fires. Instead the first attempt verifies the name too; when rustls refuses the
//!   name only (it checks the chain first, so the chain is already good), the connection is made
//!   again verifying against a name the certificate holds, which rustls reported. Chain and
//!   signature are verified on the connection that is kept, as VERIFY_CA needs.
//!
//! Every TLS refusal is definite: a certificate does not become trusted by waiting. The message
//! names the mode, the host and what to change.

use crate::error::DefiniteCause;
use crate::tls::{check_certificates, check_private_key, rustls_cause, Refusal};
use jobs::{SslConfig, SslMode};
use mysql_async::{ClientIdentity, DriverError, SslOpts};
use std::path::{Path, PathBuf};

/// One way of connecting: which TLS options, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// No TLS (`DISABLED`, or `PREFERRED` to a server without TLS).
    Plain,
    /// TLS with these options; `name` overrides the host name verified (VERIFY_CA's retry).
    Tls {
        /// Whether the certificate is verified at all.
        verify: bool,
        /// The name to verify the certificate against instead of the host.
        name: Option<String>,
    },
}

/// What to do after a failed attempt.
#[derive(Debug)]
pub enum Next {
    /// Try again this way.
    Retry(Attempt),
    /// Not a TLS matter: classify the error as any other.
    Unrelated,
    /// A TLS refusal: stop with this cause.
    Refused(DefiniteCause),
}

/// Checks that the files of `ssl` can be read and hold what they should.
///
/// # Errors
/// A definite error naming the setting and the file.
pub fn check_files(ssl: &SslConfig) -> Result<(), DefiniteCause> {
    let bad = |e: crate::tls::TlsFileError| DefiniteCause::BadConfig(e.to_string());
    if ssl.mode == SslMode::Disabled {
        return Ok(());
    }
    if let Some(ca) = &ssl.ca {
        check_certificates("SslCa", Path::new(ca)).map_err(bad)?;
    }
    if let Some(cert) = &ssl.cert {
        check_certificates("SslCert", Path::new(cert)).map_err(bad)?;
    }
    if let Some(key) = &ssl.key {
        check_private_key("SslKey", Path::new(key)).map_err(bad)?;
    }
    Ok(())
}

/// The first attempt for `ssl`.
pub fn first_attempt(ssl: &SslConfig) -> Attempt {
    match ssl.mode {
        SslMode::Disabled => Attempt::Plain,
        SslMode::Preferred | SslMode::Required => Attempt::Tls {
            verify: false,
            name: None,
        },
        SslMode::VerifyCa | SslMode::VerifyIdentity => Attempt::Tls {
            verify: true,
            name: None,
        },
    }
}

/// mysql_async's options for `attempt`; `None` for a plain connection.
pub fn ssl_opts(ssl: &SslConfig, attempt: &Attempt) -> Option<SslOpts> {
    let Attempt::Tls { verify, name } = attempt else {
        return None;
    };
    let mut opts = SslOpts::default();
    if let (Some(cert), Some(key)) = (&ssl.cert, &ssl.key) {
        opts = opts.with_client_identity(Some(ClientIdentity::new(
            PathBuf::from(cert).into(),
            PathBuf::from(key).into(),
        )));
    }
    if !verify {
        return Some(
            opts.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        );
    }
    if let Some(ca) = &ssl.ca {
        // Only the authorities the job names: a public CA's certificate for some other service
        // must not pass for the database's.
        opts = opts
            .with_root_certs(vec![PathBuf::from(ca).into()])
            .with_disable_built_in_roots(true);
    }
    Some(opts.with_danger_tls_hostname_override(name.clone()))
}

/// What the failure of `attempt` with `err` means under `ssl`, connecting to `host`.
pub fn after_failure(
    ssl: &SslConfig,
    host: &str,
    attempt: &Attempt,
    err: &mysql_async::Error,
) -> Next {
    if let mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) = err {
        return match ssl.mode {
            SslMode::Preferred => Next::Retry(Attempt::Plain),
            mode => Next::Refused(DefiniteCause::BadConfig(format!(
                "the server at {host} does not offer TLS, and SslMode is {mode}: enable TLS on \
                 the server (ssl-cert, ssl-key) or set a weaker SslMode"
            ))),
        };
    }
    let Some(tls) = rustls_cause(err) else {
        return Next::Unrelated;
    };
    let refusal = Refusal::of(tls);
    if let (
        SslMode::VerifyCa,
        Attempt::Tls { name: None, .. },
        Refusal::NameMismatch { presented },
    ) = (ssl.mode, attempt, &refusal)
    {
        if let Some(name) = presented.iter().find_map(|name| concrete(name)) {
            return Next::Retry(Attempt::Tls {
                verify: true,
                name: Some(name),
            });
        }
    }
    Next::Refused(DefiniteCause::BadConfig(explain(ssl, host, &refusal)))
}

/// A name to verify the certificate against: `name` itself, or for a wildcard (`*.db.example`)
/// one name it covers (`dtle.db.example`); `None` for a pattern that is neither.
fn concrete(name: &str) -> Option<String> {
    let name = match name.strip_prefix("*.") {
        Some(domain) => format!("dtle.{domain}"),
        None => name.to_owned(),
    };
    (!name.contains('*')).then_some(name)
}

/// The message for a refused certificate.
fn explain(ssl: &SslConfig, host: &str, refusal: &Refusal) -> String {
    let mode = ssl.mode;
    let authorities = match &ssl.ca {
        Some(ca) => format!("the authorities in SslCa {ca}"),
        None => "the built-in public authorities (no SslCa given)".to_owned(),
    };
    match refusal {
        Refusal::UntrustedIssuer => format!(
            "TLS refused (SslMode {mode}): the certificate of the server at {host} is not \
             signed by {authorities}; set SslCa to the CA that signed it"
        ),
        Refusal::NameMismatch { presented } if presented.is_empty() => format!(
            "TLS refused (SslMode {mode}): the certificate of the server at {host} holds no \
             name (no subjectAltName); reissue it with the server's name, or use SslMode \
             REQUIRED"
        ),
        Refusal::NameMismatch { presented } => format!(
            "TLS refused (SslMode {mode}): the certificate of the server at {host} is valid for \
             {} only; connect to one of those names (Host), or use SslMode VERIFY_CA to check \
             the authority alone",
            presented.join(", ")
        ),
        Refusal::Expired => format!(
            "TLS refused (SslMode {mode}): the certificate of the server at {host} has expired \
             or is not valid yet; renew it"
        ),
        Refusal::Other(what) => format!("TLS refused (SslMode {mode}) by {host}: {what}"),
    }
}

/// A hint for an access denied without TLS: an account that `REQUIRE`s SSL is refused with the
/// same error as a wrong password.
pub fn access_denied_hint(attempt: &Attempt) -> Option<&'static str> {
    matches!(attempt, Attempt::Plain).then_some(
        "the connection did not use TLS: if the account REQUIREs SSL (or X509), set SslMode to \
         REQUIRED or stricter",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(mode: SslMode, ca: Option<&str>) -> SslConfig {
        SslConfig {
            mode,
            ca: ca.map(str::to_owned),
            cert: None,
            key: None,
        }
    }

    #[test]
    fn each_mode_maps_to_its_options() {
        assert_eq!(first_attempt(&ssl(SslMode::Disabled, None)), Attempt::Plain);
        assert!(ssl_opts(&ssl(SslMode::Disabled, None), &Attempt::Plain).is_none());
        let required = ssl(SslMode::Required, None);
        let opts = ssl_opts(&required, &first_attempt(&required)).expect("TLS");
        assert!(opts.accept_invalid_certs() && opts.skip_domain_validation());
        let verify = ssl(SslMode::VerifyIdentity, Some("/ca.pem"));
        let opts = ssl_opts(&verify, &first_attempt(&verify)).expect("TLS");
        assert!(!opts.accept_invalid_certs() && !opts.skip_domain_validation());
        assert!(opts.disable_built_in_roots());
        assert_eq!(opts.root_certs().len(), 1);
        let renamed = Attempt::Tls {
            verify: true,
            name: Some("db.example".into()),
        };
        let opts = ssl_opts(&verify, &renamed).expect("TLS");
        assert_eq!(opts.tls_hostname_override(), Some("db.example"));
    }

    #[test]
    fn preferred_falls_back_to_plain_and_required_refuses() {
        let err = mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer);
        let first = Attempt::Tls {
            verify: false,
            name: None,
        };
        assert!(matches!(
            after_failure(&ssl(SslMode::Preferred, None), "h", &first, &err),
            Next::Retry(Attempt::Plain)
        ));
        let Next::Refused(cause) = after_failure(&ssl(SslMode::Required, None), "h", &first, &err)
        else {
            panic!("REQUIRED must refuse a server without TLS");
        };
        assert!(cause.to_string().contains("does not offer TLS"), "{cause}");
    }

    #[test]
    fn verify_ca_retries_with_the_certificates_name_and_verify_identity_refuses() {
        let name_error = |presented: &str| {
            let tls = rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext {
                    expected: rustls::pki_types::ServerName::try_from("localhost")
                        .expect("name")
                        .to_owned(),
                    presented: vec![presented.to_owned()],
                },
            );
            mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                tls,
            )))
        };
        let first = Attempt::Tls {
            verify: true,
            name: None,
        };
        assert_eq!(concrete("*.db.example").as_deref(), Some("dtle.db.example"));
        assert_eq!(concrete("db*.example"), None);
        let err = name_error("IpAddress(127.0.0.1)");
        match after_failure(
            &ssl(SslMode::VerifyCa, Some("/ca")),
            "localhost",
            &first,
            &err,
        ) {
            Next::Retry(Attempt::Tls { name, verify }) => {
                assert!(verify);
                assert_eq!(name.as_deref(), Some("127.0.0.1"));
            }
            other => panic!("{other:?}"),
        }
        let Next::Refused(cause) = after_failure(
            &ssl(SslMode::VerifyIdentity, Some("/ca")),
            "localhost",
            &first,
            &err,
        ) else {
            panic!("VERIFY_IDENTITY must refuse another name");
        };
        let message = cause.to_string();
        assert!(
            message.contains("valid for 127.0.0.1 only") && message.contains("VERIFY_CA"),
            "{message}"
        );
        let unrelated = mysql_async::Error::Other("x".into());
        assert!(matches!(
            after_failure(&ssl(SslMode::VerifyCa, None), "h", &first, &unrelated),
            Next::Unrelated
        ));
    }
}
