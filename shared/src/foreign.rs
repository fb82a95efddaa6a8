//! Envoy's `verify_signature` foreign function (Envoy's
//! `source/extensions/common/wasm/foreign.cc`): BoringSSL checks an RSA
//! PKCS#1 v1.5 or ECDSA signature natively, about ten times cheaper than
//! `ring` inside V8 (docs/jwt-auth.md, "Signature backend").
//!
//! Also the DER forms it takes: a SubjectPublicKeyInfo for the key, and the
//! `ECDSA-Sig-Value` for an ECDSA signature. The key is parsed again on every
//! call, so callers build its SPKI once, when they import the key.

use proxy_wasm::types::Status;

use crate::host::{Host, HostError};

pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// `envoy.source.extensions.common.wasm.VerifySignatureArguments`
/// (`public_key_pem` = 5 is not used).
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureArguments {
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// DER SubjectPublicKeyInfo.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
}

/// `envoy.source.extensions.common.wasm.VerifySignatureResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    pub result: bool,
    #[prost(string, tag = "2")]
    pub error: String,
}

/// The digests the host is asked for (it also knows sha1 and sha224; JWS does not use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }
}

/// Whether the host has `verify_signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Present,
    Absent,
    /// Neither answer a host with or without the function gives.
    Unexpected(String),
}

/// One call with empty arguments: they carry no key, so a host that has the
/// function refuses them (`BadArgument`) before any crypto; one that lacks
/// it answers `NotFound`.
pub fn probe_verify_signature<H: Host + ?Sized>(host: &H) -> Probe {
    match host.call_foreign_function(VERIFY_SIGNATURE, &[]) {
        Err(e) if e.is(Status::BadArgument) => Probe::Present,
        Err(e) if e.is(Status::NotFound) => Probe::Absent,
        Err(e) => Probe::Unexpected(e.to_string()),
        Ok(_) => Probe::Unexpected("verify_signature accepted empty arguments".into()),
    }
}

/// The host's verdict on `signature` over `text`. `Err` when the call failed
/// or its answer does not decode: the caller must then decide another way.
pub fn verify_signature<H: Host + ?Sized>(
    host: &H,
    hash: Hash,
    spki: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Result<bool, HostError> {
    let args = VerifySignatureArguments {
        hash_function: hash.name().to_string(),
        public_key: spki.to_vec(),
        signature: signature.to_vec(),
        text: text.to_vec(),
    };
    let answer =
        host.call_foreign_function(VERIFY_SIGNATURE, &prost::Message::encode_to_vec(&args))?;
    // A result of `false` with an empty error encodes to no bytes at all.
    let bytes = answer.unwrap_or_default();
    <VerifySignatureResult as prost::Message>::decode(bytes.as_slice())
        .map(|r| r.result)
        .map_err(|_| HostError {
            call: VERIFY_SIGNATURE,
            status: "undecodable result".into(),
        })
}

// ---------- DER (X.690) forms ----------

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// AlgorithmIdentifier rsaEncryption (RFC 3279 §2.3.1), NULL parameters.
const RSA_ALG: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// AlgorithmIdentifier id-ecPublicKey with namedCurve prime256v1 (RFC 5480 §2.1.1).
const P256_ALG: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// AlgorithmIdentifier id-ecPublicKey with namedCurve secp384r1.
const P384_ALG: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// SubjectPublicKeyInfo of an RSA key from its big-endian modulus and exponent.
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut ints = integer(n);
    ints.extend(integer(e));
    spki(RSA_ALG, &tlv(SEQUENCE, &ints))
}

/// SubjectPublicKeyInfo of an EC key; `point` is uncompressed SEC1 (`04‖x‖y`).
pub fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
    let alg = match curve {
        Curve::P256 => P256_ALG,
        Curve::P384 => P384_ALG,
    };
    spki(alg, point)
}

/// The DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3) of a JWS ECDSA signature,
/// the fixed-width `r‖s` of RFC 7518 §3.4; `None` unless it is exactly
/// `2 * scalar_len` bytes.
pub fn ecdsa_der(rs: &[u8], scalar_len: usize) -> Option<Vec<u8>> {
    if scalar_len == 0 || rs.len() != 2 * scalar_len {
        return None;
    }
    let (r, s) = rs.split_at(scalar_len);
    let mut ints = integer(r);
    ints.extend(integer(s));
    Some(tlv(SEQUENCE, &ints))
}

fn spki(alg: &[u8], key: &[u8]) -> Vec<u8> {
    // BIT STRING content: 0 unused bits, then the key bytes.
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    let mut body = alg.to_vec();
    body.extend(tlv(BIT_STRING, &bits));
    tlv(SEQUENCE, &body)
}

/// A non-negative INTEGER from big-endian bytes: minimal, with a 0x00 in
/// front when the top bit is set (DER forbids anything else).
fn integer(be: &[u8]) -> Vec<u8> {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let digits = &be[start..];
    let mut v = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(digits);
    tlv(INTEGER, &v)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
#[path = "foreign_tests.rs"]
mod tests;
