//! The request as the engine sees it: only the attributes the policy set
//! needs, gathered once per request (see `gather.rs`), and the attribute
//! keys (`when` keys, object-check operands) compiled from config.

use std::net::IpAddr;

use meshward_shared::config::ConfigError;

/// A request attribute, resolved from a `when` key at configure time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// `request.headers[name]`, by header slot.
    Header(usize),
    SourceIp,
    RemoteIp,
    SourcePrincipal,
    SourceNamespace,
    /// meshward: trust domain of the peer's SPIFFE ID.
    SourceTrustDomain,
    AuthPrincipal,
    AuthAudiences,
    AuthPresenter,
    /// `request.auth.claims[a][b]`, by claim slot.
    AuthClaim(usize),
    /// meshward: OAuth scopes of the token.
    AuthScopes,
    /// meshward: effective RBAC roles (with inheritance).
    AuthRoles,
    DestinationPort,
    ConnectionSni,
}

impl Attr {
    pub fn is_ip(self) -> bool {
        matches!(self, Attr::SourceIp | Attr::RemoteIp)
    }
}

/// What the policy set reads; computed at configure time so a request reads
/// only these headers and properties.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Lower-cased header names; the index is the header slot.
    pub headers: Vec<String>,
    /// Pre-split claim paths; the index is the claim slot.
    pub claims: Vec<ClaimPath>,
    pub method: bool,
    pub path: bool,
    pub host: bool,
    pub port: bool,
    pub source_ip: bool,
    pub remote_ip: bool,
    pub peer: bool,
    pub sni: bool,
    pub auth: bool,
    /// Which token fields besides claims are read (`iss/sub`, `aud`, `azp`, scopes).
    pub auth_principal: bool,
    pub auth_audiences: bool,
    pub auth_presenter: bool,
    pub auth_scopes: bool,
    pub roles: bool,
    pub time: bool,
    /// Header slot of the geo (country) header, when any rule uses countries.
    pub geo: Option<usize>,
}

impl Needs {
    pub fn header_slot(&mut self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        match self.headers.iter().position(|h| *h == name) {
            Some(i) => i,
            None => {
                self.headers.push(name);
                self.headers.len() - 1
            }
        }
    }

    /// A slot for `request.auth.claims[a][b]`: nested objects only, as Istio reads it.
    pub fn claim_slot(&mut self, path: Vec<String>) -> usize {
        self.slot(ClaimPath {
            path,
            dotted_keys: false,
        })
    }

    /// A slot for a dotted config path (`rbac.role_claims`), read as jwt-auth and
    /// rate-limit read theirs: a key that itself holds dots
    /// (`https://example.com/roles`) is found too.
    pub fn dotted_claim_slot(&mut self, path: Vec<String>) -> usize {
        self.slot(ClaimPath {
            path,
            dotted_keys: true,
        })
    }

    fn slot(&mut self, claim: ClaimPath) -> usize {
        self.auth = true;
        match self.claims.iter().position(|c| *c == claim) {
            Some(i) => i,
            None => {
                self.claims.push(claim);
                self.claims.len() - 1
            }
        }
    }

    /// Record that `attr` is read.
    pub fn note(&mut self, attr: Attr) {
        match attr {
            Attr::Header(_) => {}
            Attr::SourceIp => self.source_ip = true,
            Attr::RemoteIp => self.remote_ip = true,
            Attr::SourcePrincipal | Attr::SourceNamespace | Attr::SourceTrustDomain => {
                self.peer = true
            }
            Attr::AuthPrincipal => {
                self.auth = true;
                self.auth_principal = true;
            }
            Attr::AuthAudiences => {
                self.auth = true;
                self.auth_audiences = true;
            }
            Attr::AuthPresenter => {
                self.auth = true;
                self.auth_presenter = true;
            }
            Attr::AuthScopes => {
                self.auth = true;
                self.auth_scopes = true;
            }
            Attr::AuthClaim(_) => self.auth = true,
            Attr::AuthRoles => {
                self.auth = true;
                self.roles = true;
            }
            Attr::DestinationPort => self.port = true,
            Attr::ConnectionSni => self.sni = true,
        }
    }

    /// Parse a `when` key (Istio names plus meshward's extensions).
    pub fn attr(&mut self, key: &str) -> Result<Attr, ConfigError> {
        let attr = match key {
            "source.ip" => Attr::SourceIp,
            "remote.ip" => Attr::RemoteIp,
            "source.principal" => Attr::SourcePrincipal,
            "source.namespace" => Attr::SourceNamespace,
            "source.trust_domain" => Attr::SourceTrustDomain,
            "request.auth.principal" => Attr::AuthPrincipal,
            "request.auth.audiences" => Attr::AuthAudiences,
            "request.auth.presenter" => Attr::AuthPresenter,
            "request.auth.scopes" => Attr::AuthScopes,
            "request.auth.roles" => Attr::AuthRoles,
            "destination.port" => Attr::DestinationPort,
            "connection.sni" => Attr::ConnectionSni,
            _ => {
                if let Some(name) = bracketed(key, "request.headers") {
                    let [name] = name.as_slice() else {
                        return Err(ConfigError::new(
                            "",
                            format!(
                                "`{key}`: one header name expected, e.g. request.headers[x-user]"
                            ),
                        ));
                    };
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'[' && b != b']');
                    if !valid {
                        return Err(ConfigError::new("", format!("`{key}`: bad header name")));
                    }
                    Attr::Header(self.header_slot(name))
                } else if let Some(path) = bracketed(key, "request.auth.claims") {
                    if path.is_empty() || path.iter().any(String::is_empty) {
                        return Err(ConfigError::new("", format!("`{key}`: expected request.auth.claims[name] or [a][b] for nested claims")));
                    }
                    Attr::AuthClaim(self.claim_slot(path))
                } else {
                    return Err(ConfigError::new(
                        "",
                        format!("unknown key `{key}` (supported: request.headers[..], source.ip, remote.ip, source.principal, source.namespace, source.trust_domain, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[..], request.auth.scopes, request.auth.roles, destination.port, connection.sni)"),
                    ));
                }
            }
        };
        self.note(attr);
        Ok(attr)
    }
}

/// `base[a][b]` -> `Some(["a","b"])`; `None` when `key` is not `base[...]`.
/// A malformed bracket sequence yields `Some(vec![])`.
fn bracketed(key: &str, base: &str) -> Option<Vec<String>> {
    let rest = key.strip_prefix(base)?;
    if !rest.starts_with('[') {
        return None;
    }
    let mut out = Vec::new();
    let mut r = rest;
    while !r.is_empty() {
        let Some(inner) = r.strip_prefix('[') else {
            return Some(Vec::new());
        };
        let Some((name, next)) = inner.split_once(']') else {
            return Some(Vec::new());
        };
        if name.contains('[') {
            return Some(Vec::new());
        }
        out.push(name.to_string());
        r = next;
    }
    Some(out)
}

/// Where a claim slot reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    pub path: Vec<String>,
    /// Segments may also name one key that contains dots.
    pub dotted_keys: bool,
}

/// A dotted claim path (`realm_access.roles`) pre-split.
pub fn dotted(path: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!("claim path `{path}` has an empty segment"));
    }
    Ok(parts)
}

/// The verified caller, from meshward filter state or jwt_authn metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// The `iss` and `sub` claims, when they are strings.
    pub issuer: Option<String>,
    pub subject: Option<String>,
    /// `iss/sub`, for object checks and explanations.
    pub principal: String,
    pub audiences: Vec<String>,
    /// `azp` (a string, or the strings of a list).
    pub presenter: Vec<String>,
    pub scopes: Vec<String>,
    /// Values per claim slot: the claim when it is a string, the string
    /// elements of a list; other JSON types give none.
    pub claims: Vec<Vec<String>>,
    /// Effective role membership by role index (inheritance applied).
    pub roles: Vec<bool>,
    /// Granted permission by permission index.
    pub permissions: Vec<bool>,
}

/// The mTLS peer: its SPIFFE ID without the `spiffe://` scheme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub principal: String,
}

impl Peer {
    pub fn from_uri_san(uri: &str) -> Peer {
        let p = uri.strip_prefix("spiffe://").unwrap_or(uri);
        Peer {
            principal: p.to_string(),
        }
    }

    pub fn trust_domain(&self) -> &str {
        self.principal.split('/').next().unwrap_or("")
    }

    /// Istio: the namespace is the segment after `/ns/`.
    pub fn namespace(&self) -> Option<&str> {
        let mut it = self.principal.split('/');
        while let Some(s) = it.next() {
            if s == "ns" {
                return it.next().filter(|n| !n.is_empty());
            }
        }
        None
    }
}

/// One request's attributes (only those in [`Needs`] are filled).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path without query or fragment.
    pub path: String,
    /// `:authority`, lower-cased.
    pub host: String,
    pub port: Option<u32>,
    /// Every value of each header slot, in order.
    pub headers: Vec<Vec<String>>,
    /// The TCP peer (`source.ip`).
    pub source_ip: Option<IpAddr>,
    /// The client address (`remote.ip`).
    pub remote_ip: Option<IpAddr>,
    pub peer: Option<Peer>,
    pub sni: Option<String>,
    pub auth: Option<Auth>,
    pub now_unix: u64,
    /// Header slot of the geo header (set from [`Needs::geo`]).
    pub geo_slot: Option<usize>,
}

impl Request {
    /// The first value of a header slot.
    pub fn header(&self, slot: usize) -> Option<&str> {
        self.headers
            .get(slot)
            .and_then(|h| h.first())
            .map(String::as_str)
    }

    /// How many values a string attribute has (object checks refuse an
    /// ambiguous duplicated header).
    pub fn value_count(&self, attr: Attr) -> usize {
        match attr {
            Attr::Header(slot) => self.headers.get(slot).map_or(0, Vec::len),
            _ => usize::from(self.first_value(attr).is_some()),
        }
    }

    pub fn ip(&self, attr: Attr) -> Option<IpAddr> {
        match attr {
            Attr::SourceIp => self.source_ip,
            Attr::RemoteIp => self.remote_ip,
            _ => None,
        }
    }

    /// The first value of a string attribute.
    pub fn first_value(&self, attr: Attr) -> Option<&str> {
        let auth = self.auth.as_ref();
        match attr {
            Attr::Header(slot) => self.header(slot),
            Attr::SourcePrincipal => self.peer.as_ref().map(|p| p.principal.as_str()),
            Attr::SourceNamespace => self.peer.as_ref().and_then(Peer::namespace),
            Attr::SourceTrustDomain => self.peer.as_ref().map(Peer::trust_domain),
            Attr::AuthPrincipal => auth.map(|a| a.principal.as_str()).filter(|p| !p.is_empty()),
            Attr::AuthAudiences => auth.and_then(|a| a.audiences.first()).map(String::as_str),
            Attr::AuthPresenter => auth.and_then(|a| a.presenter.first()).map(String::as_str),
            Attr::AuthClaim(slot) => auth
                .and_then(|a| a.claims.get(slot))
                .and_then(|v| v.first())
                .map(String::as_str),
            Attr::AuthScopes => auth.and_then(|a| a.scopes.first()).map(String::as_str),
            Attr::ConnectionSni => self.sni.as_deref(),
            Attr::SourceIp | Attr::RemoteIp | Attr::AuthRoles | Attr::DestinationPort => None,
        }
    }

    /// Call `f` on each value of a string attribute until it returns true.
    /// Returns whether any call returned true (false when absent).
    pub fn any_value(&self, attr: Attr, f: &mut dyn FnMut(&str) -> bool) -> bool {
        let auth = self.auth.as_ref();
        match attr {
            Attr::Header(slot) => self
                .headers
                .get(slot)
                .is_some_and(|vs| vs.iter().any(|v| f(v))),
            Attr::SourceIp | Attr::RemoteIp => false,
            Attr::SourcePrincipal => self.peer.as_ref().is_some_and(|p| f(&p.principal)),
            Attr::SourceNamespace => self.peer.as_ref().and_then(Peer::namespace).is_some_and(f),
            Attr::SourceTrustDomain => self.peer.as_ref().is_some_and(|p| f(p.trust_domain())),
            Attr::AuthPrincipal => auth.is_some_and(|a| !a.principal.is_empty() && f(&a.principal)),
            Attr::AuthAudiences => auth.is_some_and(|a| a.audiences.iter().any(|v| f(v))),
            Attr::AuthPresenter => auth.is_some_and(|a| a.presenter.iter().any(|v| f(v))),
            Attr::AuthClaim(slot) => auth
                .and_then(|a| a.claims.get(slot))
                .is_some_and(|vs| vs.iter().any(|v| f(v))),
            Attr::AuthScopes => auth.is_some_and(|a| a.scopes.iter().any(|v| f(v))),
            // Roles are matched by index; see `Rule::roles`. As a `when` key the
            // role names are resolved through `role_names` by the engine.
            Attr::AuthRoles => false,
            // Ports are matched numerically (`Values::Port`).
            Attr::DestinationPort => false,
            Attr::ConnectionSni => self.sni.as_deref().is_some_and(f),
        }
    }
}
