//! Compiled matchers: Istio string lists (exact, `prefix*`, `*suffix`, `*`),
//! CIDR sets (sorted prefix sets per length), and path sets with templates
//! (`{*}`, `{**}`, named `{user}` / `{rest=**}` captures).

use std::net::IpAddr;

use meshward_shared::config::ConfigError;
pub use meshward_shared::path_template::{CaptureNames, Template};

/// Istio string matching over a list of patterns; any pattern may match.
#[derive(Debug, Clone, Default)]
pub struct StringSet {
    exact: Vec<Box<str>>,
    prefixes: Vec<Box<str>>,
    suffixes: Vec<Box<str>>,
    /// `*`: any present value.
    any: bool,
    /// Compare ASCII case-insensitively (values were lowercased at compile time).
    fold: bool,
}

impl StringSet {
    pub fn compile(values: &[String], fold: bool) -> Result<StringSet, ConfigError> {
        let mut s = StringSet {
            fold,
            ..Default::default()
        };
        for (i, v) in values.iter().enumerate() {
            let v = if fold {
                v.to_ascii_lowercase()
            } else {
                v.clone()
            };
            let at = format!("[{i}]");
            if v == "*" {
                s.any = true;
            } else if let Some(p) = v.strip_suffix('*') {
                if p.contains('*') {
                    return Err(ConfigError::new(
                        at,
                        format!("`{v}`: `*` is allowed only at the start or the end"),
                    ));
                }
                s.prefixes.push(p.into());
            } else if let Some(p) = v.strip_prefix('*') {
                if p.contains('*') {
                    return Err(ConfigError::new(
                        at,
                        format!("`{v}`: `*` is allowed only at the start or the end"),
                    ));
                }
                s.suffixes.push(p.into());
            } else if v.contains('*') {
                return Err(ConfigError::new(
                    at,
                    format!("`{v}`: `*` is allowed only at the start or the end"),
                ));
            } else {
                s.exact.push(v.into());
            }
        }
        s.exact.sort();
        s.exact.dedup();
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty() && self.prefixes.is_empty() && self.suffixes.is_empty()
    }

    pub fn matches(&self, value: &str) -> bool {
        if self.fold && value.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.matches_folded(&value.to_ascii_lowercase());
        }
        self.matches_folded(value)
    }

    fn matches_folded(&self, value: &str) -> bool {
        (self.any && !value.is_empty())
            || self.exact.binary_search_by(|e| (**e).cmp(value)).is_ok()
            || self.prefixes.iter().any(|p| value.starts_with(&**p))
            || self.suffixes.iter().any(|p| value.ends_with(&**p))
    }

    /// Exact patterns only (no globs), for the candidate index.
    pub fn exact_only(&self) -> Option<&[Box<str>]> {
        (!self.any && self.prefixes.is_empty() && self.suffixes.is_empty()).then_some(&self.exact)
    }

    /// For path sets: the first path segment every match must have, one per
    /// pattern, or `None` when some pattern could match any first segment.
    fn first_segments(&self, out: &mut Vec<Box<str>>) -> Option<()> {
        if self.any || !self.suffixes.is_empty() || self.fold {
            return None;
        }
        for e in &self.exact {
            out.push(first_segment(e)?.into());
        }
        for p in &self.prefixes {
            // `/svc/*` pins the segment `svc`; `/svc*` does not (`/svc2`).
            let body = p.strip_prefix('/')?;
            let (seg, _) = body.split_once('/')?;
            out.push(seg.into());
        }
        Some(())
    }
}

/// The first segment of a path: `/a/b` -> `a`, `/` -> ``; `None` without a leading `/`.
pub fn first_segment(path: &str) -> Option<&str> {
    let body = path.strip_prefix('/')?;
    Some(body.split('/').next().unwrap_or(""))
}

/// A set of CIDR blocks; membership tests one sorted list per prefix length.
#[derive(Debug, Clone, Default)]
pub struct CidrSet {
    /// (prefix length, sorted masked networks) for IPv4 mapped into u128 space
    v4: Vec<(u8, Vec<u32>)>,
    v6: Vec<(u8, Vec<u128>)>,
}

impl CidrSet {
    pub fn compile(values: &[String]) -> Result<CidrSet, ConfigError> {
        let mut s = CidrSet::default();
        for (i, v) in values.iter().enumerate() {
            let (addr, len) = parse_cidr(v).map_err(|m| ConfigError::new(format!("[{i}]"), m))?;
            match addr {
                IpAddr::V4(a) => {
                    let net = mask32(u32::from(a), len);
                    push_net(&mut s.v4, len, net);
                }
                IpAddr::V6(a) => {
                    let net = mask128(u128::from(a), len);
                    push_net(&mut s.v6, len, net);
                }
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
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
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
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask128(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
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

/// Parse an IP from `ip`, `ip:port` or `[v6]:port` (Envoy's address forms).
pub fn parse_ip_loose(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split_once(']').and_then(|(a, _)| a.parse().ok());
    }
    t.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

// ------------------------------------------------------------------ paths

/// Istio `paths`: exact, `prefix*`, `*suffix`, `*`, or templates.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    pub strings: StringSet,
    pub templates: Vec<Template>,
}

impl PathSet {
    pub fn compile(values: &[String], names: &mut CaptureNames) -> Result<PathSet, ConfigError> {
        let mut plain = Vec::new();
        let mut templates = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if v.contains('{') || v.contains('}') {
                templates.push(
                    Template::parse(v, names).map_err(|m| ConfigError::new(format!("[{i}]"), m))?,
                );
            } else {
                if v.is_empty() {
                    return Err(ConfigError::new(format!("[{i}]"), "empty path"));
                }
                plain.push(v.clone());
            }
        }
        let strings = StringSet::compile(&plain, false)?;
        Ok(PathSet { strings, templates })
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty() && self.templates.is_empty()
    }

    pub fn matches(&self, path: &str) -> bool {
        self.strings.matches(path) || self.templates.iter().any(|t| t.matches(path))
    }

    /// The capture `idx` from the first template that matches and binds it.
    pub fn capture<'p>(&self, path: &'p str, idx: usize) -> Option<&'p str> {
        self.templates.iter().find_map(|t| t.capture(path, idx))
    }

    /// The first segments this set can match (for the rule index), or
    /// `None` when a pattern can match any first segment.
    pub fn first_segments(&self) -> Option<Vec<Box<str>>> {
        let mut out = Vec::new();
        self.strings.first_segments(&mut out)?;
        for t in &self.templates {
            out.push(t.first_literal()?.into());
        }
        Some(out)
    }
}

#[cfg(test)]
#[path = "matchers_tests.rs"]
mod tests;
