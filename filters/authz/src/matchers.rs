//! Compiled matchers: Istio string lists (exact, `prefix*`, `*suffix`, `*`),
//! CIDR sets (sorted prefix sets per length), and path sets with templates
//! (`{*}`, `{**}`, named `{user}` / `{rest=**}` captures).

use meshward_shared::config::ConfigError;
pub use meshward_shared::facts::cidr::CidrSet;
pub use meshward_shared::path_template::{CaptureNames, Template};

/// Istio string matching over a list of patterns; any pattern may match.
#[derive(Debug, Clone, Default)]
pub struct StringSet {
    exact: Vec<Box<str>>,
    prefixes: Vec<Box<str>>,
    suffixes: Vec<Box<str>>,
    /// `*`: any non-empty value (istiod's `.+`), or any present value
    /// when [`StringSet::star_matches_empty`] is set.
    any: bool,
    any_empty: bool,
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

    /// Header patterns: istiod turns `*` into `present_match`, which an
    /// empty value satisfies.
    pub fn star_matches_empty(mut self, yes: bool) -> Self {
        self.any_empty = yes;
        self
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
        (self.any && (self.any_empty || !value.is_empty()))
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

// ------------------------------------------------------------- principals

/// One side of a request principal: istiod's string matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    /// `.+`
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
}

impl Side {
    fn matches(&self, v: &str) -> bool {
        match self {
            Side::Any => !v.is_empty(),
            Side::Exact(e) => v == &**e,
            Side::Prefix(p) => v.starts_with(&**p),
            Side::Suffix(s) => v.ends_with(&**s),
        }
    }
}

/// `requestPrincipals` / `request.auth.principal`: as current istiod, each
/// value is split at its last `/` into an issuer and a subject pattern,
/// matched against the `iss` and `sub` claims separately.
#[derive(Debug, Clone, Default)]
pub struct PrincipalSet {
    pairs: Vec<(Side, Side)>,
}

impl PrincipalSet {
    pub fn compile(values: &[String]) -> PrincipalSet {
        let pairs = values
            .iter()
            .map(|v| {
                let split = v.rfind('/').map(|i| (&v[..i], &v[i + 1..]));
                let trim = |s: &str, f: fn(&str) -> Option<&str>| f(s).unwrap_or(s).into();
                match split {
                    _ if v == "*" => (Side::Any, Side::Any),
                    Some((iss, sub)) if v.starts_with('*') => (
                        if iss == "*" {
                            Side::Any
                        } else {
                            Side::Suffix(trim(iss, |s| s.strip_prefix('*')))
                        },
                        Side::Exact(sub.into()),
                    ),
                    None if v.starts_with('*') => {
                        (Side::Any, Side::Suffix(trim(v, |s| s.strip_prefix('*'))))
                    }
                    Some((iss, sub)) if v.ends_with('*') => (
                        Side::Exact(iss.into()),
                        if sub == "*" {
                            Side::Any
                        } else {
                            Side::Prefix(trim(sub, |s| s.strip_suffix('*')))
                        },
                    ),
                    None if v.ends_with('*') => {
                        (Side::Prefix(trim(v, |s| s.strip_suffix('*'))), Side::Any)
                    }
                    Some((iss, sub)) => (Side::Exact(iss.into()), Side::Exact(sub.into())),
                    None => (Side::Exact(v.as_str().into()), Side::Exact("".into())),
                }
            })
            .collect();
        PrincipalSet { pairs }
    }

    /// Both claims must be present strings.
    pub fn matches(&self, iss: Option<&str>, sub: Option<&str>) -> bool {
        let (Some(iss), Some(sub)) = (iss, sub) else {
            return false;
        };
        self.pairs
            .iter()
            .any(|(i, s)| i.matches(iss) && s.matches(sub))
    }
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
