//! A task's `ConnectionConfig`, read into a [`ConnectionConfig`]: dtle's `Host`, `Port`, `User`,
//! `Password`, `Charset`, and dtle-rs's TLS settings in MySQL's terms.
//!
//! # TLS
//! `SslMode` takes MySQL's `--ssl-mode` names (any case): `DISABLED` (the default, what dtle
//! did), `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`. `SslCa` names the PEM file of
//! the authorities the server's certificate must be signed by, `SslCert` and `SslKey` a client
//! certificate and its key (given together). The rules, each an error at the field's path:
//! - an unknown mode names the five;
//! - a file without TLS (`SslMode` unset or `DISABLED`) is refused: the user meant TLS, and a
//!   connection without it would be silently weaker than asked;
//! - `SslCert` without `SslKey` (or the reverse) is refused.
//!
//! `SslCa` with `PREFERRED` or `REQUIRED` is accepted with a warning: those modes encrypt without
//! verifying the server, as in MySQL, so the file is not used (`VERIFY_CA` would use it).
//! An empty string is the same as an absent field.

use crate::diagnostic::Diagnostics;
use crate::read::ObjectReader;
use crate::spec::{ConnectionConfig, Password, SslConfig, SslMode};

/// The fields of a connection, for the message about an unknown one.
const FIELDS: &str = "Host, Port, User, Password, Charset, SslMode, SslCa, SslCert, SslKey";

/// Reads one `ConnectionConfig` object; `None` when it has an error (reported in `diags`).
pub(crate) fn read_connection(
    mut r: ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> Option<ConnectionConfig> {
    let mut ok = true;
    let mut required = |r: &mut ObjectReader<'_>, key: &str, diags: &mut Diagnostics| {
        let value = r.string(key, diags).map(|v| v.trim().to_owned());
        if value.as_deref().is_none_or(str::is_empty) {
            diags.error(
                &r.field_path(key),
                if r.has(key) {
                    "must not be empty"
                } else {
                    "missing"
                },
            );
            ok = false;
        }
        value.unwrap_or_default()
    };
    let host = required(&mut r, "Host", diags);
    let user = required(&mut r, "User", diags);
    let port = if r.has("Port") {
        let before = diags.errors.len();
        let port = r.integer("Port", 1, 65535, 0, diags);
        ok &= diags.errors.len() == before;
        port
    } else {
        diags.error(&r.field_path("Port"), "missing");
        ok = false;
        0
    };
    let password = r.string("Password", diags).unwrap_or_default();
    let charset = r
        .string("Charset", diags)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "utf8mb4".to_owned());
    if !charset
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        diags.error(
            &r.field_path("Charset"),
            format!("{charset:?} is not a character set name (e.g. utf8mb4, latin1)"),
        );
        ok = false;
    }
    let ssl = read_ssl(&mut r, diags);
    ok &= ssl.is_some();
    for left in r.finish() {
        diags.keep_unrecognised(
            &left.path,
            &left.value,
            &format!("unknown field; kept but not used (a connection has {FIELDS})"),
        );
    }
    ok.then(|| ConnectionConfig {
        host,
        port: u16::try_from(port).unwrap_or_default(),
        user,
        password: Password::new(password),
        charset,
        ssl: ssl.unwrap_or_default(),
    })
}

/// A set string field, trimmed; empty counts as absent.
fn optional(r: &mut ObjectReader<'_>, key: &str, diags: &mut Diagnostics) -> Option<String> {
    r.string(key, diags)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `SslMode`, `SslCa`, `SslCert`, `SslKey` by the rules of the module doc; `None` on an error.
fn read_ssl(r: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> Option<SslConfig> {
    let before = diags.errors.len();
    let mode_path = r.field_path("SslMode");
    let written = optional(r, "SslMode", diags);
    let mode = match &written {
        None => Some(SslMode::Disabled),
        Some(text) => SslMode::parse(text).or_else(|| {
            let names: Vec<&str> = SslMode::ALL.iter().map(|m| m.as_str()).collect();
            diags.error(
                &mode_path,
                format!(
                    "{text:?} is not an SSL mode; use one of {}",
                    names.join(", ")
                ),
            );
            None
        }),
    };
    let ca = optional(r, "SslCa", diags);
    let cert = optional(r, "SslCert", diags);
    let key = optional(r, "SslKey", diags);
    if mode == Some(SslMode::Disabled) {
        let why = match written {
            Some(_) => "SslMode DISABLED",
            None => "SslMode unset, so DISABLED",
        };
        for (name, value) in [("SslCa", &ca), ("SslCert", &cert), ("SslKey", &key)] {
            if value.is_some() {
                diags.error(
                    &r.field_path(name),
                    format!(
                        "{name} is given but the connection uses no TLS ({why}); set SslMode to \
                         VERIFY_CA or VERIFY_IDENTITY (or REQUIRED) to use it"
                    ),
                );
            }
        }
    }
    let mode = mode.unwrap_or_default();
    match (&cert, &key) {
        (Some(_), None) => diags.error(
            &r.field_path("SslKey"),
            "missing: SslCert is given, so SslKey must name its private key (a PEM file)",
        ),
        (None, Some(_)) => diags.error(
            &r.field_path("SslCert"),
            "missing: SslKey is given, so SslCert must name the client certificate (a PEM file)",
        ),
        _ => {}
    }
    if ca.is_some() && matches!(mode, SslMode::Preferred | SslMode::Required) {
        diags.warning(
            &r.field_path("SslCa"),
            format!(
                "not used: SslMode {mode} encrypts without verifying the server's certificate; \
                 use VERIFY_CA or VERIFY_IDENTITY to verify it against SslCa"
            ),
        );
    }
    (diags.errors.len() == before).then_some(SslConfig {
        mode,
        ca,
        cert,
        key,
    })
}

#[cfg(test)]
mod tests {
    use crate::spec::SslMode;

    fn job(connection_extra: &str) -> String {
        format!(
            r#"{{"Name": "t", "Tasks": [
              {{"Type": "Src", "Config": {{"ReplicateDoDb": [{{"TableSchema": "s"}}],
                "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "p"{connection_extra}}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u"}}}}}}]}}"#
        )
    }

    fn errors(connection_extra: &str) -> String {
        match crate::parse_job(&job(connection_extra)) {
            Ok(parsed) => panic!("accepted: {:?}", parsed.spec.src.connection.ssl),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn without_tls_settings_the_connection_is_plain() {
        let spec = crate::parse_job(&job("")).expect("valid").spec;
        assert_eq!(spec.src.connection.ssl.mode, SslMode::Disabled);
        assert_eq!(spec.dest.connection.ssl, Default::default());
    }

    #[test]
    fn reads_mysqls_modes_in_any_case_and_the_files() {
        for mode in SslMode::ALL {
            let extra = format!(r#", "SslMode": "{}""#, mode.as_str().to_lowercase());
            let spec = crate::parse_job(&job(&extra)).expect("valid").spec;
            assert_eq!(spec.src.connection.ssl.mode, mode);
        }
        let parsed = crate::parse_job(&job(
            r#", "SslMode": "VERIFY_IDENTITY", "SslCa": " /etc/ca.pem ", "SslCert": "/c.pem", "SslKey": "/k.pem""#,
        ))
        .expect("valid");
        let ssl = &parsed.spec.src.connection.ssl;
        assert_eq!(ssl.ca.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            (ssl.cert.as_deref(), ssl.key.as_deref()),
            (Some("/c.pem"), Some("/k.pem"))
        );
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn each_wrong_setting_is_named_at_its_path() {
        let err = errors(r#", "SslMode": "VERIFY""#);
        assert!(
            err.contains("Tasks[0].Config.ConnectionConfig.SslMode")
                && err.contains("VERIFY_IDENTITY"),
            "{err}"
        );
        let err = errors(r#", "SslCa": "/ca.pem""#);
        assert!(
            err.contains("ConnectionConfig.SslCa") && err.contains("no TLS"),
            "{err}"
        );
        let err = errors(r#", "SslMode": "DISABLED", "SslCert": "/c.pem", "SslKey": "/k.pem""#);
        assert!(
            err.contains("SslCert") && err.contains("SslKey") && err.contains("DISABLED"),
            "{err}"
        );
        let err = errors(r#", "SslMode": "REQUIRED", "SslCert": "/c.pem""#);
        assert!(err.contains("ConnectionConfig.SslKey: missing"), "{err}");
    }

    #[test]
    fn a_ca_that_would_not_be_used_is_a_warning() {
        let parsed =
            crate::parse_job(&job(r#", "SslMode": "required", "SslCa": "/ca.pem""#)).expect("ok");
        let warnings: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("SslCa") && w.contains("VERIFY_CA")),
            "{warnings:?}"
        );
    }
}
