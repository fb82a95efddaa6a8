//! Decoding values Envoy returns from `get_property`.
//!
//! Measured on Envoy 1.40 (see docs/authz.md, "Identity sources"): a
//! `google.protobuf.Struct` (e.g. `jwt_authn` dynamic metadata) comes back
//! in the proxy-wasm pairs encoding: a little-endian u32 count, then
//! `count` pairs of (u32 key length, u32 value length), then each key and
//! value followed by a NUL byte. Nested structs are encoded the same way
//! inside the value; a list is a pairs map whose keys are the elements and
//! whose values are empty; strings are raw bytes, numbers 8-byte f64, bools
//! one byte. Integers (e.g. `destination.port`) are 8-byte little-endian.

/// Split a pairs buffer; `None` unless `buf` is exactly one well-formed map.
pub fn pairs(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let count = u32_at(buf, 0)? as usize;
    let header = 4usize.checked_add(count.checked_mul(8)?)?;
    if header > buf.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut data = header;
    for i in 0..count {
        let k = u32_at(buf, 4 + i * 8)? as usize;
        let v = u32_at(buf, 8 + i * 8)? as usize;
        let key = buf.get(data..data.checked_add(k)?)?;
        data += k;
        if buf.get(data) != Some(&0) {
            return None;
        }
        data += 1;
        let value = buf.get(data..data.checked_add(v)?)?;
        data += v;
        if buf.get(data) != Some(&0) {
            return None;
        }
        data += 1;
        out.push((key, value));
    }
    (data == buf.len()).then_some(out)
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The value at a nested key path inside a pairs-encoded struct.
pub fn lookup<'a, S: AsRef<str>>(buf: &'a [u8], path: &[S]) -> Option<&'a [u8]> {
    let mut cur = buf;
    for seg in path {
        let map = pairs(cur)?;
        cur = map
            .into_iter()
            .find(|(k, _)| *k == seg.as_ref().as_bytes())
            .map(|(_, v)| v)?;
    }
    Some(cur)
}

/// A claim value as strings: a string gives itself, a list of strings its
/// elements. Maps, numbers and bools give nothing (Istio matches string
/// and string-list claims only).
pub fn strings(value: &[u8]) -> Vec<String> {
    if let Some(map) = pairs(value) {
        if map.iter().all(|(_, v)| v.is_empty()) {
            return map.into_iter().filter_map(|(k, _)| text(k)).collect();
        }
        return Vec::new();
    }
    text(value).into_iter().collect()
}

fn text(b: &[u8]) -> Option<String> {
    if b.iter().any(|c| *c < 0x20 || *c == 0x7f) {
        return None;
    }
    std::str::from_utf8(b).ok().map(str::to_string)
}

/// An integer property (`destination.port`).
pub fn int(b: &[u8]) -> Option<i64> {
    let a: [u8; 8] = b.try_into().ok()?;
    Some(i64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode like Envoy: nested maps and lists use the pairs encoding.
    pub fn enc(pairs: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(*k);
            out.push(0);
            out.extend(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn decodes_what_envoy_140_sent() {
        // Captured from Envoy 1.40: get_property(metadata.filter_metadata.
        // envoy.filters.http.jwt_authn.jwt_payload.roles) for ["a","b"].
        let roles = hex("0200000001000000000000000100000000000000610000620000");
        assert_eq!(strings(&roles), vec!["a", "b"]);
        // ...realm_access (a nested struct {"roles":["x"]})
        let realm = hex("01000000050000000f000000726f6c65730001000000010000000000000078000000");
        assert_eq!(
            lookup(&realm, &["roles"]).map(strings),
            Some(vec!["x".to_string()])
        );
        assert!(strings(&realm).is_empty(), "a map is not a string claim");
        // numbers (f64 5.0) and bools are not strings
        assert!(strings(&hex("0000000000001440")).is_empty());
        assert!(strings(&[1]).is_empty());
        assert_eq!(strings(b"alice"), vec!["alice"]);
        assert_eq!(int(&hex("53a1000000000000")), Some(41299));
    }

    #[test]
    fn nested_lookup_and_malformed_buffers() {
        let inner = enc(&[(b"id", b"acme".to_vec())]);
        let payload = enc(&[(b"sub", b"alice".to_vec()), (b"org", inner)]);
        assert_eq!(lookup(&payload, &["org", "id"]), Some(&b"acme"[..]));
        assert_eq!(lookup(&payload, &["sub"]), Some(&b"alice"[..]));
        assert_eq!(lookup(&payload, &["nope"]), None);
        assert_eq!(lookup(&payload, &["sub", "x"]), None);
        let mut bad = payload.clone();
        bad.push(0);
        assert!(pairs(&bad).is_none());
        assert!(pairs(&payload[..payload.len() - 1]).is_none());
        assert!(pairs(&[0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(pairs(&[]).is_none());
        assert_eq!(pairs(&[0, 0, 0, 0]).map(|p| p.len()), Some(0));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
