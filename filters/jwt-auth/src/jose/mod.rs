//! JOSE core: strict compact-JWS parsing, JWKS import and signature
//! verification. Pure Rust over `ring`; every input is attacker-controlled.

mod jwks;
mod token;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
pub use meshward_shared::foreign::Hash;

pub use jwks::{Jwks, JwksError};
pub use token::{Header, UntrustedToken};

/// Token segments: unpadded base64url, canonical trailing bits only, so a
/// signature or payload has exactly one accepted encoding.
pub(crate) const B64_STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// JWK members: some publishers pad; padding changes nothing about the key.
pub(crate) const B64_JWK: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// The JWS algorithms this filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// Exact, case-sensitive JWA name (RFC 7518 names are case-sensitive).
    pub fn from_name(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    /// Bytes of r (and of s) in a JWS ECDSA signature; 0 for other algs.
    pub(crate) fn ecdsa_scalar_len(self) -> usize {
        match self {
            Alg::Es256 => 32,
            Alg::Es384 => 48,
            _ => 0,
        }
    }

    /// Minimum HMAC key length (RFC 7518 §3.2: at least the hash size).
    pub(crate) fn hmac_min_len(self) -> Option<usize> {
        match self {
            Alg::Hs256 => Some(32),
            Alg::Hs384 => Some(48),
            Alg::Hs512 => Some(64),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a token was refused. Display never echoes token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoseError {
    /// Structure, encoding or JSON is wrong; the detail is a fixed text.
    Malformed(&'static str),
    /// `alg` is `none` or not one we support.
    AlgNotAllowed(&'static str),
    /// The header carries a key-bearing member we never trust.
    HeaderForbidden(&'static str),
    /// `crit` present (we implement no extensions).
    CritUnsupported,
    /// No key has the token's `kid` (or the key set is empty).
    KidNotFound,
    /// Keys were found but none may verify this alg.
    KeyMismatch,
    /// No usable key verified the signature.
    BadSignature,
}

impl JoseError {
    /// Stable reason code for metrics, audit lines and problem bodies
    /// (`Reason::from` is the one mapping).
    pub fn reason(&self) -> &'static str {
        crate::reason::Reason::from(*self).code()
    }
}

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoseError::Malformed(d) => write!(f, "malformed token: {d}"),
            JoseError::AlgNotAllowed(d) => f.write_str(d),
            JoseError::HeaderForbidden(m) => {
                write!(f, "header parameter \"{m}\" is not accepted")
            }
            JoseError::CritUnsupported => {
                f.write_str("critical header extensions are not supported")
            }
            JoseError::KidNotFound => f.write_str("no key found for the token"),
            JoseError::KeyMismatch => f.write_str("no key is usable for the token's algorithm"),
            JoseError::BadSignature => f.write_str("signature verification failed"),
        }
    }
}

impl std::error::Error for JoseError {}

/// A signature check the host can do instead of ring: Envoy's
/// `verify_signature` (BoringSSL). Asked only for RS256/384/512 and
/// ES256/384, with the key's DER SubjectPublicKeyInfo and, for ECDSA, the
/// DER form of the signature.
pub trait HostVerifier {
    /// The host's verdict; `None` when the call failed (ring then decides).
    fn verify(&self, hash: Hash, spki: &[u8], signature: &[u8], text: &[u8]) -> Option<bool>;
}

/// Who checked the signatures of one token (one per key tried).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VerifyStats {
    /// Verdicts from the host.
    pub host: u32,
    /// Verdicts from ring, including those after a failed host call.
    pub ring: u32,
    /// Host calls that failed.
    pub host_failed: u32,
}

/// Verify `token`'s signature against `jwks` (RFC 7515 §5.2 key selection
/// narrowed by kid, kty/crv, alg, use and key_ops), with ring only.
pub fn verify(token: &UntrustedToken, jwks: &Jwks) -> Result<(), JoseError> {
    verify_with(token, jwks, None, &mut VerifyStats::default())
}

/// `verify`, sending RS* and ES* checks to `host` when there is one.
pub fn verify_with(
    token: &UntrustedToken,
    jwks: &Jwks,
    host: Option<&dyn HostVerifier>,
    stats: &mut VerifyStats,
) -> Result<(), JoseError> {
    verify_detached_with(
        jwks,
        token.header.alg,
        token.header.kid.as_deref(),
        token.signing_input(),
        token.signature(),
        host,
        stats,
    )
}

/// Key selection and signature check over raw bytes, with ring only.
/// `verify` is this function; it is public only so test vectors can drive
/// the same path.
#[doc(hidden)]
pub fn verify_detached(
    jwks: &Jwks,
    alg: Alg,
    kid: Option<&str>,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), JoseError> {
    verify_detached_with(
        jwks,
        alg,
        kid,
        signing_input,
        signature,
        None,
        &mut VerifyStats::default(),
    )
}

/// `verify_detached` with an optional host verifier.
#[doc(hidden)]
pub fn verify_detached_with(
    jwks: &Jwks,
    alg: Alg,
    kid: Option<&str>,
    signing_input: &[u8],
    signature: &[u8],
    host: Option<&dyn HostVerifier>,
    stats: &mut VerifyStats,
) -> Result<(), JoseError> {
    let mut found = false;
    let mut usable = false;
    for key in jwks.keys() {
        if let Some(kid) = kid {
            if key.kid() != Some(kid) {
                continue;
            }
        }
        found = true;
        if !key.usable_for(alg) {
            continue;
        }
        usable = true;
        if key.check(alg, signing_input, signature, host, stats) {
            return Ok(());
        }
    }
    if !found {
        Err(JoseError::KidNotFound)
    } else if !usable {
        Err(JoseError::KeyMismatch)
    } else {
        Err(JoseError::BadSignature)
    }
}
