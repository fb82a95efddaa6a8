//! The `behaviour` section of the anomaly config: raw form and its compile step.

use meshward_shared::config::{join, ConfigError};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehaviour {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    max_identities: Option<u32>,
    #[serde(default)]
    learning_period_s: Option<u32>,
    #[serde(default)]
    identity_min_requests: Option<u32>,
    #[serde(default)]
    identity_min_age_s: Option<u32>,
    #[serde(default)]
    country_header: Option<String>,
    #[serde(default)]
    rate: Option<RawRate>,
    #[serde(default)]
    errors: Option<RawErrors>,
    #[serde(default)]
    paths: Option<RawToggle>,
    #[serde(default)]
    sources: Option<RawSources>,
    #[serde(default)]
    hours: Option<RawHours>,
    #[serde(default)]
    enumeration: Option<RawEnumeration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToggle {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    floor_per_s: Option<f64>,
    #[serde(default)]
    fast_s: Option<u32>,
    #[serde(default)]
    baseline_s: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrors {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    window_s: Option<u32>,
    #[serde(default)]
    min_errors: Option<u32>,
    #[serde(default)]
    ratio: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    #[serde(default)]
    addresses: Option<bool>,
    #[serde(default)]
    countries: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    min_requests: Option<u32>,
    #[serde(default)]
    min_age_s: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnumeration {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    window_s: Option<u32>,
    #[serde(default)]
    max_distinct: Option<u32>,
    #[serde(default)]
    params: Vec<String>,
}

/// Compiled behaviour settings. Times are seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourConfig {
    pub enabled: bool,
    pub max_identities: u32,
    /// From the first request this VM sees: every behaviour detector only observes.
    pub learning_period_s: u32,
    /// An identity's own history needed before the detectors that compare
    /// against it (rate baseline, paths, sources) give points.
    pub identity_min_requests: u32,
    pub identity_min_age_s: u32,
    /// Lower-case header name carrying the client's country, if any.
    pub country_header: Option<String>,
    pub rate: Option<RateConfig>,
    pub errors: Option<ErrorsConfig>,
    pub paths: bool,
    pub addresses: bool,
    pub countries: bool,
    pub hours: Option<HoursConfig>,
    pub enumeration: Option<EnumerationConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    pub factor: f32,
    pub floor_per_s: f32,
    pub fast_s: f32,
    /// Seconds of activity the baseline averages over (idle gaps count as
    /// at most `fast_s`).
    pub baseline_s: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorsConfig {
    pub window_s: f32,
    pub min_errors: f32,
    pub ratio: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoursConfig {
    pub min_requests: u32,
    pub min_age_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumerationConfig {
    pub window_s: u32,
    pub max_distinct: u32,
    pub params: Vec<String>,
}

pub const DEFAULT_MAX_IDENTITIES: u32 = 100_000;
const MAX_IDENTITIES_CAP: u32 = 1_000_000;
/// Above this the 64-bit distinct counter cannot tell counts apart.
pub const MAX_DISTINCT_CAP: u32 = 150;

// Every float is checked finite at compile time, so equality is total.
impl Eq for BehaviourConfig {}

impl Default for BehaviourConfig {
    /// Off; the other values are what an empty `behaviour: {}` gives.
    fn default() -> Self {
        BehaviourConfig {
            enabled: false,
            max_identities: DEFAULT_MAX_IDENTITIES,
            learning_period_s: 3600,
            identity_min_requests: 50,
            identity_min_age_s: 3600,
            country_header: None,
            rate: Some(RateConfig {
                factor: 4.0,
                floor_per_s: 1.0,
                fast_s: 10.0,
                baseline_s: 3600.0,
            }),
            errors: Some(ErrorsConfig {
                window_s: 60.0,
                min_errors: 10.0,
                ratio: 0.5,
            }),
            paths: true,
            addresses: true,
            countries: true,
            hours: Some(HoursConfig {
                min_requests: 200,
                min_age_s: 3 * 86_400,
            }),
            enumeration: Some(EnumerationConfig {
                window_s: 60,
                max_distinct: 40,
                params: Vec::new(),
            }),
        }
    }
}

fn positive(v: f64, path: &str) -> Result<f32, ConfigError> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(v as f32)
    } else {
        Err(ConfigError::new(
            path,
            format!("{v} must be a positive number"),
        ))
    }
}

fn at_least(v: u32, min: u32, path: &str) -> Result<u32, ConfigError> {
    if v < min {
        return Err(ConfigError::new(path, format!("must be at least {min}")));
    }
    Ok(v)
}

/// Compiles the section found at `path` (normally `behaviour`).
pub fn compile(raw: &RawBehaviour, path: &str) -> Result<BehaviourConfig, ConfigError> {
    let d = BehaviourConfig::default();
    let p = |f: &str| join(path, f);
    let max_identities = raw.max_identities.unwrap_or(d.max_identities);
    if max_identities == 0 || max_identities > MAX_IDENTITIES_CAP {
        return Err(ConfigError::new(
            p("max_identities"),
            format!("must be between 1 and {MAX_IDENTITIES_CAP}"),
        ));
    }
    let country_header = match &raw.country_header {
        None => None,
        Some(h) if h.is_empty() || h.starts_with(':') || h.bytes().any(|b| b <= b' ') => {
            return Err(ConfigError::new(
                p("country_header"),
                "must be a header name (not empty, no spaces, not a pseudo-header)",
            ))
        }
        Some(h) => Some(h.to_ascii_lowercase()),
    };
    let rate = match &raw.rate {
        Some(RawRate {
            enabled: Some(false),
            ..
        }) => None,
        None => d.rate,
        Some(r) => {
            let rp = p("rate");
            let base = d.rate.unwrap_or(RateConfig {
                factor: 4.0,
                floor_per_s: 1.0,
                fast_s: 10.0,
                baseline_s: 3600.0,
            });
            let factor = match r.factor {
                Some(f) if f.is_finite() && f > 1.0 && f < 1e6 => f as f32,
                Some(f) => {
                    return Err(ConfigError::new(
                        join(&rp, "factor"),
                        format!("{f} must be a number above 1"),
                    ))
                }
                None => base.factor,
            };
            RateConfig {
                factor,
                floor_per_s: match r.floor_per_s {
                    Some(v) => positive(v, &join(&rp, "floor_per_s"))?,
                    None => base.floor_per_s,
                },
                fast_s: match r.fast_s {
                    Some(v) => at_least(v, 1, &join(&rp, "fast_s"))? as f32,
                    None => base.fast_s,
                },
                baseline_s: match r.baseline_s {
                    Some(v) => at_least(v, 1, &join(&rp, "baseline_s"))? as f32,
                    None => base.baseline_s,
                },
            }
            .into()
        }
    };
    let errors = match &raw.errors {
        Some(RawErrors {
            enabled: Some(false),
            ..
        }) => None,
        None => d.errors,
        Some(e) => {
            let ep = p("errors");
            let ratio = match e.ratio {
                Some(r) if r.is_finite() && r > 0.0 && r <= 1.0 => r as f32,
                Some(r) => {
                    return Err(ConfigError::new(
                        join(&ep, "ratio"),
                        format!("{r} must be above 0 and at most 1"),
                    ))
                }
                None => 0.5,
            };
            Some(ErrorsConfig {
                window_s: e
                    .window_s
                    .map(|v| at_least(v, 1, &join(&ep, "window_s")))
                    .transpose()?
                    .map_or(60.0, |v| v as f32),
                min_errors: e
                    .min_errors
                    .map(|v| at_least(v, 1, &join(&ep, "min_errors")))
                    .transpose()?
                    .map_or(10.0, |v| v as f32),
                ratio,
            })
        }
    };
    let hours = match &raw.hours {
        Some(RawHours {
            enabled: Some(false),
            ..
        }) => None,
        None => d.hours,
        Some(h) => Some(HoursConfig {
            min_requests: h.min_requests.unwrap_or(200),
            min_age_s: h.min_age_s.unwrap_or(3 * 86_400),
        }),
    };
    let enumeration = match &raw.enumeration {
        Some(RawEnumeration {
            enabled: Some(false),
            ..
        }) => None,
        None => d.enumeration.clone(),
        Some(e) => {
            let ep = p("enumeration");
            let max_distinct = e.max_distinct.unwrap_or(40);
            if !(2..=MAX_DISTINCT_CAP).contains(&max_distinct) {
                return Err(ConfigError::new(
                    join(&ep, "max_distinct"),
                    format!(
                        "must be between 2 and {MAX_DISTINCT_CAP} (the distinct counter's range)"
                    ),
                ));
            }
            for (i, name) in e.params.iter().enumerate() {
                if name.is_empty() {
                    return Err(ConfigError::new(
                        format!("{}[{i}]", join(&ep, "params")),
                        "empty parameter name",
                    ));
                }
            }
            Some(EnumerationConfig {
                window_s: e
                    .window_s
                    .map(|v| at_least(v, 1, &join(&ep, "window_s")))
                    .transpose()?
                    .unwrap_or(60),
                max_distinct,
                params: e.params.clone(),
            })
        }
    };
    let sources = raw.sources.as_ref();
    Ok(BehaviourConfig {
        enabled: raw.enabled.unwrap_or(true),
        max_identities,
        learning_period_s: raw.learning_period_s.unwrap_or(d.learning_period_s),
        identity_min_requests: raw.identity_min_requests.unwrap_or(d.identity_min_requests),
        identity_min_age_s: raw.identity_min_age_s.unwrap_or(d.identity_min_age_s),
        country_header,
        rate,
        errors,
        paths: raw.paths.as_ref().is_none_or(|t| t.enabled),
        addresses: sources.and_then(|s| s.addresses).unwrap_or(true),
        countries: sources.and_then(|s| s.countries).unwrap_or(true),
        hours,
        enumeration,
    })
}

impl BehaviourConfig {
    /// Parses a `behaviour` section on its own (tests and tools).
    pub fn parse(bytes: &[u8]) -> Result<BehaviourConfig, ConfigError> {
        let raw: RawBehaviour = meshward_shared::config::parse_json(bytes)?;
        compile(&raw, "behaviour")
    }
}
