//! Reading a SeaTunnel config's options: dotted keys either way, lists either way, the one plugin
//! of a section, and JDBC URLs.

use super::SeaTunnelError;
use serde_json::{Map, Value};

pub(super) fn unsupported(message: impl Into<String>) -> SeaTunnelError {
    SeaTunnelError::Unsupported(message.into())
}

/// `key` in `object`, as a dotted key or as a path of nested objects.
pub(super) fn lookup<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(key) {
        return Some(value);
    }
    let (head, rest) = key.split_once('.')?;
    lookup(object.get(head)?.as_object()?, rest)
}

/// A scalar option as text (SeaTunnel configs write numbers and booleans either way).
pub(super) fn text(
    object: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<String>, SeaTunnelError> {
    match lookup(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(unsupported(format!(
            "{what} `{key}` must be a single value, got {other}"
        ))),
    }
}

pub(super) fn required(
    object: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<String, SeaTunnelError> {
    text(object, key, what)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| unsupported(format!("{what} needs `{key}`")))
}

/// A list option: a JSON array, or one comma-separated string.
pub(super) fn list(
    object: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Vec<String>, SeaTunnelError> {
    match lookup(object, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_owned()),
                other => Err(unsupported(format!(
                    "{what} `{key}` must list names, got {other}"
                ))),
            })
            .collect(),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(|part| part.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect()),
        Some(other) => Err(unsupported(format!(
            "{what} `{key}` must list names, got {other}"
        ))),
    }
}

/// The one plugin of a `source` or `sink` section, with its name.
pub(super) fn single_plugin<'a>(
    config: &'a Map<String, Value>,
    section: &str,
) -> Result<(String, &'a Map<String, Value>), SeaTunnelError> {
    let plugins: Vec<(String, &Map<String, Value>)> = match config.get(section) {
        None | Some(Value::Null) => {
            return Err(unsupported(format!("the config has no `{section}`")))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let plugin = item.as_object().ok_or_else(|| {
                    unsupported(format!("each `{section}` entry must be an object"))
                })?;
                let name = text(plugin, "plugin_name", section)?.ok_or_else(|| {
                    unsupported(format!("a `{section}` entry has no `plugin_name`"))
                })?;
                Ok((name, plugin))
            })
            .collect::<Result<_, SeaTunnelError>>()?,
        Some(Value::Object(by_name)) => by_name
            .iter()
            .map(|(name, plugin)| {
                let plugin = plugin
                    .as_object()
                    .ok_or_else(|| unsupported(format!("`{section}.{name}` must be an object")))?;
                Ok((name.clone(), plugin))
            })
            .collect::<Result<_, SeaTunnelError>>()?,
        Some(other) => {
            return Err(unsupported(format!(
                "`{section}` must be a list of plugins, got {other}"
            )))
        }
    };
    match plugins.len() {
        1 => Ok(plugins.into_iter().next().expect("one plugin")),
        0 => Err(unsupported(format!("`{section}` names no plugin"))),
        n => Err(unsupported(format!(
            "`{section}` has {n} plugins; a dtle job has one source and one sink"
        ))),
    }
}

/// A MySQL or MariaDB JDBC URL's host and port.
pub(super) fn jdbc_server(
    url: &str,
    what: &str,
) -> Result<(String, u16, Option<String>), SeaTunnelError> {
    let rest = ["jdbc:mysql://", "jdbc:mariadb://"]
        .iter()
        .find_map(|prefix| {
            url.get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &url[prefix.len()..])
        })
        .ok_or_else(|| {
            unsupported(format!(
                "{what} `{url}` is not a MySQL or MariaDB JDBC URL (jdbc:mysql://host:port/database)"
            ))
        })?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains(',') {
        return Err(unsupported(format!(
            "{what} `{url}` names several servers; give one"
        )));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| unsupported(format!("{what} `{url}`: `{port}` is not a port")))?;
            (host.trim_matches(['[', ']']).to_owned(), port)
        }
        _ => (authority.trim_matches(['[', ']']).to_owned(), 3306),
    };
    if host.is_empty() {
        return Err(unsupported(format!("{what} `{url}` names no host")));
    }
    let database = tail
        .strip_prefix('/')
        .map(|t| t.split('?').next().unwrap_or_default().to_owned())
        .filter(|d| !d.is_empty());
    Ok((host, port, database))
}
