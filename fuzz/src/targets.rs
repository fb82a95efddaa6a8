//! The fuzz targets. Each takes any bytes; a panic, a failed `assert!` or a
//! slow return is a finding.

use std::rc::Rc;
use std::time::Duration;

use jwt_auth::jose::{self, Alg, Jwks, UntrustedToken};
use jwt_auth::keys::{FetchOutcome, KeySource, KeyState, RemoteTarget, Stage};
use meshward_shared::facts::{addr, claims as facts_claims, metadata, path};
use meshward_shared::fake::FakeHost;
use meshward_shared::host::Host;
use meshward_shared::path_template::Template;
use proxy_wasm::types::LogLevel;
use serde_json::{Map, Value};

use crate::request::{host_for, NOW_SECS};

/// The fixed key set of the JWS target: the public halves of jwt-auth's
/// test fixture keys (RSA, P-256, P-384, Ed25519) and its HMAC test secret.
pub const FIXTURE_JWKS: &str = include_str!("../data/jwks.json");
pub const FIXTURE_ISSUER: &str = "https://idp.example";

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ---------- jwt-auth ----------

thread_local! {
    static JWT: Option<jwt_auth::config::Config> = jwt_config_fixture();
}

fn jwt_config_fixture() -> Option<jwt_auth::config::Config> {
    let cfg = serde_json::json!({
        "providers": {"corp": {
            "issuer": FIXTURE_ISSUER,
            "audiences": ["api"],
            "local_jwks": {"inline_string": FIXTURE_JWKS}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    });
    jwt_auth::config::Config::from_json(cfg.to_string().as_bytes()).ok()
}

/// The compiled jwt-auth fixture config (the smoke checks it compiles).
pub fn jwt_fixture_ok() -> bool {
    JWT.with(Option::is_some)
}

/// Compact JWS: strict parse, signature check against the fixture keys, and
/// the whole per-provider verification (issuer, signature, claims).
pub fn jws(data: &[u8]) {
    let token = text(data);
    let parsed = UntrustedToken::parse(&token);
    JWT.with(|cfg| {
        let Some(cfg) = cfg else { return };
        let Some(provider) = cfg.providers.first() else {
            return;
        };
        let KeySource::Local(jwks) = &provider.keys else {
            return;
        };
        if let Ok(t) = &parsed {
            // The host path (key as SPKI, ECDSA signature as DER, ring standing in for
            // Envoy's BoringSSL) must give ring's own verdict on every token.
            let ring_only = jose::verify(t, jwks).is_ok();
            let mut stats = jose::VerifyStats::default();
            let via_host =
                jose::verify_with(t, jwks, Some(&jose::testing::RingAsHost), &mut stats).is_ok();
            assert_eq!(ring_only, via_host, "host path and ring disagree");
        }
        let verified = jwt_auth::verify::verify_token(0, provider, &token, jwks, NOW_SECS);
        if let Ok(v) = &verified {
            assert!(parsed.is_ok(), "verified a token that does not parse");
            assert_eq!(v.identity.issuer, FIXTURE_ISSUER);
            assert_eq!(token.split('.').nth(1), Some(v.payload_segment.as_str()));
        }
    });
}

/// JWKS documents: strict and lenient import, then every algorithm against
/// the imported keys with a signature taken from the input.
pub fn jwks(data: &[u8]) {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let strict = Jwks::parse_strict(doc);
    let lenient = Jwks::parse_lenient(doc);
    if let Ok(s) = &strict {
        match &lenient {
            Ok((l, skipped)) => {
                assert_eq!(l.len(), s.len(), "lenient import dropped a strict key");
                assert!(skipped.is_empty(), "lenient skipped a key strict accepted");
            }
            Err(e) => panic_free_fail(&format!("strict accepted, lenient refused: {e}")),
        }
    }
    if let Ok((keys, _)) = &lenient {
        let sig = &data[data.len().saturating_sub(512)..];
        for alg in Alg::ALL {
            let r = jose::verify_detached(keys, alg, None, b"meshward fuzz", sig);
            assert!(r.is_err() || !sig.is_empty(), "empty signature verified");
        }
    }
}

/// An `assert!` with a computed message, without `panic!` (denied by clippy).
fn panic_free_fail(msg: &str) {
    assert!(msg.is_empty(), "{msg}");
}

fn discovery_state() -> KeyState {
    let target = RemoteTarget {
        cluster: "idp".into(),
        authority: "idp.example".into(),
        path: "/.well-known/openid-configuration".into(),
        timeout: Duration::from_secs(5),
    };
    KeyState::new(&KeySource::remote(
        target,
        Some(FIXTURE_ISSUER.into()),
        Duration::from_secs(600),
    ))
}

/// OIDC discovery documents through the fetch state machine, then the
/// discovered JWKS fetch; and the same bytes as a JWKS response body.
pub fn oidc_discovery(data: &[u8]) {
    let mut st = discovery_state();
    let (_, plan) = st.poll(1_000);
    let Some(plan) = plan else {
        return panic_free_fail("no discovery fetch planned");
    };
    assert_eq!(plan.stage, Stage::Discovery);
    st.started(1, 1_000, &plan);
    match st.on_response(1_000, Some(200), Some(data)) {
        FetchOutcome::Discovered => {
            let (_, next) = st.poll(1_000);
            let Some(next) = next else {
                return panic_free_fail("no JWKS fetch after discovery");
            };
            assert_eq!(next.stage, Stage::Jwks);
            assert!(!next.target.authority.is_empty());
            assert!(next.target.path.starts_with('/'));
            assert!(next
                .target
                .authority
                .bytes()
                .chain(next.target.path.bytes())
                .all(|b| b > b' ' && b != 0x7f));
            st.started(2, 1_000, &next);
            let out = st.on_response(1_000, Some(200), Some(FIXTURE_JWKS.as_bytes()));
            assert!(matches!(out, FetchOutcome::Loaded { .. }), "{out:?}");
            assert!(st.keys().is_some());
        }
        FetchOutcome::Failed(_) => assert!(st.keys().is_none()),
        other => panic_free_fail(&format!("unexpected outcome {other:?}")),
    }

    // The same bytes as a remote JWKS body.
    let target = RemoteTarget {
        cluster: "idp".into(),
        authority: "idp.example".into(),
        path: "/jwks".into(),
        timeout: Duration::from_secs(5),
    };
    let mut st = KeyState::new(&KeySource::remote(target, None, Duration::from_secs(600)));
    if let (_, Some(plan)) = st.poll(1_000) {
        st.started(1, 1_000, &plan);
        match st.on_response(1_000, Some(200), Some(data)) {
            FetchOutcome::Loaded { keys, .. } => {
                assert!(keys > 0);
                assert_eq!(st.keys().map(|k| k.len()), Some(keys));
            }
            FetchOutcome::Failed(_) => assert!(st.keys().is_none()),
            FetchOutcome::Discovered => panic_free_fail("discovered without discovery"),
        }
    }
}

/// A refused config leaves an error log line that says why.
fn refused_with_reason(host: &FakeHost) {
    let logged = host
        .logs()
        .iter()
        .any(|(l, m)| *l == LogLevel::Error && m.contains("invalid config"));
    assert!(logged, "config refused without an error log line");
}

/// jwt-auth's config compiler and runtime construction.
pub fn jwt_config(data: &[u8]) {
    let host = FakeHost::at(NOW_SECS);
    if jwt_auth::root::configure(&host, data).is_none() {
        refused_with_reason(&host);
    }
}

// ---------- authz ----------

/// authz's config compiler and runtime construction (the per-rule
/// explanations are rendered there).
pub fn authz_config(data: &[u8]) {
    let host = FakeHost::at(NOW_SECS);
    if authz::root::configure(&host, data).is_none() {
        refused_with_reason(&host);
    }
}

/// The policy sets the evaluation target decides with: every example in
/// docs/examples/authz, compiled once per thread.
pub const AUTHZ_POLICIES: &[(&str, &str)] = &[
    ("bola", include_str!("../../docs/examples/authz/bola.json")),
    ("geo", include_str!("../../docs/examples/authz/geo.json")),
    (
        "istio-port",
        include_str!("../../docs/examples/authz/istio-port.json"),
    ),
    ("mtls", include_str!("../../docs/examples/authz/mtls.json")),
    ("rbac", include_str!("../../docs/examples/authz/rbac.json")),
    (
        "shadow",
        include_str!("../../docs/examples/authz/shadow.json"),
    ),
    (
        "tenant",
        include_str!("../../docs/examples/authz/tenant.json"),
    ),
    ("time", include_str!("../../docs/examples/authz/time.json")),
];

thread_local! {
    static AUTHZ: Vec<authz::root::Runtime> = AUTHZ_POLICIES
        .iter()
        .filter_map(|(_, json)| authz::root::configure(&FakeHost::at(NOW_SECS), json.as_bytes()))
        .collect();
}

/// How many of [`AUTHZ_POLICIES`] compiled (the smoke wants all of them).
pub fn authz_fixtures() -> usize {
    AUTHZ.with(Vec::len)
}

/// Policy evaluation over a request built from the bytes (see `request`).
pub fn authz_eval(data: &[u8]) {
    AUTHZ.with(|rts| {
        for rt in rts {
            let host = host_for(data);
            let step = authz::filter::process(rt, &host);
            let replies = host.replies();
            match step {
                authz::filter::Step::Continue => {
                    assert!(replies.is_empty(), "continued after a reply")
                }
                authz::filter::Step::Replied => assert_eq!(replies.len(), 1),
            }
        }
    });
}

// ---------- rate-limit ----------

/// rate-limit's config compiler and runtime construction.
pub fn ratelimit_config(data: &[u8]) {
    // `configure` touches every slot of the table (2 host calls per slot, so
    // about 4 s for the accepted ceiling of 1,000,000): linear and reported
    // (docs/reliability.md, "Findings"), so larger tables are left out here
    // to keep the fuzzer's throughput.
    if max_keys_of(data).is_some_and(|k| k > MAX_FUZZED_KEYS) {
        return;
    }
    let host = FakeHost::at(NOW_SECS);
    if rate_limit::root::configure(&host, data).is_none() {
        let logged = host.logs().iter().any(|(l, _)| *l == LogLevel::Error);
        assert!(logged, "config refused without an error log line");
    }
}

/// Largest `max_keys` the config target compiles.
pub const MAX_FUZZED_KEYS: u64 = 20_000;

/// `max_keys` of a rate-limit config, when it is a JSON object with one.
pub fn max_keys_of(data: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(data)
        .ok()?
        .get("max_keys")?
        .as_u64()
}

/// Rate-limit configs whose keys use every key part, locally and through the
/// RateLimitService (descriptors).
pub const RATELIMIT_CONFIGS: &[&str] = &[
    r#"{"xff_num_trusted_hops": 1, "match_all": true, "response_headers": "draft_and_legacy",
        "rules": [
          {"name": "per-ip", "key": [{"source_ip": {"ipv4_prefix": 24, "ipv6_prefix": 64}}],
           "limit": {"requests": 2, "per": "second", "burst": 3, "algorithm": "gcra"},
           "throttle": {"max_delay": "0.5s"}},
          {"name": "per-user", "match": {"prefix": "/users"},
           "key": [{"identity": "sub"}, {"identity": "principal"}, {"identity": "client_id"},
                   {"claim": "org.id"}, {"header": "x-api-key"}, {"query": "api_key"},
                   {"method": {}}, {"path": {}}, {"path_template": "/users/{id}/orders/{**}"},
                   {"route_name": {}}, {"literal": "x"}],
           "limit": {"requests": 1, "per": "minute"}},
          {"name": "plan", "key": [{"identity": "sub"}],
           "tiers": {"claim": "plan",
                     "limits": {"free": {"requests": 1, "per": "minute"},
                                "gold": {"requests": 100, "per": "minute"}},
                     "default": {"requests": 5, "per": "minute"}}}
        ]}"#,
    r#"{"mode": "global", "domain": "shop", "match_all": true,
        "rate_limit_service": {"cluster": "ratelimit", "timeout": "0.1s", "failure_mode_deny": false},
        "rules": [
          {"name": "tenant", "key": [{"claim": "tenant"}, {"header": "x-api-key"},
                                     {"source_ip": {}}, {"path": {}}],
           "limit": {"requests": 500, "per": "second"}}
        ]}"#,
    r#"{"mode": "hybrid", "max_keys": 4,
        "rate_limit_service": {"cluster": "ratelimit"},
        "hybrid": {"share": 0.25, "sync_interval": "0.1s"},
        "rules": [
          {"name": "per-key", "key": [{"header": "x-api-key"}], "limit": {"requests": 3, "per": "minute"}}
        ]}"#,
];

thread_local! {
    static RATELIMIT: Vec<Rc<rate_limit::engine::Runtime>> = RATELIMIT_CONFIGS
        .iter()
        .filter_map(|json| rate_limit::root::configure(&FakeHost::at(NOW_SECS), json.as_bytes()))
        .map(Rc::new)
        .collect();
}

/// How many of [`RATELIMIT_CONFIGS`] compiled (the smoke wants all of them).
pub fn ratelimit_fixtures() -> usize {
    RATELIMIT.with(Vec::len)
}

/// Key composition: `compose` then `entries` (and `unescape`) gives the
/// parts back exactly, so two different values never share a key; and the
/// whole request path (key parts read from a request built from the bytes,
/// local admission, RLS descriptors) stays panic-free.
pub fn ratelimit_keys(data: &[u8]) {
    use rate_limit::keys::{compose, entries, unescape, SEP};

    let t = text(data);
    let mut lines = t.split('\n');
    let rule = lines.next().unwrap_or_default();
    let parts: Vec<(&str, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or((l, ""));
            (k, v.to_string())
        })
        .collect();
    let key = compose(rule, &parts);
    let clean = |s: &str| !s.contains(SEP);
    if clean(rule) && parts.iter().all(|(k, _)| clean(k) && !k.contains('=')) {
        let (r, e) = entries(&key);
        assert_eq!(r, rule);
        assert_eq!(e.len(), parts.len());
        for ((k, v), (ek, ev)) in parts.iter().zip(&e) {
            assert_eq!(k, ek);
            assert_eq!(unescape(ev), v.as_str(), "a value did not survive compose");
        }
    }

    RATELIMIT.with(|rts| {
        for rt in rts {
            let host = host_for(data);
            for id in 1..=2 {
                let mut f = rate_limit::filter::RateLimitFilter::new(id, Rc::clone(rt));
                let _ = f.on_request(&host);
                f.on_response_headers(&host);
            }
            for call in host.grpc_calls() {
                assert!(!call.message.is_empty());
            }
            let _ = host.now_unix();
        }
    });
}

// ---------- shared request facts ----------

/// RFC 3986 path normalisation: the output is a fixed point, starts with
/// `/`, and has no dot segment or empty segment left.
pub fn path_normalize(data: &[u8]) {
    let t = text(data);
    let (p, q) = path::split_target(&t);
    if let Some(q) = q {
        let _ = path::query_param(q, "api_key");
    }
    let _ = path::derive(p, path::PathNormalization::Envoy);
    let Ok(n) = path::normalize(p) else { return };
    check_normal_form(&n);
    match path::normalize(&n) {
        Ok(again) => assert_eq!(again, n, "normalising a normal form changed it"),
        Err(e) => panic_free_fail(&format!("normal form `{n}` refused: {e:?}")),
    }
}

/// What every normal form must look like.
pub fn check_normal_form(n: &str) {
    assert!(n.starts_with('/'), "`{n}`: not origin-form");
    for bad in ["/./", "/../", "//"] {
        assert!(!n.contains(bad), "`{n}` contains `{bad}`");
    }
    assert!(
        !n.ends_with("/.") && !n.ends_with("/.."),
        "`{n}` ends with a dot segment"
    );
    let b = n.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        // Printable ASCII; a literal space passes through (Envoy's codecs
        // refuse it before a filter runs, so it is not normalised here).
        assert!((0x20..0x7f).contains(&c), "`{n}`: byte {c:#x}");
        if c == b'%' {
            let h = b.get(i + 1..i + 3).unwrap_or_default();
            assert!(
                h.len() == 2
                    && h.iter()
                        .all(|x| x.is_ascii_digit() || (b'A'..=b'F').contains(x)),
                "`{n}`: escape not upper-case hex"
            );
        }
    }
}

/// Client addresses: Envoy's XFF rule and socket address parsing.
pub fn addr(data: &[u8]) {
    let t = text(data);
    for hops in [0, 1, 2, 16, u32::MAX] {
        let got = addr::xff_client(&t, hops);
        let want = usize::try_from(hops)
            .ok()
            .and_then(|h| t.rsplit(',').nth(h))
            .and_then(addr::parse_ip);
        assert_eq!(got, want);
    }
    if let Some(ip) = addr::parse_socket_ip(&t) {
        // The IP itself always parses back.
        assert_eq!(addr::parse_socket_ip(&ip.to_string()), Some(ip));
    }
    let _ = addr::parse_ip(&t);
}

/// Claim lookup: first line a dotted path, the rest a JSON object.
pub fn claims(data: &[u8]) {
    let t = text(data);
    let (path, json) = t.split_once('\n').unwrap_or((&t, "{}"));
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
        return;
    };
    let segs: Vec<&str> = path.split('.').collect();
    let direct = facts_claims::lookup(&map, &segs);
    let dotted = facts_claims::dotted(&map, &segs);
    if direct.is_some() {
        assert_eq!(direct, dotted, "dotted lost a nested claim");
    }
    let _ = facts_claims::strings(dotted).count();
    if let Some(v) = dotted {
        let _ = facts_claims::text(v);
    }
    let _ = facts_claims::lookup(&map, &[path]);
}

/// `jwt_authn` dynamic metadata (protobuf): decoding never panics and a
/// decoded payload survives an encode/decode round trip.
pub fn metadata(data: &[u8]) {
    const F: &str = "envoy.filters.http.jwt_authn";
    const K: &str = "payload";
    let Some(map) = metadata::payload(data, F, K) else {
        return;
    };
    let again: Option<Map<String, Value>> =
        metadata::payload(&metadata::encode_payload(F, K, &map), F, K);
    assert_eq!(
        again.as_ref(),
        Some(&map),
        "metadata round trip changed the payload"
    );
}

/// Path templates: first line the template, each other line a path.
pub fn path_template(data: &[u8]) {
    let t = text(data);
    let mut lines = t.split('\n');
    let src = lines.next().unwrap_or_default();
    let mut names = Vec::new();
    let parsed = Template::parse(src, &mut names);
    let _ = Template::parse_plain(src);
    let Ok(tpl) = parsed else { return };
    assert_eq!(tpl.source, src);
    let _ = tpl.first_literal();
    for p in lines {
        let m = tpl.matches(p);
        for i in 0..names.len() {
            if tpl.capture(p, i).is_some() {
                assert!(m, "captured from a path that does not match");
            }
        }
    }
}
