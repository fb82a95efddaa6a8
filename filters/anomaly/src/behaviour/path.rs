//! Path templates and object ids, read from `:path` without allocating.
//! A segment that looks like an object id (digits, a UUID, a long token
//! with a digit) becomes `{id}` in the template, and its value is an id.

use super::hash::Hasher64;

/// At most this many object ids are taken from one request.
pub const MAX_IDS: usize = 16;

/// True for a path segment that names an object rather than a resource.
pub fn is_id(seg: &[u8]) -> bool {
    if seg.is_empty() {
        return false;
    }
    if seg.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let tokenish = seg
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_' || *b == b'.');
    tokenish && seg.len() >= 8 && seg.iter().any(u8::is_ascii_digit)
}

/// The template id of `method` + `path` (query excluded) and the hashes of
/// its object ids, plus those of the query parameters named in `params`.
pub fn analyse(
    seed: u64,
    method: &str,
    path: &str,
    params: &[String],
    ids: &mut [u64; MAX_IDS],
) -> (u64, usize) {
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut t = Hasher64::new(seed);
    t.write(method.as_bytes());
    t.write(b" ");
    let mut n = 0;
    for seg in path_only.split('/').skip(1) {
        let bytes = seg.as_bytes();
        t.write(b"/");
        if is_id(bytes) {
            t.write(b"{id}");
            if n < MAX_IDS {
                ids[n] = Hasher64::once(seed ^ 0x6964, bytes);
                n += 1;
            }
        } else {
            t.write(bytes);
        }
    }
    if let Some(q) = query {
        if !params.is_empty() {
            for pair in q.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if value.is_empty() || !params.iter().any(|p| p == name) {
                    continue;
                }
                if n < MAX_IDS {
                    let mut h = Hasher64::new(seed ^ 0x7061);
                    h.write(name.as_bytes());
                    h.write(b"=");
                    h.write(value.as_bytes());
                    ids[n] = h.finish();
                    n += 1;
                }
            }
        }
    }
    (t.finish(), n)
}
