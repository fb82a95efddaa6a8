//! The local path in-VM cost, natively: one request through key composition,
//! the shared-data CAS update (or the worker's lease) and the verdict, against
//! the fake host.
//! (The fake host's shared data is a HashMap; Envoy's is a mutex-guarded map.)

use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use meshward_shared::fake::FakeHost;
use rate_limit::filter::RateLimitFilter;
use rate_limit::limiter::{Algorithm, Limit, State};
use rate_limit::root::configure;

fn local_path(c: &mut Criterion) {
    let host = FakeHost::at(1_800_000_000);
    host.set_headers(&[(":method", "GET"), (":path", "/bench?x=1")]);
    host.put_property(&["source", "address"], b"10.1.2.3:5555");
    for (name, admission) in [
        ("local request (never trips)", "per_request"),
        ("local request from a lease (never trips)", "lease"),
    ] {
        let cfg = serde_json::json!({"admission": admission,
            "rules": [{"name": "per-ip", "key": [{"source_ip": {}}, {"method": {}}],
            "limit": {"requests": 1_000_000_000u64, "per": "second"}}]});
        let Some(rt) = configure(&host, cfg.to_string().as_bytes()) else {
            return;
        };
        let rt = Rc::new(rt);
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut f = RateLimitFilter::new(1, Rc::clone(&rt));
                black_box(f.on_request(&host))
            })
        });
    }
    // keys over 256 bytes are stored by their SHA-256 (slots::stored_key)
    let long = format!("per-key\u{1f}x-api-key={}", "k".repeat(500));
    c.bench_function("stored key of a 512-byte key (SHA-256)", |b| {
        b.iter(|| black_box(rate_limit::slots::stored_key("per-key", black_box(&long))))
    });
    let limit = Limit {
        requests: 100,
        period_ms: 1000,
        burst: 100,
        algorithm: Algorithm::Gcra,
    };
    c.bench_function("gcra arithmetic", |b| {
        let mut now = 1_800_000_000_000u64;
        b.iter(|| {
            now += 1;
            black_box(limit.admit(State::default(), now, 1, 0))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = local_path
}
criterion_main!(benches);
