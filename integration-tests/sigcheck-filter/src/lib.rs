//! Test-only: POST one group of signature vectors (one key, many cases); the
//! module checks each through Envoy's `verify_signature` (BoringSSL), built
//! with the same `meshward_shared::foreign` code jwt-auth uses, and through
//! ring, and answers both verdicts as JSON. Not shipped.
//!
//! Request: `{"alg": "RS256", "key": {"n": hex, "e": hex} | {"point": hex},
//! "cases": [{"id": 1, "msg": hex, "sig": hex}]}`; ECDSA signatures are the
//! JWS `r‖s` form. Answer: `{"spki": hex, "results": [{"id", "host",
//! "host_called", "ring"}], "host_ns", "ring_ns", "host_calls"}`; `host` is
//! null when the host call failed.

use std::time::{Duration, UNIX_EPOCH};

use meshward_shared::foreign::{self, Curve, Hash};
use meshward_shared::host::HostCalls;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};
use ring::signature as sig;
use serde_json::{json, Value};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Check))
    }
}

struct Check;

impl Context for Check {}

impl HttpContext for Check {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            reply(400, &json!({"error": "POST a group of vectors"}));
            return Action::Pause;
        }
        // Envoy 1.40 delivers no body to a filter that paused its headers, so the
        // headers go on (the test's upstream only swallows them) and the body is held.
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match run(&body) {
            Ok(v) => reply(200, &v),
            Err(e) => reply(400, &json!({ "error": e })),
        }
        Action::Pause
    }
}

fn reply(status: u32, body: &Value) {
    let _ = hostcalls::send_http_response(
        status,
        vec![("content-type", "application/json")],
        Some(body.to_string().as_bytes()),
    );
}

fn now() -> Duration {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
}

fn hex(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or(format!("{what}: not a string"))?;
    if s.len() % 2 != 0 {
        return Err(format!("{what}: odd hex length"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or(format!("{what}: bad hex"))
        })
        .collect()
}

enum Key {
    Rsa {
        ring: sig::RsaPublicKeyComponents<Vec<u8>>,
        params: &'static sig::RsaParameters,
    },
    Ec {
        ring: sig::UnparsedPublicKey<Vec<u8>>,
        scalar_len: usize,
    },
}

fn run(body: &[u8]) -> Result<Value, String> {
    let req: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let alg = req["alg"].as_str().unwrap_or_default();
    let k = &req["key"];
    let (key, hash, spki) = match alg {
        "RS256" | "RS384" | "RS512" => {
            let mut n = hex(&k["n"], "n")?;
            let e = hex(&k["e"], "e")?;
            let spki = foreign::rsa_spki(&n, &e);
            let zeros = n.iter().take_while(|b| **b == 0).count();
            n.drain(..zeros); // ring wants a minimal modulus
            let (params, hash) = match alg {
                "RS256" => (&sig::RSA_PKCS1_2048_8192_SHA256, Hash::Sha256),
                "RS384" => (&sig::RSA_PKCS1_2048_8192_SHA384, Hash::Sha384),
                _ => (&sig::RSA_PKCS1_2048_8192_SHA512, Hash::Sha512),
            };
            let ring = sig::RsaPublicKeyComponents { n, e };
            (Key::Rsa { ring, params }, hash, spki)
        }
        "ES256" | "ES384" => {
            let point = hex(&k["point"], "point")?;
            let (curve, ring_alg, hash, scalar_len) = if alg == "ES256" {
                (Curve::P256, &sig::ECDSA_P256_SHA256_FIXED, Hash::Sha256, 32)
            } else {
                (Curve::P384, &sig::ECDSA_P384_SHA384_FIXED, Hash::Sha384, 48)
            };
            let spki = foreign::ec_spki(curve, &point);
            let ring = sig::UnparsedPublicKey::new(ring_alg, point);
            (Key::Ec { ring, scalar_len }, hash, spki)
        }
        other => return Err(format!("alg {other} is not one the host verifies")),
    };
    let cases = req["cases"].as_array().ok_or("cases: not an array")?;
    let (mut host_ns, mut ring_ns, mut host_calls) = (0u128, 0u128, 0u32);
    let mut results = Vec::with_capacity(cases.len());
    for c in cases {
        let msg = hex(&c["msg"], "msg")?;
        let s = hex(&c["sig"], "sig")?;
        // As jwt-auth does: an ECDSA signature that is not r‖s never reaches the host.
        let host_sig = match &key {
            Key::Rsa { .. } => Some(s.clone()),
            Key::Ec { scalar_len, .. } => foreign::ecdsa_der(&s, *scalar_len),
        };
        let t0 = now();
        let host = match &host_sig {
            Some(hs) => foreign::verify_signature(&HostCalls, hash, &spki, hs, &msg).ok(),
            None => Some(false),
        };
        let t1 = now();
        let ring = match &key {
            Key::Rsa { ring, params } => ring.verify(params, &msg, &s).is_ok(),
            Key::Ec { ring, .. } => ring.verify(&msg, &s).is_ok(),
        };
        let t2 = now();
        if host_sig.is_some() {
            host_calls += 1;
            host_ns += t1.saturating_sub(t0).as_nanos();
        }
        ring_ns += t2.saturating_sub(t1).as_nanos();
        results.push(
            json!({"id": c["id"], "host": host, "host_called": host_sig.is_some(), "ring": ring}),
        );
    }
    let spki_hex: String = spki.iter().map(|b| format!("{b:02x}")).collect();
    Ok(json!({
        "spki": spki_hex,
        "results": results,
        "host_ns": host_ns as u64,
        "ring_ns": ring_ns as u64,
        "host_calls": host_calls,
    }))
}
