//! Test/bench-only token minting from fixture keys committed under
//! `tests/data/` (throwaway keys, never used outside tests).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::OnceLock;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::{hmac, rsa, signature};
use serde_json::{json, Value};

use super::{Alg, B64_STRICT};

const RSA_2048: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/rsa2048.pk8.der"
));
const RSA_2048_B: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/rsa2048b.pk8.der"
));
const P256: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/p256.pk8.der"
));
const P384: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/p384.pk8.der"
));
/// Public half of a 1024-bit RSA key (ring cannot load the private half).
pub const RSA_1024_JWK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/rsa1024.pub.jwk.json"
));

const ED25519_SEED: [u8; 32] = [0x11; 32];

pub const KID_RSA: &str = "rsa-2048";
pub const KID_RSA_B: &str = "rsa-2048-b";
pub const KID_P256: &str = "ec-p256";
pub const KID_P384: &str = "ec-p384";
pub const KID_ED25519: &str = "ed25519";
pub const KID_HMAC: &str = "hmac-64";

/// 64-byte HMAC secret: long enough for HS256/384/512.
pub fn hmac_secret() -> Vec<u8> {
    (0u8..64)
        .map(|i| i.wrapping_mul(37).wrapping_add(5))
        .collect()
}

struct Keys {
    rsa: rsa::KeyPair,
    rsa_b: rsa::KeyPair,
    p256: signature::EcdsaKeyPair,
    p384: signature::EcdsaKeyPair,
    ed25519: signature::Ed25519KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        Keys {
            rsa: rsa::KeyPair::from_pkcs8(RSA_2048).expect("rsa2048 fixture"),
            rsa_b: rsa::KeyPair::from_pkcs8(RSA_2048_B).expect("rsa2048b fixture"),
            p256: signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                P256,
                &rng,
            )
            .expect("p256 fixture"),
            p384: signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                P384,
                &rng,
            )
            .expect("p384 fixture"),
            ed25519: signature::Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED)
                .expect("ed25519 seed"),
        }
    })
}

pub fn b64(bytes: &[u8]) -> String {
    B64_STRICT.encode(bytes)
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    B64_STRICT.decode(s).expect("base64url")
}

/// The fixture kid whose key signs `alg`.
pub fn kid_for(alg: Alg) -> &'static str {
    match alg {
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => KID_RSA,
        Alg::Es256 => KID_P256,
        Alg::Es384 => KID_P384,
        Alg::EdDsa => KID_ED25519,
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => KID_HMAC,
    }
}

fn rsa_jwk(kp: &rsa::KeyPair, kid: &str) -> Value {
    let c: signature::RsaPublicKeyComponents<Vec<u8>> = kp.public().into();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
}

fn ec_jwk(kp: &signature::EcdsaKeyPair, kid: &str, crv: &str) -> Value {
    use signature::KeyPair;
    let point = kp.public_key().as_ref();
    let len = (point.len() - 1) / 2;
    json!({"kty": "EC", "kid": kid, "crv": crv,
           "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
}

/// Public JWK for each fixture key, by kid.
pub fn jwk(kid: &str) -> Value {
    use signature::KeyPair;
    let k = keys();
    match kid {
        KID_RSA => rsa_jwk(&k.rsa, KID_RSA),
        KID_RSA_B => rsa_jwk(&k.rsa_b, KID_RSA_B),
        KID_P256 => ec_jwk(&k.p256, KID_P256, "P-256"),
        KID_P384 => ec_jwk(&k.p384, KID_P384, "P-384"),
        KID_ED25519 => json!({"kty": "OKP", "kid": KID_ED25519, "crv": "Ed25519",
                              "x": b64(k.ed25519.public_key().as_ref())}),
        KID_HMAC => json!({"kty": "oct", "kid": KID_HMAC, "k": b64(&hmac_secret())}),
        _ => panic!("no fixture key {kid}"),
    }
}

/// JWKS JSON holding every fixture key (public halves, plus the HMAC secret).
pub fn jwks_json() -> String {
    jwks_of(&[
        KID_RSA,
        KID_RSA_B,
        KID_P256,
        KID_P384,
        KID_ED25519,
        KID_HMAC,
    ])
}

/// JWKS JSON holding the named fixture keys.
pub fn jwks_of(kids: &[&str]) -> String {
    let keys: Vec<Value> = kids.iter().map(|k| jwk(k)).collect();
    json!({ "keys": keys }).to_string()
}

/// Raw signature over `msg` with the fixture key for `alg`.
pub fn sign_bytes(alg: Alg, msg: &[u8]) -> Vec<u8> {
    sign_bytes_with(alg, kid_for(alg), msg)
}

/// Raw signature with a specific fixture key (`KID_RSA_B` for rotation tests).
pub fn sign_bytes_with(alg: Alg, kid: &str, msg: &[u8]) -> Vec<u8> {
    let k = keys();
    let rng = SystemRandom::new();
    let rsa_sign = |pad: &'static dyn signature::RsaEncoding| {
        let kp = if kid == KID_RSA_B { &k.rsa_b } else { &k.rsa };
        let mut sig = vec![0u8; kp.public().modulus_len()];
        kp.sign(pad, &rng, msg, &mut sig).expect("rsa sign");
        sig
    };
    match alg {
        Alg::Rs256 => rsa_sign(&signature::RSA_PKCS1_SHA256),
        Alg::Rs384 => rsa_sign(&signature::RSA_PKCS1_SHA384),
        Alg::Rs512 => rsa_sign(&signature::RSA_PKCS1_SHA512),
        Alg::Ps256 => rsa_sign(&signature::RSA_PSS_SHA256),
        Alg::Ps384 => rsa_sign(&signature::RSA_PSS_SHA384),
        Alg::Ps512 => rsa_sign(&signature::RSA_PSS_SHA512),
        Alg::Es256 => k.p256.sign(&rng, msg).expect("p256 sign").as_ref().to_vec(),
        Alg::Es384 => k.p384.sign(&rng, msg).expect("p384 sign").as_ref().to_vec(),
        Alg::EdDsa => k.ed25519.sign(msg).as_ref().to_vec(),
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => {
            let h = match alg {
                Alg::Hs256 => hmac::HMAC_SHA256,
                Alg::Hs384 => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            hmac::sign(&hmac::Key::new(h, &hmac_secret()), msg)
                .as_ref()
                .to_vec()
        }
    }
}

/// Compact JWS over exact header/payload JSON text (lets tests craft
/// duplicate members, odd types and so on), signed for `alg`.
pub fn sign_raw(alg: Alg, header_json: &str, payload_json: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(payload_json.as_bytes())
    );
    let sig = sign_bytes(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Token with header `{"alg", "typ":"JWT", "kid"}` for the fixture key.
pub fn token(alg: Alg, payload: &Value) -> String {
    let header = json!({"alg": alg.name(), "typ": "JWT", "kid": kid_for(alg)});
    sign_raw(alg, &header.to_string(), &payload.to_string())
}

/// Token with a caller-chosen header object, signed for `alg`.
pub fn token_with_header(alg: Alg, header: &Value, payload: &Value) -> String {
    sign_raw(alg, &header.to_string(), &payload.to_string())
}

/// A typical claim set valid around `now`.
pub fn claims(now: u64) -> Value {
    json!({"iss": "https://idp.example", "sub": "alice", "aud": "api",
           "iat": now, "exp": now + 300, "scope": "read write"})
}

/// Envoy's `verify_signature` played by ring, at the `HostVerifier` seam: it
/// takes the forms BoringSSL takes (an SPKI, a DER ECDSA signature), so the
/// host path's key and signature encodings are exercised without Envoy.
pub struct RingAsHost;

impl super::HostVerifier for RingAsHost {
    fn verify(&self, hash: super::Hash, spki: &[u8], sig: &[u8], text: &[u8]) -> Option<bool> {
        use super::Hash;
        let (rsa, key) = spki_key(spki)?;
        let alg: &dyn signature::VerificationAlgorithm = match (rsa, key.len(), hash) {
            (true, _, Hash::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (true, _, Hash::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (true, _, Hash::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (false, 65, Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
            (false, 97, Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
            _ => return Some(false),
        };
        Some(
            signature::UnparsedPublicKey::new(alg, key)
                .verify(text, sig)
                .is_ok(),
        )
    }
}

/// (is RSA, the key inside the BIT STRING) of a DER SubjectPublicKeyInfo.
pub fn spki_key(spki: &[u8]) -> Option<(bool, &[u8])> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (tag, first) = (*b.first()?, *b.get(1)? as usize);
        let (len, head) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            let len = b
                .get(2..2 + n)?
                .iter()
                .fold(0usize, |a, x| a << 8 | *x as usize);
            (len, 2 + n)
        };
        Some((tag, b.get(head..head + len)?, b.get(head + len..)?))
    }
    let (_, body, _) = tlv(spki)?;
    let (_, alg, rest) = tlv(body)?;
    let (tag, bits, _) = tlv(rest)?;
    (tag == 3 && bits.first() == Some(&0)).then_some(())?;
    let rsa = alg
        .windows(9)
        .any(|w| w == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1]);
    Some((rsa, &bits[1..]))
}
