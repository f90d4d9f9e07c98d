//! TLS files checked before they are used, and TLS failures told apart, for both kinds of
//! connection a task opens (NATS, [`crate::transport::security`]; the source and target,
//! [`crate::mysql::tls`]).
//!
//! # Files
//! A CA file, a certificate file or a key file is read and parsed when the settings are taken
//! (the agent's start, SetConfig, a task's first connection), so a wrong path or a file of the
//! wrong kind is reported by name before any server is asked, not as a handshake failure later.
//!
//! # Failures
//! The clients report a refused certificate as an I/O error wrapping rustls's error (the
//! handshake runs inside their stream code). [`rustls_cause`] finds that error along the chain of
//! sources, looking inside each `io::Error` too (whose `source()` skips the wrapped error), and
//! [`Refusal`] says what it means by variant, never by message text: a certificate not signed by
//! a trusted authority, one valid for other names (with the names it holds), an expired one.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::CertificateError;
use std::error::Error;
use std::path::Path;

/// Why a TLS file cannot be used; the message names the file and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsFileError {
    /// The file cannot be read.
    #[error("{what} {path} cannot be read: {reason}; give the path of a readable PEM file")]
    Unreadable {
        /// Which setting (`the NATS CA file`, `SslCa`, ...).
        what: String,
        /// The path as given.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// The file holds no PEM item of the kind needed.
    #[error("{what} {path} holds no {kind} in PEM form (-----BEGIN {label}-----)")]
    Empty {
        /// Which setting.
        what: String,
        /// The path as given.
        path: String,
        /// What it should hold.
        kind: &'static str,
        /// The PEM label expected.
        label: &'static str,
    },
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError::Unreadable {
        what: what.to_owned(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn empty(what: &str, path: &Path, kind: &'static str, label: &'static str) -> TlsFileError {
    TlsFileError::Empty {
        what: what.to_owned(),
        path: path.display().to_string(),
        kind,
        label,
    }
}

/// Checks that `path` holds at least one certificate (a CA file, or a client certificate chain).
///
/// # Errors
/// [`TlsFileError`] naming `what` and the path.
pub fn check_certificates(what: &str, path: &Path) -> Result<(), TlsFileError> {
    let bytes = read(what, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .count();
    if certificates == 0 {
        return Err(empty(what, path, "certificate", "CERTIFICATE"));
    }
    Ok(())
}

/// Checks that `path` holds a private key.
///
/// # Errors
/// [`TlsFileError`] naming `what` and the path.
pub fn check_private_key(what: &str, path: &Path) -> Result<(), TlsFileError> {
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map(drop)
        .map_err(|_| empty(what, path, "private key", "PRIVATE KEY"))
}

/// The rustls error somewhere in `err`'s chain of sources, if any.
pub fn rustls_cause<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(found) = inner.downcast_ref::<rustls::Error>() {
                return Some(found);
            }
            current = Some(inner);
            continue;
        }
        current = err.source();
    }
    None
}

/// What a refused handshake means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server's certificate is not signed by an authority we trust.
    UntrustedIssuer,
    /// The certificate is valid, for other names than the one connected to.
    NameMismatch {
        /// The names the certificate holds (may be empty: no subjectAltName).
        presented: Vec<String>,
    },
    /// The certificate has expired or is not valid yet.
    Expired,
    /// Anything else TLS refused, as rustls says it.
    Other(String),
}

impl Refusal {
    /// What `err` means.
    pub fn of(err: &rustls::Error) -> Refusal {
        match err {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    Refusal::UntrustedIssuer
                }
                CertificateError::NotValidForName => Refusal::NameMismatch {
                    presented: Vec::new(),
                },
                CertificateError::NotValidForNameContext { presented, .. } => {
                    Refusal::NameMismatch {
                        presented: presented.iter().filter_map(|n| plain_name(n)).collect(),
                    }
                }
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => Refusal::Expired,
                other => Refusal::Other(format!("invalid peer certificate: {other}")),
            },
            other => Refusal::Other(other.to_string()),
        }
    }
}

/// A name as rustls (webpki) presents it, `DnsName("db.example")` or `IpAddress(127.0.0.1)`,
/// as a plain host name or address; `None` for the kinds a host cannot be (directory names,
/// URIs).
fn plain_name(presented: &str) -> Option<String> {
    let inner = |prefix: &str| {
        presented
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
            .map(str::to_owned)
    };
    if let Some(quoted) = inner("DnsName(") {
        return Some(quoted.trim_matches('"').to_owned());
    }
    if let Some(address) = inner("IpAddress(") {
        return Some(address);
    }
    // Another rustls might print the bare name; a host name has no parenthesis, and a
    // directory name is printed as its kind alone.
    (!presented.contains('(') && presented != "DirectoryName").then(|| presented.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn the_rustls_error_is_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, tls);
        let outer = io::Error::other(io);
        let found = rustls_cause(&outer).expect("found");
        assert_eq!(Refusal::of(found), Refusal::UntrustedIssuer);
        assert!(rustls_cause(&io::Error::other("plain")).is_none());
    }

    #[test]
    fn a_name_mismatch_keeps_the_names_the_certificate_holds() {
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("db.example")
                .expect("a name")
                .to_owned(),
            presented: vec![
                "IpAddress(127.0.0.1)".into(),
                "DnsName(\"db.example\")".into(),
                "DirectoryName".into(),
            ],
        });
        assert_eq!(
            Refusal::of(&err),
            Refusal::NameMismatch {
                presented: vec!["127.0.0.1".into(), "db.example".into()]
            }
        );
    }

    #[test]
    fn files_are_named_when_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        let err = check_certificates("SslCa", &missing).expect_err("missing");
        assert!(
            err.to_string().contains("SslCa") && err.to_string().contains("missing.pem"),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let err = check_certificates("the NATS CA file", &junk).expect_err("junk");
        assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
        let err = check_private_key("SslKey", &junk).expect_err("junk");
        assert!(err.to_string().contains("private key"), "{err}");
    }
}
