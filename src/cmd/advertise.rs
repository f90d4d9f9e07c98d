//! The address the agent advertises (`/v1/leader`, `/v1/members`, `/v1/nodes`): where others
//! reach its HTTP API, never `0.0.0.0`.
//!
//! `--advertise` (or `advertise` in the config file) gives it: `host:port`, or a host alone, which
//! takes the port the API listens on. Without it the agent derives a routable one: the listen
//! address when it is a specific one, else the host's primary non-loopback address (the one its
//! default route leaves from: found by "connecting" a UDP socket, which sends nothing), else
//! `127.0.0.1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// Why an `advertise` setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdvertiseError {
    /// Empty, or an unspecified address (`0.0.0.0`, `::`), which nobody can reach.
    #[error(
        "advertise {0:?} is not an address others can reach: give this host's address or name"
    )]
    Unreachable(String),
}

/// The advertised `host:port` of an API listening on `listen`.
///
/// # Errors
/// An `advertise` that nobody could reach.
pub fn advertised(advertise: Option<&str>, listen: SocketAddr) -> Result<String, AdvertiseError> {
    let Some(given) = advertise.map(str::trim) else {
        return Ok(derived(listen, primary_ip).to_string());
    };
    let unreachable = || AdvertiseError::Unreachable(given.to_owned());
    if let Ok(addr) = given.parse::<SocketAddr>() {
        return if addr.ip().is_unspecified() {
            Err(unreachable())
        } else {
            Ok(addr.to_string())
        };
    }
    let bare = given.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if ip.is_unspecified() {
            Err(unreachable())
        } else {
            Ok(SocketAddr::new(ip, listen.port()).to_string())
        };
    }
    // A host name, with or without a port.
    match given.rsplit_once(':') {
        _ if given.is_empty() => Err(unreachable()),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(given.to_owned())
        }
        Some(_) => Err(unreachable()),
        None => Ok(format!("{given}:{}", listen.port())),
    }
}

/// The address derived from the listen address, with `primary` finding the host's own.
fn derived(listen: SocketAddr, primary: fn(bool) -> Option<IpAddr>) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let ip = primary(listen.is_ipv6())
        .or_else(|| primary(false))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, listen.port())
}

/// The address this host's default route leaves from, if it is not a loopback one. Connecting a
/// UDP socket only picks the route: no packet is sent.
fn primary_ip(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            // 2001:db8::/32 is reserved for documentation: never a real peer.
            ("2001:db8::1".parse::<Ipv6Addr>().ok()?, 9).into(),
        )
    } else {
        // 192.0.2.0/24 (TEST-NET-1) likewise.
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            ([192, 0, 2, 1], 9).into(),
        )
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn a_given_address_is_used_with_the_listen_port_when_it_has_none() {
        let on = listen("0.0.0.0:8190");
        let ok = |given: &str| advertised(Some(given), on).expect("valid");
        assert_eq!(ok("10.1.2.3"), "10.1.2.3:8190");
        assert_eq!(ok("10.1.2.3:4646"), "10.1.2.3:4646");
        assert_eq!(ok("fd00::1"), "[fd00::1]:8190");
        assert_eq!(ok("[fd00::1]:9"), "[fd00::1]:9");
        assert_eq!(ok("dtle-1.example"), "dtle-1.example:8190");
        assert_eq!(ok("dtle-1.example:80"), "dtle-1.example:80");
        for bad in ["0.0.0.0", "0.0.0.0:8190", "[::]:1", "::", "", "host:port"] {
            assert!(advertised(Some(bad), on).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_one_a_routable_address_is_derived() {
        assert_eq!(
            advertised(None, listen("127.0.0.1:8190")).expect("valid"),
            "127.0.0.1:8190"
        );
        assert_eq!(
            derived(listen("192.168.1.5:8190"), |_| None),
            listen("192.168.1.5:8190")
        );
        let primary: fn(bool) -> Option<IpAddr> = |_| Some("10.0.0.7".parse().expect("ip"));
        assert_eq!(
            derived(listen("0.0.0.0:8190"), primary),
            listen("10.0.0.7:8190")
        );
        assert_eq!(
            derived(listen("0.0.0.0:8190"), |_| None),
            listen("127.0.0.1:8190")
        );
        let derived_here = advertised(None, listen("0.0.0.0:8190")).expect("valid");
        assert!(!derived_here.starts_with("0.0.0.0"), "{derived_here}");
    }
}
