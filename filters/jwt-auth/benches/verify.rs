//! Parse + verify cost per algorithm (native). Kept short: runs in `make bench`.
// Test/bench harness code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_auth::jose::{testing, verify, Alg, Jwks, UntrustedToken};

fn bench_verify(c: &mut Criterion) {
    let jwks = Jwks::parse_strict(&testing::jwks_json()).expect("fixture JWKS");
    let claims = testing::claims(1_700_000_000);
    let mut group = c.benchmark_group("parse_verify");
    for alg in [
        Alg::Rs256,
        Alg::Ps256,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Hs256,
    ] {
        let token = testing::token(alg, &claims);
        group.bench_function(alg.name(), |b| {
            b.iter(|| {
                let t = UntrustedToken::parse(std::hint::black_box(&token)).expect("parse");
                verify(&t, &jwks).expect("verify");
            })
        });
    }
    group.finish();

    let token = testing::token(Alg::Hs256, &claims);
    c.bench_function("parse_only", |b| {
        b.iter(|| UntrustedToken::parse(std::hint::black_box(&token)).expect("parse"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_verify
}
criterion_main!(benches);
