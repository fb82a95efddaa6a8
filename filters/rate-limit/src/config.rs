//! The filter's JSON config, parsed once in `on_configure` and compiled into
//! [`Config`]. Field names follow Envoy's `local_ratelimit`/`ratelimit` where
//! the concept is the same (`failure_mode_deny`, `domain`, descriptor keys).

use std::collections::BTreeMap;

use meshward_shared::config::{parse_json, ConfigError};
use meshward_shared::duration::ProtoDuration;
use meshward_shared::facts::{self, PathNormalization, RawPeer, Sources};
use meshward_shared::response::CustomResponse;
use serde::Deserialize;

use crate::keys::{KeyPart, Template};
use crate::limiter::{Algorithm, Limit};
use crate::proto::Unit;

// ---------- raw (as written by the user) ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Local,
    Global,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeaderStyle {
    /// `RateLimit-Policy` + `RateLimit` (IETF httpapi draft).
    #[default]
    Draft,
    /// The draft headers plus `X-RateLimit-Limit/-Remaining/-Reset`.
    DraftAndLegacy,
    /// Only `X-RateLimit-*`, as Envoy's `local_ratelimit` emits them.
    Legacy,
    None,
}

/// How local rules reach the shared counters (docs/rate-limit.md, "Leases").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// One read + CAS write of the key's slot per request.
    PerRequest,
    /// Each worker takes units in batches with one CAS and admits from them.
    #[default]
    Lease,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Vec<RawRule>,
    #[serde(default)]
    match_all: bool,
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_domain")]
    domain: String,
    #[serde(default)]
    rate_limit_service: Option<RawRls>,
    #[serde(default)]
    hybrid: Option<RawHybrid>,
    #[serde(default)]
    xff_num_trusted_hops: Option<u32>,
    #[serde(default)]
    path_normalization: PathNormalization,
    #[serde(default)]
    peer_address: Option<RawPeer>,
    #[serde(default = "default_max_keys")]
    max_keys: u32,
    #[serde(default)]
    admission: Option<Admission>,
    #[serde(default)]
    lease: Option<RawLease>,
    #[serde(default)]
    on_key_space_full: OnFull,
    #[serde(default)]
    response_headers: HeaderStyle,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    audit_allow: bool,
    #[serde(default)]
    deny_response: Option<CustomResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default, rename = "match")]
    matcher: Option<RawMatch>,
    #[serde(default)]
    key: Vec<KeyPart>,
    #[serde(default)]
    limit: Option<RawLimit>,
    #[serde(default)]
    tiers: Option<RawTiers>,
    #[serde(default = "one")]
    cost: u32,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    throttle: Option<RawThrottle>,
    #[serde(default)]
    shadow: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    path_template: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    headers: Vec<RawHeaderMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderMatch {
    name: String,
    #[serde(default)]
    exact: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    requests: u64,
    per: String,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    algorithm: Option<RawAlgorithm>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawAlgorithm {
    TokenBucket,
    Gcra,
    FixedWindow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    claim: String,
    limits: BTreeMap<String, RawLimit>,
    #[serde(default)]
    default: Option<RawLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottle {
    max_delay: ProtoDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRls {
    cluster: String,
    #[serde(default)]
    timeout: Option<ProtoDuration>,
    #[serde(default = "yes")]
    failure_mode_deny: bool,
    #[serde(default = "default_failure_status")]
    failure_status: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHybrid {
    #[serde(default = "default_share")]
    share: f64,
    #[serde(default)]
    sync_interval: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLease {
    #[serde(default)]
    max: Option<u64>,
    #[serde(default)]
    lifetime: Option<ProtoDuration>,
}

fn default_domain() -> String {
    "meshward".into()
}
fn default_max_keys() -> u32 {
    10_000
}
fn default_failure_status() -> u16 {
    503
}
fn default_share() -> f64 {
    1.0
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

// ---------- compiled ----------

/// A limit plus what the response headers and the RLS need to describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    pub limit: Limit,
    /// The RLS unit when the period is exactly one unit.
    pub unit: Option<Unit>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Limits {
    Single(LimitSpec),
    Tiers {
        claim: String,
        by_value: Vec<(String, LimitSpec)>,
        default: Option<LimitSpec>,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matcher {
    pub prefix: Option<String>,
    pub path: Option<String>,
    pub template: Option<Template>,
    pub methods: Vec<String>,
    pub headers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub matcher: Matcher,
    pub key: Vec<KeyPart>,
    pub limits: Limits,
    pub cost: u64,
    pub mode: Mode,
    pub max_delay_ms: u64,
    pub shadow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rls {
    pub cluster: String,
    pub timeout_ms: u64,
    pub failure_mode_deny: bool,
    pub failure_status: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub rules: Vec<Rule>,
    pub match_all: bool,
    pub domain: String,
    pub rls: Option<Rls>,
    pub share: f64,
    pub sync_interval_ms: u64,
    /// Where the path, client address and identity come from.
    pub sources: Sources,
    /// Some rule reads the path (an ambiguous one is then refused).
    pub reads_path: bool,
    pub max_keys: u32,
    /// Local rules only; hybrid and global rules ignore it.
    pub admission: Admission,
    pub lease: LeaseConfig,
    pub on_key_space_full: OnFull,
    pub response_headers: HeaderStyle,
    pub shadow: bool,
    pub audit_allow: bool,
    pub deny_response: Option<CustomResponse>,
    /// Some rule reads the identity from filter state.
    pub needs_identity: bool,
    /// Some rule needs the root tick (throttling, RLS deadline, hybrid sync).
    pub needs_tick: bool,
}

/// Hard ceiling on `max_keys`: the slot table is pre-allocated per process.
pub const MAX_KEYS_CEILING: u32 = 1_000_000;

/// Lease sizing (`"lease": {"max", "lifetime"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Largest lease, in units.
    pub max: u64,
    /// How long a worker may hold units before it must spend or return them.
    pub lifetime_ms: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            max: 64,
            lifetime_ms: 100,
        }
    }
}

/// Bounds of `lease.max`.
pub const LEASE_MAX_CEILING: u64 = 1_000_000;

impl Config {
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_json(bytes)?;
        compile(raw)
    }

    pub fn uses(&self, mode: Mode) -> bool {
        self.rules.iter().any(|r| r.mode == mode)
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    if raw.rules.is_empty() {
        return Err(ConfigError::new("rules", "at least one rule is required"));
    }
    if raw.max_keys == 0 || raw.max_keys > MAX_KEYS_CEILING {
        return Err(ConfigError::new(
            "max_keys",
            format!("must be in 1..={MAX_KEYS_CEILING}"),
        ));
    }
    if raw.domain.is_empty() {
        return Err(ConfigError::new("domain", "must not be empty"));
    }
    let rls = match raw.rate_limit_service {
        Some(r) => {
            if r.cluster.is_empty() {
                return Err(ConfigError::new(
                    "rate_limit_service.cluster",
                    "must not be empty",
                ));
            }
            if r.cluster.len() > meshward_shared::abi::GRPC_CLUSTER_MAX {
                return Err(ConfigError::new(
                    "rate_limit_service.cluster",
                    format!(
                        "at most {} bytes: the name goes to Envoy inside a GrpcService message",
                        meshward_shared::abi::GRPC_CLUSTER_MAX
                    ),
                ));
            }
            if !(200..=599).contains(&r.failure_status) {
                return Err(ConfigError::new(
                    "rate_limit_service.failure_status",
                    "not an HTTP status in 200..=599",
                ));
            }
            let timeout_ms = r.timeout.map_or(200, |d| d.0.as_millis() as u64);
            if timeout_ms == 0 {
                return Err(ConfigError::new(
                    "rate_limit_service.timeout",
                    "must be > 0",
                ));
            }
            Some(Rls {
                cluster: r.cluster,
                timeout_ms,
                failure_mode_deny: r.failure_mode_deny,
                failure_status: u32::from(r.failure_status),
            })
        }
        None => None,
    };
    let (share, sync_interval_ms) = match &raw.hybrid {
        Some(h) => {
            if !(h.share > 0.0 && h.share <= 1.0) {
                return Err(ConfigError::new("hybrid.share", "must be in (0, 1]"));
            }
            let ms = h.sync_interval.map_or(200, |d| d.0.as_millis() as u64);
            if !(10..=60_000).contains(&ms) {
                return Err(ConfigError::new(
                    "hybrid.sync_interval",
                    "must be in 0.01s..=60s",
                ));
            }
            (h.share, ms)
        }
        None => (1.0, 200),
    };
    let admission = raw.admission.unwrap_or_default();
    let lease = compile_lease(raw.lease.as_ref(), raw.admission)?;
    if let Some(d) = &raw.deny_response {
        d.validate().map_err(|e| e.within("deny_response"))?;
    }
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        let rule = compile_rule(r, raw.mode, rls.is_some())
            .map_err(|e| e.within(&format!("rules[{i}]")))?;
        if rules.iter().any(|x: &Rule| x.name == rule.name) {
            return Err(ConfigError::new(
                format!("rules[{i}].name"),
                "duplicate rule name",
            ));
        }
        rules.push(rule);
    }
    let needs_identity = rules.iter().any(|r| {
        r.key.iter().any(KeyPart::needs_identity) || matches!(r.limits, Limits::Tiers { .. })
    });
    // Leases go back on tick.
    let needs_tick = rules
        .iter()
        .any(|r| r.max_delay_ms > 0 || r.mode != Mode::Local || admission == Admission::Lease);
    let reads_path = rules.iter().any(|r| {
        let m = &r.matcher;
        m.prefix.is_some()
            || m.path.is_some()
            || m.template.is_some()
            || r.key.iter().any(KeyPart::reads_path)
    });
    let sources = Sources {
        path: raw.path_normalization,
        xff_num_trusted_hops: facts::check_hops(raw.xff_num_trusted_hops)?,
        peer: match raw.peer_address {
            Some(p) => p.compile().map_err(|e| e.within("peer_address"))?,
            None => Default::default(),
        },
        meshward_identity: true,
        jwt_authn: None,
    };
    Ok(Config {
        rules,
        match_all: raw.match_all,
        domain: raw.domain,
        rls,
        share,
        sync_interval_ms,
        sources,
        reads_path,
        max_keys: raw.max_keys,
        admission,
        lease,
        on_key_space_full: raw.on_key_space_full,
        response_headers: raw.response_headers,
        shadow: raw.shadow,
        audit_allow: raw.audit_allow,
        deny_response: raw.deny_response,
        needs_identity,
        needs_tick,
    })
}

fn compile_lease(
    raw: Option<&RawLease>,
    admission: Option<Admission>,
) -> Result<LeaseConfig, ConfigError> {
    let mut out = LeaseConfig::default();
    let Some(raw) = raw else {
        return Ok(out);
    };
    if admission == Some(Admission::PerRequest) {
        return Err(ConfigError::new(
            "lease",
            "only used with \"admission\": \"lease\"",
        ));
    }
    if let Some(max) = raw.max {
        if !(1..=LEASE_MAX_CEILING).contains(&max) {
            return Err(ConfigError::new(
                "lease.max",
                format!("must be in 1..={LEASE_MAX_CEILING}"),
            ));
        }
        out.max = max;
    }
    if let Some(d) = raw.lifetime {
        let ms = d.0.as_millis() as u64;
        if !(10..=60_000).contains(&ms) {
            return Err(ConfigError::new("lease.lifetime", "must be in 0.01s..=60s"));
        }
        out.lifetime_ms = ms;
    }
    Ok(out)
}

fn compile_rule(r: RawRule, default_mode: Mode, have_rls: bool) -> Result<Rule, ConfigError> {
    if r.name.is_empty() || r.name.len() > 64 || r.name.bytes().any(|b| b.is_ascii_control()) {
        return Err(ConfigError::new(
            "name",
            "must be 1..=64 printable characters",
        ));
    }
    let mode = r.mode.unwrap_or(default_mode);
    if mode != Mode::Local && !have_rls {
        return Err(ConfigError::new(
            "mode",
            "global and hybrid modes need `rate_limit_service`",
        ));
    }
    if r.cost == 0 {
        return Err(ConfigError::new("cost", "must be >= 1"));
    }
    let max_delay_ms = r
        .throttle
        .as_ref()
        .map_or(0, |t| t.max_delay.0.as_millis() as u64);
    if r.throttle.is_some() && max_delay_ms == 0 {
        return Err(ConfigError::new("throttle.max_delay", "must be > 0"));
    }
    let spec = |raw: &RawLimit, path: &str| -> Result<LimitSpec, ConfigError> {
        let s = compile_limit(raw, mode).map_err(|e| e.within(path))?;
        if max_delay_ms > 0 && (mode != Mode::Local || s.limit.algorithm == Algorithm::FixedWindow)
        {
            return Err(ConfigError::new(
                "throttle",
                "throttling needs mode local and algorithm token_bucket or gcra",
            ));
        }
        if u64::from(r.cost) > s.limit.burst {
            return Err(ConfigError::new(
                "cost",
                format!("is larger than the burst of `{path}`, so nothing could pass"),
            ));
        }
        Ok(s)
    };
    let limits = match (&r.limit, &r.tiers) {
        (Some(l), None) => Limits::Single(spec(l, "limit")?),
        (limit, Some(t)) => {
            if t.claim.is_empty() {
                return Err(ConfigError::new("tiers.claim", "must not be empty"));
            }
            if t.limits.is_empty() {
                return Err(ConfigError::new(
                    "tiers.limits",
                    "at least one tier is required",
                ));
            }
            let mut by_value = Vec::new();
            for (name, l) in &t.limits {
                by_value.push((name.clone(), spec(l, &format!("tiers.limits.{name}"))?));
            }
            let default = match (&t.default, limit) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        "limit",
                        "give either `limit` or `tiers.default`, not both",
                    ))
                }
                (Some(d), None) => Some(spec(d, "tiers.default")?),
                (None, Some(l)) => Some(spec(l, "limit")?),
                (None, None) => None,
            };
            Limits::Tiers {
                claim: t.claim.clone(),
                by_value,
                default,
            }
        }
        (None, None) => return Err(ConfigError::new("limit", "missing (or give `tiers`)")),
    };
    for (i, k) in r.key.iter().enumerate() {
        k.validate().map_err(|e| e.within(&format!("key[{i}]")))?;
    }
    let matcher = match r.matcher {
        None => Matcher::default(),
        Some(m) => compile_match(m).map_err(|e| e.within("match"))?,
    };
    Ok(Rule {
        name: r.name,
        matcher,
        key: r.key,
        limits,
        cost: u64::from(r.cost),
        mode,
        max_delay_ms,
        shadow: r.shadow,
    })
}

fn compile_match(m: RawMatch) -> Result<Matcher, ConfigError> {
    let n = [
        m.prefix.is_some(),
        m.path.is_some(),
        m.path_template.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n > 1 {
        return Err(ConfigError::new(
            "",
            "give at most one of `prefix`, `path`, `path_template`",
        ));
    }
    for (field, v) in [("prefix", &m.prefix), ("path", &m.path)] {
        if let Some(v) = v {
            if !v.starts_with('/') {
                return Err(ConfigError::new(field, "must start with `/`"));
            }
        }
    }
    let template = match m.path_template {
        Some(t) => {
            Some(Template::parse_plain(&t).map_err(|e| ConfigError::new("path_template", e))?)
        }
        None => None,
    };
    let mut headers = Vec::new();
    for (i, h) in m.headers.into_iter().enumerate() {
        if h.name.is_empty() {
            return Err(ConfigError::new(
                format!("headers[{i}].name"),
                "must not be empty",
            ));
        }
        headers.push((h.name.to_ascii_lowercase(), h.exact));
    }
    Ok(Matcher {
        prefix: m.prefix,
        path: m.path,
        template,
        methods: m.methods.iter().map(|s| s.to_ascii_uppercase()).collect(),
        headers,
    })
}

/// `per`: `second|minute|hour|day|month` or a protobuf duration (`"10s"`).
fn compile_limit(raw: &RawLimit, mode: Mode) -> Result<LimitSpec, ConfigError> {
    if raw.requests == 0 || raw.requests > u64::from(u32::MAX) {
        return Err(ConfigError::new("requests", "must be in 1..=4294967295"));
    }
    let (period_ms, unit) = match raw.per.as_str() {
        "second" => (1_000, Some(Unit::Second)),
        "minute" => (60_000, Some(Unit::Minute)),
        "hour" => (3_600_000, Some(Unit::Hour)),
        "day" => (86_400_000, Some(Unit::Day)),
        "month" => (30 * 86_400_000, Some(Unit::Month)),
        other => {
            let d = meshward_shared::duration::parse(other).map_err(|e| {
                ConfigError::new(
                    "per",
                    format!("{e}; or one of second, minute, hour, day, month"),
                )
            })?;
            let ms = d.as_millis() as u64;
            if !(1..=31 * 86_400_000).contains(&ms) {
                return Err(ConfigError::new("per", "must be between 1ms and 31 days"));
            }
            let unit = match ms {
                1_000 => Some(Unit::Second),
                60_000 => Some(Unit::Minute),
                3_600_000 => Some(Unit::Hour),
                86_400_000 => Some(Unit::Day),
                _ => None,
            };
            (ms, unit)
        }
    };
    let algorithm = match (raw.algorithm, mode) {
        (None, Mode::Local) => Algorithm::TokenBucket,
        (None | Some(RawAlgorithm::FixedWindow), _) => Algorithm::FixedWindow,
        (Some(RawAlgorithm::TokenBucket), Mode::Local) => Algorithm::TokenBucket,
        (Some(RawAlgorithm::Gcra), Mode::Local) => Algorithm::Gcra,
        (Some(_), _) => {
            return Err(ConfigError::new(
                "algorithm",
                "global and hybrid limits are counted in fixed windows (the RLS protocol's model): use fixed_window",
            ))
        }
    };
    if mode != Mode::Local && unit.is_none() {
        return Err(ConfigError::new(
            "per",
            "global and hybrid limits need a whole RLS unit: second, minute, hour, day or month",
        ));
    }
    if mode == Mode::Hybrid && unit == Some(Unit::Month) {
        return Err(ConfigError::new(
            "per",
            "hybrid mode supports second..day; use global mode for monthly quotas",
        ));
    }
    let burst = raw.burst.unwrap_or(raw.requests);
    if burst == 0 || burst > u64::from(u32::MAX) {
        return Err(ConfigError::new("burst", "must be in 1..=4294967295"));
    }
    if algorithm == Algorithm::FixedWindow && raw.burst.is_some_and(|b| b != raw.requests) {
        return Err(ConfigError::new(
            "burst",
            "fixed windows have no separate burst; leave it out",
        ));
    }
    Ok(LimitSpec {
        limit: Limit {
            requests: raw.requests,
            period_ms,
            burst,
            algorithm,
        },
        unit,
    })
}

impl Limits {
    /// The limit for a request, given the tier claim value (if tiers are used).
    pub fn pick(&self, tier: Option<&str>) -> Option<&LimitSpec> {
        match self {
            Limits::Single(s) => Some(s),
            Limits::Tiers {
                by_value, default, ..
            } => tier
                .and_then(|t| by_value.iter().find(|(v, _)| v == t).map(|(_, s)| s))
                .or(default.as_ref()),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
