//! The compiled policy model and rule matching. A rule matches when one of
//! its `from` sources, one of its `to` operations and all of its `when`
//! conditions match, plus meshward's rule-level checks (roles, permissions,
//! scopes, object checks, time windows, countries).

use crate::matchers::{CidrSet, PathSet, PrincipalSet, StringSet};
use crate::request::{Attr, Request};
use crate::time::TimeWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Audit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
        }
    }
}

/// A positive list and its `not*` form; absent values fail the positive
/// list and pass the negative one (Envoy `rbac` semantics).
#[derive(Debug, Clone, Default)]
pub struct Cond<T> {
    pub pos: Option<T>,
    pub neg: Option<T>,
}

impl<T> Cond<T> {
    pub fn is_set(&self) -> bool {
        self.pos.is_some() || self.neg.is_some()
    }

    /// `test(matcher)` answers "does the request's value match this list?".
    fn check(&self, mut test: impl FnMut(&T) -> bool) -> bool {
        if let Some(p) = &self.pos {
            if !test(p) {
                return false;
            }
        }
        if let Some(n) = &self.neg {
            if test(n) {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Clone, Default)]
pub struct Source {
    pub principals: Cond<StringSet>,
    pub request_principals: Cond<PrincipalSet>,
    pub namespaces: Cond<StringSet>,
    pub trust_domains: Cond<StringSet>,
    pub ip_blocks: Cond<CidrSet>,
    pub remote_ip_blocks: Cond<CidrSet>,
}

#[derive(Debug, Clone, Default)]
pub struct Operation {
    pub hosts: Cond<StringSet>,
    pub ports: Cond<Vec<u32>>,
    pub methods: Cond<StringSet>,
    pub paths: Cond<PathSet>,
    /// meshward option `hosts_ignore_port`: `host:port` also matches `host`.
    pub hosts_ignore_port: bool,
}

#[derive(Debug, Clone)]
pub enum Values {
    Str(StringSet),
    Ip(CidrSet),
    Port(Vec<u32>),
    /// Role indices whose names match the listed values.
    Roles(Vec<usize>),
    /// `request.auth.principal`: issuer and subject matched apart.
    Principal(PrincipalSet),
}

#[derive(Debug, Clone)]
pub struct When {
    pub attr: Attr,
    pub cond: Cond<Values>,
}

/// Left operand of an object-level check.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A named capture of the rule's path templates.
    Capture(usize),
    Attr(Attr),
}

/// `left == right`: the left value must be present and equal one of the
/// right attribute's values.
#[derive(Debug, Clone)]
pub struct ObjectCheck {
    pub left: Operand,
    pub right: Attr,
}

#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub from: Vec<Source>,
    pub to: Vec<Operation>,
    pub when: Vec<When>,
    /// Any of these roles (indices), when set.
    pub roles: Option<Vec<usize>>,
    /// All of these permissions (indices).
    pub permissions: Vec<usize>,
    /// All of these scopes.
    pub scopes: Vec<String>,
    pub objects: Vec<ObjectCheck>,
    /// Any of these windows, when non-empty.
    pub time_windows: Vec<TimeWindow>,
    /// Upper-case ISO country codes from the geo header.
    pub countries: Cond<Vec<String>>,
    /// Human-readable explanation of a match (`rules[i] matched: ...`).
    pub summary: String,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub action: Action,
    pub rules: Vec<Rule>,
    pub dry_run: bool,
}

/// Which part of a rule failed, for explanations.
pub type Miss = &'static str;

impl Source {
    fn matches(&self, r: &Request) -> Result<(), Miss> {
        let peer = r.peer.as_ref();
        let auth = r.auth.as_ref();
        let str_opt =
            |c: &Cond<StringSet>, v: Option<&str>| c.check(|s| v.is_some_and(|v| s.matches(v)));
        if !str_opt(&self.principals, peer.map(|p| p.principal.as_str())) {
            return Err("from.source.principals");
        }
        let principal = |s: &PrincipalSet| {
            auth.is_some_and(|a| s.matches(a.issuer.as_deref(), a.subject.as_deref()))
        };
        if !self.request_principals.check(principal) {
            return Err("from.source.requestPrincipals");
        }
        if !str_opt(&self.namespaces, peer.and_then(|p| p.namespace())) {
            return Err("from.source.namespaces");
        }
        if !str_opt(&self.trust_domains, peer.map(|p| p.trust_domain())) {
            return Err("from.source.trustDomains");
        }
        let ip = |c: &Cond<CidrSet>, v: Option<std::net::IpAddr>| {
            c.check(|s| v.is_some_and(|v| s.contains(v)))
        };
        if !ip(&self.ip_blocks, r.ip(Attr::SourceIp)) {
            return Err("from.source.ipBlocks");
        }
        if !ip(&self.remote_ip_blocks, r.ip(Attr::RemoteIp)) {
            return Err("from.source.remoteIpBlocks");
        }
        Ok(())
    }
}

impl Operation {
    fn matches(&self, r: &Request) -> Result<(), Miss> {
        if !self.methods.check(|s| s.matches(&r.method)) {
            return Err("to.operation.methods");
        }
        if !self.paths.check(|s| s.matches(&r.path)) {
            return Err("to.operation.paths");
        }
        if !self
            .hosts
            .check(|s| host_matches(s, &r.host, self.hosts_ignore_port))
        {
            return Err("to.operation.hosts");
        }
        if !self.ports.check(|s| r.port.is_some_and(|p| s.contains(&p))) {
            return Err("to.operation.ports");
        }
        Ok(())
    }
}

/// Istio hosts match `:authority` exactly, case-insensitively (`host:*`
/// covers any port); `ignore_port` also lets `host:port` match `host`.
fn host_matches(s: &StringSet, host: &str, ignore_port: bool) -> bool {
    if host.is_empty() {
        return false;
    }
    if s.matches(host) {
        return true;
    }
    if !ignore_port {
        return false;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || host.starts_with('[') => {
            port.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() && s.matches(h)
        }
        _ => false,
    }
}

impl When {
    fn matches(&self, r: &Request) -> bool {
        self.cond.check(|v| values_match(v, self.attr, r))
    }
}

fn values_match(v: &Values, attr: Attr, r: &Request) -> bool {
    match v {
        Values::Str(s) => r.any_value(attr, &mut |x| s.matches(x)),
        Values::Ip(c) => r.ip(attr).is_some_and(|ip| c.contains(ip)),
        Values::Port(ports) => r.port.is_some_and(|p| ports.contains(&p)),
        Values::Principal(p) => r
            .auth
            .as_ref()
            .is_some_and(|a| p.matches(a.issuer.as_deref(), a.subject.as_deref())),
        Values::Roles(idx) => r.auth.as_ref().is_some_and(|a| {
            idx.iter()
                .any(|i| a.roles.get(*i).copied().unwrap_or(false))
        }),
    }
}

impl Rule {
    pub fn matches(&self, r: &Request) -> Result<(), Miss> {
        if !self.to.is_empty() {
            let mut last = Ok(());
            if !self.to.iter().any(|o| {
                last = o.matches(r);
                last.is_ok()
            }) {
                return last;
            }
        }
        if !self.from.is_empty() {
            let mut last = Ok(());
            if !self.from.iter().any(|s| {
                last = s.matches(r);
                last.is_ok()
            }) {
                return last;
            }
        }
        if !self.when.iter().all(|w| w.matches(r)) {
            return Err("when");
        }
        if !self.roles_ok(r) {
            return Err("roles");
        }
        if !self.permissions_ok(r) {
            return Err("permissions");
        }
        if !self.scopes_ok(r) {
            return Err("scopes");
        }
        if !self.objects.iter().all(|o| self.object_ok(o, r)) {
            return Err("objects");
        }
        if !self.time_windows.is_empty()
            && !self.time_windows.iter().any(|w| w.contains(r.now_unix))
        {
            return Err("time_windows");
        }
        if self.countries.is_set() {
            let country = r.country();
            let ok = self.countries.check(|list| {
                country.is_some_and(|c| list.iter().any(|x| x.eq_ignore_ascii_case(c)))
            });
            if !ok {
                return Err("countries");
            }
        }
        Ok(())
    }

    fn roles_ok(&self, r: &Request) -> bool {
        let Some(want) = &self.roles else {
            return true;
        };
        r.auth.as_ref().is_some_and(|a| {
            want.iter()
                .any(|i| a.roles.get(*i).copied().unwrap_or(false))
        })
    }

    fn permissions_ok(&self, r: &Request) -> bool {
        if self.permissions.is_empty() {
            return true;
        }
        r.auth.as_ref().is_some_and(|a| {
            self.permissions
                .iter()
                .all(|i| a.permissions.get(*i).copied().unwrap_or(false))
        })
    }

    fn scopes_ok(&self, r: &Request) -> bool {
        if self.scopes.is_empty() {
            return true;
        }
        r.auth
            .as_ref()
            .is_some_and(|a| self.scopes.iter().all(|s| a.scopes.iter().any(|x| x == s)))
    }

    fn object_ok(&self, o: &ObjectCheck, r: &Request) -> bool {
        // A duplicated header names two objects at once: refuse to pick one.
        let ambiguous = |a: Attr| matches!(a, Attr::Header(_)) && r.value_count(a) > 1;
        if ambiguous(o.right) || matches!(o.left, Operand::Attr(a) if ambiguous(a)) {
            return false;
        }
        let left: Option<&str> = match &o.left {
            Operand::Capture(idx) => self
                .to
                .iter()
                .filter_map(|op| op.paths.pos.as_ref())
                .find_map(|p| p.capture(&r.path, *idx)),
            Operand::Attr(a) => r.first_value(*a),
        };
        match left {
            Some(l) if !l.is_empty() => r.any_value(o.right, &mut |v| v == l),
            _ => false,
        }
    }
}

impl Request {
    /// The geo header value, when the policy set reads one.
    pub fn country(&self) -> Option<&str> {
        self.geo_slot.and_then(|s| self.header(s))
    }
}
