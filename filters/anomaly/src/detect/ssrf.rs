//! Server-side request forgery: URLs inside parameter and body values that
//! point at the proxy's own network (loopback, private, link-local, cloud
//! metadata) in any notation a resolver accepts, or that use a scheme an API
//! has no reason to fetch (gopher, dict, file, ...).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::find;
use crate::score::{Hit, Severity};

/// Schemes used to reach non-HTTP services through a fetcher.
const ODD_SCHEMES: &[&str] = &[
    "gopher", "dict", "file", "ldap", "ldaps", "tftp", "jar", "netdoc", "smb", "sftp", "telnet",
];

/// Cloud instance-metadata host names.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
    "metadata.tencentyun.com",
];

/// Wildcard-DNS services that resolve a name to the IP written inside it.
const REBIND_SUFFIXES: &[&str] = &[".nip.io", ".xip.io", ".sslip.io", ".localtest.me"];

/// At most this many URLs are looked at per value.
const MAX_URLS: usize = 16;

pub fn detect(value: &[u8], hits: &mut Vec<Hit>) {
    bare_host(value, hits);
    let mut from = 0;
    for _ in 0..MAX_URLS {
        let Some(rel) = find(value.get(from..).unwrap_or_default(), b"://") else {
            return;
        };
        let sep = from + rel;
        from = sep + 3;
        let scheme_start = value[..sep]
            .iter()
            .rposition(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')))
            .map_or(0, |p| p + 1);
        let scheme = &value[scheme_start..sep];
        if ODD_SCHEMES.iter().any(|s| s.as_bytes() == scheme) {
            hits.push(Hit {
                rule: "ssrf.scheme",
                severity: Severity::Critical,
                offset: scheme_start,
            });
            continue;
        }
        let rest = &value[from..];
        let authority_end = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#' | b'\\') || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let host = match authority.iter().rposition(|&b| b == b'@') {
            Some(at) => &authority[at + 1..],
            None => authority,
        };
        if let Some((rule, severity)) = classify_host(host) {
            hits.push(Hit {
                rule,
                severity,
                offset: from,
            });
        }
    }
}

/// A value that is only a host (`169.254.169.254`, `[fd00:ec2::254]:80`) or
/// a scheme-relative URL (`//metadata.google.internal/...`). Only metadata
/// endpoints count here: a bare private address is a normal value for
/// network-management APIs. A bare value must be dotted or bracketed, so a
/// numeric id (`2852039166`) or a word (`metadata`) is not read as a host.
fn bare_host(value: &[u8], hits: &mut Vec<Hit>) {
    let v = value.trim_ascii();
    let (host, offset) = match v.strip_prefix(b"//") {
        Some(rest) => (rest, value.len() - v.len() + 2),
        None if !v.contains(&b'/') && (v.contains(&b'.') || v.starts_with(b"[")) => {
            (v, value.len() - v.len())
        }
        None => return,
    };
    let end = host
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(host.len());
    if let Some((rule, severity)) = classify_host(&host[..end]) {
        if severity == Severity::Critical {
            hits.push(Hit {
                rule,
                severity,
                offset,
            });
        }
    }
}

/// A host as written in a URL's authority (port included, lowercase).
pub fn classify_host(host: &[u8]) -> Option<(&'static str, Severity)> {
    let host = std::str::from_utf8(host).ok()?;
    if let Some(v6) = host.strip_prefix('[') {
        let inner = v6.split(']').next().unwrap_or_default();
        // A zone id (`fe80::1%25eth0`) only appears on link-local addresses.
        let inner = inner.split('%').next().unwrap_or_default();
        let ip: Ipv6Addr = inner.parse().ok()?;
        return classify_v6(ip);
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _port)| h);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    if METADATA_HOSTS.contains(&name) {
        return Some(("ssrf.metadata-host", Severity::Critical));
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(("ssrf.loopback", Severity::Error));
    }
    if REBIND_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Some(("ssrf.rebinding-dns", Severity::Error));
    }
    classify_v4(parse_ipv4_any(name)?)
}

/// IPv4 in every form `inet_aton` accepts: 1 to 4 parts, each decimal, hex
/// (`0x7f`) or octal (`0177`); the last part fills the remaining bytes
/// (`127.1`, `2130706433`, `0x7f000001`).
pub fn parse_ipv4_any(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        nums.push(parse_part(p)?);
    }
    let (last, init) = nums.split_last()?;
    let mut addr: u64 = 0;
    for &n in init {
        if n > 0xff {
            return None;
        }
        addr = addr << 8 | n;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    addr = addr << rest_bits | last;
    Some(Ipv4Addr::from(u32::try_from(addr).ok()?))
}

fn parse_part(p: &str) -> Option<u64> {
    if p.is_empty() || p.len() > 12 {
        return None;
    }
    if let Some(h) = p.strip_prefix("0x") {
        if h.is_empty() {
            return Some(0);
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if p.len() > 1 && p.starts_with('0') {
        return u64::from_str_radix(&p[1..], 8).ok();
    }
    p.parse().ok()
}

fn classify_v4(ip: Ipv4Addr) -> Option<(&'static str, Severity)> {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        (169, 254, 169, 254) | (100, 100, 100, 200) | (169, 254, 170, 2) => {
            Some(("ssrf.metadata-ip", Severity::Critical))
        }
        (127, ..) | (0, ..) => Some(("ssrf.loopback", Severity::Error)),
        (169, 254, ..) => Some(("ssrf.link-local", Severity::Error)),
        (10, ..) | (192, 168, ..) => Some(("ssrf.private", Severity::Warning)),
        (172, b, ..) if (16..32).contains(&b) => Some(("ssrf.private", Severity::Warning)),
        (100, b, ..) if (64..128).contains(&b) => Some(("ssrf.private", Severity::Warning)),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<(&'static str, Severity)> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    // AWS's IPv6 metadata endpoint.
    if seg == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some(("ssrf.metadata-ip", Severity::Critical));
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(("ssrf.loopback", Severity::Error));
    }
    // IPv4-compatible (::a.b.c.d, deprecated but still parsed by some stacks).
    if seg[..6] == [0; 6] {
        return classify_v4(Ipv4Addr::from(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ));
    }
    match seg[0] {
        s if s & 0xffc0 == 0xfe80 => Some(("ssrf.link-local", Severity::Error)),
        s if s & 0xfe00 == 0xfc00 => Some(("ssrf.private", Severity::Warning)),
        _ => None,
    }
}
