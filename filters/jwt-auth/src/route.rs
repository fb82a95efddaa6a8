//! Request matching for `rules[].match`: path (exact, prefix, regex, template)
//! and methods. Templates are the shared `meshward_shared::path_template`. Compiled once; matching allocates nothing.

use meshward_shared::config::ConfigError;
pub use meshward_shared::path_template::Template;

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
    fn template_matcher() {
        let t = PathMatcher::Template(Template::parse_plain("/users/{id}/orders/{**}").unwrap());
        assert!(t.matches("/users/alice/orders/1"));
        assert!(!t.matches("/users/alice"));
    }

    #[test]
    fn strips_query() {
        assert_eq!(path_only("/a/b?x=1#f"), "/a/b");
        assert_eq!(path_only("/a"), "/a");
    }
}
