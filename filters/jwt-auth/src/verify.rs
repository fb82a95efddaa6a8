//! One token against one provider: parse, check the signature against the
//! provider's keys, validate claims, and build the verified identity.

use std::rc::Rc;

use meshward_shared::identity::Identity;
use serde_json::Value;

use crate::claims;
use crate::config::Provider;
use crate::jose::{self, HostVerifier, JoseError, Jwks, UntrustedToken, VerifyStats};
use crate::reason::Reason;

/// A token that passed every check for `provider`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub provider: usize,
    pub exp: Option<u64>,
    pub identity: Rc<Identity>,
    /// The token's payload segment, forwarded by `forward_payload_header`.
    pub payload_segment: String,
    /// `identity` serialized once, written to filter state on every use.
    pub identity_json: Vec<u8>,
}

impl Verified {
    /// Served from cache only strictly before `exp` (no skew on reuse).
    pub fn usable_at(&self, now: u64) -> bool {
        self.exp.is_none_or(|exp| now < exp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    Denied(Reason),
    /// The token's kid is not in the current key set: a refetch may help.
    UnknownKid,
}

/// `verify_token_with` with ring only.
pub fn verify_token(
    provider_idx: usize,
    provider: &Provider,
    token: &str,
    jwks: &Jwks,
    now: u64,
) -> Result<Verified, VerifyError> {
    verify_token_with(
        provider_idx,
        provider,
        token,
        jwks,
        now,
        None,
        &mut VerifyStats::default(),
    )
}

/// Every check of one token for `provider`; RS* and ES* signatures go to
/// `host` when there is one (`stats` says who checked them).
pub fn verify_token_with(
    provider_idx: usize,
    provider: &Provider,
    token: &str,
    jwks: &Jwks,
    now: u64,
    host: Option<&dyn HostVerifier>,
    stats: &mut VerifyStats,
) -> Result<Verified, VerifyError> {
    let parsed = UntrustedToken::parse(token).map_err(|e| VerifyError::Denied(e.into()))?;
    // Select by issuer before touching keys, so another provider's token
    // never triggers this provider's unknown-kid refetch.
    if parsed.payload.get("iss").and_then(Value::as_str) != Some(provider.claims.issuer.as_str()) {
        return Err(VerifyError::Denied(Reason::IssuerMismatch));
    }
    if let Err(e) = jose::verify_with(&parsed, jwks, host, stats) {
        return Err(match e {
            JoseError::KidNotFound => VerifyError::UnknownKid,
            e => VerifyError::Denied(e.into()),
        });
    }
    claims::validate(&parsed.payload, &provider.claims, now)
        .map_err(|e| VerifyError::Denied(Reason::from(&e)))?;
    let payload_segment = token.split('.').nth(1).unwrap_or_default().to_string();
    let exp = parsed.payload.get("exp").and_then(numeric_date);
    let identity = Rc::new(Identity::from_claims(&provider.name, parsed.payload));
    let identity_json = serde_json::to_vec(&*identity).unwrap_or_default();
    Ok(Verified {
        provider: provider_idx,
        exp,
        identity,
        payload_segment,
        identity_json,
    })
}

fn numeric_date(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}
