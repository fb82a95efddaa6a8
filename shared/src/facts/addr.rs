//! Client addresses: the TCP peer, and the client behind trusted proxies
//! under Envoy's `xff_num_trusted_hops` rule.

use std::net::IpAddr;

/// An address as Envoy parses an `x-forwarded-for` entry: a bare IPv4 or
/// IPv6 address, surrounding whitespace allowed; no port, no brackets.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim_matches(|c| c == ' ' || c == '\t').parse().ok()
}

/// The IP of an Envoy address string: `ip:port`, `[v6]:port` or a bare IP
/// (`source.address`, `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%`).
pub fn parse_socket_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once("]:").and_then(|(a, _)| a.parse().ok());
    }
    let (ip, port) = text.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client with `hops` trusted proxies in front: the entry `hops` places
/// from the right of `x-forwarded-for` (0 = the last). This is the address
/// Envoy derives, because with `use_remote_address` Envoy has already
/// appended the peer when a filter sees the header. `None` when the list is
/// too short or the entry is not a bare IP; the caller then uses the peer.
pub fn xff_client(xff: &str, hops: u32) -> Option<IpAddr> {
    let entry = xff.rsplit(',').nth(usize::try_from(hops).ok()?)?;
    parse_ip(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn xff_counts_from_the_right() {
        let x = "203.0.113.9, 10.0.0.1 ,10.0.0.2";
        assert_eq!(xff_client(x, 0), ip("10.0.0.2"));
        assert_eq!(xff_client(x, 1), ip("10.0.0.1"));
        assert_eq!(xff_client(x, 2), ip("203.0.113.9"));
        assert_eq!(xff_client(x, 3), None);
        assert_eq!(xff_client("2001:db8::1", 0), ip("2001:db8::1"));
    }

    #[test]
    fn xff_entries_envoy_does_not_parse_are_ignored() {
        assert_eq!(xff_client("1.2.3.4:80", 0), None);
        assert_eq!(xff_client("[2001:db8::1]", 0), None);
        assert_eq!(xff_client("1.2.3.4,", 0), None);
        assert_eq!(xff_client("garbage", 0), None);
        assert_eq!(xff_client("", 0), None);
        // Mapped addresses stay IPv6 (an IPv4 CIDR does not match them).
        assert_eq!(xff_client("::ffff:1.2.3.4", 0), ip("::ffff:1.2.3.4"));
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(parse_socket_ip("10.0.0.1:5555"), ip("10.0.0.1"));
        assert_eq!(parse_socket_ip("[2001:db8::1]:80"), ip("2001:db8::1"));
        assert_eq!(parse_socket_ip("127.0.0.1"), ip("127.0.0.1"));
        assert_eq!(parse_socket_ip("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_socket_ip("10.0.0.1:"), None);
        assert_eq!(parse_socket_ip("pipe:/tmp/x"), None);
    }
}
