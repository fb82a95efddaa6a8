#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Time per request through the whole engine for the four shapes the docs
//! report (a plain GET, a 1 KiB JSON order, 16 KiB of prose, 16 KiB built to
//! be expensive). Ignored by default (timing needs a release build and a quiet
//! machine): `cargo test --release -p anomaly --test perf -- --ignored --nocapture`.
//! `filters/anomaly/v8-bench` times the same requests inside V8.

use std::time::Instant;

use anomaly::config::Config;
use anomaly::engine::Engine;
use anomaly::request::Input;

const GET_HEADERS: &[(&[u8], &[u8])] = &[
    (b"host", b"api.example.com"),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    ),
    (b"accept", b"application/json, text/plain, */*"),
    (b"accept-language", b"en-US,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"referer", b"https://app.example.com/orders?page=2"),
    (b"x-forwarded-for", b"203.0.113.7"),
    (b"cookie", b"session=6f1c2a9e4b7d8c3f; theme=dark"),
];

const POST_HEADERS: &[(&[u8], &[u8])] = &[
    (b"host", b"api.example.com"),
    (b"content-type", b"application/json"),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    ),
    (b"accept", b"*/*"),
];

pub fn order_json() -> String {
    let mut items = Vec::new();
    let mut s = String::new();
    while s.len() < 1000 {
        items.push(r#"{"sku":"SKU-123","qty":2,"title":"Blue mug, 350 ml"}"#);
        s = format!(
            r#"{{"user":{{"name":"Ann O'Brien","email":"ann@example.com"}},"items":[{}]}}"#,
            items.join(",")
        );
    }
    s
}

fn prose_json() -> String {
    let prose = "It's a fine day; select the best one (or two) from the list. ";
    format!(r#"{{"v":"{}"}}"#, prose.repeat(16384 / prose.len()))
}

fn time(engine: &Engine, name: &str, method: &[u8], path: &[u8], body: Option<&[u8]>) -> f64 {
    let headers = if body.is_some() {
        POST_HEADERS
    } else {
        GET_HEADERS
    };
    if std::env::var("MESHWARD_PERF_CASE").is_ok_and(|c| !name.contains(&c)) {
        return 0.0;
    }
    let input = Input {
        method,
        path,
        headers,
        body,
        body_truncated: false,
    };
    let score = engine.evaluate(&input).score.total;
    // About 0.3 s per case; the best of five rounds damps a shared machine.
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed().as_secs_f64() < 0.05 {
        engine.evaluate(&input);
        reps += 1;
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(engine.evaluate(std::hint::black_box(&input)));
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / f64::from(reps));
    }
    println!("{name:<34} {best:>9.2} us/request  score={score}");
    best
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn per_request_time() {
    // MESHWARD_PERF_CONFIG: a config to time instead of the defaults (a
    // detector turned off, to see its share).
    let config = std::env::var("MESHWARD_PERF_CONFIG").unwrap_or_else(|_| "{}".into());
    let engine = Engine::new(Config::parse(config.as_bytes()).unwrap()).unwrap();
    // The benchmark's bodies (bench/harness/bodies.py write DIR), as the V8
    // bench's BENCH_BODIES.
    let files = std::env::var("BENCH_BODIES").unwrap_or_default();
    for f in files.split(',').filter(|f| !f.is_empty()) {
        let body = std::fs::read(f).unwrap();
        time(&engine, f, b"POST", b"/api/v1/orders", Some(&body));
    }
    let get = b"/api/v1/orders?id=123&sort=desc";
    time(&engine, "GET, 8 headers, no body", b"GET", get, None);
    let order = order_json();
    time(
        &engine,
        "1 KiB JSON order",
        b"POST",
        b"/api/v1/orders",
        Some(order.as_bytes()),
    );
    let prose = prose_json();
    time(
        &engine,
        "16 KiB JSON prose field",
        b"POST",
        b"/api/v1/notes",
        Some(prose.as_bytes()),
    );
    let mut worst: f64 = 0.0;
    for unit in [
        "<a ",
        "&#x",
        "%25u",
        "'or ",
        "/*",
        "a'b ",
        "1;x|",
        "\\u00",
        ";(",
        "|id ",
        "a|b",
        "#",
        "-- ",
        "../",
        "${",
        "`",
        "&&",
        "$(",
        "<!--",
        "%",
        "${::-",
        "system/*",
        "o:99:\"",
        "$a",
        "<? a",
        "/**/(*/",
        "/*<? /*x*/",
    ] {
        let v = unit.repeat(16384 / unit.len());
        let body = serde_json::to_string(&serde_json::json!({ "v": v })).unwrap();
        let t = time(
            &engine,
            &format!("16 KiB crafted {unit:?}"),
            b"POST",
            b"/api/v1/notes",
            Some(body.as_bytes()),
        );
        worst = worst.max(t);
    }
    println!("16 KiB crafted, worst: {worst:.0} us");
}
