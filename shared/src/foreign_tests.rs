use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

use super::*;
use crate::fake::FakeHost;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Test-only reader for ring's ASN.1 signatures: SEQUENCE { INTEGER r, INTEGER s }
/// (short lengths only, which P-256 and P-384 always have), as fixed `r‖s`.
fn der_to_rs(der: &[u8], len: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    assert_eq!(der[1] as usize, der.len() - 2);
    let mut out = Vec::new();
    let mut i = 2;
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let l = der[i + 1] as usize;
        let v = &der[i + 2..i + 2 + l];
        let v = if v[0] == 0 { &v[1..] } else { v };
        out.extend(std::iter::repeat_n(0, len - v.len()));
        out.extend_from_slice(v);
        i += 2 + l;
    }
    assert_eq!(i, der.len());
    out
}

fn keypair(alg: &'static signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pk8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pk8.as_ref(), &rng).unwrap()
}

/// `ecdsa_der` of ring's fixed-form signatures verifies under ring's ASN.1
/// verifier, and re-encoding ring's own ASN.1 signatures gives the same bytes.
/// Enough signatures that high-bit and short r/s values both occur.
#[test]
fn ecdsa_der_matches_rings_asn1_form() {
    let rng = SystemRandom::new();
    let cases = [
        (
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
            32,
            400,
        ),
        (
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
            48,
            100,
        ),
    ];
    for (fixed, asn1_signing, asn1_verify, len, n) in cases {
        let fixed_key = keypair(fixed);
        let asn1_key = keypair(asn1_signing);
        let (mut high, mut short) = (0, 0);
        for i in 0..n {
            let msg = format!("message {i}");
            let rs = fixed_key.sign(&rng, msg.as_bytes()).unwrap();
            let der = ecdsa_der(rs.as_ref(), len).unwrap();
            signature::UnparsedPublicKey::new(asn1_verify, fixed_key.public_key().as_ref())
                .verify(msg.as_bytes(), &der)
                .unwrap_or_else(|_| panic!("signature {i} ({len}-byte scalars) refused"));

            let theirs = asn1_key.sign(&rng, msg.as_bytes()).unwrap();
            let rs = der_to_rs(theirs.as_ref(), len);
            assert_eq!(ecdsa_der(&rs, len).unwrap(), theirs.as_ref());
            high += usize::from(rs[0] & 0x80 != 0) + usize::from(rs[len] & 0x80 != 0);
            short += usize::from(rs[0] == 0) + usize::from(rs[len] == 0);
        }
        assert!(high > 0, "no r or s with the top bit set");
        if len == 32 {
            // 800 scalars: about three begin with a zero byte; none is unlikely (e^-3).
            assert!(short > 0 || high > 300, "no short r or s in {n} signatures");
        }
    }
}

#[test]
fn ecdsa_der_edge_values() {
    // r = 1 (leading zeros dropped), s = top bit set (0x00 added).
    let mut rs = vec![0u8; 64];
    rs[31] = 1;
    rs[32] = 0x80;
    let der = ecdsa_der(&rs, 32).unwrap();
    let mut want = hex("3026020101022100");
    want.push(0x80);
    want.extend([0u8; 31]);
    assert_eq!(der, want);
    // zero is encoded as one 0x00 byte, not as nothing
    assert_eq!(ecdsa_der(&[0u8; 64], 32).unwrap(), hex("3006020100020100"));
    for bad in [0, 1, 63, 65, 70, 96] {
        assert_eq!(ecdsa_der(&vec![1u8; bad], 32), None, "{bad} bytes");
    }
    assert_eq!(ecdsa_der(&[1u8; 64], 48), None);
    assert!(ecdsa_der(&[1u8; 96], 48).is_some());
    assert_eq!(ecdsa_der(&[], 0), None);
}

/// The RFC 7515 A.3 key, against the SPKI Python's `cryptography` (OpenSSL) writes.
#[test]
fn ec_spki_known_answer() {
    let x = hex("7fcdce2770f6c45d4183cbee6fdb4b7b580733357be9ef13bacf6e3c7bd15445");
    let y = hex("c7f144cd1bbd9b7e872cdfedb9eeb9f4b3695d6ea90b24ad8a4623288588e5ad");
    let mut point = vec![4u8];
    point.extend(&x);
    point.extend(&y);
    let want = hex(concat!(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200047fcdce2770f6c45d4183cbee",
        "6fdb4b7b580733357be9ef13bacf6e3c7bd15445c7f144cd1bbd9b7e872cdfedb9eeb9f4b3695d",
        "6ea90b24ad8a4623288588e5ad"
    ));
    assert_eq!(ec_spki(Curve::P256, &point), want);

    let point = vec![4u8; 97];
    let spki = ec_spki(Curve::P384, &point);
    assert_eq!(
        spki[..23],
        hex("3076301006072a8648ce3d020106052b81040022036200")[..]
    );
    assert_eq!(spki.len(), 120);
}

/// Same layout as OpenSSL for a 2048-bit modulus (checked against `cryptography`
/// for the RFC 7515 A.2 key): a 0x00 before a modulus whose top bit is set.
#[test]
fn rsa_spki_layout() {
    let mut n = vec![0xa1u8; 256];
    n[255] = 0x01;
    let spki = rsa_spki(&n, &[1, 0, 1]);
    let head = hex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100");
    assert_eq!(spki[..head.len()], head[..]);
    assert_eq!(spki[head.len()..head.len() + 256], n[..]);
    assert_eq!(spki[head.len() + 256..], hex("0203010001")[..]);
    assert_eq!(spki.len(), 294);
    // leading zero bytes of the input are not part of the integer
    let mut padded = vec![0u8];
    padded.extend(&n);
    assert_eq!(rsa_spki(&padded, &[0, 1, 0, 1]), spki);
    // a modulus without the top bit gets no 0x00; 8192 bits need two length bytes
    let big = rsa_spki(&[0x7f; 1024], &[3]);
    assert_eq!(big[..4], hex("3082041f")[..]);
}

#[test]
fn verify_signature_sends_the_fields_and_reads_the_verdict() {
    let host = FakeHost::default();
    host.set_foreign(|name, args| {
        assert_eq!(name, VERIFY_SIGNATURE);
        let a = VerifySignatureArguments::decode(args).unwrap();
        let ok = a.hash_function == "sha384" && a.signature == b"sig";
        let r = VerifySignatureResult {
            result: ok,
            error: if ok {
                String::new()
            } else {
                "Failed to verify digest. Error code: 0".into()
            },
        };
        Ok(Some(r.encode_to_vec()))
    });
    assert_eq!(
        verify_signature(&host, Hash::Sha384, b"key", b"sig", b"text"),
        Ok(true)
    );
    assert_eq!(
        verify_signature(&host, Hash::Sha256, b"key", b"sig", b"text"),
        Ok(false)
    );
    let calls = host.foreign_calls();
    let a = VerifySignatureArguments::decode(calls[0].1.as_slice()).unwrap();
    assert_eq!(
        a,
        VerifySignatureArguments {
            hash_function: "sha384".into(),
            public_key: b"key".to_vec(),
            signature: b"sig".to_vec(),
            text: b"text".to_vec(),
        }
    );
    // field numbers as in Envoy's verify_signature.proto: 1 string, 2/3/4 bytes
    assert_eq!(calls[0].1[..8], hex("0a06736861333834")[..]);
    assert_eq!(
        calls[0].1[8..],
        hex("12036b6579")
            .into_iter()
            .chain(hex("1a03736967"))
            .chain(hex("220474657874"))
            .collect::<Vec<_>>()[..]
    );
}

#[test]
fn verify_signature_errors_are_not_verdicts() {
    let host = FakeHost::default();
    assert!(verify_signature(&host, Hash::Sha256, b"k", b"s", b"t")
        .unwrap_err()
        .is(Status::NotFound));
    host.set_foreign(|_, _| Ok(Some(vec![0xff, 0xff])));
    assert!(verify_signature(&host, Hash::Sha256, b"k", b"s", b"t").is_err());
    host.set_foreign(|_, _| {
        Err(HostError {
            call: "call_foreign_function",
            status: "BadArgument".into(),
        })
    });
    assert!(verify_signature(&host, Hash::Sha256, b"k", b"s", b"t").is_err());
    // an empty answer is the encoding of result = false
    host.set_foreign(|_, _| Ok(None));
    assert_eq!(
        verify_signature(&host, Hash::Sha256, b"k", b"s", b"t"),
        Ok(false)
    );
}

#[test]
fn probe_reads_the_status() {
    let host = FakeHost::default();
    assert_eq!(probe_verify_signature(&host), Probe::Absent);
    let err = |status: &'static str| {
        move |_: &str, _: &[u8]| -> crate::fake::ForeignResult {
            Err(HostError {
                call: "call_foreign_function",
                status: status.into(),
            })
        }
    };
    host.set_foreign(err("BadArgument"));
    assert_eq!(probe_verify_signature(&host), Probe::Present);
    host.set_foreign(err("InternalFailure"));
    assert!(matches!(
        probe_verify_signature(&host),
        Probe::Unexpected(_)
    ));
    host.set_foreign(|_, _| Ok(None));
    assert!(matches!(
        probe_verify_signature(&host),
        Probe::Unexpected(_)
    ));
    // the probe carries no key: empty arguments
    assert!(host
        .foreign_calls()
        .iter()
        .all(|(n, a)| n == VERIFY_SIGNATURE && a.is_empty()));
}
