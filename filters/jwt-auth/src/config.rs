//! The filter's JSON config: raw serde types whose field names mirror Envoy's
//! `jwt_authn`, compiled once in `on_configure` into [`Config`].

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use meshward_shared::config::{parse_json, ConfigError};
use meshward_shared::duration::ProtoDuration;
use meshward_shared::facts::{PathNormalization, Sources};
use meshward_shared::response::CustomResponse;
use serde::Deserialize;

use crate::claims::{ClaimCheck, ClaimPolicy, ClaimRequirement};
use crate::jose::Jwks;
use crate::keys::{KeySource, RemoteTarget};
use crate::requirement::Requirement;
use crate::route::{PathMatcher, Template};
use crate::signature::SignatureBackend;

// ---------- raw (as written by the user) ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default = "yes")]
    bypass_cors_preflight: bool,
    #[serde(default = "default_unavailable_status")]
    jwks_unavailable_status: u16,
    #[serde(default)]
    jwks_pending_timeout: Option<ProtoDuration>,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    audit_allow: bool,
    #[serde(default)]
    deny_response: Option<CustomResponse>,
    #[serde(default)]
    path_normalization: PathNormalization,
    #[serde(default)]
    signature_backend: SignatureBackend,
    #[serde(default)]
    identity_state: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    local_jwks: Option<RawLocalJwks>,
    #[serde(default)]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    oidc_discovery: Option<RawDiscovery>,
    #[serde(default)]
    from_headers: Option<Vec<RawHeader>>,
    #[serde(default)]
    from_params: Option<Vec<String>>,
    #[serde(default)]
    forward: bool,
    #[serde(default)]
    forward_payload_header: Option<String>,
    #[serde(default)]
    claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default = "default_skew")]
    clock_skew_seconds: u64,
    #[serde(default)]
    max_lifetime: Option<ProtoDuration>,
    #[serde(default = "yes")]
    require_expiration: bool,
    #[serde(default)]
    required_claims: Vec<RawClaim>,
    #[serde(default)]
    jwt_cache_config: Option<RawCacheConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalJwks {
    inline_string: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    http_uri: RawHttpUri,
    #[serde(default)]
    cache_duration: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpUri {
    uri: String,
    cluster: String,
    #[serde(default)]
    timeout: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    cluster: String,
    #[serde(default)]
    timeout: Option<ProtoDuration>,
    #[serde(default)]
    cache_duration: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[serde(default)]
    value_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimToHeader {
    header_name: String,
    claim_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaim {
    name: String,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default)]
    one_of: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    contains: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCacheConfig {
    #[serde(default = "default_cache_size")]
    jwt_cache_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    requires: Option<RawRequirement>,
    #[serde(default)]
    required_scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    safe_regex: Option<RawRegex>,
    #[serde(default)]
    path_template: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegex {
    regex: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    #[serde(default)]
    provider_name: Option<String>,
    #[serde(default)]
    requires_any: Option<RawRequirementList>,
    #[serde(default)]
    requires_all: Option<RawRequirementList>,
    #[serde(default)]
    allow_missing: Option<Empty>,
    #[serde(default)]
    allow_missing_or_failed: Option<Empty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirementList {
    requirements: Vec<RawRequirement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

fn yes() -> bool {
    true
}
fn default_skew() -> u64 {
    60
}
fn default_unavailable_status() -> u16 {
    401
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_realm() -> String {
    "meshward".into()
}
fn default_cache_size() -> usize {
    DEFAULT_CACHE_SIZE
}

pub const DEFAULT_CACHE_SIZE: usize = 1000;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(5);

// ---------- compiled ----------

#[derive(Debug)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    pub bypass_cors_preflight: bool,
    pub jwks_unavailable_status: u32,
    pub jwks_pending_timeout: Duration,
    pub max_token_bytes: usize,
    /// Pre-rendered `Bearer realm="..."`.
    pub challenge: String,
    pub shadow: bool,
    pub audit_allow: bool,
    pub deny_response: Option<CustomResponse>,
    /// Every header the filter may set from a token: stripped from every request.
    pub output_headers: Vec<String>,
    /// Whether deciding needs `:method` (each header read costs a call back
    /// into the VM, so it is skipped when nothing looks at it).
    pub reads_method: bool,
    /// Where the matched path comes from (only the path is read here).
    pub sources: Sources,
    /// Who checks RS*/ES* signatures (resolved against the host at configure).
    pub signature_backend: SignatureBackend,
    /// Write the identity to filter state; unset: on in a standalone module,
    /// off in the suite, which hands it over in memory.
    pub identity_state: Option<bool>,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub claims: ClaimPolicy,
    pub keys: KeySource,
    pub locations: Vec<TokenLocation>,
    pub forward: bool,
    pub forward_payload_header: Option<String>,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub cache_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// Lower-cased header name and a prefix matched case-insensitively.
    Header {
        name: String,
        prefix: String,
    },
    Param(String),
}

#[derive(Debug)]
pub struct ClaimToHeader {
    pub header: String,
    pub claim: Vec<String>,
}

#[derive(Debug)]
pub struct Rule {
    pub path: PathMatcher,
    pub methods: Vec<String>,
    pub requires: Option<Requirement>,
    pub required_scopes: Vec<String>,
}

impl Rule {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self.path.matches(path)
    }
}

impl Config {
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_json(bytes)?;
        compile(raw)
    }

    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }

    /// First rule matching the request, Envoy-style.
    pub fn rule_for(&self, method: &str, path: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(method, path))
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    if raw.providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        let path = format!("providers.{name}");
        if name.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "provider name must not be empty",
            ));
        }
        providers.push(compile_provider(name, p).map_err(|e| e.within(&path))?);
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        rules.push(compile_rule(r, &names).map_err(|e| e.within(&format!("rules[{i}]")))?);
    }
    if ![401, 503].contains(&raw.jwks_unavailable_status) {
        return Err(ConfigError::new(
            "jwks_unavailable_status",
            "must be 401 or 503",
        ));
    }
    if raw.max_token_bytes < 64 || raw.max_token_bytes > 1 << 20 {
        return Err(ConfigError::new(
            "max_token_bytes",
            "must be between 64 and 1048576",
        ));
    }
    if !is_token68_safe(&raw.realm) {
        return Err(ConfigError::new(
            "realm",
            "must be printable ASCII without `\"` or `\\`",
        ));
    }
    if let Some(custom) = &raw.deny_response {
        custom.validate().map_err(|e| e.within("deny_response"))?;
    }
    let mut output_headers: Vec<String> = providers
        .iter()
        .flat_map(|p| {
            p.forward_payload_header
                .iter()
                .cloned()
                .chain(p.claim_to_headers.iter().map(|c| c.header.clone()))
        })
        .collect();
    output_headers.sort();
    output_headers.dedup();
    let reads_method = raw.bypass_cors_preflight || rules.iter().any(|r| !r.methods.is_empty());
    Ok(Config {
        providers,
        rules,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        jwks_unavailable_status: u32::from(raw.jwks_unavailable_status),
        jwks_pending_timeout: raw
            .jwks_pending_timeout
            .map_or(DEFAULT_PENDING_TIMEOUT, |d| d.0),
        max_token_bytes: raw.max_token_bytes,
        challenge: format!("Bearer realm=\"{}\"", raw.realm),
        shadow: raw.shadow,
        audit_allow: raw.audit_allow,
        identity_state: raw.identity_state,
        deny_response: raw.deny_response,
        output_headers,
        reads_method,
        sources: Sources {
            path: raw.path_normalization,
            ..Sources::default()
        },
        signature_backend: raw.signature_backend,
    })
}

fn is_token68_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

fn compile_provider(name: String, p: RawProvider) -> Result<Provider, ConfigError> {
    if p.issuer.is_empty() {
        return Err(ConfigError::new("issuer", "must not be empty"));
    }
    let sources = [
        p.local_jwks.is_some(),
        p.remote_jwks.is_some(),
        p.oidc_discovery.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(ConfigError::new(
            "",
            "exactly one of local_jwks, remote_jwks or oidc_discovery is required",
        ));
    }
    let keys = if let Some(local) = p.local_jwks {
        let jwks = Jwks::parse_strict(&local.inline_string)
            .map_err(|e| ConfigError::new("local_jwks.inline_string", e.to_string()))?;
        if jwks.is_empty() {
            return Err(ConfigError::new(
                "local_jwks.inline_string",
                "JWKS has no keys",
            ));
        }
        KeySource::local(jwks)
    } else if let Some(remote) = p.remote_jwks {
        let timeout = remote.http_uri.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        check_timeout(timeout).map_err(|e| e.within("remote_jwks.http_uri"))?;
        let target =
            RemoteTarget::from_uri(&remote.http_uri.uri, &remote.http_uri.cluster, timeout)
                .map_err(|e| e.within("remote_jwks.http_uri"))?;
        let cache = remote
            .cache_duration
            .map_or(DEFAULT_CACHE_DURATION, |d| d.0);
        check_cache_duration(cache).map_err(|e| e.within("remote_jwks"))?;
        KeySource::remote(target, None, cache)
    } else if let Some(d) = p.oidc_discovery {
        let timeout = d.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        check_timeout(timeout).map_err(|e| e.within("oidc_discovery"))?;
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            p.issuer.trim_end_matches('/')
        );
        let target = RemoteTarget::from_uri(&well_known, &d.cluster, timeout)
            .map_err(|e| ConfigError::new("issuer", e.message))?;
        let cache = d.cache_duration.map_or(DEFAULT_CACHE_DURATION, |d| d.0);
        check_cache_duration(cache).map_err(|e| e.within("oidc_discovery"))?;
        KeySource::remote(target, Some(p.issuer.clone()), cache)
    } else {
        return Err(ConfigError::new("", "a key source is required"));
    };

    let locations = compile_locations(p.from_headers, p.from_params)?;
    let forward_payload_header = match p.forward_payload_header {
        Some(h) => Some(header_name(&h).map_err(|e| e.within("forward_payload_header"))?),
        None => None,
    };
    let mut claim_to_headers = Vec::with_capacity(p.claim_to_headers.len());
    for (i, c) in p.claim_to_headers.into_iter().enumerate() {
        let at = format!("claim_to_headers[{i}]");
        let header =
            header_name(&c.header_name).map_err(|e| e.within(&format!("{at}.header_name")))?;
        let claim = claim_path(&c.claim_name).map_err(|e| e.within(&format!("{at}.claim_name")))?;
        claim_to_headers.push(ClaimToHeader { header, claim });
    }
    let mut required = Vec::with_capacity(p.required_claims.len());
    for (i, c) in p.required_claims.into_iter().enumerate() {
        required.push(compile_claim(c).map_err(|e| e.within(&format!("required_claims[{i}]")))?);
    }
    let max_lifetime = p.max_lifetime.map(|d| d.0.as_secs());
    if max_lifetime == Some(0) {
        return Err(ConfigError::new("max_lifetime", "must be at least 1s"));
    }
    if p.clock_skew_seconds > 3600 {
        return Err(ConfigError::new(
            "clock_skew_seconds",
            "must be at most 3600",
        ));
    }
    if p.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            "audiences",
            "an audience must not be empty",
        ));
    }
    let cache_size = p
        .jwt_cache_config
        .map_or(DEFAULT_CACHE_SIZE, |c| c.jwt_cache_size);
    if cache_size > 100_000 {
        return Err(ConfigError::new(
            "jwt_cache_config.jwt_cache_size",
            "must be at most 100000",
        ));
    }
    Ok(Provider {
        name,
        claims: ClaimPolicy {
            issuer: p.issuer,
            audiences: p.audiences,
            require_exp: p.require_expiration,
            clock_skew: p.clock_skew_seconds,
            max_lifetime,
            required,
        },
        keys,
        locations,
        forward: p.forward,
        forward_payload_header,
        claim_to_headers,
        cache_size,
    })
}

fn check_timeout(t: Duration) -> Result<(), ConfigError> {
    if t.is_zero() || t > Duration::from_secs(60) {
        return Err(ConfigError::new("timeout", "must be between 1ms and 60s"));
    }
    Ok(())
}

fn check_cache_duration(t: Duration) -> Result<(), ConfigError> {
    if t < Duration::from_secs(1) {
        return Err(ConfigError::new("cache_duration", "must be at least 1s"));
    }
    Ok(())
}

fn compile_locations(
    headers: Option<Vec<RawHeader>>,
    params: Option<Vec<String>>,
) -> Result<Vec<TokenLocation>, ConfigError> {
    if headers.is_none() && params.is_none() {
        return Ok(vec![
            TokenLocation::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            TokenLocation::Param("access_token".into()),
        ]);
    }
    let mut out = Vec::new();
    for (i, h) in headers.unwrap_or_default().into_iter().enumerate() {
        let name =
            header_name(&h.name).map_err(|e| e.within(&format!("from_headers[{i}].name")))?;
        out.push(TokenLocation::Header {
            name,
            prefix: h.value_prefix,
        });
    }
    for (i, p) in params.unwrap_or_default().into_iter().enumerate() {
        if p.is_empty()
            || p.bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'?' | b'#') || b <= b' ')
        {
            return Err(ConfigError::new(
                format!("from_params[{i}]"),
                "not a valid query parameter name",
            ));
        }
        out.push(TokenLocation::Param(p));
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            "from_headers",
            "no token location configured",
        ));
    }
    Ok(out)
}

/// Lower-case a header name and refuse pseudo-headers and bad bytes.
fn header_name(name: &str) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !ok {
        return Err(ConfigError::new(
            "",
            format!("`{name}` is not a valid HTTP header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn claim_path(name: &str) -> Result<Vec<String>, ConfigError> {
    let parts: Vec<String> = name.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            "",
            format!("`{name}` is not a claim path like `sub` or `org.id`"),
        ));
    }
    Ok(parts)
}

fn compile_claim(c: RawClaim) -> Result<ClaimRequirement, ConfigError> {
    let path = claim_path(&c.name).map_err(|e| e.within("name"))?;
    let check = match (c.equals, c.one_of, c.contains) {
        (Some(v), None, None) => ClaimCheck::Equals(v),
        (None, Some(vs), None) if !vs.is_empty() => ClaimCheck::OneOf(vs),
        (None, Some(_), None) => return Err(ConfigError::new("one_of", "must not be empty")),
        (None, None, Some(v)) => ClaimCheck::Contains(v),
        _ => {
            return Err(ConfigError::new(
                "",
                "exactly one of equals, one_of or contains is required",
            ))
        }
    };
    Ok(ClaimRequirement { path, check })
}

fn compile_rule(r: RawRule, providers: &[&str]) -> Result<Rule, ConfigError> {
    let m = r.matcher;
    let set = [
        m.prefix.is_some(),
        m.path.is_some(),
        m.safe_regex.is_some(),
        m.path_template.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(ConfigError::new(
            "match",
            "exactly one of prefix, path, safe_regex or path_template is required",
        ));
    }
    let path = if let Some(p) = m.prefix {
        PathMatcher::Prefix(p)
    } else if let Some(p) = m.path {
        PathMatcher::Exact(p)
    } else if let Some(re) = m.safe_regex {
        PathMatcher::regex(&re.regex).map_err(|e| e.within("match.safe_regex.regex"))?
    } else if let Some(t) = m.path_template {
        PathMatcher::Template(
            Template::parse_plain(&t).map_err(|m| ConfigError::new("match.path_template", m))?,
        )
    } else {
        return Err(ConfigError::new("match", "no path matcher"));
    };
    let mut methods = Vec::with_capacity(m.methods.len());
    for (i, method) in m.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::new(
                format!("match.methods[{i}]"),
                "must be an upper-case HTTP method such as GET",
            ));
        }
        methods.push(method.clone());
    }
    let requires = match r.requires {
        Some(req) => {
            Some(compile_requirement(req, providers, 0).map_err(|e| e.within("requires"))?)
        }
        None => None,
    };
    for (i, s) in r.required_scopes.iter().enumerate() {
        if s.is_empty() || s.contains(' ') {
            return Err(ConfigError::new(
                format!("required_scopes[{i}]"),
                "must be one non-empty scope",
            ));
        }
    }
    if requires.is_none() && !r.required_scopes.is_empty() {
        return Err(ConfigError::new(
            "required_scopes",
            "needs `requires` on the same rule",
        ));
    }
    Ok(Rule {
        path,
        methods,
        requires,
        required_scopes: r.required_scopes,
    })
}

fn compile_requirement(
    r: RawRequirement,
    providers: &[&str],
    depth: usize,
) -> Result<Requirement, ConfigError> {
    if depth > 8 {
        return Err(ConfigError::new(
            "",
            "requirements nested deeper than 8 levels",
        ));
    }
    let set = [
        r.provider_name.is_some(),
        r.requires_any.is_some(),
        r.requires_all.is_some(),
        r.allow_missing.is_some(),
        r.allow_missing_or_failed.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(ConfigError::new(
            "",
            "exactly one of provider_name, requires_any, requires_all, allow_missing or allow_missing_or_failed is required",
        ));
    }
    let list = |l: RawRequirementList, field: &str| -> Result<Vec<Requirement>, ConfigError> {
        if l.requirements.len() < 2 {
            return Err(ConfigError::new(
                format!("{field}.requirements"),
                "needs at least two entries",
            ));
        }
        l.requirements
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                compile_requirement(r, providers, depth + 1)
                    .map_err(|e| e.within(&format!("{field}.requirements[{i}]")))
            })
            .collect()
    };
    if let Some(name) = r.provider_name {
        let idx = providers.iter().position(|p| *p == name).ok_or_else(|| {
            ConfigError::new("provider_name", format!("no provider named `{name}`"))
        })?;
        Ok(Requirement::Provider(idx))
    } else if let Some(l) = r.requires_any {
        Ok(Requirement::Any(list(l, "requires_any")?))
    } else if let Some(l) = r.requires_all {
        Ok(Requirement::All(list(l, "requires_all")?))
    } else if r.allow_missing.is_some() {
        Ok(Requirement::AllowMissing)
    } else {
        Ok(Requirement::AllowMissingOrFailed)
    }
}

/// Shared, immutable compiled config.
pub type SharedConfig = Rc<Config>;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
