//! In-VM evaluation cost at 10, 100 and 1,000 rules (native build; the wasm
//! build runs the same code under V8).
//!
//! - `exact/N`: N ALLOW policies, each pinning one exact path + method + a
//!   header condition. Exact paths are indexed, so the cost should stay flat.
//! - `prefix/N`: the same with `/svcN/*` prefix paths (indexed by their
//!   first segment too).
//! - `objects/N`: exact paths plus a BOLA check (template capture vs claim).
//! - `suffix/N`: `*...` suffix paths pin no first segment and cannot be
//!   indexed: the engine checks rules in order, so this one grows with N.
//!
//! Each is measured for the last policy matching (worst case for in-order
//! evaluation) and for a request no policy matches (default deny).

// Bench set-up may fail loudly: it is not production code.
#![allow(clippy::unwrap_used, clippy::panic)]

use authz::config::Config;
use authz::gather::request_of;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::json;

fn config(kind: &str, n: usize) -> Config {
    let policies: Vec<_> = (0..n)
        .map(|i| {
            let mut rule = match kind {
                "prefix" => json!({"to": [{"operation": {"methods": ["GET"], "paths": [format!("/svc{i}/*")]}}]}),
                "suffix" => json!({"to": [{"operation": {"methods": ["GET"], "paths": [format!("*/svc{i}.json")]}}]}),
                "objects" => json!({"to": [{"operation": {"methods": ["GET"], "paths": [format!("/svc{i}/users/{{user}}/orders")]}}],
                                   "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}),
                _ => json!({"to": [{"operation": {"methods": ["GET"], "paths": [format!("/svc{i}/items")]}}]}),
            };
            rule["when"] = json!([{"key": "request.headers[x-env]", "values": ["prod", "stage"]}]);
            json!({"name": format!("p{i}"), "action": "ALLOW", "rules": [rule]})
        })
        .collect();
    let cfg = json!({"policies": policies, "decision_state": false});
    match Config::from_json(cfg.to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("bench config: {e}"),
    }
}

fn host(path: &str) -> FakeHost {
    let h = FakeHost::default();
    h.set_headers(&[(":method", "GET"), (":path", path), ("x-env", "prod")]);
    let mut id = Identity {
        issuer: "https://idp".into(),
        subject: "alice".into(),
        ..Default::default()
    };
    id.claims.insert("sub".into(), json!("alice"));
    id.write(&h).unwrap();
    h
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("authz_eval");
    g.measurement_time(std::time::Duration::from_secs(2));
    g.warm_up_time(std::time::Duration::from_millis(500));
    for kind in ["exact", "prefix", "objects", "suffix"] {
        for n in [10usize, 100, 1000] {
            let cfg = config(kind, n);
            let last = n - 1;
            let hit = match kind {
                "prefix" => format!("/svc{last}/x"),
                "suffix" => format!("/x/svc{last}.json"),
                "objects" => format!("/svc{last}/users/alice/orders"),
                _ => format!("/svc{last}/items"),
            };
            let req = request_of(&cfg, &host(&hit)).unwrap_or_default();
            assert!(cfg.engine.decide(&req, false).allowed());
            g.bench_with_input(
                BenchmarkId::new(format!("{kind}/last_match"), n),
                &req,
                |b, r| b.iter(|| cfg.engine.decide(std::hint::black_box(r), false)),
            );
            let miss = request_of(&cfg, &host("/nothing/here")).unwrap_or_default();
            assert!(!cfg.engine.decide(&miss, false).allowed());
            g.bench_with_input(
                BenchmarkId::new(format!("{kind}/no_match"), n),
                &miss,
                |b, r| b.iter(|| cfg.engine.decide(std::hint::black_box(r), false)),
            );
        }
    }
    // Full per-request path against the fake host: gather (header reads,
    // identity parse) + decide + counters.
    let cfg_json = config_json_for_process();
    let fake = FakeHost::default();
    let rt = authz::root::configure(&fake, cfg_json.as_bytes()).unwrap();
    let h = host("/svc99/users/alice/orders");
    g.bench_function("process/objects_100", |b| {
        b.iter(|| authz::filter::process(&rt, &h))
    });
    g.finish();
}

fn config_json_for_process() -> String {
    let policies: Vec<_> = (0..100)
        .map(|i| json!({"name": format!("p{i}"), "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": [format!("/svc{i}/users/{{user}}/orders")]}}],
                          "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]}))
        .collect();
    json!({"policies": policies}).to_string()
}

criterion_group!(benches, bench);
criterion_main!(benches);
