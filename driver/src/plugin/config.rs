//! The agent-level config of the plugin: the `plugin "dtle" { config { ... } }` block of the
//! Nomad client's agent config, described to Nomad by [`schema`] (ConfigSchema) and read back from
//! SetConfig's go-cty msgpack by [`PluginConfig::from_msgpack`].

use super::cty::{decode_object, CtyError};
use super::hclspec::{attr, object, string_default};
use super::proto::hclspec::Spec;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The NATS server tasks use when the block does not name one.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:8193";

const WHAT: &str = "plugin config (SetConfig msgpack_config)";

/// What the `config` block of `plugin "dtle"` may hold.
pub fn schema() -> Spec {
    object([
        ("nats_url", string_default(DEFAULT_NATS_URL)),
        ("data_dir", attr("string")),
        ("api_addr", attr("string")),
    ])
}

/// The plugin's agent-level settings, as SetConfig gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// The NATS server the Src and Dest tasks on this node publish to and read from.
    pub nats_url: String,
    /// Where the plugin keeps its own state; none: nothing is kept beyond the task handles.
    pub data_dir: Option<PathBuf>,
    /// Where the plugin serves the tasks' replication stats for `dtle agent`; none: not served.
    pub api_addr: Option<SocketAddr>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            nats_url: DEFAULT_NATS_URL.to_owned(),
            data_dir: None,
            api_addr: None,
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
    #[error("`api_addr` in the plugin config is `{0}`, not an IP address and port such as 127.0.0.1:8191")]
    BadApiAddr(String),
}

impl PluginConfig {
    /// Reads go-cty msgpack of the block decoded with [`schema`]. Empty bytes (a caller that sent
    /// no config at all) mean every default.
    pub fn from_msgpack(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
        if bytes.is_empty() {
            return Ok(PluginConfig::default());
        }
        let mut o = decode_object(bytes, WHAT)?;
        let nats_url = o.string("nats_url")?;
        let data_dir = o.string("data_dir")?;
        let api_addr = o.string("api_addr")?;
        o.finish()?;

        let nats_url = match nats_url {
            None => DEFAULT_NATS_URL.to_owned(),
            Some(url) if url.trim().is_empty() => return Err(ConfigError::EmptyNatsUrl),
            Some(url) => url,
        };
        let data_dir = match data_dir {
            None => None,
            Some(dir) if dir.is_empty() => return Err(ConfigError::EmptyDataDir),
            Some(dir) => Some(PathBuf::from(dir)),
        };
        let api_addr = match api_addr {
            None => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|_| ConfigError::BadApiAddr(text))?,
            ),
        };
        Ok(PluginConfig {
            nats_url,
            data_dir,
            api_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::proto::hclspec::spec::Block;
    use rmpv::Value;

    /// What go-cty writes for the block: a map with every attribute, nil when unset.
    fn cty(nats: Value, dir: Value, api: Value) -> Vec<u8> {
        let map = Value::Map(vec![
            (Value::from("api_addr"), api),
            (Value::from("data_dir"), dir),
            (Value::from("nats_url"), nats),
        ]);
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &map).expect("encoding to a Vec");
        buf
    }

    #[test]
    fn schema_names_every_attribute() {
        let Some(Block::Object(o)) = schema().block else {
            panic!("the root is not an Object");
        };
        let mut names: Vec<_> = o.attributes.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["api_addr", "data_dir", "nats_url"]);
    }

    #[test]
    fn reads_a_full_block() {
        let bytes = cty(
            Value::from("nats://10.0.0.1:4222"),
            Value::from("/var/lib/dtle"),
            Value::from("127.0.0.1:8191"),
        );
        let config = PluginConfig::from_msgpack(&bytes).unwrap();
        assert_eq!(
            config,
            PluginConfig {
                nats_url: "nats://10.0.0.1:4222".into(),
                data_dir: Some("/var/lib/dtle".into()),
                api_addr: Some("127.0.0.1:8191".parse().unwrap()),
            }
        );
    }

    #[test]
    fn unset_attributes_and_empty_bytes_are_defaults() {
        let bytes = cty(Value::Nil, Value::Nil, Value::Nil);
        assert_eq!(
            PluginConfig::from_msgpack(&bytes).unwrap(),
            PluginConfig::default()
        );
        assert_eq!(
            PluginConfig::from_msgpack(&[]).unwrap(),
            PluginConfig::default()
        );
    }

    #[test]
    fn bad_values_are_named() {
        let bytes = cty(Value::Nil, Value::Nil, Value::from("localhost"));
        let err = PluginConfig::from_msgpack(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("`api_addr`") && err.contains("localhost"),
            "{err}"
        );
        let bytes = cty(Value::from(""), Value::Nil, Value::Nil);
        assert!(matches!(
            PluginConfig::from_msgpack(&bytes),
            Err(ConfigError::EmptyNatsUrl)
        ));
        let bytes = cty(Value::from(4222), Value::Nil, Value::Nil);
        let err = PluginConfig::from_msgpack(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("`nats_url`") && err.contains("a string"),
            "{err}"
        );
    }
}
