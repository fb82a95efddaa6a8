//! JWK Set import (RFC 7517, RFC 7518 §6, RFC 8037). Keys are validated and
//! turned into ring verification objects once, at parse time.

use std::fmt;

use base64::Engine;
use ring::{hmac, signature};
use serde_json::{Map, Value};

use meshward_shared::foreign::{self, Curve, Hash};

use super::{Alg, HostVerifier, VerifyStats, B64_JWK};

const RSA_MIN_BITS: usize = 2048;
// ring's RSA verifiers accept at most 8192-bit moduli.
const RSA_MAX_BITS: usize = 8192;
const HMAC_MIN_LEN: usize = 32;

const PRIVATE_MATERIAL: &str = "private key material must not be configured";

/// A problem with the key set or one of its keys. `path` names the member,
/// e.g. `keys[2].n`; it is empty when the document itself is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksError {
    pub path: String,
    pub message: String,
}

impl JwksError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        JwksError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JwksError {}

/// A validated set of verification keys.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Config-time parse: any unusable or dubious key is an error.
    pub fn parse_strict(json: &str) -> Result<Jwks, JwksError> {
        let entries = parse_document(json)?;
        if entries.is_empty() {
            return Err(JwksError::new("keys", "must contain at least one key"));
        }
        let keys = entries
            .iter()
            .enumerate()
            .map(|(i, v)| parse_key(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Jwks { keys })
    }

    /// Remote-fetch parse: document errors fail, bad keys are skipped and
    /// returned so the caller can log them.
    pub fn parse_lenient(json: &str) -> Result<(Jwks, Vec<JwksError>), JwksError> {
        let entries = parse_document(json)?;
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for (i, v) in entries.iter().enumerate() {
            match parse_key(i, v) {
                Ok(k) => keys.push(k),
                Err(e) => skipped.push(e),
            }
        }
        Ok((Jwks { keys }, skipped))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    pub(crate) fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

fn parse_document(json: &str) -> Result<Vec<Value>, JwksError> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| JwksError::new("", format!("JWKS is not valid JSON: {e}")))?;
    let Value::Object(mut obj) = doc else {
        return Err(JwksError::new("", "JWKS must be a JSON object"));
    };
    match obj.remove("keys") {
        Some(Value::Array(keys)) => Ok(keys),
        Some(_) => Err(JwksError::new("keys", "must be an array")),
        None => Err(JwksError::new("keys", "missing")),
    }
}

/// Which algs a key's own `alg` member allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAlg {
    Any,
    Only(Alg),
    /// An alg we do not verify with (e.g. `RSA-OAEP`): never usable.
    Foreign,
}

#[derive(Clone)]
enum Material {
    Rsa(signature::RsaPublicKeyComponents<Vec<u8>>),
    EcP256(signature::UnparsedPublicKey<Vec<u8>>),
    EcP384(signature::UnparsedPublicKey<Vec<u8>>),
    Ed25519(signature::UnparsedPublicKey<Vec<u8>>),
    /// Boxed: three ring HMAC keys dwarf the other variants.
    Oct(Box<OctKeys>),
}

/// One precomputed HMAC key per hash the secret is long enough for.
#[derive(Clone)]
struct OctKeys {
    hs256: Option<hmac::Key>,
    hs384: Option<hmac::Key>,
    hs512: Option<hmac::Key>,
}

impl Material {
    fn kty(&self) -> &'static str {
        match self {
            Material::Rsa(_) => "RSA",
            Material::EcP256(_) => "EC/P-256",
            Material::EcP384(_) => "EC/P-384",
            Material::Ed25519(_) => "OKP/Ed25519",
            Material::Oct(_) => "oct",
        }
    }
}

/// One verification key.
#[derive(Clone)]
pub(crate) struct Jwk {
    kid: Option<String>,
    alg: KeyAlg,
    /// `use` and `key_ops` allow signature verification.
    for_verify: bool,
    material: Material,
    /// DER SubjectPublicKeyInfo for the host's `verify_signature` (RSA and
    /// EC keys), built once here: the host parses the key on every call.
    spki: Option<Vec<u8>>,
}

// Manual Debug: never print (secret) key bytes.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &self.material.kty())
            .field("alg", &self.alg)
            .field("for_verify", &self.for_verify)
            .finish()
    }
}

impl Jwk {
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn usable_for(&self, alg: Alg) -> bool {
        if !self.for_verify {
            return false;
        }
        match self.alg {
            KeyAlg::Any => {}
            KeyAlg::Only(a) if a == alg => {}
            _ => return false,
        }
        // The family check is what makes RS->HS key confusion impossible:
        // an RSA key is only ever handed to an RSA verifier.
        match (&self.material, alg) {
            (
                Material::Rsa(_),
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
            ) => true,
            (Material::EcP256(_), Alg::Es256) => true,
            (Material::EcP384(_), Alg::Es384) => true,
            (Material::Ed25519(_), Alg::EdDsa) => true,
            (Material::Oct(k), Alg::Hs256) => k.hs256.is_some(),
            (Material::Oct(k), Alg::Hs384) => k.hs384.is_some(),
            (Material::Oct(k), Alg::Hs512) => k.hs512.is_some(),
            _ => false,
        }
    }

    /// Call only after `usable_for(alg)`. RS* and ES* go to `host` when
    /// there is one; a failed host call falls back to ring, never to accept.
    pub(crate) fn check(
        &self,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
        host: Option<&dyn HostVerifier>,
        stats: &mut VerifyStats,
    ) -> bool {
        if let (Some(host), Some(spki), Some(hash)) = (host, &self.spki, host_hash(alg)) {
            // Wrong lengths are refused here, as ring would: no host call.
            let der;
            let host_sig = match &self.material {
                Material::Rsa(k) if sig.len() == k.n.len() => sig,
                Material::EcP256(_) | Material::EcP384(_) => {
                    match foreign::ecdsa_der(sig, alg.ecdsa_scalar_len()) {
                        Some(d) => {
                            der = d;
                            &der
                        }
                        None => return false,
                    }
                }
                _ => return false,
            };
            match host.verify(hash, spki, host_sig, msg) {
                Some(verdict) => {
                    stats.host += 1;
                    return verdict;
                }
                None => stats.host_failed += 1,
            }
        }
        stats.ring += 1;
        self.verify(alg, msg, sig)
    }

    /// ring's verdict. Call only after `usable_for(alg)`; a family mismatch returns false.
    pub(crate) fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        use signature::*;
        match &self.material {
            Material::Rsa(k) => {
                let params: &RsaParameters = match alg {
                    Alg::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &RSA_PSS_2048_8192_SHA384,
                    Alg::Ps512 => &RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                k.verify(params, msg, sig).is_ok()
            }
            // The *_FIXED verifiers take only raw r||s (RFC 7518 §3.4), so a
            // DER signature or a wrong length fails.
            Material::EcP256(k) => alg == Alg::Es256 && k.verify(msg, sig).is_ok(),
            Material::EcP384(k) => alg == Alg::Es384 && k.verify(msg, sig).is_ok(),
            Material::Ed25519(k) => alg == Alg::EdDsa && k.verify(msg, sig).is_ok(),
            Material::Oct(keys) => {
                let key = match alg {
                    Alg::Hs256 => &keys.hs256,
                    Alg::Hs384 => &keys.hs384,
                    Alg::Hs512 => &keys.hs512,
                    _ => return false,
                };
                // ring::hmac::verify compares in constant time.
                key.as_ref()
                    .is_some_and(|k| hmac::verify(k, msg, sig).is_ok())
            }
        }
    }
}

/// Reads typed members of one JWK and names them in errors.
struct Members<'a> {
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> Members<'a> {
    fn err(&self, member: &str, message: impl Into<String>) -> JwksError {
        JwksError::new(format!("keys[{}].{member}", self.index), message)
    }

    fn opt_str(&self, member: &str) -> Result<Option<&'a str>, JwksError> {
        match self.obj.get(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(member, "must be a string")),
        }
    }

    fn req_str(&self, member: &str) -> Result<&'a str, JwksError> {
        self.opt_str(member)?
            .ok_or_else(|| self.err(member, "missing"))
    }

    fn req_b64(&self, member: &str) -> Result<Vec<u8>, JwksError> {
        let s = self.req_str(member)?;
        let bytes = B64_JWK
            .decode(s)
            .map_err(|_| self.err(member, "not valid base64url"))?;
        if bytes.is_empty() {
            return Err(self.err(member, "must not be empty"));
        }
        Ok(bytes)
    }

    fn reject_private(&self, members: &[&str]) -> Result<(), JwksError> {
        match members.iter().find(|m| self.obj.contains_key(**m)) {
            Some(m) => Err(self.err(m, PRIVATE_MATERIAL)),
            None => Ok(()),
        }
    }

    /// `use` (if present) must be "sig" and `key_ops` (if present) must
    /// contain "verify" for the key to verify signatures.
    fn for_verify(&self) -> Result<bool, JwksError> {
        let use_ok = self.opt_str("use")?.is_none_or(|u| u == "sig");
        let ops_ok = match self.obj.get("key_ops") {
            None => true,
            Some(Value::Array(ops)) => {
                let mut has_verify = false;
                for op in ops {
                    match op {
                        Value::String(s) => has_verify |= s == "verify",
                        _ => return Err(self.err("key_ops", "must be an array of strings")),
                    }
                }
                has_verify
            }
            Some(_) => return Err(self.err("key_ops", "must be an array of strings")),
        };
        Ok(use_ok && ops_ok)
    }
}

fn parse_key(index: usize, value: &Value) -> Result<Jwk, JwksError> {
    let Value::Object(obj) = value else {
        return Err(JwksError::new(
            format!("keys[{index}]"),
            "must be a JSON object",
        ));
    };
    let m = Members { index, obj };
    let kty = m.req_str("kty")?;
    let kid = m.opt_str("kid")?.map(str::to_owned);
    let alg = match m.opt_str("alg")? {
        None => KeyAlg::Any,
        Some(name) => Alg::from_name(name).map_or(KeyAlg::Foreign, KeyAlg::Only),
    };
    let for_verify = m.for_verify()?;

    let material = match kty {
        "RSA" => rsa_key(&m)?,
        "EC" => ec_key(&m)?,
        "OKP" => okp_key(&m)?,
        "oct" => oct_key(&m, alg)?,
        _ => return Err(m.err("kty", "unsupported key type")),
    };

    // A declared alg from another family is a configuration mistake.
    if let KeyAlg::Only(a) = alg {
        let fits = match (&material, a) {
            (Material::Oct(_), _) => a.hmac_min_len().is_some(),
            (
                Material::Rsa(_),
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
            ) => true,
            (Material::EcP256(_), Alg::Es256)
            | (Material::EcP384(_), Alg::Es384)
            | (Material::Ed25519(_), Alg::EdDsa) => true,
            _ => false,
        };
        if !fits {
            return Err(m.err(
                "alg",
                format!("{} does not fit a {} key", a.name(), material.kty()),
            ));
        }
    }

    let spki = match &material {
        Material::Rsa(k) => Some(foreign::rsa_spki(&k.n, &k.e)),
        Material::EcP256(k) => Some(foreign::ec_spki(Curve::P256, k.as_ref())),
        Material::EcP384(k) => Some(foreign::ec_spki(Curve::P384, k.as_ref())),
        Material::Ed25519(_) | Material::Oct(_) => None,
    };
    Ok(Jwk {
        kid,
        alg,
        for_verify,
        material,
        spki,
    })
}

/// The digest the host verifies with; `None` for what stays with ring
/// (PS*: the host does PKCS#1 v1.5 only; EdDSA; HMAC).
fn host_hash(alg: Alg) -> Option<Hash> {
    match alg {
        Alg::Rs256 | Alg::Es256 => Some(Hash::Sha256),
        Alg::Rs384 | Alg::Es384 => Some(Hash::Sha384),
        Alg::Rs512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn rsa_key(m: &Members<'_>) -> Result<Material, JwksError> {
    m.reject_private(&["d", "p", "q", "dp", "dq", "qi", "oth"])?;
    let mut n = m.req_b64("n")?;
    // ring wants minimal big-endian integers; some publishers add a 0x00.
    let zeros = n.iter().take_while(|b| **b == 0).count();
    n.drain(..zeros);
    let bits = match n.first() {
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if bits < RSA_MIN_BITS {
        return Err(m.err(
            "n",
            format!("RSA modulus is {bits} bits; at least {RSA_MIN_BITS} are required"),
        ));
    }
    if bits > RSA_MAX_BITS {
        return Err(m.err(
            "n",
            format!("RSA modulus is {bits} bits; at most {RSA_MAX_BITS} are supported"),
        ));
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err(m.err("n", "RSA modulus must be odd"));
    }
    let mut e = m.req_b64("e")?;
    let zeros = e.iter().take_while(|b| **b == 0).count();
    e.drain(..zeros);
    // Same bounds ring enforces at verify time: odd, 3 <= e < 2^33.
    let e_val = if e.len() > 5 {
        u64::MAX
    } else {
        e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    if !(3..(1u64 << 33)).contains(&e_val) || e_val & 1 == 0 {
        return Err(m.err("e", "RSA exponent must be odd, at least 3 and below 2^33"));
    }
    Ok(Material::Rsa(signature::RsaPublicKeyComponents { n, e }))
}

fn ec_key(m: &Members<'_>) -> Result<Material, JwksError> {
    m.reject_private(&["d"])?;
    let crv = m.req_str("crv")?;
    let len = match crv {
        "P-256" => 32,
        "P-384" => 48,
        _ => return Err(m.err("crv", "unsupported EC curve (P-256 and P-384 are)")),
    };
    let x = m.req_b64("x")?;
    let y = m.req_b64("y")?;
    // RFC 7518 §6.2.1.2: coordinates are full-length octet strings.
    if x.len() != len {
        return Err(m.err("x", format!("must be {len} bytes for {crv}")));
    }
    if y.len() != len {
        return Err(m.err("y", format!("must be {len} bytes for {crv}")));
    }
    // Uncompressed SEC1 point; ring checks it is on the curve at verify.
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(if len == 32 {
        Material::EcP256(signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            point,
        ))
    } else {
        Material::EcP384(signature::UnparsedPublicKey::new(
            &signature::ECDSA_P384_SHA384_FIXED,
            point,
        ))
    })
}

fn okp_key(m: &Members<'_>) -> Result<Material, JwksError> {
    m.reject_private(&["d"])?;
    let crv = m.req_str("crv")?;
    if crv != "Ed25519" {
        return Err(m.err("crv", "unsupported OKP curve (Ed25519 is)"));
    }
    let x = m.req_b64("x")?;
    if x.len() != 32 {
        return Err(m.err("x", "must be 32 bytes for Ed25519"));
    }
    Ok(Material::Ed25519(signature::UnparsedPublicKey::new(
        &signature::ED25519,
        x,
    )))
}

fn oct_key(m: &Members<'_>, alg: KeyAlg) -> Result<Material, JwksError> {
    let k = m.req_b64("k")?;
    let min = match alg {
        KeyAlg::Only(a) => a.hmac_min_len().unwrap_or(HMAC_MIN_LEN),
        _ => HMAC_MIN_LEN,
    };
    if k.len() < min {
        return Err(m.err(
            "k",
            format!("HMAC key is {} bytes; at least {min} are required", k.len()),
        ));
    }
    // Precompute only the HMAC keys this secret is long enough (and, if
    // `alg` is declared, allowed) for.
    let make = |a: Alg, ring_alg: hmac::Algorithm| {
        let allowed = match alg {
            KeyAlg::Any => true,
            KeyAlg::Only(only) => only == a,
            KeyAlg::Foreign => false,
        };
        (allowed && a.hmac_min_len().is_some_and(|min| k.len() >= min))
            .then(|| hmac::Key::new(ring_alg, &k))
    };
    Ok(Material::Oct(Box::new(OctKeys {
        hs256: make(Alg::Hs256, hmac::HMAC_SHA256),
        hs384: make(Alg::Hs384, hmac::HMAC_SHA384),
        hs512: make(Alg::Hs512, hmac::HMAC_SHA512),
    })))
}
