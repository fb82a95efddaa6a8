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

/// Evaluates one request, with the JSON body at `ptr`/`len` (none if `len`
/// is 0), `reps` times; returns the last score.
///
/// # Safety
/// `ptr` must point at `len` readable bytes (from `alloc`).
#[no_mangle]
pub unsafe extern "C" fn scan(ptr: *const u8, len: usize, reps: u32) -> u32 {
    let body = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Some(engine) = engine() else { return u32::MAX };
    let headers: [(&[u8], &[u8]); 3] = [
        (b"content-type", b"application/json"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"),
        (b"accept", b"*/*"),
    ];
    let mut score = 0;
    for _ in 0..reps {
        let out = engine.evaluate(&anomaly::request::Input {
            method: b"POST",
            path: b"/api/v1/orders?id=123&sort=desc",
            headers: &headers,
            body: (len > 0).then_some(body),
            body_truncated: false,
        });
        score = out.score.total;
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
