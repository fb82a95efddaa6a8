//! Keys (descriptors): which request facts a rule counts by, and how they
//! compose into one key string and into RLS descriptor entries.

pub use meshward_shared::path_template::Template;
use std::cell::OnceCell;
use std::net::IpAddr;

use meshward_shared::config::ConfigError;
use meshward_shared::facts::{cidr, claims, RequestFacts, Sources};
use meshward_shared::host::Host;
use meshward_shared::identity::Identity;
use serde::Deserialize;

/// One part of a key, written as a one-field object, e.g. `{"header": "x-api-key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyPart {
    /// `sub`, `issuer`, `client_id` (azp/client_id), `principal` (iss/sub) or `provider`.
    Identity(String),
    /// Any claim of the verified token; dotted names reach into objects.
    Claim(String),
    /// The client address (Envoy's derived remote address, or the
    /// `x-forwarded-for` entry under `xff_num_trusted_hops`), optionally masked.
    SourceIp(SourceIp),
    Header(String),
    Query(String),
    Method {},
    /// The path without the query string.
    Path {},
    /// The template (not the concrete path) when the path matches it.
    PathTemplate(Template),
    RouteName {},
    /// A constant, like Envoy's `generic_key`.
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceIp {
    #[serde(default)]
    pub ipv4_prefix: Option<u8>,
    #[serde(default)]
    pub ipv6_prefix: Option<u8>,
}

const IDENTITY_FIELDS: [&str; 5] = ["sub", "issuer", "client_id", "principal", "provider"];

impl KeyPart {
    pub fn reads_path(&self) -> bool {
        matches!(self, KeyPart::Path {} | KeyPart::PathTemplate(_))
    }

    pub fn needs_identity(&self) -> bool {
        matches!(self, KeyPart::Identity(_) | KeyPart::Claim(_))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            KeyPart::Identity(f) if !IDENTITY_FIELDS.contains(&f.as_str()) => {
                Err(ConfigError::new(
                    "identity",
                    format!("`{f}` is not one of {}", IDENTITY_FIELDS.join(", ")),
                ))
            }
            KeyPart::Claim(c) if c.is_empty() => {
                Err(ConfigError::new("claim", "must not be empty"))
            }
            KeyPart::Header(h) if h.is_empty() => {
                Err(ConfigError::new("header", "must not be empty"))
            }
            KeyPart::Query(q) if q.is_empty() => {
                Err(ConfigError::new("query", "must not be empty"))
            }
            KeyPart::SourceIp(s) => {
                if s.ipv4_prefix.is_some_and(|p| p > 32) {
                    return Err(ConfigError::new("source_ip.ipv4_prefix", "must be <= 32"));
                }
                if s.ipv6_prefix.is_some_and(|p| p > 128) {
                    return Err(ConfigError::new("source_ip.ipv6_prefix", "must be <= 128"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The RLS descriptor key, named as Envoy's rate limit actions name them.
    pub fn descriptor_key(&self) -> &str {
        match self {
            KeyPart::Identity(f) => f,
            KeyPart::Claim(c) => c,
            KeyPart::SourceIp(_) => "remote_address",
            KeyPart::Header(h) => h,
            KeyPart::Query(q) => q,
            KeyPart::Method {} => "method",
            KeyPart::Path {} => "path",
            KeyPart::PathTemplate(_) => "path_template",
            KeyPart::RouteName {} => "route_name",
            KeyPart::Literal(_) => "generic_key",
        }
    }
}

/// The request as the rules see it: the shared request facts (each read at
/// most once, only when a rule asks) plus the route name.
pub struct RequestView<'h, H: Host + ?Sized> {
    pub facts: RequestFacts<'h, H>,
    route: OnceCell<Option<String>>,
}

impl<'h, H: Host + ?Sized> RequestView<'h, H> {
    pub fn new(host: &'h H, sources: &'h Sources) -> Self {
        RequestView {
            facts: RequestFacts::new(host, sources),
            route: OnceCell::new(),
        }
    }

    pub fn method(&self) -> &str {
        self.facts.method()
    }

    /// The normalised path; an ambiguous path was refused before any rule
    /// runs (see `filter.rs`), so here it reads as empty.
    pub fn path(&self) -> &str {
        self.facts.path().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.facts.header(name)
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.facts.identity()
    }

    pub fn claim(&self, name: &str) -> Option<String> {
        let path: Vec<&str> = name.split('.').collect();
        claims::text(claims::dotted(&self.identity()?.claims, &path)?)
    }

    pub fn source_ip(&self) -> Option<IpAddr> {
        self.facts.client_ip()
    }

    pub fn route_name(&self) -> Option<String> {
        self.route
            .get_or_init(|| {
                let raw = self.facts.host().property(&["route_name"])?;
                String::from_utf8(raw).ok().filter(|s| !s.is_empty())
            })
            .clone()
    }

    /// The value of one key part; `None` makes the rule not apply.
    pub fn part(&self, part: &KeyPart) -> Option<String> {
        match part {
            KeyPart::Identity(field) => {
                let id = self.identity()?;
                match field.as_str() {
                    "sub" => Some(id.subject.clone()),
                    "issuer" => Some(id.issuer.clone()),
                    "client_id" => id.presenter.clone().or_else(|| self.claim("client_id")),
                    "principal" => Some(id.principal()),
                    "provider" => Some(id.provider.clone()),
                    _ => None,
                }
            }
            KeyPart::Claim(c) => self.claim(c),
            KeyPart::SourceIp(mask) => self.source_ip().map(|ip| masked(ip, *mask)),
            KeyPart::Header(h) => self.header(h).map(str::to_string),
            KeyPart::Query(q) => self.facts.query_param(q).map(str::to_string),
            KeyPart::Method {} => Some(self.method().to_string()),
            KeyPart::Path {} => Some(self.path().to_string()),
            KeyPart::PathTemplate(t) => t.matches(self.path()).then(|| t.source.clone()),
            KeyPart::RouteName {} => self.route_name(),
            KeyPart::Literal(v) => Some(v.clone()),
        }
        .filter(|v| !v.is_empty())
    }
}

/// The address masked to the configured prefix, in CIDR form when masked.
pub fn masked(ip: IpAddr, mask: SourceIp) -> String {
    let prefix = match ip {
        IpAddr::V4(_) => mask.ipv4_prefix.filter(|p| *p < 32),
        IpAddr::V6(_) => mask.ipv6_prefix.filter(|p| *p < 128),
    };
    match prefix {
        Some(p) => format!("{}/{p}", cidr::mask(ip, p)),
        None => ip.to_string(),
    }
}

/// Separator between key parts; never left inside a value.
pub const SEP: char = '\u{1f}';

/// A composed key: `rule SEP k=v SEP k=v ...`. A value's `%` and SEP are
/// percent-escaped, so no two different values share a key.
pub fn compose(rule: &str, parts: &[(&str, String)]) -> String {
    let mut key = String::with_capacity(rule.len() + parts.len() * 24);
    key.push_str(rule);
    for (k, v) in parts {
        key.push(SEP);
        key.push_str(k);
        key.push('=');
        if v.contains([SEP, '%']) {
            for c in v.chars() {
                match c {
                    '%' => key.push_str("%25"),
                    SEP => key.push_str("%1F"),
                    c => key.push(c),
                }
            }
        } else {
            key.push_str(v);
        }
    }
    key
}

/// A value as [`compose`] received it.
pub fn unescape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains('%') {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("%25") {
            out.push('%');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("%1F") {
            out.push(SEP);
            rest = t;
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Split a composed key back into the rule and its `(key, value)` entries.
pub fn entries(key: &str) -> (&str, Vec<(&str, &str)>) {
    let mut it = key.split(SEP);
    let rule = it.next().unwrap_or("");
    let entries = it
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    (rule, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshward_shared::fake::FakeHost;
    use serde_json::json;

    #[test]
    fn templates() {
        let t = Template::parse_plain("/users/{id}/orders/{**}").unwrap();
        assert!(t.matches("/users/7/orders/1/items"));
        assert!(t.matches("/users/7/orders/"));
        assert!(!t.matches("/users//orders/1"));
        assert!(!t.matches("/users/7/carts/1"));
        let t = Template::parse_plain("/users/{id}").unwrap();
        assert!(t.matches("/users/9"));
        assert!(!t.matches("/users/9/x"));
        assert!(Template::parse_plain("users").is_err());
        assert!(Template::parse_plain("/a/{**}/{*}").is_err());
        assert!(Template::parse_plain("/a/x{y}").is_err());
    }

    #[test]
    fn cidr_masking() {
        let m = SourceIp {
            ipv4_prefix: Some(24),
            ipv6_prefix: Some(64),
        };
        assert_eq!(masked("192.0.2.77".parse().unwrap(), m), "192.0.2.0/24");
        assert_eq!(
            masked("2001:db8:1:2:3:4:5:6".parse().unwrap(), m),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            masked("192.0.2.77".parse().unwrap(), SourceIp::default()),
            "192.0.2.77"
        );
        let m0 = SourceIp {
            ipv4_prefix: Some(0),
            ipv6_prefix: None,
        };
        assert_eq!(masked("192.0.2.77".parse().unwrap(), m0), "0.0.0.0/0");
    }

    #[test]
    fn parts_from_request() {
        let host = FakeHost::default();
        host.set_headers(&[
            (":method", "POST"),
            (":path", "/users/42?api_key=k1&x=2"),
            ("x-tenant", "acme"),
            ("x-forwarded-for", "198.51.100.7, 10.1.1.1"),
        ]);
        host.put_property(&["source", "address"], b"10.9.9.9:5555");
        host.put_property(&["route_name"], b"users");
        let id = Identity {
            provider: "corp".into(),
            issuer: "https://idp".into(),
            subject: "alice".into(),
            presenter: Some("app-1".into()),
            claims: json!({"plan": "gold", "org": {"id": 7}})
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        };
        id.write(&host).unwrap();
        let sources = Sources::default();
        let v = RequestView::new(&host, &sources);
        let get = |p: KeyPart| v.part(&p);
        assert_eq!(
            get(KeyPart::Identity("sub".into())).as_deref(),
            Some("alice")
        );
        assert_eq!(
            get(KeyPart::Identity("client_id".into())).as_deref(),
            Some("app-1")
        );
        assert_eq!(
            get(KeyPart::Identity("principal".into())).as_deref(),
            Some("https://idp/alice")
        );
        assert_eq!(get(KeyPart::Claim("plan".into())).as_deref(), Some("gold"));
        assert_eq!(get(KeyPart::Claim("org.id".into())).as_deref(), Some("7"));
        assert_eq!(get(KeyPart::Claim("nope".into())), None);
        assert_eq!(
            get(KeyPart::Header("x-tenant".into())).as_deref(),
            Some("acme")
        );
        assert_eq!(get(KeyPart::Query("api_key".into())).as_deref(), Some("k1"));
        assert_eq!(get(KeyPart::Query("y".into())), None);
        assert_eq!(get(KeyPart::Method {}).as_deref(), Some("POST"));
        assert_eq!(get(KeyPart::Path {}).as_deref(), Some("/users/42"));
        assert_eq!(
            get(KeyPart::PathTemplate(
                Template::parse_plain("/users/{id}").unwrap()
            ))
            .as_deref(),
            Some("/users/{id}")
        );
        assert_eq!(
            get(KeyPart::PathTemplate(
                Template::parse_plain("/orders/{id}").unwrap()
            )),
            None
        );
        assert_eq!(get(KeyPart::RouteName {}).as_deref(), Some("users"));
        assert_eq!(
            get(KeyPart::SourceIp(SourceIp::default())).as_deref(),
            Some("10.9.9.9")
        );
        // Envoy's rule: the entry `hops` places from the right (0 = last).
        let one = Sources {
            xff_num_trusted_hops: Some(1),
            ..Sources::default()
        };
        let trusted = RequestView::new(&host, &one);
        assert_eq!(
            trusted
                .part(&KeyPart::SourceIp(SourceIp::default()))
                .as_deref(),
            Some("198.51.100.7")
        );
        let two = Sources {
            xff_num_trusted_hops: Some(2),
            ..Sources::default()
        };
        let too_many = RequestView::new(&host, &two);
        assert_eq!(
            too_many
                .part(&KeyPart::SourceIp(SourceIp::default()))
                .as_deref(),
            Some("10.9.9.9"),
            "too few entries: the peer (here Envoy's address, no peer source)"
        );
    }

    #[test]
    fn compose_and_split() {
        let k = compose("r", &[("sub", "a\u{1f}b".into()), ("method", "GET".into())]);
        let other = compose("r", &[("sub", "a_b".into()), ("method", "GET".into())]);
        assert_ne!(k, other, "a separator in a value cannot forge another key");
        let pct = compose("r", &[("sub", "a%1Fb".into())]);
        assert_ne!(k.split('\u{1f}').nth(1), pct.split('\u{1f}').nth(1));
        assert_eq!(unescape(entries(&pct).1[0].1), "a%1Fb");
        assert_eq!(k, "r\u{1f}sub=a%1Fb\u{1f}method=GET");
        let (rule, e) = entries(&k);
        assert_eq!(rule, "r");
        assert_eq!(e, vec![("sub", "a%1Fb"), ("method", "GET")]);
        assert_eq!(unescape(e[0].1), "a\u{1f}b");
        for v in ["%", "%%1F", "%25", "\u{1f}%", "plain"] {
            let c = compose("r", &[("k", v.to_string())]);
            assert_eq!(unescape(entries(&c).1[0].1), v, "{v:?}");
        }
    }
}
