//! A request built from fuzz bytes, on a [`FakeHost`]. The bytes are read as
//! lines (lossy UTF-8), so text mutations stay meaningful:
//!
//! ```text
//! line 0  :method
//! line 1  :path
//! line 2  :authority
//! line 3  source.address and the peer filter state (`meshward.peer`)
//! line 4  identity claims, a JSON object (written as meshward's identity
//!         and as jwt_authn metadata); anything else: no identity
//! line 5  the peer certificate's URI SAN
//! line 6+ `name: value` headers (repeats kept)
//! ```

use meshward_shared::facts::{metadata, PEER_FILTER_STATE};
use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::{Map, Value};

/// A fixed clock: 2026-01-01T00:00:00Z.
pub const NOW_SECS: u64 = 1_767_225_600;

/// The host a filter sees for `data`.
pub fn host_for(data: &[u8]) -> FakeHost {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or_default().to_string();
    let method = next();
    let path = next();
    let authority = next();
    let peer = next();
    let claims = next();
    let san = next();
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), method),
        (":path".into(), path),
        (":authority".into(), authority),
    ];
    for line in lines {
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        headers.push((k.trim().to_ascii_lowercase(), v.trim_start().to_string()));
    }
    let host = FakeHost::at(NOW_SECS);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    host.set_headers(&refs);
    if !peer.is_empty() {
        host.put_property(&["source", "address"], peer.as_bytes());
        host.put_property(&["filter_state", PEER_FILTER_STATE], peer.as_bytes());
    }
    if !san.is_empty() {
        host.put_property(&["connection", "uri_san_peer_certificate"], san.as_bytes());
    }
    host.put_property(&["route_name"], b"users");
    host.put_property(&["destination", "port"], &8080i64.to_le_bytes());
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&claims) {
        write_identity(&host, map);
    }
    host
}

fn write_identity(host: &FakeHost, claims: Map<String, Value>) {
    let md = metadata::encode_payload("envoy.filters.http.jwt_authn", "payload", &claims);
    host.put_property(&["metadata"], &md);
    // Only an error of the fake's serializer could stop the write; then the
    // request simply has no meshward identity.
    let _ = Identity::from_claims("corp", claims).write(host);
}
