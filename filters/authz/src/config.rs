//! The filter's JSON config: Istio `AuthorizationPolicy` field names for the
//! policy model, meshward extensions in snake_case. Compiled once in
//! `on_configure` into an immutable [`Config`].

use meshward_shared::config::{parse_json, ConfigError};
use meshward_shared::facts::{self, JwtAuthnSource, PathNormalization, RawPeer, Sources};
use meshward_shared::response::CustomResponse;
use serde::Deserialize;

use crate::engine::Engine;
use crate::matchers::{CaptureNames, CidrSet, PathSet, PrincipalSet, StringSet};
use crate::policy::{
    Action, Cond, ObjectCheck, Operand, Operation, Policy, Rule, Source, Values, When,
};
use crate::rbac::{RawRbac, Rbac};
use crate::reply::Replies;
use crate::request::{Attr, Needs};
use crate::time::TimeWindow;

// ---------- raw (as written by the user) ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    policies: Vec<RawPolicy>,
    #[serde(default)]
    default_action: Option<RawDefault>,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    expose_policy: bool,
    #[serde(default)]
    deny_response: Option<CustomResponse>,
    #[serde(default)]
    xff_num_trusted_hops: Option<u32>,
    #[serde(default)]
    path_normalization: PathNormalization,
    #[serde(default)]
    peer_address: Option<RawPeer>,
    #[serde(default)]
    presenter_falls_back_to_client_id: bool,
    #[serde(default)]
    hosts_ignore_port: bool,
    #[serde(default)]
    header_star_requires_value: bool,
    #[serde(default)]
    geo_header: Option<String>,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    rbac: RawRbac,
    #[serde(default)]
    audit_allow: bool,
    #[serde(default)]
    decision_state: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Clone, Copy)]
enum RawDefault {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default = "yes")]
    meshward: bool,
    #[serde(default)]
    jwt_authn: Option<RawJwtAuthn>,
}

impl Default for RawIdentity {
    fn default() -> Self {
        RawIdentity {
            meshward: true,
            jwt_authn: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtAuthn {
    #[serde(default = "default_jwt_filter")]
    filter: String,
    payload_in_metadata: String,
}

fn default_jwt_filter() -> String {
    "envoy.filters.http.jwt_authn".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    action: Option<RawAction>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    deny_response: Option<CustomResponse>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
enum RawAction {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "AUDIT")]
    Audit,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    from: Vec<RawFrom>,
    #[serde(default)]
    to: Vec<RawTo>,
    #[serde(default)]
    when: Vec<RawWhen>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    objects: Vec<RawObject>,
    #[serde(default)]
    time_windows: Vec<RawWindow>,
    #[serde(default)]
    countries: Option<Vec<String>>,
    #[serde(default, rename = "notCountries")]
    not_countries: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrom {
    source: RawSource,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSource {
    principals: Option<Vec<String>>,
    not_principals: Option<Vec<String>>,
    request_principals: Option<Vec<String>>,
    not_request_principals: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
    not_namespaces: Option<Vec<String>>,
    trust_domains: Option<Vec<String>>,
    not_trust_domains: Option<Vec<String>>,
    ip_blocks: Option<Vec<String>>,
    not_ip_blocks: Option<Vec<String>>,
    remote_ip_blocks: Option<Vec<String>>,
    not_remote_ip_blocks: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTo {
    operation: RawOperation,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOperation {
    hosts: Option<Vec<String>>,
    not_hosts: Option<Vec<String>>,
    ports: Option<Vec<String>>,
    not_ports: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    not_methods: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    not_paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWhen {
    key: String,
    #[serde(default)]
    values: Option<Vec<String>>,
    #[serde(default)]
    not_values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObject {
    #[serde(default)]
    capture: Option<String>,
    #[serde(default)]
    attribute: Option<String>,
    equals: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default)]
    days: Vec<String>,
    #[serde(default = "midnight")]
    start: String,
    #[serde(default = "end_of_day")]
    end: String,
    #[serde(default = "utc")]
    utc_offset: String,
}

fn midnight() -> String {
    "00:00".into()
}
fn end_of_day() -> String {
    "24:00".into()
}
fn utc() -> String {
    "Z".into()
}

// ---------- compiled ----------

#[derive(Debug)]
pub struct Config {
    pub engine: Engine,
    pub needs: Needs,
    pub rbac: Rbac,
    pub shadow: bool,
    /// Where each request fact comes from (path, peer, client, identity).
    pub sources: Sources,
    /// `request.auth.presenter` also reads `client_id` when `azp` is absent.
    pub presenter_fallback: bool,
    pub audit_allow: bool,
    /// Write the explanation to filter state; unset: on in a standalone
    /// module, off in the suite (`Host::writes_outputs_by_default`).
    pub decision_state: Option<bool>,
    pub replies: Replies,
}

pub const DEFAULT_GEO_HEADER: &str = "x-geo-country";

impl Config {
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        // serde would also accept a JSON array for a struct; the config is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ConfigError::new(
                "",
                "the configuration must be a JSON object",
            ));
        }
        let raw: RawConfig = parse_json(bytes)?;
        compile(raw)
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut needs = Needs::default();
    let rbac = Rbac::compile(&raw.rbac, &mut needs).map_err(|e| e.within("rbac"))?;
    let xff_num_trusted_hops = facts::check_hops(raw.xff_num_trusted_hops)?;
    let peer = match raw.peer_address {
        Some(p) => p.compile().map_err(|e| e.within("peer_address"))?,
        None => Default::default(),
    };
    let geo_header = raw
        .geo_header
        .clone()
        .unwrap_or_else(|| DEFAULT_GEO_HEADER.into());
    if geo_header.is_empty() || geo_header.starts_with(':') {
        return Err(ConfigError::new("geo_header", "not a header name"));
    }
    if let Some(d) = &raw.deny_response {
        d.validate().map_err(|e| e.within("deny_response"))?;
    }
    let mut cx = Cx {
        needs,
        rbac: &rbac,
        geo_header,
        hosts_ignore_port: raw.hosts_ignore_port,
        header_star_requires_value: raw.header_star_requires_value,
    };
    let mut policies = Vec::with_capacity(raw.policies.len());
    let mut names: Vec<String> = Vec::new();
    for (i, p) in raw.policies.iter().enumerate() {
        let at = format!("policies[{i}]");
        let policy = compile_policy(p, &mut cx).map_err(|e| e.within(&at))?;
        let stat = meshward_shared::metrics::segment(&policy.name);
        if stat == crate::metrics::DEFAULT_POLICY {
            return Err(ConfigError::new(
                format!("{at}.name"),
                "`_default` is reserved: it labels the decisions no policy made",
            ));
        }
        if names.contains(&stat) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!(
                    "`{}` duplicates another policy name (stat name `{stat}`)",
                    policy.name
                ),
            ));
        }
        names.push(stat);
        policies.push(policy);
    }
    let needs = cx.needs;
    let default_deny = matches!(raw.default_action, Some(RawDefault::Deny));
    let replies = Replies::compile(
        &raw.policies
            .iter()
            .map(|p| p.deny_response.clone())
            .collect::<Vec<_>>(),
        &policies,
        raw.deny_response.as_ref(),
        raw.expose_policy,
    );
    let engine = Engine::new(policies, default_deny);
    let jwt_authn = raw.identity.jwt_authn.map(|j| JwtAuthnSource {
        filter: j.filter,
        payload_key: j.payload_in_metadata,
    });
    if let Some(j) = &jwt_authn {
        if j.payload_key.is_empty() || j.filter.is_empty() {
            return Err(ConfigError::new(
                "identity.jwt_authn.payload_in_metadata",
                "must not be empty",
            ));
        }
    }
    if needs.auth && !raw.identity.meshward && jwt_authn.is_none() {
        return Err(ConfigError::new(
            "identity",
            "policies read request.auth.* but every identity source is off",
        ));
    }
    Ok(Config {
        engine,
        rbac,
        shadow: raw.shadow,
        sources: Sources {
            path: raw.path_normalization,
            xff_num_trusted_hops,
            peer,
            meshward_identity: raw.identity.meshward,
            jwt_authn,
        },
        presenter_fallback: raw.presenter_falls_back_to_client_id,
        audit_allow: raw.audit_allow,
        decision_state: raw.decision_state,
        replies,
        needs,
    })
}

struct Cx<'a> {
    needs: Needs,
    rbac: &'a Rbac,
    geo_header: String,
    hosts_ignore_port: bool,
    header_star_requires_value: bool,
}

fn compile_policy(p: &RawPolicy, cx: &mut Cx) -> Result<Policy, ConfigError> {
    if p.name.is_empty() || p.name.len() > 128 {
        return Err(ConfigError::new("name", "must be 1..=128 characters"));
    }
    let action = match p.action {
        None | Some(RawAction::Allow) => Action::Allow,
        Some(RawAction::Deny) => Action::Deny,
        Some(RawAction::Audit) => Action::Audit,
    };
    if let Some(d) = &p.deny_response {
        if action != Action::Deny {
            return Err(ConfigError::new(
                "deny_response",
                "only DENY policies deny; set the top-level deny_response for requests no ALLOW policy matches",
            ));
        }
        d.validate().map_err(|e| e.within("deny_response"))?;
    }
    let mut rules = Vec::with_capacity(p.rules.len());
    for (i, r) in p.rules.iter().enumerate() {
        let mut rule = compile_rule(r, cx).map_err(|e| e.within(&format!("rules[{i}]")))?;
        // The explanation of a match, built once: `rules[0] matched: paths ...`.
        rule.summary = format!("rules[{i}] matched: {}", rule.summary);
        rules.push(rule);
    }
    Ok(Policy {
        name: p.name.clone(),
        action,
        rules,
        dry_run: p.dry_run,
    })
}

fn strings(
    pos: &Option<Vec<String>>,
    neg: &Option<Vec<String>>,
    field: (&str, &str),
    fold: bool,
    map: impl Fn(&str) -> String,
) -> Result<Cond<StringSet>, ConfigError> {
    let one = |v: &Option<Vec<String>>, name: &str| -> Result<Option<StringSet>, ConfigError> {
        match v {
            None => Ok(None),
            Some(list) => {
                let list: Vec<String> = list.iter().map(|s| map(s)).collect();
                non_empty(&list, name)?;
                StringSet::compile(&list, fold)
                    .map(Some)
                    .map_err(|e| e.within(name))
            }
        }
    };
    Ok(Cond {
        pos: one(pos, field.0)?,
        neg: one(neg, field.1)?,
    })
}

fn non_empty(list: &[String], name: &str) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(
            name,
            "empty list (omit the field instead)",
        ));
    }
    Ok(())
}

fn principals(
    pos: &Option<Vec<String>>,
    neg: &Option<Vec<String>>,
    field: (&str, &str),
) -> Result<Cond<PrincipalSet>, ConfigError> {
    let one = |v: &Option<Vec<String>>, name: &str| -> Result<Option<PrincipalSet>, ConfigError> {
        match v {
            None => Ok(None),
            Some(list) => {
                non_empty(list, name)?;
                Ok(Some(PrincipalSet::compile(list)))
            }
        }
    };
    Ok(Cond {
        pos: one(pos, field.0)?,
        neg: one(neg, field.1)?,
    })
}

fn cidrs(
    pos: &Option<Vec<String>>,
    neg: &Option<Vec<String>>,
    field: (&str, &str),
) -> Result<Cond<CidrSet>, ConfigError> {
    let one = |v: &Option<Vec<String>>, name: &str| -> Result<Option<CidrSet>, ConfigError> {
        match v {
            None => Ok(None),
            Some(list) => {
                non_empty(list, name)?;
                CidrSet::compile(list).map(Some).map_err(|e| e.within(name))
            }
        }
    };
    Ok(Cond {
        pos: one(pos, field.0)?,
        neg: one(neg, field.1)?,
    })
}

fn ports(list: &[String], name: &str) -> Result<Vec<u32>, ConfigError> {
    non_empty(list, name)?;
    list.iter()
        .enumerate()
        .map(|(i, p)| match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(ConfigError::new(
                format!("{name}[{i}]"),
                format!("`{p}` is not a port 1..=65535"),
            )),
        })
        .collect()
}

fn strip_spiffe(s: &str) -> String {
    s.strip_prefix("spiffe://").unwrap_or(s).to_string()
}

fn compile_source(s: &RawSource, cx: &mut Cx) -> Result<Source, ConfigError> {
    let id = |x: &str| x.to_string();
    let src = Source {
        principals: strings(
            &s.principals,
            &s.not_principals,
            ("principals", "notPrincipals"),
            false,
            strip_spiffe,
        )?,
        request_principals: principals(
            &s.request_principals,
            &s.not_request_principals,
            ("requestPrincipals", "notRequestPrincipals"),
        )?,
        namespaces: strings(
            &s.namespaces,
            &s.not_namespaces,
            ("namespaces", "notNamespaces"),
            false,
            id,
        )?,
        trust_domains: strings(
            &s.trust_domains,
            &s.not_trust_domains,
            ("trustDomains", "notTrustDomains"),
            false,
            id,
        )?,
        ip_blocks: cidrs(&s.ip_blocks, &s.not_ip_blocks, ("ipBlocks", "notIpBlocks"))?,
        remote_ip_blocks: cidrs(
            &s.remote_ip_blocks,
            &s.not_remote_ip_blocks,
            ("remoteIpBlocks", "notRemoteIpBlocks"),
        )?,
    };
    let n = &mut cx.needs;
    if src.principals.is_set() || src.namespaces.is_set() || src.trust_domains.is_set() {
        n.peer = true;
    }
    if src.request_principals.is_set() {
        n.note(Attr::AuthPrincipal);
    }
    if src.ip_blocks.is_set() {
        n.source_ip = true;
    }
    if src.remote_ip_blocks.is_set() {
        n.note(Attr::RemoteIp);
    }
    Ok(src)
}

fn compile_operation(
    o: &RawOperation,
    cx: &mut Cx,
    captures: &mut CaptureNames,
) -> Result<Operation, ConfigError> {
    let id = |x: &str| x.to_string();
    let paths = |v: &Option<Vec<String>>,
                 name: &str,
                 caps: &mut CaptureNames|
     -> Result<Option<PathSet>, ConfigError> {
        match v {
            None => Ok(None),
            Some(list) => {
                non_empty(list, name)?;
                PathSet::compile(list, caps)
                    .map(Some)
                    .map_err(|e| e.within(name))
            }
        }
    };
    let mut ignored = CaptureNames::new();
    let op = Operation {
        hosts: strings(&o.hosts, &o.not_hosts, ("hosts", "notHosts"), true, id)?,
        ports: Cond {
            pos: o.ports.as_deref().map(|p| ports(p, "ports")).transpose()?,
            neg: o
                .not_ports
                .as_deref()
                .map(|p| ports(p, "notPorts"))
                .transpose()?,
        },
        methods: strings(
            &o.methods,
            &o.not_methods,
            ("methods", "notMethods"),
            false,
            id,
        )?,
        paths: Cond {
            pos: paths(&o.paths, "paths", captures)?,
            neg: paths(&o.not_paths, "notPaths", &mut ignored)?,
        },
        hosts_ignore_port: cx.hosts_ignore_port,
    };
    let n = &mut cx.needs;
    n.method |= op.methods.is_set();
    n.path |= op.paths.is_set();
    n.host |= op.hosts.is_set();
    n.port |= op.ports.is_set();
    Ok(op)
}

fn compile_when(w: &RawWhen, cx: &mut Cx) -> Result<When, ConfigError> {
    let attr = cx.needs.attr(&w.key).map_err(|e| e.within("key"))?;
    if w.values.is_none() && w.not_values.is_none() {
        return Err(ConfigError::new(
            "values",
            "one of values or notValues is required",
        ));
    }
    let rbac = cx.rbac;
    let star_empty = !cx.header_star_requires_value;
    let compile = |list: &Option<Vec<String>>, name: &str| -> Result<Option<Values>, ConfigError> {
        let Some(list) = list else { return Ok(None) };
        non_empty(list, name)?;
        let v = match attr {
            Attr::SourceIp | Attr::RemoteIp => {
                Values::Ip(CidrSet::compile(list).map_err(|e| e.within(name))?)
            }
            Attr::DestinationPort => Values::Port(ports(list, name)?),
            Attr::AuthRoles => {
                let set = StringSet::compile(list, false).map_err(|e| e.within(name))?;
                for (i, v) in list.iter().enumerate() {
                    if !v.contains('*') && rbac.role(v).is_none() {
                        return Err(ConfigError::new(
                            format!("{name}[{i}]"),
                            format!("unknown role `{v}` (not in rbac.roles)"),
                        ));
                    }
                }
                Values::Roles(
                    (0..rbac.role_names.len())
                        .filter(|i| rbac.role_names.get(*i).is_some_and(|n| set.matches(n)))
                        .collect(),
                )
            }
            Attr::SourcePrincipal => {
                let list: Vec<String> = list.iter().map(|s| strip_spiffe(s)).collect();
                Values::Str(StringSet::compile(&list, false).map_err(|e| e.within(name))?)
            }
            Attr::AuthPrincipal => Values::Principal(PrincipalSet::compile(list)),
            Attr::Header(_) => Values::Str(
                StringSet::compile(list, false)
                    .map_err(|e| e.within(name))?
                    .star_matches_empty(star_empty),
            ),
            _ => Values::Str(StringSet::compile(list, false).map_err(|e| e.within(name))?),
        };
        Ok(Some(v))
    };
    Ok(When {
        attr,
        cond: Cond {
            pos: compile(&w.values, "values")?,
            neg: compile(&w.not_values, "notValues")?,
        },
    })
}

fn compile_rule(r: &RawRule, cx: &mut Cx) -> Result<Rule, ConfigError> {
    let mut rule = Rule::default();
    let mut summary: Vec<String> = Vec::new();
    for (i, f) in r.from.iter().enumerate() {
        rule.from.push(
            compile_source(&f.source, cx).map_err(|e| e.within(&format!("from[{i}].source")))?,
        );
    }
    let mut captures = CaptureNames::new();
    for (i, t) in r.to.iter().enumerate() {
        rule.to.push(
            compile_operation(&t.operation, cx, &mut captures)
                .map_err(|e| e.within(&format!("to[{i}].operation")))?,
        );
        if let Some(p) = &t.operation.paths {
            summary.push(format!("paths {}", p.join(",")));
        }
        if let Some(m) = &t.operation.methods {
            summary.push(format!("methods {}", m.join(",")));
        }
    }
    if !r.from.is_empty() {
        summary.push(format!("{} source(s)", r.from.len()));
    }
    for (i, w) in r.when.iter().enumerate() {
        rule.when
            .push(compile_when(w, cx).map_err(|e| e.within(&format!("when[{i}]")))?);
        summary.push(format!("when {}", w.key));
    }
    if let Some(roles) = &r.roles {
        non_empty(roles, "roles")?;
        let mut idx = Vec::new();
        for (i, name) in roles.iter().enumerate() {
            idx.push(cx.rbac.role(name).ok_or_else(|| {
                ConfigError::new(
                    format!("roles[{i}]"),
                    format!("unknown role `{name}` (not in rbac.roles)"),
                )
            })?);
        }
        rule.roles = Some(idx);
        cx.needs.note(Attr::AuthRoles);
        summary.push(format!("roles {}", roles.join(",")));
    }
    for (i, p) in r.permissions.iter().enumerate() {
        rule.permissions.push(cx.rbac.permission(p).ok_or_else(|| {
            ConfigError::new(
                format!("permissions[{i}]"),
                format!("unknown permission `{p}` (no role in rbac.roles grants it)"),
            )
        })?);
    }
    if !r.permissions.is_empty() {
        cx.needs.note(Attr::AuthRoles);
        summary.push(format!("permissions {}", r.permissions.join(",")));
    }
    for (i, s) in r.scopes.iter().enumerate() {
        if s.is_empty() || s.contains(' ') {
            return Err(ConfigError::new(
                format!("scopes[{i}]"),
                "a scope is one non-empty token",
            ));
        }
    }
    if !r.scopes.is_empty() {
        rule.scopes = r.scopes.clone();
        cx.needs.note(Attr::AuthScopes);
        summary.push(format!("scopes {}", r.scopes.join(",")));
    }
    for (i, o) in r.objects.iter().enumerate() {
        let at = format!("objects[{i}]");
        let left = match (&o.capture, &o.attribute) {
            (Some(c), None) => {
                let idx = captures.iter().position(|n| n == c).ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.capture"),
                        format!(
                            "no path template in this rule's to[].operation.paths binds `{{{c}}}`"
                        ),
                    )
                })?;
                Operand::Capture(idx)
            }
            (None, Some(a)) => {
                let attr = cx
                    .needs
                    .attr(a)
                    .map_err(|e| e.within(&format!("{at}.attribute")))?;
                check_string_attr(attr).map_err(|e| e.within(&format!("{at}.attribute")))?;
                Operand::Attr(attr)
            }
            _ => {
                return Err(ConfigError::new(
                    at,
                    "set exactly one of capture or attribute",
                ))
            }
        };
        let right = cx
            .needs
            .attr(&o.equals)
            .map_err(|e| e.within(&format!("{at}.equals")))?;
        check_string_attr(right).map_err(|e| e.within(&format!("{at}.equals")))?;
        rule.objects.push(ObjectCheck { left, right });
        summary.push(format!(
            "{} == {}",
            o.capture.as_ref().map_or_else(
                || o.attribute.clone().unwrap_or_default(),
                |c| format!("{{{c}}}")
            ),
            o.equals
        ));
    }
    for (i, w) in r.time_windows.iter().enumerate() {
        let tw = TimeWindow::parse(&w.days, &w.start, &w.end, &w.utc_offset)
            .map_err(|(f, m)| ConfigError::new(format!("time_windows[{i}].{f}"), m))?;
        rule.time_windows.push(tw);
        cx.needs.time = true;
    }
    if !r.time_windows.is_empty() {
        summary.push("time window".into());
    }
    let countries =
        |v: &Option<Vec<String>>, name: &str| -> Result<Option<Vec<String>>, ConfigError> {
            let Some(list) = v else { return Ok(None) };
            non_empty(list, name)?;
            for (i, c) in list.iter().enumerate() {
                if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(ConfigError::new(
                        format!("{name}[{i}]"),
                        format!("`{c}` is not an ISO 3166-1 alpha-2 code"),
                    ));
                }
            }
            Ok(Some(list.iter().map(|c| c.to_ascii_uppercase()).collect()))
        };
    rule.countries = Cond {
        pos: countries(&r.countries, "countries")?,
        neg: countries(&r.not_countries, "notCountries")?,
    };
    if rule.countries.is_set() {
        let slot = cx.needs.header_slot(&cx.geo_header.clone());
        cx.needs.geo = Some(slot);
        summary.push("countries".into());
    }
    rule.summary = if summary.is_empty() {
        "matches every request".into()
    } else {
        summary.join("; ")
    };
    Ok(rule)
}

fn check_string_attr(a: Attr) -> Result<(), ConfigError> {
    if a.is_ip() || matches!(a, Attr::DestinationPort | Attr::AuthRoles) {
        return Err(ConfigError::new(
            "",
            "object checks compare string attributes (not IPs, ports or roles)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
