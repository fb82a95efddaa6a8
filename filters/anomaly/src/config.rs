//! The filter's JSON config, compiled once into an immutable [`Config`].
//! Field paths in errors come from `meshward_shared::config`.

use meshward_shared::config::{parse_json, ConfigError};
use serde::Deserialize;

use crate::score::{Detector, Thresholds};

// ---------- raw (as written by the user) ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    detection_threshold: Option<u32>,
    #[serde(default)]
    blocking_threshold: Option<u32>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    max_fields: Option<usize>,
    #[serde(default)]
    max_header_bytes: Option<usize>,
    #[serde(default)]
    max_headers: Option<usize>,
    #[serde(default)]
    detectors: RawDetectors,
    #[serde(default)]
    exclusions: Vec<RawExclusion>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    // Actions (the glue's): tag and throttle thresholds, shadow, body buffering.
    #[serde(default)]
    tag_threshold: Option<u32>,
    #[serde(default)]
    throttle_threshold: Option<u32>,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    inspect_body: Option<bool>,
    /// Per-identity behaviour detectors (`crate::behaviour`).
    #[serde(default)]
    behaviour: Option<crate::behaviour::config::RawBehaviour>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetectors {
    #[serde(default)]
    sqli: Option<RawDetector>,
    #[serde(default)]
    xss: Option<RawDetector>,
    #[serde(default)]
    traversal: Option<RawDetector>,
    #[serde(default)]
    cmdi: Option<RawDetector>,
    #[serde(default)]
    ssrf: Option<RawDetector>,
    #[serde(default)]
    java: Option<RawDetector>,
    #[serde(default)]
    php: Option<RawDetector>,
    #[serde(default)]
    protocol: Option<RawDetector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    fields: Vec<String>,
    #[serde(default)]
    detectors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path_prefix: String,
    #[serde(default)]
    detection_threshold: Option<u32>,
    #[serde(default)]
    blocking_threshold: Option<u32>,
    #[serde(default)]
    exclusions: Vec<RawExclusion>,
    #[serde(default)]
    tag_threshold: Option<u32>,
    #[serde(default)]
    throttle_threshold: Option<u32>,
}

// ---------- compiled ----------

/// A set of detectors as a bit mask (bit = `Detector as u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetectorSet(u16);

impl DetectorSet {
    pub const ALL: DetectorSet = DetectorSet(0b1111_1111);

    pub fn with(self, d: Detector) -> DetectorSet {
        DetectorSet(self.0 | 1 << d as u16)
    }

    pub fn without(self, d: Detector) -> DetectorSet {
        DetectorSet(self.0 & !(1 << d as u16))
    }

    pub fn contains(self, d: Detector) -> bool {
        self.0 & (1 << d as u16) != 0
    }
}

/// A field name, exact or a prefix written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPattern {
    Exact(String),
    Prefix(String),
}

impl FieldPattern {
    pub fn matches(&self, field: &str) -> bool {
        match self {
            FieldPattern::Exact(f) => f == field,
            FieldPattern::Prefix(p) => field.starts_with(p.as_str()),
        }
    }
}

/// Detectors that do not run on the fields matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub fields: Vec<FieldPattern>,
    pub detectors: DetectorSet,
}

/// Overrides for requests whose path starts with `path_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path_prefix: String,
    pub thresholds: Thresholds,
    /// Added to the global exclusions.
    pub exclusions: Vec<Exclusion>,
    pub actions: Actions,
}

/// The scores at which the glue tags a request (headers and filter state
/// for the upstream) and asks `rate-limit` to throttle it; `None`: off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions {
    pub tag: Option<u32>,
    pub throttle: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub thresholds: Thresholds,
    pub max_body_bytes: usize,
    pub limits: crate::request::Limits,
    pub protocol: crate::detect::protocol::Limits,
    pub enabled: DetectorSet,
    pub exclusions: Vec<Exclusion>,
    /// Sorted by descending prefix length: the first match is the longest.
    pub routes: Vec<Route>,
    pub actions: Actions,
    /// Decide and report, never block or throttle.
    pub shadow: bool,
    /// Buffer bodies of the types the view parses (up to `max_body_bytes`).
    pub inspect_body: bool,
    /// Off unless the `behaviour` section is present.
    pub behaviour: crate::behaviour::BehaviourConfig,
}

pub const DEFAULT_DETECTION_THRESHOLD: u32 = 3;
pub const DEFAULT_BLOCKING_THRESHOLD: u32 = 5;
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Upper bounds on the size settings, so a typo cannot make the filter buffer
/// or walk without limit.
const MAX_BODY_CAP: usize = 1024 * 1024;
const MAX_FIELDS_CAP: usize = 10_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            thresholds: Thresholds {
                detection: DEFAULT_DETECTION_THRESHOLD,
                blocking: DEFAULT_BLOCKING_THRESHOLD,
            },
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: crate::request::Limits::default(),
            protocol: crate::detect::protocol::Limits::default(),
            enabled: DetectorSet::ALL,
            exclusions: Vec::new(),
            routes: Vec::new(),
            actions: Actions::default(),
            shadow: false,
            inspect_body: true,
            behaviour: crate::behaviour::BehaviourConfig::default(),
        }
    }
}

impl Config {
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_json(bytes)?;
        compile(raw)
    }

    /// The thresholds and exclusions for a request path (longest prefix wins).
    /// The path is matched as the detectors read it (percent-decoded twice,
    /// dot-segments resolved), and a prefix ends only at a `/`, so
    /// `/admin/x..%2F..%2Fapi` or `/admin/xY` does not get `/admin/x`'s
    /// relaxed thresholds.
    pub fn route_for(&self, path: &[u8]) -> Option<&Route> {
        if self.routes.is_empty() {
            return None;
        }
        let path = route_path(path);
        self.routes
            .iter()
            .find(|r| prefix_matches(&path, r.path_prefix.as_bytes()))
    }
}

/// The path as routes see it: percent-decoding twice matches what
/// [`crate::normalize::normalize`] does, then `.`/`..` are resolved.
fn route_path(path: &[u8]) -> Vec<u8> {
    use crate::normalize::{normalize_path, url_decode, Plus};
    let once = url_decode(path, Plus::Keep);
    let twice = url_decode(&once, Plus::Keep);
    normalize_path(&twice).path
}

/// `/a/b` matches `/a/b` and `/a/b/...`; a prefix ending in `/` matches
/// anything under it.
fn prefix_matches(path: &[u8], prefix: &[u8]) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with(b"/") || rest.starts_with(b"/"),
        None => false,
    }
}

fn check_thresholds(
    detection: Option<u32>,
    blocking: Option<u32>,
    base: Thresholds,
    path: &str,
) -> Result<Thresholds, ConfigError> {
    let t = Thresholds {
        detection: detection.unwrap_or(base.detection),
        blocking: blocking.unwrap_or(base.blocking),
    };
    if t.detection == 0 {
        return Err(ConfigError::new(
            crate_join(path, "detection_threshold"),
            "must be at least 1 (0 would flag every request)",
        ));
    }
    if t.blocking < t.detection {
        return Err(ConfigError::new(
            crate_join(path, "blocking_threshold"),
            format!(
                "{} is below detection_threshold {}; blocking must not be stricter than detection",
                t.blocking, t.detection
            ),
        ));
    }
    Ok(t)
}

/// Each action threshold must be at least the detection threshold, so every
/// tagged or throttled request is also counted and audited.
fn check_actions(
    tag: Option<u32>,
    throttle: Option<u32>,
    base: Actions,
    thresholds: Thresholds,
    path: &str,
) -> Result<Actions, ConfigError> {
    let a = Actions {
        tag: tag.or(base.tag),
        throttle: throttle.or(base.throttle),
    };
    for (name, v) in [("tag_threshold", a.tag), ("throttle_threshold", a.throttle)] {
        if let Some(v) = v {
            if v < thresholds.detection {
                return Err(ConfigError::new(
                    crate_join(path, name),
                    format!(
                        "{v} is below detection_threshold {}; an action needs a detection",
                        thresholds.detection
                    ),
                ));
            }
        }
    }
    Ok(a)
}

fn crate_join(outer: &str, inner: &str) -> String {
    meshward_shared::config::join(outer, inner)
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    let defaults = Config::default();
    let thresholds = check_thresholds(
        raw.detection_threshold,
        raw.blocking_threshold,
        defaults.thresholds,
        "",
    )?;
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes > MAX_BODY_CAP {
        return Err(ConfigError::new(
            "max_body_bytes",
            format!("{max_body_bytes} is over the limit of {MAX_BODY_CAP}"),
        ));
    }
    let mut limits = defaults.limits;
    if let Some(n) = raw.max_fields {
        if n == 0 || n > MAX_FIELDS_CAP {
            return Err(ConfigError::new(
                "max_fields",
                format!("must be between 1 and {MAX_FIELDS_CAP}"),
            ));
        }
        limits.max_fields = n;
    }
    let mut protocol = defaults.protocol;
    if let Some(n) = raw.max_header_bytes {
        if n == 0 {
            return Err(ConfigError::new("max_header_bytes", "must be at least 1"));
        }
        protocol.max_header_bytes = n;
    }
    if let Some(n) = raw.max_headers {
        if n == 0 {
            return Err(ConfigError::new("max_headers", "must be at least 1"));
        }
        protocol.max_headers = n;
    }
    let mut enabled = DetectorSet::ALL;
    let d = &raw.detectors;
    for (det, setting) in [
        (Detector::Sqli, &d.sqli),
        (Detector::Xss, &d.xss),
        (Detector::Traversal, &d.traversal),
        (Detector::Cmdi, &d.cmdi),
        (Detector::Ssrf, &d.ssrf),
        (Detector::Java, &d.java),
        (Detector::Php, &d.php),
        (Detector::Protocol, &d.protocol),
    ] {
        if let Some(RawDetector { enabled: false }) = setting {
            enabled = enabled.without(det);
        }
    }
    let exclusions = exclusions_at(&raw.exclusions, "exclusions")?;
    let actions = check_actions(
        raw.tag_threshold,
        raw.throttle_threshold,
        Actions::default(),
        thresholds,
        "",
    )?;
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        if !r.path_prefix.starts_with('/') {
            return Err(ConfigError::new(
                crate_join(&path, "path_prefix"),
                "must start with /",
            ));
        }
        let route_thresholds = check_thresholds(
            r.detection_threshold,
            r.blocking_threshold,
            thresholds,
            &path,
        )?;
        routes.push(Route {
            path_prefix: r.path_prefix.clone(),
            thresholds: route_thresholds,
            exclusions: exclusions_at(&r.exclusions, &crate_join(&path, "exclusions"))?,
            actions: check_actions(
                r.tag_threshold,
                r.throttle_threshold,
                actions,
                route_thresholds,
                &path,
            )?,
        });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.path_prefix.len()));
    Ok(Config {
        thresholds,
        max_body_bytes,
        limits,
        protocol,
        enabled,
        exclusions,
        routes,
        actions,
        shadow: raw.shadow,
        inspect_body: raw.inspect_body.unwrap_or(true),
        behaviour: match &raw.behaviour {
            Some(b) => crate::behaviour::config::compile(b, "behaviour")?,
            None => crate::behaviour::BehaviourConfig::default(),
        },
    })
}

fn exclusions_at(raw: &[RawExclusion], path: &str) -> Result<Vec<Exclusion>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if e.fields.is_empty() {
            return Err(ConfigError::new(
                crate_join(&at, "fields"),
                "must name at least one field",
            ));
        }
        let mut fields = Vec::with_capacity(e.fields.len());
        for (j, f) in e.fields.iter().enumerate() {
            let fat = format!("{}[{j}]", crate_join(&at, "fields"));
            let pattern = match f.strip_suffix('*') {
                Some(p) if p.contains('*') => {
                    return Err(ConfigError::new(fat, "only a trailing * is allowed"))
                }
                Some(p) => FieldPattern::Prefix(p.to_string()),
                None if f.contains('*') => {
                    return Err(ConfigError::new(fat, "only a trailing * is allowed"))
                }
                None if f.is_empty() => return Err(ConfigError::new(fat, "empty field name")),
                None => FieldPattern::Exact(f.clone()),
            };
            fields.push(pattern);
        }
        let mut detectors = DetectorSet::default();
        for (j, name) in e.detectors.iter().enumerate() {
            let det = Detector::from_name(name).ok_or_else(|| {
                ConfigError::new(
                    format!("{}[{j}]", crate_join(&at, "detectors")),
                    format!(
                        "unknown detector {name:?}; expected one of sqli, xss, traversal, cmdi, ssrf, java, php, protocol"
                    ),
                )
            })?;
            detectors = detectors.with(det);
        }
        if e.detectors.is_empty() {
            detectors = DetectorSet::ALL;
        }
        out.push(Exclusion { fields, detectors });
    }
    Ok(out)
}
