//! Whole-request cost natively, through `filter::process` on a fake host:
//! a cached token (the steady state) and a fresh token every time (miss).

// Bench setup failing is a bug in the bench: fail loudly.
#![allow(clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_auth::filter::{process, Step};
use jwt_auth::jose::{testing, Alg};
use jwt_auth::root::configure;
use meshward_shared::fake::FakeHost;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn config(cache: usize) -> String {
    json!({
        "providers": {"corp": {
            "issuer": "https://idp.example",
            "audiences": ["api"],
            "local_jwks": {"inline_string": testing::jwks_json()},
            "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
            "jwt_cache_config": {"jwt_cache_size": cache}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    })
    .to_string()
}

fn bench_lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, alg, cache) in [
        ("cache_hit_es256", Alg::Es256, 1000),
        ("cache_miss_rs256", Alg::Rs256, 0),
        ("cache_miss_es256", Alg::Es256, 0),
        ("cache_miss_hs256", Alg::Hs256, 0),
    ] {
        let host = FakeHost::at(NOW);
        let rt = configure(&host, config(cache).as_bytes()).expect("config");
        let auth = format!("Bearer {}", testing::token(alg, &testing::claims(NOW)));
        let headers = [
            (":method", "GET"),
            (":path", "/orders"),
            ("authorization", auth.as_str()),
        ];
        group.bench_function(name, |b| {
            b.iter(|| {
                host.set_headers(&headers);
                assert_eq!(process(&rt, &host, false), Step::Continue);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_lifecycle
}
criterion_main!(benches);
