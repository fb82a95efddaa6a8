//! JWT claim validation (RFC 7519 §4.1) against a provider policy.

use std::fmt;

use serde_json::{Map, Value};

/// What a provider requires of a verified token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPolicy {
    pub issuer: String,
    /// Empty: `aud` is not checked.
    pub audiences: Vec<String>,
    pub require_exp: bool,
    /// Seconds of tolerance for exp/nbf/iat.
    pub clock_skew: u64,
    /// Maximum `exp - iat` (or `exp - now` without iat), seconds.
    pub max_lifetime: Option<u64>,
    pub required: Vec<ClaimRequirement>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequirement {
    /// Dotted claim name, pre-split (`org.id` => `["org", "id"]`).
    pub path: Vec<String>,
    pub check: ClaimCheck,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimCheck {
    Equals(Value),
    OneOf(Vec<Value>),
    /// Claim is an array holding the value, or a space-delimited string
    /// (like `scope`) holding it as a word.
    Contains(Value),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    ExpMissing,
    Expired,
    NotYetValid,
    IatInFuture,
    LifetimeExceeded,
    IssuerMismatch,
    AudienceMismatch,
    /// A required claim is absent or has another value; holds the
    /// configured claim name (never the token's value).
    ClaimMismatch(String),
    /// A registered claim has the wrong JSON type.
    ClaimInvalid(&'static str),
}

impl ClaimError {
    /// Stable reason code (`Reason::from` is the one mapping).
    pub fn reason(&self) -> &'static str {
        crate::reason::Reason::from(self).code()
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::ExpMissing => f.write_str("the token has no exp claim"),
            ClaimError::Expired => f.write_str("the token has expired"),
            ClaimError::NotYetValid => f.write_str("the token is not valid yet"),
            ClaimError::IatInFuture => f.write_str("the token was issued in the future"),
            ClaimError::LifetimeExceeded => {
                f.write_str("the token's lifetime exceeds the allowed maximum")
            }
            ClaimError::IssuerMismatch => f.write_str("the token's issuer is not accepted"),
            ClaimError::AudienceMismatch => f.write_str("the token's audience is not accepted"),
            ClaimError::ClaimMismatch(name) => {
                write!(f, "claim \"{name}\" does not satisfy the policy")
            }
            ClaimError::ClaimInvalid(name) => write!(f, "claim \"{name}\" has an invalid type"),
        }
    }
}

impl std::error::Error for ClaimError {}

/// NumericDate (RFC 7519 §2) as whole seconds. `round_up` picks the
/// conservative side for fractional values; floats saturate, never panic.
fn numeric_date(
    payload: &Map<String, Value>,
    name: &'static str,
    round_up: bool,
) -> Result<Option<i128>, ClaimError> {
    let Some(v) = payload.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = v else {
        return Err(ClaimError::ClaimInvalid(name));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i128::from(i)));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Some(i128::from(u)));
    }
    let f = n.as_f64().ok_or(ClaimError::ClaimInvalid(name))?;
    let f = if round_up { f.ceil() } else { f.floor() };
    // `as` saturates at the i64 bounds; that is far outside any real date.
    Ok(Some(i128::from(f as i64)))
}

/// Check time, issuer, audience and required claims, in that order.
pub fn validate(
    payload: &Map<String, Value>,
    policy: &ClaimPolicy,
    now: u64,
) -> Result<(), ClaimError> {
    let now = i128::from(now);
    let skew = i128::from(policy.clock_skew);

    // exp rounds down and nbf up, so fractional dates never gain time.
    let exp = numeric_date(payload, "exp", false)?;
    let nbf = numeric_date(payload, "nbf", true)?;
    let iat = numeric_date(payload, "iat", false)?;

    match exp {
        None if policy.require_exp => return Err(ClaimError::ExpMissing),
        Some(exp) if now >= exp + skew => return Err(ClaimError::Expired),
        _ => {}
    }
    if nbf.is_some_and(|nbf| now + skew < nbf) {
        return Err(ClaimError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now + skew) {
        return Err(ClaimError::IatInFuture);
    }
    if let Some(max) = policy.max_lifetime {
        // A token without exp never expires, so it exceeds any maximum.
        let lifetime = match exp {
            Some(exp) => exp - iat.unwrap_or(now),
            None => return Err(ClaimError::LifetimeExceeded),
        };
        if lifetime > i128::from(max) {
            return Err(ClaimError::LifetimeExceeded);
        }
    }

    match payload.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => {}
        Some(Value::String(_)) | None => return Err(ClaimError::IssuerMismatch),
        Some(_) => return Err(ClaimError::ClaimInvalid("iss")),
    }

    if !policy.audiences.is_empty() {
        let accepted = |a: &str| policy.audiences.iter().any(|x| x == a);
        let ok = match payload.get("aud") {
            None => false,
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(items)) => {
                let mut ok = false;
                for item in items {
                    match item {
                        Value::String(a) => ok |= accepted(a),
                        _ => return Err(ClaimError::ClaimInvalid("aud")),
                    }
                }
                ok
            }
            Some(_) => return Err(ClaimError::ClaimInvalid("aud")),
        };
        if !ok {
            return Err(ClaimError::AudienceMismatch);
        }
    }

    for req in &policy.required {
        let satisfied = claim_at(payload, &req.path).is_some_and(|v| check(v, &req.check));
        if !satisfied {
            return Err(ClaimError::ClaimMismatch(req.path.join(".")));
        }
    }
    Ok(())
}

fn check(value: &Value, check: &ClaimCheck) -> bool {
    match check {
        ClaimCheck::Equals(want) => value == want,
        ClaimCheck::OneOf(options) => options.iter().any(|o| o == value),
        ClaimCheck::Contains(want) => match (value, want) {
            (Value::Array(items), _) => items.contains(want),
            (Value::String(s), Value::String(w)) => s.split(' ').any(|word| word == w),
            _ => false,
        },
    }
}

pub use meshward_shared::facts::claims::dotted as claim_at;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: "https://idp.example".into(),
            audiences: vec![],
            require_exp: true,
            clock_skew: 60,
            max_lifetime: None,
            required: vec![],
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn base() -> Value {
        json!({"iss": "https://idp.example", "sub": "alice", "exp": NOW + 300, "iat": NOW})
    }

    fn with(extra: Value) -> Map<String, Value> {
        let mut p = obj(base());
        for (k, v) in obj(extra) {
            if v.is_null() {
                p.remove(&k);
            } else {
                p.insert(k, v);
            }
        }
        p
    }

    fn reason(p: &Map<String, Value>, pol: &ClaimPolicy) -> &'static str {
        match validate(p, pol, NOW) {
            Ok(()) => "ok",
            Err(e) => e.reason(),
        }
    }

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn valid_token_passes() {
        assert_eq!(reason(&obj(base()), &policy()), "ok");
    }

    #[test]
    fn exp_required_and_typed() {
        assert_eq!(
            reason(&with(json!({"exp": null})), &policy()),
            "exp_missing"
        );
        let mut p = policy();
        p.require_exp = false;
        assert_eq!(reason(&with(json!({"exp": null})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"exp": "1999999999"})), &policy()),
            "claim_invalid"
        );
        assert_eq!(reason(&with(json!({"exp": true})), &p), "claim_invalid");
    }

    #[test]
    fn expiry_boundary_with_skew() {
        // Expired iff now >= exp + skew.
        assert_eq!(
            reason(&with(json!({"exp": NOW - 61})), &policy()),
            "token_expired"
        );
        assert_eq!(
            reason(&with(json!({"exp": NOW - 60})), &policy()),
            "token_expired"
        );
        assert_eq!(reason(&with(json!({"exp": NOW - 59})), &policy()), "ok");
        let mut p = policy();
        p.clock_skew = 0;
        assert_eq!(reason(&with(json!({"exp": NOW})), &p), "token_expired");
        assert_eq!(reason(&with(json!({"exp": NOW + 1})), &p), "ok");
        // Fractional exp rounds down; negative and huge values do not panic.
        assert_eq!(
            reason(&with(json!({"exp": (NOW as f64) + 0.5})), &p),
            "token_expired"
        );
        assert_eq!(reason(&with(json!({"exp": -5})), &p), "token_expired");
        assert_eq!(reason(&with(json!({"exp": 1e300})), &p), "ok");
        assert_eq!(reason(&with(json!({"exp": u64::MAX})), &p), "ok");
    }

    #[test]
    fn nbf_with_skew() {
        assert_eq!(reason(&with(json!({"nbf": NOW + 60})), &policy()), "ok");
        assert_eq!(
            reason(&with(json!({"nbf": NOW + 61})), &policy()),
            "token_not_yet_valid"
        );
        assert_eq!(
            reason(&with(json!({"nbf": "soon"})), &policy()),
            "claim_invalid"
        );
        let mut p = policy();
        p.clock_skew = 0;
        assert_eq!(
            reason(&with(json!({"nbf": (NOW as f64) + 0.1})), &p),
            "token_not_yet_valid"
        );
    }

    #[test]
    fn iat_in_future() {
        assert_eq!(reason(&with(json!({"iat": NOW + 60})), &policy()), "ok");
        assert_eq!(
            reason(&with(json!({"iat": NOW + 61})), &policy()),
            "iat_in_future"
        );
        assert_eq!(
            reason(&with(json!({"iat": [1]})), &policy()),
            "claim_invalid"
        );
    }

    #[test]
    fn max_lifetime() {
        let mut p = policy();
        p.max_lifetime = Some(300);
        assert_eq!(reason(&obj(base()), &p), "ok");
        assert_eq!(
            reason(&with(json!({"exp": NOW + 301})), &p),
            "lifetime_exceeded"
        );
        // Without iat: measured from now.
        assert_eq!(
            reason(&with(json!({"iat": null, "exp": NOW + 300})), &p),
            "ok"
        );
        assert_eq!(
            reason(&with(json!({"iat": null, "exp": NOW + 301})), &p),
            "lifetime_exceeded"
        );
        // Old iat, short remaining: lifetime is exp - iat.
        assert_eq!(
            reason(&with(json!({"iat": NOW - 1000, "exp": NOW + 10})), &p),
            "lifetime_exceeded"
        );
        // No exp at all never fits a maximum.
        p.require_exp = false;
        assert_eq!(reason(&with(json!({"exp": null})), &p), "lifetime_exceeded");
    }

    #[test]
    fn issuer_exact() {
        assert_eq!(
            reason(&with(json!({"iss": "https://idp.example/"})), &policy()),
            "issuer_mismatch"
        );
        assert_eq!(
            reason(&with(json!({"iss": "HTTPS://IDP.EXAMPLE"})), &policy()),
            "issuer_mismatch"
        );
        assert_eq!(
            reason(&with(json!({"iss": null})), &policy()),
            "issuer_mismatch"
        );
        assert_eq!(
            reason(&with(json!({"iss": ["https://idp.example"]})), &policy()),
            "claim_invalid"
        );
    }

    #[test]
    fn audiences() {
        let mut p = policy();
        // Not configured: aud ignored.
        assert_eq!(reason(&with(json!({"aud": 5})), &p), "ok");
        p.audiences = vec!["api".into(), "web".into()];
        assert_eq!(reason(&obj(base()), &p), "audience_mismatch");
        assert_eq!(reason(&with(json!({"aud": "web"})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"aud": "other"})), &p),
            "audience_mismatch"
        );
        assert_eq!(reason(&with(json!({"aud": ["x", "api"]})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"aud": ["x", "y"]})), &p),
            "audience_mismatch"
        );
        assert_eq!(reason(&with(json!({"aud": []})), &p), "audience_mismatch");
        assert_eq!(
            reason(&with(json!({"aud": ["api", 1]})), &p),
            "claim_invalid"
        );
        assert_eq!(
            reason(&with(json!({"aud": {"api": true}})), &p),
            "claim_invalid"
        );
    }

    fn require(name: &str, check: ClaimCheck) -> ClaimPolicy {
        let mut p = policy();
        p.required = vec![ClaimRequirement {
            path: path(name),
            check,
        }];
        p
    }

    #[test]
    fn required_equals() {
        let p = require("tenant", ClaimCheck::Equals(json!("acme")));
        assert_eq!(reason(&with(json!({"tenant": "acme"})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"tenant": "acme2"})), &p),
            "claim_mismatch"
        );
        assert_eq!(reason(&obj(base()), &p), "claim_mismatch");
        let p = require("level", ClaimCheck::Equals(json!(3)));
        assert_eq!(reason(&with(json!({"level": 3})), &p), "ok");
        assert_eq!(reason(&with(json!({"level": "3"})), &p), "claim_mismatch");
        let err = validate(&with(json!({"level": 4})), &p, NOW).unwrap_err();
        assert_eq!(err, ClaimError::ClaimMismatch("level".into()));
        assert!(!err.to_string().contains('4'));
    }

    #[test]
    fn required_one_of() {
        let p = require(
            "env",
            ClaimCheck::OneOf(vec![json!("prod"), json!("stage")]),
        );
        assert_eq!(reason(&with(json!({"env": "stage"})), &p), "ok");
        assert_eq!(reason(&with(json!({"env": "dev"})), &p), "claim_mismatch");
        assert_eq!(
            reason(&with(json!({"env": ["prod"]})), &p),
            "claim_mismatch"
        );
    }

    #[test]
    fn required_contains() {
        let p = require("groups", ClaimCheck::Contains(json!("admins")));
        assert_eq!(
            reason(&with(json!({"groups": ["users", "admins"]})), &p),
            "ok"
        );
        assert_eq!(
            reason(&with(json!({"groups": ["users"]})), &p),
            "claim_mismatch"
        );
        assert_eq!(reason(&with(json!({"groups": "users admins"})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"groups": "users superadmins"})), &p),
            "claim_mismatch"
        );
        assert_eq!(reason(&with(json!({"groups": "admins"})), &p), "ok");
        assert_eq!(
            reason(&with(json!({"groups": {"admins": 1}})), &p),
            "claim_mismatch"
        );
        let p = require("ids", ClaimCheck::Contains(json!(7)));
        assert_eq!(reason(&with(json!({"ids": [1, 7]})), &p), "ok");
        assert_eq!(reason(&with(json!({"ids": "7"})), &p), "claim_mismatch");
    }

    #[test]
    fn nested_and_dotted_claims() {
        let p = with(json!({
            "org": {"id": "o1", "team": {"name": "red"}},
            "https://ex.com/roles": ["admin"],
            "a.b": {"c": 1},
            "flat": 1
        }));
        assert_eq!(claim_at(&p, &path("org.id")), Some(&json!("o1")));
        assert_eq!(claim_at(&p, &path("org.team.name")), Some(&json!("red")));
        assert_eq!(
            claim_at(&p, &path("https://ex.com/roles")),
            Some(&json!(["admin"]))
        );
        assert_eq!(claim_at(&p, &path("a.b.c")), Some(&json!(1)));
        assert_eq!(claim_at(&p, &path("org.missing")), None);
        assert_eq!(claim_at(&p, &path("flat.x")), None);
        assert_eq!(claim_at::<String>(&p, &[]), None);
        let pol = require("org.team.name", ClaimCheck::Equals(json!("red")));
        assert_eq!(reason(&p, &pol), "ok");
    }

    #[test]
    fn reasons_are_stable() {
        let all = [
            (ClaimError::ExpMissing, "exp_missing"),
            (ClaimError::Expired, "token_expired"),
            (ClaimError::NotYetValid, "token_not_yet_valid"),
            (ClaimError::IatInFuture, "iat_in_future"),
            (ClaimError::LifetimeExceeded, "lifetime_exceeded"),
            (ClaimError::IssuerMismatch, "issuer_mismatch"),
            (ClaimError::AudienceMismatch, "audience_mismatch"),
            (ClaimError::ClaimMismatch("x".into()), "claim_mismatch"),
            (ClaimError::ClaimInvalid("exp"), "claim_invalid"),
        ];
        for (e, r) in all {
            assert_eq!(e.reason(), r);
            assert!(!e.to_string().is_empty());
        }
    }
}
