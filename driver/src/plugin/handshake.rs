//! go-plugin's handshake, plugin side: check the magic cookie, pick a loopback port, announce it
//! on stdout in one line.
//!
//! The cookie only guards against running a plugin by hand; it is no secret. The port is the
//! first free one in `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT`, as go-plugin's own servers pick it.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;

/// The environment variable the Nomad client sets to [`MAGIC_COOKIE_VALUE`].
pub const MAGIC_COOKIE_KEY: &str = "NOMAD_PLUGIN_MAGIC_COOKIE";

/// Nomad's plugin cookie (`plugins/base/plugin.go`, `Handshake`).
pub const MAGIC_COOKIE_VALUE: &str =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";

/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// Nomad's plugin protocol version (`Handshake.ProtocolVersion`; sent by the client in
/// `PLUGIN_PROTOCOL_VERSIONS`).
pub const APP_PROTOCOL_VERSION: u32 = 2;

/// go-plugin's port range when the client sets none.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 10000..=25000;

/// Why the plugin cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("This binary is a Nomad plugin only when a Nomad client starts it: {MAGIC_COOKIE_KEY} is not the expected value; run `dtle --help` to use it directly.")]
    BadCookie,
    #[error("{name} is {value:?}, not a port number from 1 to 65535; the plugin client sets it")]
    BadPort { name: &'static str, value: String },
    #[error("PLUGIN_MIN_PORT {min} is above PLUGIN_MAX_PORT {max}; set a range with min <= max")]
    EmptyRange { min: u16, max: u16 },
    #[error("no free port on 127.0.0.1 from {min} to {max} ({last}); free one or widen PLUGIN_MIN_PORT..PLUGIN_MAX_PORT")]
    NoPort {
        min: u16,
        max: u16,
        last: std::io::Error,
    },
    #[error("cannot write the handshake line to stdout ({0}); the plugin client reads it there")]
    Announce(std::io::Error),
}

/// Checks the cookie the client put in the environment.
pub fn check_cookie(value: Option<&std::ffi::OsStr>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::BadCookie),
    }
}

/// The port range from `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT`, each defaulting to go-plugin's.
pub fn port_range(
    min: Option<String>,
    max: Option<String>,
) -> Result<RangeInclusive<u16>, HandshakeError> {
    let parse = |name: &'static str, value: Option<String>, default: u16| match value {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(HandshakeError::BadPort { name, value: text }),
        },
    };
    let min = parse("PLUGIN_MIN_PORT", min, *DEFAULT_PORTS.start())?;
    let max = parse("PLUGIN_MAX_PORT", max, *DEFAULT_PORTS.end())?;
    if min > max {
        return Err(HandshakeError::EmptyRange { min, max });
    }
    Ok(min..=max)
}

/// Binds the first free port of `ports` on 127.0.0.1.
pub fn bind(ports: RangeInclusive<u16>) -> Result<TcpListener, HandshakeError> {
    let (min, max) = (*ports.start(), *ports.end());
    let mut last = std::io::Error::other("the range is empty");
    for port in ports {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = err,
        }
    }
    Err(HandshakeError::NoPort { min, max, last })
}

/// The handshake line for a TCP address: `CORE|APP|tcp|ADDR|grpc`.
pub fn line(addr: SocketAddr) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc\n")
}

/// Writes the handshake line to stdout and flushes it. The only write to stdout, ever.
pub fn announce(addr: SocketAddr) -> Result<(), HandshakeError> {
    let mut out = std::io::stdout().lock();
    out.write_all(line(addr).as_bytes())
        .and_then(|()| out.flush())
        .map_err(HandshakeError::Announce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn only_nomads_cookie_passes() {
        assert!(check_cookie(Some(OsStr::new(MAGIC_COOKIE_VALUE))).is_ok());
        assert!(check_cookie(Some(OsStr::new("nope"))).is_err());
        assert!(check_cookie(None).is_err());
    }

    #[test]
    fn port_ranges_default_and_validate() {
        assert_eq!(port_range(None, None).unwrap(), 10000..=25000);
        assert_eq!(
            port_range(Some("14000".into()), Some("14512".into())).unwrap(),
            14000..=14512
        );
        assert!(matches!(
            port_range(Some("x".into()), None),
            Err(HandshakeError::BadPort {
                name: "PLUGIN_MIN_PORT",
                ..
            })
        ));
        assert!(matches!(
            port_range(Some("3".into()), Some("2".into())),
            Err(HandshakeError::EmptyRange { .. })
        ));
    }

    #[test]
    fn the_line_is_go_plugins() {
        let addr: SocketAddr = "127.0.0.1:10001".parse().unwrap();
        assert_eq!(line(addr), "1|2|tcp|127.0.0.1:10001|grpc\n");
    }

    #[test]
    fn binds_past_a_taken_port() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        if let Ok(next) = bind(port..=port.saturating_add(20)) {
            assert_ne!(next.local_addr().unwrap().port(), port);
        }
        assert!(matches!(
            bind(port..=port),
            Err(HandshakeError::NoPort { .. })
        ));
    }
}
