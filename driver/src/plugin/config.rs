//! The agent-level config of the plugin: the `plugin "dtle" { config { ... } }` block of the
//! Nomad client's agent config, described to Nomad by [`schema`] (ConfigSchema) and read back from
//! SetConfig's go-cty msgpack by [`PluginConfig::from_msgpack`].
//!
//! dtle's own plugin block is accepted as it is, so a node moves to dtle-rs by swapping the
//! binary: the Nomad client refuses a block with a key the schema does not name, before the
//! plugin could say anything. Its keys map as follows:
//! - `nats_advertise` (`host:port`) is the NATS server the tasks use when `nats_url` is not given;
//!   `nats_bind` was where dtle started its embedded NATS server: dtle-rs embeds none, so the
//!   server at that address must be a `nats-server` of its own (said at SetConfig);
//! - `api_addr`, `nomad_addr`: dtle served its HTTP API there, in front of the Nomad at
//!   `nomad_addr`; dtle-rs serves its task stats there, and the whole dtle 2.x API when the binary
//!   mounts the gateway (see [`super::api`]); empty means not served, as in dtle;
//! - `data_dir`, `log_level` (hclog's names, any case) as in dtle;
//! - `consul`, `stats_collection_interval`, `publish_metrics`, `ui_dir`, `memory`,
//!   `big_tx_max_jobs`: read and unused (dtle-rs keeps no state in Consul, exports its metrics at
//!   `/metrics`, bounds memory per task); `rsa_private_key_path`, `cert_file_path`,
//!   `key_file_path`: unused, with a note that the API is served without TLS and RSA-encrypted
//!   passwords are not read.
//!
//! dtle-rs adds the NATS credentials and TLS of the tasks ([`NATS_KEYS`], all optional):
//! `nats_user` and `nats_password`, `nats_token`, `nats_nkey_seed` or `nats_nkey_seed_file`,
//! `nats_credentials_file`; `nats_ca_file`, `nats_cert_file`, `nats_key_file`,
//! `nats_require_tls`. A secret left out of the block is taken from the plugin's environment
//! (the Nomad client's: `DTLE_NATS_PASSWORD`, `DTLE_NATS_TOKEN`, `DTLE_NATS_NKEY_SEED`), so it
//! need not be written in the client's config file. They are checked at SetConfig (files read,
//! the seed parsed): a wrong one fails SetConfig with its name.

use super::cty::{decode_object, CtyError, CtyObject};
use super::hclspec::{attr, object};
use super::proto::hclspec::Spec;
use crate::transport::security::{self, NatsSecurity, NatsSettings, NatsSettingsError};
use jobs::Password;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The NATS server tasks use when the block does not name one.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:8193";

/// The Nomad agent the API talks to when `api_addr` is set and `nomad_addr` is not (dtle's
/// default).
pub const DEFAULT_NOMAD_ADDR: &str = "127.0.0.1:4646";

const WHAT: &str = "plugin config (SetConfig msgpack_config)";

/// dtle's keys dtle-rs reads and does not use, with their HCL types.
const UNUSED: [(&str, &str); 6] = [
    ("consul", "string"),
    ("stats_collection_interval", "number"),
    ("publish_metrics", "bool"),
    ("ui_dir", "string"),
    ("memory", "string"),
    ("big_tx_max_jobs", "number"),
];

/// dtle's keys for features dtle-rs does not have: a note is logged when they are set.
const NOT_SUPPORTED: [(&str, &str); 3] = [
    (
        "rsa_private_key_path",
        "passwords encrypted with dtle's RSA key are not decrypted: give them in clear",
    ),
    (
        "cert_file_path",
        "the plugin's API is served over plain HTTP",
    ),
    (
        "key_file_path",
        "the plugin's API is served over plain HTTP",
    ),
];

/// dtle-rs's NATS keys, with their HCL types.
pub const NATS_KEYS: [(&str, &str); 10] = [
    ("nats_user", "string"),
    ("nats_password", "string"),
    ("nats_token", "string"),
    ("nats_nkey_seed", "string"),
    ("nats_nkey_seed_file", "string"),
    ("nats_credentials_file", "string"),
    ("nats_ca_file", "string"),
    ("nats_cert_file", "string"),
    ("nats_key_file", "string"),
    ("nats_require_tls", "bool"),
];

/// What the `config` block of `plugin "dtle"` may hold.
pub fn schema() -> Spec {
    let mut members: Vec<(&str, Spec)> = vec![
        ("nats_url", attr("string")),
        ("nats_bind", attr("string")),
        ("nats_advertise", attr("string")),
        ("data_dir", attr("string")),
        ("api_addr", attr("string")),
        ("nomad_addr", attr("string")),
        ("log_level", attr("string")),
    ];
    members.extend(UNUSED.iter().map(|(name, ty)| (*name, attr(ty))));
    members.extend(
        NOT_SUPPORTED
            .iter()
            .map(|(name, _)| (*name, attr("string"))),
    );
    members.extend(NATS_KEYS.iter().map(|(name, ty)| (*name, attr(ty))));
    object(members)
}

/// The plugin's agent-level settings, as SetConfig gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// The NATS server the Src and Dest tasks on this node publish to and read from.
    pub nats_url: String,
    /// The tasks' NATS credentials and TLS, checked.
    pub nats_security: NatsSecurity,
    /// Where the plugin keeps its own state; none: nothing is kept beyond the task handles.
    pub data_dir: Option<PathBuf>,
    /// Where the plugin serves its HTTP API; none: not served.
    pub api_addr: Option<SocketAddr>,
    /// The Nomad agent's HTTP address (`host:port` or a URL) for the dtle 2.x API, when served.
    pub nomad_addr: Option<String>,
    /// The log level asked for (`trace`, `debug`, `info`, `warn`, `error`), lower case.
    pub log_level: Option<String>,
    /// What the block asked for that dtle-rs does differently, to tell the user once.
    pub notes: Vec<String>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            nats_url: DEFAULT_NATS_URL.to_owned(),
            nats_security: NatsSecurity::default(),
            data_dir: None,
            api_addr: None,
            nomad_addr: None,
            log_level: None,
            notes: Vec::new(),
        }
    }
}

/// Why SetConfig's config bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Cty(#[from] CtyError),
    #[error("`nats_url` in the plugin config is empty; set it to the NATS server's URL, e.g. {DEFAULT_NATS_URL}, or leave it out")]
    EmptyNatsUrl,
    #[error("`data_dir` in the plugin config is empty; set it to a folder or leave it out")]
    EmptyDataDir,
    #[error("`api_addr` in the plugin config is `{0}`, not an IP address and port such as 127.0.0.1:8190")]
    BadApiAddr(String),
    #[error("`log_level` in the plugin config is `{0}`; use trace, debug, info, warn or error")]
    BadLogLevel(String),
    #[error("the nats_* keys of the plugin config: {0}")]
    Nats(#[from] NatsSettingsError),
}

/// A set string attribute, `None` when unset or empty.
fn non_empty(o: &mut CtyObject, name: &str) -> Result<Option<String>, CtyError> {
    Ok(o.string(name)?.filter(|text| !text.trim().is_empty()))
}

impl PluginConfig {
    /// Reads go-cty msgpack of the block decoded with [`schema`]. Empty bytes (a caller that sent
    /// no config at all) mean every default.
    pub fn from_msgpack(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
        Self::from_msgpack_with(bytes, |name| std::env::var(name).ok())
    }

    /// As [`PluginConfig::from_msgpack`], with the environment read through `env`.
    pub fn from_msgpack_with(
        bytes: &[u8],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PluginConfig, ConfigError> {
        if bytes.is_empty() {
            return Ok(PluginConfig {
                nats_security: nats_settings(None, &env)?.load()?,
                ..PluginConfig::default()
            });
        }
        let mut o = decode_object(bytes, WHAT)?;
        let nats_url = o.string("nats_url")?;
        let nats_bind = non_empty(&mut o, "nats_bind")?;
        let nats_advertise = non_empty(&mut o, "nats_advertise")?;
        let data_dir = o.string("data_dir")?;
        let api_addr = non_empty(&mut o, "api_addr")?;
        let nomad_addr = non_empty(&mut o, "nomad_addr")?;
        let log_level = non_empty(&mut o, "log_level")?;
        let mut notes = Vec::new();
        for (name, ty) in UNUSED {
            let set = match ty {
                "bool" => o.bool(name)?.is_some(),
                "number" => o.number(name)?.is_some(),
                _ => non_empty(&mut o, name)?.is_some(),
            };
            if set {
                notes.push(format!("`{name}` is read and not used by dtle-rs"));
            }
        }
        for (name, why) in NOT_SUPPORTED {
            if non_empty(&mut o, name)?.is_some() {
                notes.push(format!("`{name}` is set, but {why}"));
            }
        }
        let nats_settings = nats_settings(Some(&mut o), &env)?;
        o.finish()?;
        let nats_security = nats_settings.load()?;

        let nats_url = match (nats_url, &nats_advertise) {
            (Some(url), _) if url.trim().is_empty() => return Err(ConfigError::EmptyNatsUrl),
            (Some(url), _) => url,
            (None, Some(advertised)) => format!("nats://{advertised}"),
            (None, None) => DEFAULT_NATS_URL.to_owned(),
        };
        if let Some(bind) = nats_bind {
            notes.push(format!(
                "`nats_bind` = {bind:?}: dtle started a NATS server there, dtle-rs starts none; \
                 the tasks use the nats-server at {nats_url}"
            ));
        }
        let data_dir = match data_dir {
            None => None,
            Some(dir) if dir.is_empty() => return Err(ConfigError::EmptyDataDir),
            Some(dir) => Some(PathBuf::from(dir)),
        };
        let api_addr = match api_addr {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::BadApiAddr(text))?,
            ),
        };
        let log_level = match log_level {
            None => None,
            Some(level) => {
                let lower = level.trim().to_ascii_lowercase();
                match lower.as_str() {
                    "trace" | "debug" | "info" | "warn" | "error" => Some(lower),
                    _ => return Err(ConfigError::BadLogLevel(level)),
                }
            }
        };
        Ok(PluginConfig {
            nats_url,
            nats_security,
            data_dir,
            api_addr,
            nomad_addr,
            log_level,
            notes,
        })
    }
}

/// The `nats_*` keys of the block (none: no block), each secret left out taken from `env`.
fn nats_settings(
    mut o: Option<&mut CtyObject>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<NatsSettings, CtyError> {
    let mut text = |name: &str| match o.as_deref_mut() {
        Some(o) => non_empty(o, name),
        None => Ok(None),
    };
    let secret = |given: Option<String>, variable: &str| {
        given
            .or_else(|| env(variable).filter(|v| !v.is_empty()))
            .map(Password::new)
    };
    let user = text("nats_user")?;
    let password = secret(text("nats_password")?, security::ENV_PASSWORD);
    let token = secret(text("nats_token")?, security::ENV_TOKEN);
    let nkey_seed = secret(text("nats_nkey_seed")?, security::ENV_NKEY_SEED);
    let path = |value: Option<String>| value.map(PathBuf::from);
    let nkey_seed_file = path(text("nats_nkey_seed_file")?);
    let credentials_file = path(text("nats_credentials_file")?);
    let ca_file = path(text("nats_ca_file")?);
    let cert_file = path(text("nats_cert_file")?);
    let key_file = path(text("nats_key_file")?);
    let require_tls = match o {
        Some(o) => o.bool("nats_require_tls")?.unwrap_or(false),
        None => false,
    };
    Ok(NatsSettings {
        user,
        password,
        token,
        nkey_seed,
        nkey_seed_file,
        credentials_file,
        ca_file,
        cert_file,
        key_file,
        require_tls,
    })
}

/// Every attribute name of [`schema`], sorted: go-cty sends each, nil when unset.
pub fn attribute_names() -> Vec<String> {
    let mut names: Vec<String> = match schema().block {
        Some(super::proto::hclspec::spec::Block::Object(o)) => o.attributes.into_keys().collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    /// What go-cty writes for the block: a map with every attribute, nil when unset.
    fn cty(set: &[(&str, Value)]) -> Vec<u8> {
        let map = Value::Map(
            attribute_names()
                .into_iter()
                .map(|name| {
                    let value = set
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map_or(Value::Nil, |(_, v)| v.clone());
                    (Value::from(name), value)
                })
                .collect(),
        );
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &map).expect("encoding to a Vec");
        buf
    }

    #[test]
    fn schema_names_ours_and_every_key_of_dtles_block() {
        let names = attribute_names();
        for name in [
            "nats_url",
            "nats_bind",
            "nats_advertise",
            "api_addr",
            "nomad_addr",
            "consul",
            "data_dir",
            "stats_collection_interval",
            "publish_metrics",
            "log_level",
            "ui_dir",
            "rsa_private_key_path",
            "cert_file_path",
            "key_file_path",
            "memory",
            "big_tx_max_jobs",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        for (name, _) in NATS_KEYS {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        assert_eq!(names.len(), 16 + NATS_KEYS.len(), "{names:?}");
    }

    #[test]
    fn reads_a_full_block() {
        let bytes = cty(&[
            ("nats_url", Value::from("nats://10.0.0.1:4222")),
            ("data_dir", Value::from("/var/lib/dtle")),
            ("api_addr", Value::from("127.0.0.1:8191")),
            ("nomad_addr", Value::from("10.0.0.2:4646")),
            ("log_level", Value::from("Debug")),
        ]);
        let config = PluginConfig::from_msgpack(&bytes).unwrap();
        assert_eq!(
            config,
            PluginConfig {
                nats_url: "nats://10.0.0.1:4222".into(),
                nats_security: NatsSecurity::default(),
                data_dir: Some("/var/lib/dtle".into()),
                api_addr: Some("127.0.0.1:8191".parse().unwrap()),
                nomad_addr: Some("10.0.0.2:4646".into()),
                log_level: Some("debug".into()),
                notes: vec![],
            }
        );
    }

    /// dtle's sample block (its defaults written out), read as dtle read it.
    #[test]
    fn reads_dtles_block() {
        let bytes = cty(&[
            ("nats_bind", Value::from("0.0.0.0:8193")),
            ("nats_advertise", Value::from("10.0.0.5:8193")),
            ("api_addr", Value::from("")),
            ("nomad_addr", Value::from("127.0.0.1:4646")),
            ("consul", Value::from("127.0.0.1:8500")),
            ("data_dir", Value::from("/var/lib/nomad")),
            ("stats_collection_interval", Value::from(15)),
            ("publish_metrics", Value::from(false)),
            ("log_level", Value::from("Info")),
            ("ui_dir", Value::from("")),
            ("rsa_private_key_path", Value::from("")),
            ("cert_file_path", Value::from("/etc/dtle/cert.pem")),
            ("key_file_path", Value::from("")),
        ]);
        let config = PluginConfig::from_msgpack(&bytes).unwrap();
        assert_eq!(config.nats_url, "nats://10.0.0.5:8193");
        assert_eq!(config.api_addr, None, "empty is not served, as in dtle");
        assert_eq!(config.log_level.as_deref(), Some("info"));
        let notes = config.notes.join("\n");
        for word in ["consul", "nats_bind", "cert_file_path", "publish_metrics"] {
            assert!(notes.contains(word), "{word}: {notes}");
        }
        assert!(
            !notes.contains("key_file_path"),
            "unset keys say nothing: {notes}"
        );
    }

    #[test]
    fn nats_keys_are_read_and_secrets_come_from_the_environment_too() {
        let bytes = cty(&[
            ("nats_url", Value::from("tls://10.0.0.1:4222")),
            ("nats_user", Value::from("job_a")),
            ("nats_require_tls", Value::from(true)),
        ]);
        let env = |name: &str| (name == "DTLE_NATS_PASSWORD").then(|| "from-env".to_owned());
        let config = PluginConfig::from_msgpack_with(&bytes, env).expect("valid");
        let shown = format!("{config:?}");
        assert!(
            shown.contains("job_a") && !shown.contains("from-env"),
            "{shown}"
        );
        let no_env = |_: &str| None;
        let err = PluginConfig::from_msgpack_with(&bytes, no_env)
            .expect_err("a user without a password")
            .to_string();
        assert!(err.contains("nats_*") && err.contains("password"), "{err}");
        let bytes = cty(&[("nats_ca_file", Value::from("/nonexistent/ca.pem"))]);
        let err = PluginConfig::from_msgpack_with(&bytes, no_env)
            .expect_err("unreadable CA")
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn unset_attributes_and_empty_bytes_are_defaults() {
        assert_eq!(
            PluginConfig::from_msgpack(&cty(&[])).unwrap(),
            PluginConfig::default()
        );
        assert_eq!(
            PluginConfig::from_msgpack(&[]).unwrap(),
            PluginConfig::default()
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = PluginConfig::from_msgpack(&cty(&[("api_addr", Value::from("localhost"))]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`api_addr`") && err.contains("localhost"),
            "{err}"
        );
        assert!(matches!(
            PluginConfig::from_msgpack(&cty(&[("nats_url", Value::from(""))])),
            Err(ConfigError::EmptyNatsUrl)
        ));
        let err = PluginConfig::from_msgpack(&cty(&[("nats_url", Value::from(4222))]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`nats_url`") && err.contains("a string"),
            "{err}"
        );
        let err = PluginConfig::from_msgpack(&cty(&[("log_level", Value::from("loud"))]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("loud") && err.contains("warn"), "{err}");
    }
}
