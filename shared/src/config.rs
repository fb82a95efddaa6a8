//! Config errors that name the exact field path, and the JSON entry point
//! every filter uses in `on_configure`.

use serde::de::DeserializeOwned;

/// A config mistake, e.g. `providers.corp.remote_jwks.http_uri.cluster: missing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Prefix the path with an outer field, for errors raised by nested compilers.
    pub fn within(mut self, outer: &str) -> Self {
        self.path = join(outer, &self.path);
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Join two path segments with a dot, tolerating empty parts and `[i]` indices.
pub fn join(outer: &str, inner: &str) -> String {
    match (outer.is_empty(), inner.is_empty()) {
        (true, _) => inner.to_string(),
        (_, true) => outer.to_string(),
        _ if inner.starts_with('[') => format!("{outer}{inner}"),
        _ => format!("{outer}.{inner}"),
    }
}

/// Parse filter config JSON into `T`; a serde failure names the field path
/// (via `serde_path_to_error`), e.g. `providers.corp.issuer: invalid type`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new("", "configuration is empty"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        // serde names a missing field in the message only; put it in the path.
        let path = match missing_field(&message) {
            Some(field) => join(&path, field),
            None => path,
        };
        ConfigError::new(path, message)
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", format!("trailing data after the config object: {e}")))?;
    Ok(value)
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        providers: std::collections::BTreeMap<String, Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        issuer: String,
        #[serde(default)]
        audiences: Vec<String>,
    }

    #[test]
    fn error_names_nested_field() {
        let e = parse_json::<Outer>(br#"{"providers":{"corp":{"issuer":5}}}"#).unwrap_err();
        assert_eq!(e.path, "providers.corp.issuer");
        let e = parse_json::<Outer>(br#"{"providers":{"corp":{"issuer":"x","audience":[]}}}"#)
            .unwrap_err();
        assert!(e.message.contains("unknown field `audience`"), "{e}");
        assert_eq!(e.path, "providers.corp.audience");
        let e = parse_json::<Outer>(br#"{"providers":{"corp":{}}}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `issuer`"), "{e}");
        assert_eq!(e.path, "providers.corp.issuer");
    }

    #[test]
    fn empty_and_trailing_rejected() {
        assert!(parse_json::<Outer>(b"  ")
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(parse_json::<Outer>(br#"{"providers":{}} x"#).is_err());
        assert!(parse_json::<Outer>(b"{").is_err());
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("a", "b"), "a.b");
        assert_eq!(join("a", "[0]"), "a[0]");
        assert_eq!(join("", "b"), "b");
        assert_eq!(
            ConfigError::new("x", "bad").within("rules[1]").to_string(),
            "rules[1].x: bad"
        );
    }
}
