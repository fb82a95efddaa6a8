//! `meshward jwt inspect` and `meshward token`: decode a token and verify it
//! with jwt-auth's own code (its JOSE parser and signature checks, and with
//! a jwt-auth config, every check a provider makes); mint ES256 dev tokens
//! like the ones `make run` prints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_auth::config::Config;
use jwt_auth::jose::{self, Jwks, UntrustedToken};
use jwt_auth::keys::KeySource;
use jwt_auth::verify::{verify_token, VerifyError};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Map, Value};

/// What `inspect` found, and whether every check asked for passed.
#[derive(Debug)]
pub struct Inspection {
    pub report: Value,
    pub ok: bool,
}

/// Decode `token`; with `jwks`, check its signature; with a jwt-auth
/// `config`, run each provider's checks (keys from `jwks` when given, else
/// the provider's inline ones).
pub fn inspect(
    token: &str,
    jwks: Option<&str>,
    config: Option<&[u8]>,
    now: u64,
) -> Result<Inspection, String> {
    let token = token.trim().trim_start_matches("Bearer ").trim();
    let parsed = UntrustedToken::parse(token).map_err(|e| format!("token: {e}"))?;
    let mut report = json!({
        "header": {"alg": parsed.header.alg.name(), "kid": parsed.header.kid, "typ": parsed.header.typ},
        "payload": parsed.payload,
    });
    let mut ok = true;
    let keys = match jwks {
        Some(text) => Some(Jwks::parse_strict(text).map_err(|e| format!("jwks: {e}"))?),
        None => None,
    };
    if let Some(keys) = &keys {
        let verdict = match jose::verify(&parsed, keys) {
            Ok(()) => "valid".to_string(),
            Err(e) => {
                ok = false;
                format!("invalid: {e}")
            }
        };
        report["signature"] = Value::String(verdict);
    }
    if let Some(bytes) = config {
        let config = Config::from_json(bytes).map_err(|e| format!("jwt-auth config: {e}"))?;
        let mut verdicts = Vec::new();
        let mut accepted = false;
        for (i, p) in config.providers.iter().enumerate() {
            let provider_keys = match (&keys, &p.keys) {
                (Some(k), _) => k.clone(),
                (None, KeySource::Local(k)) => (**k).clone(),
                (None, KeySource::Remote(_)) => {
                    verdicts.push(json!({"provider": p.name, "verdict": "skipped",
                                         "detail": "remote keys: give them with --jwks"}));
                    continue;
                }
            };
            let v = match verify_token(i, p, token, &provider_keys, now) {
                Ok(v) => {
                    accepted = true;
                    json!({"provider": p.name, "verdict": "ok", "subject": v.identity.subject})
                }
                Err(VerifyError::Denied(r)) => {
                    json!({"provider": p.name, "verdict": r.code(), "detail": r.detail()})
                }
                Err(VerifyError::UnknownKid) => {
                    json!({"provider": p.name, "verdict": "kid_not_found"})
                }
            };
            verdicts.push(v);
        }
        ok &= accepted;
        report["providers"] = Value::Array(verdicts);
    }
    Ok(Inspection { report, ok })
}

/// What a minted token says.
pub struct Claims {
    pub kid: String,
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub scope: String,
    pub ttl: i64,
    pub extra: Map<String, Value>,
}

impl Default for Claims {
    /// The demo's (`scripts/run_demo.py`).
    fn default() -> Self {
        Claims {
            kid: "dev-es256".into(),
            iss: "https://dev.meshward.local".into(),
            aud: "meshward-demo".into(),
            sub: "dev-user".into(),
            scope: "read write".into(),
            ttl: 3600,
            extra: Map::new(),
        }
    }
}

/// The P-256 key in a PKCS#8 PEM file (as `make run` writes `.run/dev-key.pem`).
pub fn key_from_pem(pem: &str) -> Result<EcdsaKeyPair, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "key: not a PEM file")?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
        .map_err(|_| "key: not a PKCS#8 P-256 private key".to_string())
}

/// The public JWKS for `key`, the form jwt-auth's `local_jwks` takes.
pub fn jwks_for(key: &EcdsaKeyPair, kid: &str) -> Value {
    let point = key.public_key().as_ref();
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(point.len().saturating_sub(1) / 2);
    json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                     "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]})
}

/// An ES256 token for `claims`, valid from `now` for `ttl` seconds.
pub fn mint(key: &EcdsaKeyPair, claims: &Claims, now: u64) -> Result<String, String> {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": claims.kid});
    let mut payload = json!({"iss": claims.iss, "aud": claims.aud, "sub": claims.sub,
                             "scope": claims.scope, "iat": now,
                             "exp": (now as i64).saturating_add(claims.ttl)});
    for (k, v) in &claims.extra {
        payload[k] = v.clone();
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = key
        .sign(&SystemRandom::new(), input.as_bytes())
        .map_err(|_| "signing failed".to_string())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        (key_from_pem(&pem).unwrap(), pem)
    }

    fn config(jwks: &Value) -> Vec<u8> {
        json!({"providers": {"dev": {"issuer": "https://dev.meshward.local", "audiences": ["meshward-demo"],
               "local_jwks": {"inline_string": jwks.to_string()}}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_minted_token_passes_jwt_auths_own_checks() {
        let (k, _) = key();
        let jwks = jwks_for(&k, "dev-es256");
        let token = mint(&k, &Claims::default(), NOW).unwrap();
        let i = inspect(
            &token,
            Some(&jwks.to_string()),
            Some(&config(&jwks)),
            NOW + 1,
        )
        .unwrap();
        assert!(i.ok, "{}", i.report);
        assert_eq!(i.report["signature"], "valid");
        assert_eq!(i.report["providers"][0]["verdict"], "ok");
        assert_eq!(i.report["payload"]["sub"], "dev-user");
        assert_eq!(i.report["header"]["kid"], "dev-es256");
    }

    #[test]
    fn each_failure_is_named() {
        let (k, _) = key();
        let (other, _) = key();
        let jwks = jwks_for(&k, "dev-es256");
        let token = mint(&k, &Claims::default(), NOW).unwrap();
        // expired for the filter, still a good signature
        let i = inspect(&token, None, Some(&config(&jwks)), NOW + 7200).unwrap();
        assert!(!i.ok);
        assert_eq!(
            i.report["providers"][0]["verdict"], "token_expired",
            "{}",
            i.report
        );
        // signed by another key
        let forged = mint(&other, &Claims::default(), NOW).unwrap();
        let i = inspect(&forged, Some(&jwks.to_string()), None, NOW).unwrap();
        assert!(!i.ok);
        assert!(
            i.report["signature"]
                .as_str()
                .unwrap()
                .starts_with("invalid"),
            "{}",
            i.report
        );
        // not a token, not a key set, not a key
        assert!(inspect("abc", None, None, NOW)
            .unwrap_err()
            .starts_with("token:"));
        assert!(inspect(&token, Some("{}"), None, NOW)
            .unwrap_err()
            .starts_with("jwks:"));
        assert!(key_from_pem("hello").is_err());
    }
}
