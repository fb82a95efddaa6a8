//! Request matching for `rules[].match`: path (exact, prefix, regex, template)
//! and methods. Compiled once; matching allocates nothing.

use meshward_shared::config::ConfigError;

#[derive(Debug)]
pub enum PathMatcher {
    Exact(String),
    Prefix(String),
    Regex(regex_lite::Regex),
    Template(Template),
}

impl PathMatcher {
    /// `path` is the request path without its query string.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == p,
            PathMatcher::Prefix(p) => path.starts_with(p.as_str()),
            // Envoy's safe_regex must match the whole path.
            PathMatcher::Regex(re) => re
                .find(path)
                .is_some_and(|m| m.start() == 0 && m.end() == path.len()),
            PathMatcher::Template(t) => t.matches(path),
        }
    }

    pub fn regex(pattern: &str) -> Result<PathMatcher, ConfigError> {
        if pattern.len() > 4096 {
            return Err(ConfigError::new("", "regex longer than 4096 bytes"));
        }
        regex_lite::Regex::new(pattern)
            .map(PathMatcher::Regex)
            .map_err(|e| ConfigError::new("", format!("invalid regex: {e}")))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}` or `{*}`: exactly one non-empty segment.
    One,
    /// `{**}` or `{name=**}`: the rest of the path (zero or more segments); last only.
    Rest,
}

/// An Istio/Envoy-style URI template such as `/users/{id}/orders/{**}`.
#[derive(Debug)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, ConfigError> {
        let body = text.strip_prefix('/').ok_or_else(|| {
            ConfigError::new("", format!("template `{text}` must start with `/`"))
        })?;
        let parts: Vec<&str> = body.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (name, pattern) = match inner.split_once('=') {
                    Some((n, p)) => (n, p),
                    None if inner == "*" || inner == "**" => ("", inner),
                    None => (inner, "*"),
                };
                let name_ok =
                    name.is_empty() || name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !name_ok {
                    return Err(ConfigError::new(
                        "",
                        format!("template `{text}`: bad variable name `{name}`"),
                    ));
                }
                match pattern {
                    "*" => Segment::One,
                    "**" if i + 1 == parts.len() => Segment::Rest,
                    "**" => {
                        return Err(ConfigError::new(
                            "",
                            format!("template `{text}`: `**` must be the last segment"),
                        ))
                    }
                    other => {
                        return Err(ConfigError::new(
                            "",
                            format!("template `{text}`: unsupported pattern `{other}`"),
                        ))
                    }
                }
            } else if part.contains('{') || part.contains('}') || part.contains('*') {
                return Err(ConfigError::new(
                    "",
                    format!("template `{text}`: a variable must be a whole segment, like `{{id}}`"),
                ));
            } else {
                Segment::Literal((*part).to_string())
            };
            segments.push(seg);
        }
        Ok(Template { segments })
    }

    pub fn matches(&self, path: &str) -> bool {
        let Some(mut rest) = path.strip_prefix('/') else {
            return false;
        };
        for (i, seg) in self.segments.iter().enumerate() {
            if *seg == Segment::Rest {
                return true;
            }
            let (part, tail) = match rest.split_once('/') {
                Some((p, t)) => (p, Some(t)),
                None => (rest, None),
            };
            let ok = match seg {
                Segment::Literal(l) => part == l,
                Segment::One => !part.is_empty(),
                Segment::Rest => true,
            };
            if !ok {
                return false;
            }
            match tail {
                Some(t) => rest = t,
                None => {
                    // Path ended: only a trailing `{**}` may remain.
                    return self.segments[i + 1..].iter().all(|s| *s == Segment::Rest);
                }
            }
        }
        false
    }
}

/// Path without query or fragment.
pub fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_prefix_regex() {
        assert!(PathMatcher::Exact("/a".into()).matches("/a"));
        assert!(!PathMatcher::Exact("/a".into()).matches("/a/"));
        assert!(PathMatcher::Prefix("/api".into()).matches("/api/x"));
        let re = PathMatcher::regex("/v[0-9]+/.*").unwrap();
        assert!(re.matches("/v1/x"));
        assert!(!re.matches("/x/v1/x"), "regex must match the whole path");
        assert!(PathMatcher::regex("(").is_err());
    }

    #[test]
    fn templates() {
        let t = Template::parse("/users/{id}/orders/{**}").unwrap();
        assert!(t.matches("/users/alice/orders"));
        assert!(t.matches("/users/alice/orders/1/items"));
        assert!(!t.matches("/users//orders/1"));
        assert!(!t.matches("/users/alice"));
        assert!(!t.matches("/users/alice/carts/1"));
        let t = Template::parse("/a/{*}/b").unwrap();
        assert!(t.matches("/a/x/b"));
        assert!(!t.matches("/a/x/y/b"));
        assert!(!t.matches("/a/x/b/c"));
        let t = Template::parse("/files/{path=**}").unwrap();
        assert!(t.matches("/files/a/b/c"));
        assert!(!t.matches("/other"));
    }

    #[test]
    fn bad_templates() {
        for bad in [
            "users/{id}",
            "/a/{**}/b",
            "/a/x{id}",
            "/a/{id=foo}",
            "/a/{i d}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strips_query() {
        assert_eq!(path_only("/a/b?x=1#f"), "/a/b");
        assert_eq!(path_only("/a"), "/a");
    }
}
