//! The signature backends against a fake host whose `verify_signature`
//! does real crypto (ring over what the filter sent: the SPKI's key bytes
//! and, for ECDSA, the DER signature), as BoringSSL does in Envoy.

use meshward_shared::fake::{FakeHost, ForeignResult};
use meshward_shared::foreign::{self, VerifySignatureArguments, VerifySignatureResult};
use meshward_shared::host::HostError;
use prost::Message;
use ring::signature as sig;
use serde_json::{json, Value};

use crate::authn::Runtime;
use crate::filter::{process, Step};
use crate::jose::{testing, Alg};
use crate::root::configure;

const NOW: u64 = 1_800_000_000;
const HOST_ALGS: [Alg; 5] = [Alg::Rs256, Alg::Rs384, Alg::Rs512, Alg::Es256, Alg::Es384];
const RING_ALGS: [Alg; 7] = [
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
    Alg::EdDsa,
    Alg::Hs256,
    Alg::Hs384,
    Alg::Hs512,
];

fn config(backend: Option<&str>) -> Value {
    let mut v = json!({
        "providers": {"corp": {
            "issuer": "https://idp.example",
            "audiences": ["api"],
            "local_jwks": {"inline_string": testing::jwks_json()},
            "jwt_cache_config": {"jwt_cache_size": 0}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    });
    if let Some(b) = backend {
        v["signature_backend"] = json!(b);
    }
    v
}

fn runtime(host: &FakeHost, backend: Option<&str>) -> Runtime {
    configure(host, config(backend).to_string().as_bytes()).expect("config accepted")
}

fn host_error(status: &str) -> HostError {
    HostError {
        call: "call_foreign_function",
        status: status.into(),
    }
}

/// Envoy's `verify_signature`, played by ring with the forms BoringSSL takes.
fn boringssl(name: &str, args: &[u8]) -> ForeignResult {
    if name != foreign::VERIFY_SIGNATURE {
        return Err(host_error("NotFound"));
    }
    let a = VerifySignatureArguments::decode(args).map_err(|_| host_error("BadArgument"))?;
    let Some((rsa, key)) = testing::spki_key(&a.public_key) else {
        return Err(host_error("BadArgument"));
    };
    let alg: &dyn sig::VerificationAlgorithm = match (rsa, key.len(), a.hash_function.as_str()) {
        (true, _, "sha256") => &sig::RSA_PKCS1_2048_8192_SHA256,
        (true, _, "sha384") => &sig::RSA_PKCS1_2048_8192_SHA384,
        (true, _, "sha512") => &sig::RSA_PKCS1_2048_8192_SHA512,
        (false, 65, "sha256") => &sig::ECDSA_P256_SHA256_ASN1,
        (false, 97, "sha384") => &sig::ECDSA_P384_SHA384_ASN1,
        _ => {
            let r = VerifySignatureResult {
                result: false,
                error: "unsupported".into(),
            };
            return Ok(Some(r.encode_to_vec()));
        }
    };
    let ok = sig::UnparsedPublicKey::new(alg, key)
        .verify(&a.text, &a.signature)
        .is_ok();
    let error = if ok {
        ""
    } else {
        "Failed to verify digest. Error code: 0"
    };
    Ok(Some(
        VerifySignatureResult {
            result: ok,
            error: error.into(),
        }
        .encode_to_vec(),
    ))
}

/// Status and reason of one request carrying `token`.
fn outcome(rt: &Runtime, host: &FakeHost, token: &str) -> (u32, String) {
    let auth = format!("Bearer {token}");
    host.set_headers(&[
        (":method", "GET"),
        (":path", "/x"),
        ("authorization", &auth),
    ]);
    let before = host.replies().len();
    match process(rt, host, false) {
        Step::Continue => (200, String::new()),
        _ => {
            let replies = host.replies();
            let (status, _, body) = replies.get(before).cloned().expect("a reply");
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, v["reason"].as_str().unwrap_or_default().to_string())
        }
    }
}

fn verify_calls(host: &FakeHost) -> Vec<VerifySignatureArguments> {
    host.foreign_calls()
        .into_iter()
        .filter(|(n, a)| n == foreign::VERIFY_SIGNATURE && !a.is_empty())
        .map(|(_, a)| VerifySignatureArguments::decode(a.as_slice()).unwrap())
        .collect()
}

fn counters(host: &FakeHost) -> (i64, i64, i64) {
    (
        host.metric("meshward.jwt_auth.verify", &[("backend", "host")]),
        host.metric("meshward.jwt_auth.verify", &[("backend", "ring")]),
        host.counter("meshward.jwt_auth.verify_host_failed"),
    )
}

fn tampered(token: &str) -> String {
    let (input, s) = token.rsplit_once('.').unwrap();
    let mut raw = testing::b64_decode(s);
    raw[3] ^= 0x20;
    format!("{input}.{}", testing::b64(&raw))
}

fn with_signature(token: &str, raw: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", testing::b64(raw))
}

/// Tokens whose answers must not depend on the backend.
fn battery() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for alg in Alg::ALL {
        let t = testing::token(alg, &testing::claims(NOW));
        let raw = testing::b64_decode(t.rsplit_once('.').unwrap().1);
        out.push((format!("{alg} valid"), t.clone()));
        out.push((format!("{alg} tampered"), tampered(&t)));
        out.push((
            format!("{alg} truncated"),
            with_signature(&t, &raw[..raw.len() - 1]),
        ));
        out.push((
            format!("{alg} zero"),
            with_signature(&t, &vec![0u8; raw.len()]),
        ));
    }
    // signed by the other RSA key under this key's kid
    let other = testing::sign_bytes_with(Alg::Rs256, testing::KID_RSA_B, b"x");
    let t = testing::token(Alg::Rs256, &testing::claims(NOW));
    out.push(("RS256 other key".into(), {
        let (input, _) = t.rsplit_once('.').unwrap();
        let s = testing::sign_bytes_with(Alg::Rs256, testing::KID_RSA_B, input.as_bytes());
        assert_eq!(s.len(), other.len());
        with_signature(&t, &s)
    }));
    out
}

#[test]
fn host_present_gets_the_protobuf_fields_it_needs() {
    let host = FakeHost::at(NOW);
    host.set_foreign(boringssl);
    let rt = runtime(&host, None);
    assert!(rt.host_verify, "auto + a host with verify_signature");
    assert!(host
        .logs()
        .iter()
        .any(|(_, m)| m.contains("signatures: host verify_signature")));
    for alg in HOST_ALGS {
        host.clear_foreign_calls();
        let token = testing::token(alg, &testing::claims(NOW));
        assert_eq!(outcome(&rt, &host, &token), (200, String::new()), "{alg}");
        let calls = verify_calls(&host);
        assert_eq!(calls.len(), 1, "{alg}: one host call per verify");
        let a = &calls[0];
        let (input, s) = token.rsplit_once('.').unwrap();
        let raw = testing::b64_decode(s);
        let want_hash = match alg {
            Alg::Rs256 | Alg::Es256 => "sha256",
            Alg::Rs384 | Alg::Es384 => "sha384",
            _ => "sha512",
        };
        assert_eq!(a.hash_function, want_hash, "{alg}");
        assert_eq!(a.text, input.as_bytes(), "{alg}: the JWS signing input");
        let jwk = testing::jwk(testing::kid_for(alg));
        let key = |m: &str| testing::b64_decode(jwk[m].as_str().unwrap());
        match alg {
            Alg::Es256 | Alg::Es384 => {
                let len = alg.ecdsa_scalar_len();
                assert_eq!(
                    a.signature,
                    foreign::ecdsa_der(&raw, len).unwrap(),
                    "{alg}: DER"
                );
                let mut point = vec![4u8];
                point.extend(key("x"));
                point.extend(key("y"));
                let curve = if len == 32 {
                    foreign::Curve::P256
                } else {
                    foreign::Curve::P384
                };
                assert_eq!(a.public_key, foreign::ec_spki(curve, &point), "{alg}");
            }
            _ => {
                assert_eq!(a.signature, raw, "{alg}: RSA signatures go as they are");
                assert_eq!(
                    a.public_key,
                    foreign::rsa_spki(&key("n"), &key("e")),
                    "{alg}"
                );
            }
        }
    }
    assert_eq!(counters(&host), (5, 0, 0));
}

#[test]
fn host_absent_falls_back_to_ring_with_the_same_answers() {
    let with = FakeHost::at(NOW);
    with.set_foreign(boringssl);
    let rt_host = runtime(&with, None);
    let without = FakeHost::at(NOW); // no foreign functions: NotFound
    let rt_ring = runtime(&without, None);
    assert!(rt_host.host_verify && !rt_ring.host_verify);
    assert!(without
        .logs()
        .iter()
        .any(|(_, m)| m.contains("signatures: ring (the host has no verify_signature)")));
    let mut host_ok = 0;
    for (what, token) in battery() {
        let a = outcome(&rt_host, &with, &token);
        let b = outcome(&rt_ring, &without, &token);
        assert_eq!(a, b, "{what}");
        let want = if what.ends_with("valid") { 200 } else { 401 };
        assert_eq!(a.0, want, "{what}");
        if what.ends_with("valid") {
            host_ok += 1;
        } else {
            assert_eq!(a.1, "bad_signature", "{what}");
        }
    }
    assert_eq!(host_ok, Alg::ALL.len());
    // the probe, once, at configure; nothing per request
    assert_eq!(without.foreign_calls().len(), 1);
    assert_eq!(counters(&without).0, 0);
    assert!(counters(&without).1 > 0);
    let (h, r, f) = counters(&with);
    assert!(h > 0 && r > 0 && f == 0, "{h} {r} {f}");
}

#[test]
fn host_errors_fall_back_to_ring_and_never_accept() {
    for failure in ["InternalFailure", "BadArgument", "garbage"] {
        let host = FakeHost::at(NOW);
        let mode = failure.to_string();
        host.set_foreign(move |_, args| {
            if args.is_empty() {
                return Err(host_error("BadArgument")); // probe: present
            }
            match mode.as_str() {
                "garbage" => Ok(Some(vec![0xff; 3])),
                m => Err(host_error(m)),
            }
        });
        let rt = runtime(&host, Some("host"));
        assert!(rt.host_verify);
        for alg in HOST_ALGS {
            let token = testing::token(alg, &testing::claims(NOW));
            assert_eq!(outcome(&rt, &host, &token).0, 200, "{failure} {alg}");
            let (status, reason) = outcome(&rt, &host, &tampered(&token));
            assert_eq!(
                (status, reason.as_str()),
                (401, "bad_signature"),
                "{failure} {alg}"
            );
        }
        assert_eq!(counters(&host), (0, 10, 10), "{failure}");
    }
}

#[test]
fn the_hosts_verdict_is_final() {
    // A host that refuses everything: its "no" is not second-guessed by ring.
    let host = FakeHost::at(NOW);
    host.set_foreign(|_, args| {
        if args.is_empty() {
            return Err(host_error("BadArgument"));
        }
        Ok(Some(
            VerifySignatureResult {
                result: false,
                error: "no".into(),
            }
            .encode_to_vec(),
        ))
    });
    let rt = runtime(&host, None);
    let token = testing::token(Alg::Rs256, &testing::claims(NOW));
    assert_eq!(outcome(&rt, &host, &token), (401, "bad_signature".into()));
    assert_eq!(counters(&host), (1, 0, 0));
}

#[test]
fn wrong_lengths_are_refused_without_a_host_call() {
    let host = FakeHost::at(NOW);
    host.set_foreign(boringssl);
    let rt = runtime(&host, None);
    for alg in HOST_ALGS {
        let t = testing::token(alg, &testing::claims(NOW));
        let raw = testing::b64_decode(t.rsplit_once('.').unwrap().1);
        let mut long = raw.clone();
        long.push(0);
        let mut cases = vec![raw[..raw.len() - 1].to_vec(), long, vec![raw[0]]];
        if matches!(alg, Alg::Es256 | Alg::Es384) {
            // the DER form of the same signature is not a JWS signature
            cases.push(foreign::ecdsa_der(&raw, alg.ecdsa_scalar_len()).unwrap());
        }
        for bad in cases {
            host.clear_foreign_calls();
            let token = with_signature(&t, &bad);
            let (status, reason) = outcome(&rt, &host, &token);
            assert_eq!(
                (status, reason.as_str()),
                (401, "bad_signature"),
                "{alg} {}",
                bad.len()
            );
            assert!(
                host.foreign_calls().is_empty(),
                "{alg}: {} bytes reached the host",
                bad.len()
            );
        }
    }
    assert_eq!(counters(&host), (0, 0, 0), "no backend was asked");
}

#[test]
fn ps_eddsa_and_hs_never_call_the_host() {
    let host = FakeHost::at(NOW);
    host.set_foreign(boringssl);
    let rt = runtime(&host, Some("host"));
    host.clear_foreign_calls();
    for alg in RING_ALGS {
        let token = testing::token(alg, &testing::claims(NOW));
        assert_eq!(outcome(&rt, &host, &token).0, 200, "{alg}");
        assert_eq!(outcome(&rt, &host, &tampered(&token)).0, 401, "{alg}");
    }
    assert!(host.foreign_calls().is_empty());
    assert_eq!(counters(&host), (0, 14, 0));
}

#[test]
fn ring_backend_never_probes() {
    let host = FakeHost::at(NOW);
    host.set_foreign(boringssl);
    let rt = runtime(&host, Some("ring"));
    assert!(!rt.host_verify);
    for alg in HOST_ALGS {
        let token = testing::token(alg, &testing::claims(NOW));
        assert_eq!(outcome(&rt, &host, &token).0, 200, "{alg}");
    }
    assert!(host.foreign_calls().is_empty());
    assert_eq!(counters(&host), (0, 5, 0));
}

#[test]
fn host_backend_without_the_function_refuses_the_config() {
    let host = FakeHost::at(NOW);
    assert!(configure(&host, config(Some("host")).to_string().as_bytes()).is_none());
    let logs = host.logs();
    let line = &logs.last().unwrap().1;
    assert!(
        line.starts_with("meshward jwt-auth: invalid config: signature_backend: `host` needs"),
        "{line}"
    );
}

#[test]
fn an_odd_probe_answer_means_ring_with_a_warning() {
    let host = FakeHost::at(NOW);
    host.set_foreign(|_, _| Ok(None));
    let rt = runtime(&host, None);
    assert!(!rt.host_verify);
    assert!(host
        .logs()
        .iter()
        .any(|(level, m)| *level == proxy_wasm::types::LogLevel::Warn
            && m.contains("signatures: ring (verify_signature probe:")));
    let host = FakeHost::at(NOW);
    host.set_foreign(|_, _| Ok(None));
    assert!(configure(&host, config(Some("host")).to_string().as_bytes()).is_none());
}
