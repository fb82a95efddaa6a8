//! The suite's config: one JSON object with a section per stage. Each
//! section is exactly that standalone filter's config, so it moves between
//! the suite and a single filter without edits; a stage without a section
//! is absent.

use meshward_shared::config::{parse_json, ConfigError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    #[serde(default)]
    jwt_auth: Option<Value>,
    #[serde(default)]
    authz: Option<Value>,
    #[serde(default)]
    anomaly: Option<Value>,
    #[serde(default)]
    rate_limit: Option<Value>,
}

/// Each present section, as the bytes its stage's `configure` reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sections {
    pub jwt_auth: Option<Vec<u8>>,
    pub authz: Option<Vec<u8>>,
    pub anomaly: Option<Vec<u8>>,
    pub rate_limit: Option<Vec<u8>>,
}

impl Sections {
    pub fn from_json(bytes: &[u8]) -> Result<Sections, ConfigError> {
        let raw: RawSuite = parse_json(bytes)?;
        let section = |name: &str, v: Option<Value>| -> Result<Option<Vec<u8>>, ConfigError> {
            match v {
                None => Ok(None),
                Some(v @ Value::Object(_)) => Ok(Some(v.to_string().into_bytes())),
                Some(_) => Err(ConfigError::new(
                    name,
                    "must be an object (the standalone filter's config)",
                )),
            }
        };
        let sections = Sections {
            jwt_auth: section("jwt_auth", raw.jwt_auth)?,
            authz: section("authz", raw.authz)?,
            anomaly: section("anomaly", raw.anomaly)?,
            rate_limit: section("rate_limit", raw.rate_limit)?,
        };
        if sections == Sections::default() {
            return Err(ConfigError::new(
                "",
                "no stage configured: give at least one of jwt_auth, authz, anomaly, rate_limit",
            ));
        }
        Ok(sections)
    }
}

/// Compile every present section with its stage's own config compiler,
/// without a host (`meshward validate`): errors carry the section in their
/// path, e.g. `authz.policies[0].rules: ...`. Returns the stages present.
pub fn check(bytes: &[u8]) -> Result<Vec<&'static str>, ConfigError> {
    let s = Sections::from_json(bytes)?;
    let mut present = Vec::new();
    if let Some(b) = &s.jwt_auth {
        jwt_auth::config::Config::from_json(b).map_err(|e| e.within("jwt_auth"))?;
        present.push("jwt_auth");
    }
    if let Some(b) = &s.authz {
        authz::config::Config::from_json(b).map_err(|e| e.within("authz"))?;
        present.push("authz");
    }
    if let Some(b) = &s.anomaly {
        anomaly::config::Config::parse(b).map_err(|e| e.within("anomaly"))?;
        present.push("anomaly");
    }
    if let Some(b) = &s.rate_limit {
        rate_limit::config::Config::from_json(b).map_err(|e| e.within("rate_limit"))?;
        present.push("rate_limit");
    }
    Ok(present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_pass_through_as_written() {
        let s = Sections::from_json(br#"{"authz": {"policies": []}, "rate_limit": {"rules": []}}"#)
            .unwrap();
        assert_eq!(s.jwt_auth, None);
        assert_eq!(s.authz.as_deref(), Some(&br#"{"policies":[]}"#[..]));
        assert_eq!(s.rate_limit.as_deref(), Some(&br#"{"rules":[]}"#[..]));
    }

    #[test]
    fn check_compiles_each_section_and_names_it_in_the_path() {
        let ok = check(br#"{"rate_limit": {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}]}}"#);
        assert_eq!(ok, Ok(vec!["rate_limit"]));
        let e =
            check(br#"{"authz": {"policies": [{"name": "p", "action": "MAYBE"}]}}"#).unwrap_err();
        assert!(e.path.starts_with("authz.policies"), "{e}");
    }

    #[test]
    fn mistakes_name_the_section() {
        let e = Sections::from_json(br#"{"jwt-auth": {}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `jwt-auth`"), "{e}");
        let e = Sections::from_json(br#"{"authz": "allow"}"#).unwrap_err();
        assert_eq!(e.path, "authz");
        let e = Sections::from_json(b"{}").unwrap_err();
        assert!(e.message.contains("no stage configured"), "{e}");
        assert!(Sections::from_json(b"").is_err());
        assert!(Sections::from_json(b"{\"authz\": {}} x").is_err());
    }
}
