//! The identity contract: `jwt-auth` writes the verified caller to Envoy filter
//! state under [`FILTER_STATE_KEY`]; the other filters read it back.
//! Envoy stores it as `wasm.meshward.identity`, so access logs can print it
//! with `%FILTER_STATE(wasm.meshward.identity:PLAIN)%`.

use serde::{Deserialize, Serialize};

use crate::host::{Host, HostError};

pub const FILTER_STATE_KEY: &str = "meshward.identity";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// Name of the configured provider that verified the token.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `azp`, or `client_id` when `azp` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presenter: Option<String>,
    /// The whole verified payload.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Identity {
    /// The identity a verified payload carries.
    pub fn from_claims(provider: &str, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let audiences = crate::facts::claims::strings(claims.get("aud"))
            .map(str::to_string)
            .collect();
        Identity {
            provider: provider.to_string(),
            issuer: text("iss").unwrap_or_default(),
            subject: text("sub").unwrap_or_default(),
            audiences,
            scopes: scopes_from_claims(&claims),
            presenter: text("azp").or_else(|| text("client_id")),
            claims,
        }
    }

    /// `iss/sub`, the form Istio uses for `requestPrincipals`.
    pub fn principal(&self) -> String {
        format!("{}/{}", self.issuer, self.subject)
    }

    pub fn write<H: Host + ?Sized>(&self, host: &H) -> Result<(), HostError> {
        let bytes = serde_json::to_vec(self).map_err(|_| HostError {
            call: "set_property",
            status: "serialize".into(),
        })?;
        host.set_property(&[FILTER_STATE_KEY], &bytes)
    }

    /// `None` when no identity was written or it cannot be parsed.
    pub fn read<H: Host + ?Sized>(host: &H) -> Option<Identity> {
        let bytes = host.property(&[FILTER_STATE_KEY])?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Write an identity's JSON to filter state when asked (`write`): what every
/// host's `publish_identity` does besides handing it over.
pub fn write_state<H: Host + ?Sized>(host: &H, json: &[u8], write: bool) -> Result<(), HostError> {
    if write {
        host.set_property(&[FILTER_STATE_KEY], json)?;
    }
    Ok(())
}

/// Split scopes from a space-delimited `scope` (RFC 8693) or an array `scp`.
pub fn scopes_from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(serde_json::Value::String(s)) = claims.get("scope") {
        out.extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_string));
    }
    match claims.get("scp") {
        Some(serde_json::Value::Array(items)) => {
            out.extend(items.iter().filter_map(|v| v.as_str()).map(str::to_string))
        }
        Some(serde_json::Value::String(s)) => {
            out.extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_string))
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;
    use serde_json::json;

    #[test]
    fn round_trips_through_filter_state() {
        let host = FakeHost::default();
        let mut id = Identity {
            provider: "corp".into(),
            issuer: "https://idp".into(),
            subject: "alice".into(),
            ..Default::default()
        };
        id.claims.insert("tenant".into(), json!("a"));
        id.write(&host).unwrap();
        assert_eq!(Identity::read(&host), Some(id.clone()));
        assert_eq!(id.principal(), "https://idp/alice");
    }

    #[test]
    fn scopes_from_both_forms() {
        let c = json!({"scope": "read  write", "scp": ["admin", "read"]});
        let c = c.as_object().unwrap();
        assert_eq!(scopes_from_claims(c), vec!["admin", "read", "write"]);
        assert!(scopes_from_claims(&serde_json::Map::new()).is_empty());
    }
}
