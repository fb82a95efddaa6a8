//! CIDR sets. Membership checks one sorted list per prefix length, so a
//! set of thousands of blocks costs a few binary searches. An IPv4 block
//! never matches an IPv6 address, IPv4-mapped or not (as Envoy's `CidrRange`).

use std::net::IpAddr;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct CidrSet {
    v4: Vec<(u8, Vec<u32>)>,
    v6: Vec<(u8, Vec<u128>)>,
}

impl CidrSet {
    pub fn compile(values: &[String]) -> Result<CidrSet, ConfigError> {
        let mut s = CidrSet::default();
        for (i, v) in values.iter().enumerate() {
            let (addr, len) = parse_cidr(v).map_err(|m| ConfigError::new(format!("[{i}]"), m))?;
            match addr {
                IpAddr::V4(a) => push_net(&mut s.v4, len, mask32(u32::from(a), len)),
                IpAddr::V6(a) => push_net(&mut s.v6, len, mask128(u128::from(a), len)),
            }
        }
        for (_, nets) in &mut s.v4 {
            nets.sort_unstable();
            nets.dedup();
        }
        for (_, nets) in &mut s.v6 {
            nets.sort_unstable();
            nets.dedup();
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .any(|(len, nets)| nets.binary_search(&mask32(a, *len)).is_ok())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .any(|(len, nets)| nets.binary_search(&mask128(a, *len)).is_ok())
            }
        }
    }
}

fn push_net<T>(lists: &mut Vec<(u8, Vec<T>)>, len: u8, net: T) {
    match lists.iter_mut().find(|(l, _)| *l == len) {
        Some((_, nets)) => nets.push(net),
        None => lists.push((len, vec![net])),
    }
}

fn mask32(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn mask128(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// `ip` with all but its first `len` bits cleared (a client's network).
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(mask32(u32::from(a), len).into()),
        IpAddr::V6(a) => IpAddr::V6(mask128(u128::from(a), len).into()),
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a host block).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address or CIDR block"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max && !l.starts_with('+') => n,
            _ => return Err(format!("`{text}`: prefix length must be 0..={max}")),
        },
    };
    Ok((ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> CidrSet {
        CidrSet::compile(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn membership() {
        let s = set(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "0.0.0.0/0"]);
        assert!(s.contains("10.1.2.3".parse().unwrap()));
        assert!(s.contains("8.8.8.8".parse().unwrap()));
        assert!(s.contains("2001:db8::5".parse().unwrap()));
        assert!(!s.contains("2001:db9::5".parse().unwrap()));
        let s = set(&["1.2.3.0/24"]);
        assert!(
            !s.contains("::ffff:1.2.3.4".parse().unwrap()),
            "mapped stays v6"
        );
        assert!(set(&["::/0"]).contains("::ffff:1.2.3.4".parse().unwrap()));
        assert!(!set(&["::/0"]).contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn bad_blocks_are_refused() {
        for b in ["10.0.0.0/33", "x", "10.0.0.0/+8", "::/129", "10.0.0.0/"] {
            assert!(CidrSet::compile(&[b.to_string()]).is_err(), "{b}");
        }
    }

    #[test]
    fn masks() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(mask(ip, 24), "10.1.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask(ip, 0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask(ip, 32), ip);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(mask(v6, 32), "2001:db8::".parse::<IpAddr>().unwrap());
    }
}
