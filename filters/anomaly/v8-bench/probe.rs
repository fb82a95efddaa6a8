//! A wasm module around the anomaly core, for timing it under V8 (Node.js)
//! before the proxy-wasm glue exists. Built by run.sh; not a workspace member.

use std::sync::OnceLock;

static ENGINE: OnceLock<anomaly::engine::Engine> = OnceLock::new();

/// Memory for the caller to write a request body into (leaked on purpose).
#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

const GET_HEADERS: [(&[u8], &[u8]); 8] = [
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

const POST_HEADERS: [(&[u8], &[u8]); 4] = [
    (b"host", b"api.example.com"),
    (b"content-type", b"application/json"),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    ),
    (b"accept", b"*/*"),
];

/// Evaluates one request `reps` times and returns the last score: with no
/// body (`len` 0) the GET of `tests/perf.rs`, else a POST of the JSON body
/// at `ptr`/`len` (the same requests as there).
///
/// # Safety
/// `ptr` must point at `len` readable bytes (from `alloc`).
#[no_mangle]
pub unsafe extern "C" fn scan(ptr: *const u8, len: usize, reps: u32) -> u32 {
    let body = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Some(engine) = engine() else { return u32::MAX };
    let input = if len == 0 {
        anomaly::request::Input {
            method: b"GET",
            path: b"/api/v1/orders?id=123&sort=desc",
            headers: &GET_HEADERS,
            body: None,
            body_truncated: false,
        }
    } else {
        anomaly::request::Input {
            method: b"POST",
            path: b"/api/v1/orders",
            headers: &POST_HEADERS,
            body: Some(body),
            body_truncated: false,
        }
    };
    let mut score = 0;
    for _ in 0..reps {
        score = engine.evaluate(&input).score.total;
    }
    score
}

fn engine() -> Option<&'static anomaly::engine::Engine> {
    if let Some(e) = ENGINE.get() {
        return Some(e);
    }
    let config = anomaly::config::Config::parse(b"{}").ok()?;
    let engine = anomaly::engine::Engine::new(config).ok()?;
    Some(ENGINE.get_or_init(|| engine))
}
