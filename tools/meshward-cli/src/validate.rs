//! `meshward validate`: each config through the compiler its module runs in
//! `on_configure`, so the errors are the ones Envoy would log.

use meshward_shared::config::ConfigError;
use serde_json::Value;

/// The module a config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    JwtAuth,
    Authz,
    RateLimit,
    Suite,
}

impl Module {
    pub fn parse(name: &str) -> Option<Module> {
        match name {
            "jwt-auth" => Some(Module::JwtAuth),
            "authz" => Some(Module::Authz),
            "rate-limit" => Some(Module::RateLimit),
            "suite" | "meshward" => Some(Module::Suite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Module::JwtAuth => "jwt-auth",
            Module::Authz => "authz",
            Module::RateLimit => "rate-limit",
            Module::Suite => "suite",
        }
    }

    /// Which module a config document is for, from its top-level fields
    /// (only the fields that belong to one module's schema decide).
    pub fn infer(doc: &Value) -> Option<Module> {
        let obj = doc.as_object()?;
        let has = |k: &str| obj.contains_key(k);
        if !obj.is_empty()
            && obj
                .keys()
                .all(|k| matches!(k.as_str(), "jwt_auth" | "authz" | "anomaly" | "rate_limit"))
        {
            return Some(Module::Suite);
        }
        if has("providers") {
            return Some(Module::JwtAuth);
        }
        if has("policies") || has("rbac") {
            return Some(Module::Authz);
        }
        if has("rules") {
            return Some(Module::RateLimit);
        }
        None
    }
}

/// Compile `bytes` as `module`'s config.
pub fn check(module: Module, bytes: &[u8]) -> Result<(), ConfigError> {
    match module {
        Module::JwtAuth => jwt_auth::config::Config::from_json(bytes).map(drop),
        Module::Authz => authz::config::Config::from_json(bytes).map(drop),
        Module::RateLimit => rate_limit::config::Config::from_json(bytes).map(drop),
        Module::Suite => meshward::config::check(bytes).map(drop),
    }
}

/// One file: the module it is for (given, or inferred) and the verdict.
pub fn file(bytes: &[u8], given: Option<Module>) -> Result<Module, String> {
    let module = match given {
        Some(m) => m,
        None => {
            let doc: Value =
                serde_json::from_slice(bytes).map_err(|e| format!("not a JSON document: {e}"))?;
            Module::infer(&doc).ok_or_else(|| {
                "cannot tell which module this config is for; name it with --module jwt-auth|authz|rate-limit|suite".to_string()
            })?
        }
    };
    check(module, bytes).map_err(|e| format!("{} config: {e}", module.name()))?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn infers_the_module_from_its_own_fields() {
        let cases = [
            (json!({"jwt_auth": {}, "authz": {}}), Some(Module::Suite)),
            (json!({"providers": {}}), Some(Module::JwtAuth)),
            (json!({"policies": []}), Some(Module::Authz)),
            (json!({"rules": []}), Some(Module::RateLimit)),
            // jwt-auth has `rules` too: its `providers` decides
            (json!({"providers": {}, "rules": []}), Some(Module::JwtAuth)),
            (json!({}), None),
            (json!([1]), None),
        ];
        for (doc, want) in cases {
            assert_eq!(Module::infer(&doc), want, "{doc}");
        }
    }

    #[test]
    fn errors_name_the_module_and_the_field() {
        let e = file(br#"{"providers": {"corp": {"issuer": 5}}}"#, None).unwrap_err();
        assert!(
            e.starts_with("jwt-auth config: providers.corp.issuer"),
            "{e}"
        );
        let e = file(br#"{"rules": []}"#, Some(Module::Authz)).unwrap_err();
        assert!(e.starts_with("authz config: "), "{e}");
        assert!(file(b"{", None)
            .unwrap_err()
            .contains("not a JSON document"));
        assert!(file(b"{}", None).unwrap_err().contains("--module"));
    }
}
