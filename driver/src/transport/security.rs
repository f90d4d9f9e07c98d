//! How a task proves who it is to nats-server, and how it trusts the server: the NATS
//! credentials (token, user and password, NKey seed, or a `.creds` file) and TLS (a CA file to
//! verify the server, an optional client certificate, `require_tls`).
//!
//! # Two forms
//! [`NatsSettings`] is what a user wrote (the agent's `[nats]` section and `DTLE_NATS_*`
//! variables, `dtle task run`'s flags and variables, the Nomad plugin block): every field
//! optional. [`NatsSettings::load`] checks it once, reading every file it names, and gives a
//! [`NatsSecurity`], which cannot be wrong any more: at most one way to authenticate, a seed that
//! is an NKey user seed, files that hold what they should. So a bad setting is reported when the
//! agent starts (or at SetConfig), by name, and a task never fails later for it.
//!
//! # Secrets
//! Passwords, tokens, seeds and the contents of a credentials file are [`Password`]s: `Debug`
//! and `Display` print `*`, and nothing here formats them into a message. [`NatsSecurity`]'s own
//! `Debug` and [`NatsSecurity::describe`] name the method and the user, never the secret.
//!
//! # Per-job subjects
//! Every subject of job `<job>` starts with `dtle.<job>.`, and its request/reply inboxes with
//! [`inbox_prefix`]`(<job>)`, so a NATS user allowed `dtle.<job>.>` and `_INBOX.dtle.<job>.>`
//! can run both tasks of that job and nothing else (docs/security.md, "NATS").

use crate::tls::{check_certificates, check_private_key, TlsFileError};
use jobs::Password;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable holding the NATS password, wherever dtle reads NATS settings (the
/// agent, `dtle task run`, the plugin). Secrets come from the environment or a config file, never
/// from a command-line flag, which any user of the host can read in the process list.
pub const ENV_PASSWORD: &str = "DTLE_NATS_PASSWORD";
/// The environment variable holding a NATS token.
pub const ENV_TOKEN: &str = "DTLE_NATS_TOKEN";
/// The environment variable holding an NKey user seed.
pub const ENV_NKEY_SEED: &str = "DTLE_NATS_NKEY_SEED";

/// The inbox prefix of job `job`'s connections: replies to its requests arrive under
/// `_INBOX.dtle.<job>.`, a subject a per-job NATS user may be allowed alone.
pub fn inbox_prefix(job: &str) -> String {
    format!("_INBOX.dtle.{job}")
}

/// The NATS settings as a user wrote them; [`NatsSettings::load`] checks them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsSettings {
    /// User name (with [`NatsSettings::password`]).
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<Password>,
    /// An authentication token.
    pub token: Option<Password>,
    /// An NKey user seed (`SU...`).
    pub nkey_seed: Option<Password>,
    /// A file holding an NKey user seed.
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (a user JWT and its seed, as `nsc` writes it).
    pub credentials_file: Option<PathBuf>,
    /// PEM file of the authorities that may sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM file of a client certificate (for servers that verify clients).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's key.
    pub key_file: Option<PathBuf>,
    /// Refuse a connection without TLS even when the server does not ask for it.
    pub require_tls: bool,
}

impl fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |secret: &Option<Password>| secret.as_ref().map(|_| Password::MASK);
        f.debug_struct("NatsSettings")
            .field("user", &self.user)
            .field("password", &set(&self.password))
            .field("token", &set(&self.token))
            .field("nkey_seed", &set(&self.nkey_seed))
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("credentials_file", &self.credentials_file)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

/// Why the NATS settings cannot be used; each message says what to change (and never holds a
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsSettingsError {
    /// More than one way to authenticate.
    #[error(
        "NATS: give one way to authenticate (a token, a user and password, an NKey seed, or a \
         credentials file), not {0}"
    )]
    SeveralMethods(String),
    /// A password without a user, or a user without a password.
    #[error("NATS: {0}")]
    HalfAPair(&'static str),
    /// The NKey seed is not one.
    #[error(
        "NATS: the NKey seed{from} is not an NKey user seed (58 characters starting with SU, as \
         `nk -gen user` or nsc print it): {why}"
    )]
    BadSeed {
        /// ` in <file>` when it came from a file.
        from: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file cannot be read.
    #[error("NATS: {what} {path} cannot be read: {reason}")]
    Unreadable {
        /// Which setting.
        what: &'static str,
        /// The path as given.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// The credentials file is not one.
    #[error(
        "NATS: the credentials file {path} is not a NATS .creds file (a USER JWT and an NKEY \
         SEED block, as nsc writes them): {why}"
    )]
    BadCredentials {
        /// The path as given.
        path: String,
        /// What the parser said.
        why: String,
    },
    /// A TLS file cannot be used.
    #[error("NATS: {0}")]
    TlsFile(TlsFileError),
}

// Not `#[from]`: that would make the file's error this one's source, and a chain printed whole
// (anyhow's `{:#}`) would say it twice.
impl From<TlsFileError> for NatsSettingsError {
    fn from(err: TlsFileError) -> Self {
        NatsSettingsError::TlsFile(err)
    }
}

/// How the connection authenticates (checked).
#[derive(Clone, Default, PartialEq, Eq)]
enum Auth {
    #[default]
    None,
    Token(Password),
    UserPassword {
        user: String,
        password: Password,
    },
    NKey {
        seed: Password,
    },
    Credentials {
        path: PathBuf,
        contents: Password,
    },
}

/// Checked NATS settings, ready for every connection a task opens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsSecurity {
    auth: Auth,
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    require_tls: bool,
}

impl fmt::Debug for NatsSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn unreadable(what: &'static str, path: &Path, err: &std::io::Error) -> NatsSettingsError {
    NatsSettingsError::Unreadable {
        what,
        path: path.display().to_string(),
        reason: err.to_string(),
    }
}

/// Checks an NKey user seed; `from` says where it came from, for the message.
fn check_seed(seed: &str, from: String) -> Result<(), NatsSettingsError> {
    let bad = |why: String| NatsSettingsError::BadSeed {
        from: from.clone(),
        why,
    };
    let pair = nkeys::KeyPair::from_seed(seed).map_err(|e| bad(e.to_string()))?;
    if !pair.public_key().starts_with('U') {
        return Err(bad(
            "it is not a user's seed (a user seed starts with SU)".into()
        ));
    }
    Ok(())
}

impl NatsSettings {
    /// Checks the settings and reads the files they name.
    ///
    /// # Errors
    /// [`NatsSettingsError`], naming the setting to fix.
    pub fn load(&self) -> Result<NatsSecurity, NatsSettingsError> {
        let mut methods = Vec::new();
        if self.token.is_some() {
            methods.push("a token");
        }
        if self.user.is_some() || self.password.is_some() {
            methods.push("a user and password");
        }
        if self.nkey_seed.is_some() || self.nkey_seed_file.is_some() {
            methods.push("an NKey seed");
        }
        if self.credentials_file.is_some() {
            methods.push("a credentials file");
        }
        if methods.len() > 1 {
            return Err(NatsSettingsError::SeveralMethods(methods.join(" and ")));
        }
        let auth = if let Some(token) = &self.token {
            Auth::Token(token.clone())
        } else if self.user.is_some() || self.password.is_some() {
            match (&self.user, &self.password) {
                (Some(user), Some(password)) => Auth::UserPassword {
                    user: user.clone(),
                    password: password.clone(),
                },
                (Some(_), None) => {
                    return Err(NatsSettingsError::HalfAPair(
                        "a user is given without a password; give its password too",
                    ))
                }
                _ => {
                    return Err(NatsSettingsError::HalfAPair(
                        "a password is given without a user; give the user too",
                    ))
                }
            }
        } else if let (Some(_), Some(_)) = (&self.nkey_seed, &self.nkey_seed_file) {
            return Err(NatsSettingsError::SeveralMethods(
                "an NKey seed and an NKey seed file".into(),
            ));
        } else if let Some(seed) = &self.nkey_seed {
            check_seed(seed.expose().trim(), String::new())?;
            Auth::NKey {
                seed: Password::new(seed.expose().trim()),
            }
        } else if let Some(file) = &self.nkey_seed_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| unreadable("the NKey seed file", file, &e))?;
            check_seed(text.trim(), format!(" in {}", file.display()))?;
            Auth::NKey {
                seed: Password::new(text.trim()),
            }
        } else if let Some(path) = &self.credentials_file {
            let contents = std::fs::read_to_string(path)
                .map_err(|e| unreadable("the credentials file", path, &e))?;
            async_nats::ConnectOptions::with_credentials(&contents).map_err(|e| {
                NatsSettingsError::BadCredentials {
                    path: path.display().to_string(),
                    why: e.to_string(),
                }
            })?;
            Auth::Credentials {
                path: path.clone(),
                contents: Password::new(contents),
            }
        } else {
            Auth::None
        };
        if let Some(ca) = &self.ca_file {
            check_certificates("the CA file", ca)?;
        }
        let client_cert =
            match (&self.cert_file, &self.key_file) {
                (Some(cert), Some(key)) => {
                    check_certificates("the client certificate file", cert)?;
                    check_private_key("the client key file", key)?;
                    Some((cert.clone(), key.clone()))
                }
                (None, None) => None,
                (Some(_), None) => {
                    return Err(NatsSettingsError::HalfAPair(
                        "a client certificate is given without its key file; give the key too",
                    ))
                }
                (None, Some(_)) => return Err(NatsSettingsError::HalfAPair(
                    "a client key is given without its certificate file; give the certificate too",
                )),
            };
        Ok(NatsSecurity {
            auth,
            ca_file: self.ca_file.clone(),
            client_cert,
            require_tls: self.require_tls,
        })
    }
}

impl NatsSecurity {
    /// What the connection uses, for logs and messages: the method and the user, never a secret.
    pub fn describe(&self) -> String {
        let auth = match &self.auth {
            Auth::None => "no credentials".to_owned(),
            Auth::Token(_) => "a token".to_owned(),
            Auth::UserPassword { user, .. } => format!("user {user:?} and its password"),
            Auth::NKey { .. } => "an NKey seed".to_owned(),
            Auth::Credentials { path, .. } => format!("the credentials file {}", path.display()),
        };
        let authorities = match &self.ca_file {
            Some(ca) => ca.display().to_string(),
            None => "the system's authorities".to_owned(),
        };
        let tls = match self.require_tls {
            true => format!("TLS required, verified against {authorities}"),
            false => format!("TLS when the server asks for it, verified against {authorities}"),
        };
        let client = match &self.client_cert {
            Some((cert, _)) => format!(", client certificate {}", cert.display()),
            None => String::new(),
        };
        format!("{auth}; {tls}{client}")
    }

    /// Whether any credentials are given.
    pub fn has_credentials(&self) -> bool {
        self.auth != Auth::None
    }

    /// `options` with these credentials and TLS settings.
    pub(crate) fn apply(
        &self,
        options: async_nats::ConnectOptions,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        let mut options = match &self.auth {
            Auth::None => options,
            Auth::Token(token) => options.token(token.expose().to_owned()),
            Auth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.expose().to_owned())
            }
            Auth::NKey { seed } => options.nkey(seed.expose().to_owned()),
            Auth::Credentials { contents, .. } => options.credentials(contents.expose())?,
        };
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options.require_tls(self.require_tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh user seed.
    fn seed() -> String {
        nkeys::KeyPair::new_user().seed().expect("a seed")
    }

    #[test]
    fn one_method_at_most_and_pairs_complete() {
        let both = NatsSettings {
            token: Some(Password::new("t0ken-value")),
            user: Some("u".into()),
            password: Some(Password::new("pw-value")),
            ..Default::default()
        };
        let err = both.load().expect_err("two methods").to_string();
        assert!(err.contains("a token and a user and password"), "{err}");
        assert!(!err.contains("t0ken-value") && !err.contains("pw-value"));
        let half = NatsSettings {
            password: Some(Password::new("pw")),
            ..Default::default()
        };
        assert!(half
            .load()
            .expect_err("no user")
            .to_string()
            .contains("without a user"));
        let ok = NatsSettings {
            user: Some("job_a".into()),
            password: Some(Password::new("pw-value")),
            ..Default::default()
        }
        .load()
        .expect("valid");
        assert!(ok.has_credentials());
        let shown = format!("{ok:?} {}", ok.describe());
        assert!(
            shown.contains("job_a") && !shown.contains("pw-value"),
            "{shown}"
        );
    }

    #[test]
    fn a_malformed_seed_is_refused_without_showing_it() {
        let bad = NatsSettings {
            nkey_seed: Some(Password::new("SUnotaseedatall")),
            ..Default::default()
        };
        let err = bad.load().expect_err("malformed").to_string();
        assert!(
            err.contains("NKey user seed") && !err.contains("SUnotaseed"),
            "{err}"
        );
        let account = nkeys::KeyPair::new_account().seed().expect("seed");
        let err = NatsSettings {
            nkey_seed: Some(Password::new(account)),
            ..Default::default()
        }
        .load()
        .expect_err("an account seed")
        .to_string();
        assert!(err.contains("not a user's seed"), "{err}");
        let good = NatsSettings {
            nkey_seed: Some(Password::new(seed())),
            ..Default::default()
        };
        let security = good.load().expect("a user seed");
        assert_eq!(
            security.describe(),
            "an NKey seed; TLS when the server asks for it, verified against the system's \
             authorities"
        );
        assert!(!format!("{good:?}").contains("SU"), "{good:?}");
    }

    #[test]
    fn files_are_read_when_loaded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = NatsSettings {
            ca_file: Some(dir.path().join("nope.pem")),
            ..Default::default()
        }
        .load()
        .expect_err("missing CA")
        .to_string();
        assert!(
            err.contains("the CA file") && err.contains("nope.pem"),
            "{err}"
        );
        let seed_file = dir.path().join("user.nk");
        std::fs::write(&seed_file, format!("{}\n", seed())).expect("write");
        let security = NatsSettings {
            nkey_seed_file: Some(seed_file),
            ..Default::default()
        }
        .load()
        .expect("seed from a file");
        assert!(security.has_credentials());
        let creds = dir.path().join("bad.creds");
        std::fs::write(&creds, "nothing here").expect("write");
        let err = NatsSettings {
            credentials_file: Some(creds),
            ..Default::default()
        }
        .load()
        .expect_err("bad creds")
        .to_string();
        assert!(err.contains(".creds"), "{err}");
        let err = NatsSettings {
            cert_file: Some(dir.path().join("c.pem")),
            ..Default::default()
        }
        .load()
        .expect_err("no key")
        .to_string();
        assert!(err.contains("without its key"), "{err}");
    }

    #[test]
    fn each_job_has_its_own_inbox_prefix() {
        assert_eq!(inbox_prefix("orders"), "_INBOX.dtle.orders");
    }
}
