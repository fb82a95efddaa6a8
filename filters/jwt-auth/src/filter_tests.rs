//! The lifecycle against a fake host: tokens minted from fixture keys,
//! replies, headers, filter state, metrics, audit lines and paused requests.

use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::{json, Value};

use super::*;
use crate::jose::{testing, Alg};
use crate::root::{configure, tick};

const NOW: u64 = 1_800_000_000;

fn config(extra: Value) -> Value {
    let mut v = json!({
        "providers": {
            "corp": {
                "issuer": "https://idp.example",
                "audiences": ["api"],
                "local_jwks": {"inline_string": testing::jwks_json()},
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [
                    {"header_name": "x-jwt-sub", "claim_name": "sub"},
                    {"header_name": "x-jwt-groups", "claim_name": "org.groups"}
                ]
            }
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/optional"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/admin"}, "requires": {"provider_name": "corp"}, "required_scopes": ["admin"]},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}
        ]
    });
    if let (Some(base), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            base.insert(k.clone(), val.clone());
        }
    }
    v
}

fn runtime(host: &FakeHost, cfg: Value) -> Runtime {
    configure(host, cfg.to_string().as_bytes()).expect("config accepted")
}

fn request(host: &FakeHost, path: &str, token: Option<&str>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        (":method", "GET"),
        (":path", path),
        ("x-request-id", "req-1"),
    ];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    host.set_headers(&headers);
}

fn reply_reason(host: &FakeHost) -> (u32, String, Option<String>) {
    let (status, headers, body) = host.replies().last().cloned().expect("a reply");
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let www = headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.clone());
    (
        status,
        v["reason"].as_str().unwrap_or_default().to_string(),
        www,
    )
}

#[test]
fn a_refused_header_write_refuses_the_request() {
    // Envoy answers BadArgument once it no longer holds the headers: a
    // spoofed x-jwt-sub or the token itself must not go on unstripped.
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    let token = testing::token(Alg::Es256, &testing::claims(NOW));
    request(&host, "/orders", Some(&token));
    host.add_request_header("x-jwt-sub", "mallory").unwrap();
    *host.fail_header_writes.borrow_mut() = true;
    assert_eq!(process(&rt, &host, false), Step::Replied);
    let (status, reason, _) = reply_reason(&host);
    assert_eq!((status, reason.as_str()), (500, "header_write_failed"));

    // the same in shadow mode: logged, not answered
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({"shadow": true})));
    request(&host, "/orders", Some(&token));
    *host.fail_header_writes.borrow_mut() = true;
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert!(host.replies().is_empty());
}

#[test]
fn valid_token_is_allowed_with_outputs() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    let mut claims = testing::claims(NOW);
    claims["org"] = json!({"groups": ["a", "b"]});
    let token = testing::token(Alg::Es256, &claims);
    request(&host, "/orders", Some(&token));
    host.add_request_header("x-jwt-sub", "mallory").unwrap();
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert!(host.replies().is_empty());
    assert_eq!(
        host.header("authorization"),
        None,
        "token stripped by default"
    );
    assert_eq!(host.header("x-jwt-sub").as_deref(), Some("alice"));
    assert_eq!(host.header_count("x-jwt-sub"), 1, "spoofed copy removed");
    assert_eq!(host.header("x-jwt-groups").as_deref(), Some("a,b"));
    assert_eq!(
        host.header("x-jwt-payload").as_deref(),
        token.split('.').nth(1)
    );
    let id = Identity::read(&host).expect("identity in filter state");
    assert_eq!(
        (id.subject.as_str(), id.provider.as_str()),
        ("alice", "corp")
    );
    assert_eq!(id.scopes, vec!["read", "write"]);
    assert_eq!(host.counter("meshward.jwt_auth.allowed"), 1);
    assert_eq!(
        host.metric("meshward.jwt_auth.jwt_cache_miss", &[("provider", "corp")]),
        1
    );
    // Second use is a cache hit.
    request(&host, "/orders", Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(
        host.metric("meshward.jwt_auth.jwt_cache_hit", &[("provider", "corp")]),
        1
    );
    // an allowed request writes no audit line, so no audit filter state
    assert_eq!(host.raw_property("meshward.audit.jwt-auth"), None);
    // the fresh token's verify time was recorded once; the cache hit adds none
    assert_eq!(
        host.histogram("meshward.jwt_auth.provider=.=corp;.;verify_time_us")
            .len(),
        1
    );
}

#[test]
fn every_algorithm_verifies_through_the_filter() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    for alg in Alg::ALL {
        request(
            &host,
            "/x",
            Some(&testing::token(alg, &testing::claims(NOW))),
        );
        assert_eq!(process(&rt, &host, false), Step::Continue, "{alg:?}");
    }
}

#[test]
fn missing_token_gets_bare_challenge() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    request(&host, "/orders", None);
    assert_eq!(process(&rt, &host, false), Step::Replied);
    let (status, reason, www) = reply_reason(&host);
    assert_eq!((status, reason.as_str()), (401, "token_missing"));
    assert_eq!(www.as_deref(), Some("Bearer realm=\"meshward\""));
    assert_eq!(
        host.metric("meshward.jwt_auth.denied", &[("reason", "token_missing")]),
        1
    );
    // the audit line, also in filter state for the access log
    let state = host
        .raw_property("meshward.audit.jwt-auth")
        .expect("audit state");
    let line: Value = serde_json::from_slice(&state).expect("json");
    assert_eq!(line["reason"], "token_missing");
    assert_eq!(
        host.metric(
            "meshward.jwt_auth.provider_denied",
            &[("provider", "corp"), ("reason", "token_missing")]
        ),
        1
    );
}

#[test]
fn denials_carry_reason_and_audit_without_token() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    let mut expired = testing::claims(NOW - 1000);
    expired["exp"] = json!(NOW - 500);
    let cases = [
        (testing::token(Alg::Rs256, &expired), "token_expired"),
        (
            testing::token(
                Alg::Rs256,
                &json!({"iss": "https://other", "sub": "x", "exp": NOW + 60}),
            ),
            "issuer_mismatch",
        ),
        ("a.b".to_string(), "token_malformed"),
        (
            format!("{}x", testing::token(Alg::Hs256, &testing::claims(NOW))),
            "bad_signature",
        ),
    ];
    for (token, want) in cases {
        request(&host, "/orders", Some(&token));
        assert_eq!(process(&rt, &host, false), Step::Replied, "{want}");
        let (status, reason, www) = reply_reason(&host);
        assert_eq!((status, reason.as_str()), (401, want));
        assert!(www.unwrap().contains("error=\"invalid_token\""));
        let (_, line) = host.logs().last().cloned().unwrap();
        assert!(line.contains(want) && line.contains("req-1"), "{line}");
        assert!(
            !line.contains(&token),
            "audit line must not carry the token"
        );
    }
}

#[test]
fn oversized_token_rejected_before_parsing() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({"max_token_bytes": 1024})));
    let big = "a".repeat(64 * 1024);
    request(&host, "/orders", Some(&big));
    assert_eq!(process(&rt, &host, false), Step::Replied);
    assert_eq!(reply_reason(&host).1, "token_malformed");
}

#[test]
fn scopes_bypass_optional_and_preflight() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    request(
        &host,
        "/admin",
        Some(&testing::token(Alg::Es256, &testing::claims(NOW))),
    );
    assert_eq!(process(&rt, &host, false), Step::Replied);
    let (status, reason, www) = reply_reason(&host);
    assert_eq!((status, reason.as_str()), (403, "insufficient_scope"));
    assert!(www
        .unwrap()
        .contains("error=\"insufficient_scope\", scope=\"admin\""));

    request(&host, "/public/x", None);
    host.add_request_header("x-jwt-sub", "mallory").unwrap();
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(
        host.header("x-jwt-sub"),
        None,
        "spoofed header stripped on bypass routes too"
    );

    request(&host, "/optional", None);
    assert_eq!(process(&rt, &host, false), Step::Continue);
    request(&host, "/optional", Some("garbage"));
    assert_eq!(
        process(&rt, &host, false),
        Step::Replied,
        "present-but-bad token fails allow_missing"
    );

    host.set_headers(&[
        (":method", "OPTIONS"),
        (":path", "/orders"),
        ("origin", "https://app"),
        ("access-control-request-method", "POST"),
    ]);
    assert_eq!(process(&rt, &host, false), Step::Continue);
}

#[test]
fn query_param_token_is_removed() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    let token = testing::token(Alg::Hs256, &testing::claims(NOW));
    host.set_headers(&[
        (":method", "GET"),
        (":path", &format!("/x?a=1&access_token={token}")),
    ]);
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(host.header(":path").as_deref(), Some("/x?a=1"));
}

#[test]
fn no_unverified_token_goes_upstream_beside_a_verified_one() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({})));
    let token = testing::token(Alg::Hs256, &testing::claims(NOW));
    let path = "/x?access_token=forged&access%5Ftoken=forged2&a=1";
    request(&host, path, Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(host.header(":path").as_deref(), Some("/x?a=1"));
    assert_eq!(host.header("authorization"), None);
    // A `Basic` header beside a verified query token is not a token: it stays.
    host.set_headers(&[
        (":method", "GET"),
        (":path", &format!("/x?access_token={token}")),
        ("authorization", "Basic dXNlcjpwdw=="),
    ]);
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(
        host.header("authorization").as_deref(),
        Some("Basic dXNlcjpwdw==")
    );
    assert_eq!(host.header(":path").as_deref(), Some("/x"));
}

#[test]
fn shadow_mode_counts_but_never_denies() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({"shadow": true})));
    request(&host, "/orders", None);
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert!(host.replies().is_empty());
    assert_eq!(
        host.metric(
            "meshward.jwt_auth.shadow_denied",
            &[("reason", "token_missing")]
        ),
        1
    );
    assert!(host.logs().iter().any(|(_, l)| l.contains("shadow_deny")));
}

#[test]
fn custom_deny_response() {
    let host = FakeHost::at(NOW);
    let cfg = config(
        json!({"deny_response": {"status": 418, "body": "no: {reason}", "headers": {"x-why": "jwt"}}}),
    );
    let rt = runtime(&host, cfg);
    request(&host, "/orders", None);
    process(&rt, &host, false);
    let (status, headers, body) = host.replies().last().cloned().unwrap();
    assert_eq!(status, 418);
    assert_eq!(body, b"no: token_missing");
    assert!(headers.contains(&("x-why".into(), "jwt".into())));
}

#[test]
fn bad_config_is_refused_with_a_log_line() {
    let host = FakeHost::at(NOW);
    assert!(configure(&host, br#"{"providers":{"corp":{"issuer":5}}}"#).is_none());
    let (_, line) = host.logs().last().cloned().unwrap();
    assert!(
        line.contains("invalid config: providers.corp.issuer"),
        "{line}"
    );
}

fn remote_config() -> Value {
    json!({
        "providers": {"corp": {
            "issuer": "https://idp.example",
            "remote_jwks": {"http_uri": {"uri": "http://idp.local/jwks", "cluster": "idp", "timeout": "1s"}}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}],
        "jwks_pending_timeout": "2s",
        "jwks_unavailable_status": 503
    })
}

#[test]
fn requests_wait_for_first_jwks_then_resume() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, remote_config());
    assert!(host.tick_period.borrow().is_some());
    let token = testing::token(Alg::Rs256, &testing::claims(NOW));
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Pause);
    rt.add_waiter(7, NOW * 1000);
    tick(&rt, &host, 1);
    let calls = host.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "idp");
    assert!(calls[0].headers.contains(&(":path".into(), "/jwks".into())));
    // The JWKS arrives: the root handles it and resumes the waiting request.
    host.set_call_response(&[(":status", "200")], Some(testing::jwks_json().as_bytes()));
    let body = testing::jwks_json();
    let outcome = rt.keys.borrow_mut()[0].on_response(NOW * 1000, Some(200), Some(body.as_bytes()));
    assert!(matches!(outcome, crate::keys::FetchOutcome::Loaded { .. }));
    crate::root::tick(&rt, &host, 1);
    // Deadline not passed and nothing changed on this tick: still waiting.
    assert!(rt.is_waiting(7));
    host.advance(std::time::Duration::from_secs(3));
    tick(&rt, &host, 1);
    assert_eq!(
        host.resumed.borrow().as_slice(),
        &[7],
        "resumed once keys were there"
    );
    assert!(!rt.is_waiting(7));
}

#[test]
fn a_waiting_request_resumes_as_soon_as_the_keys_arrive() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, remote_config());
    let token = testing::token(Alg::Rs256, &testing::claims(NOW));
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Pause);
    rt.add_waiter(7, NOW * 1000);
    tick(&rt, &host, 1);
    let fetch = host.calls()[0].token;
    let body = testing::jwks_json();
    host.set_call_response(&[(":status", "200")], Some(body.as_bytes()));
    // the answer, long before the 2 s pending deadline
    crate::root::on_keys_response(
        &rt,
        &host,
        1,
        fetch,
        body.len(),
        &mut crate::root::alone(&rt, &host),
    );
    assert_eq!(host.resumed.borrow().as_slice(), &[7]);
    assert!(!rt.is_waiting(7));
}

#[test]
fn pending_deadline_gives_configured_status() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, remote_config());
    request(
        &host,
        "/x",
        Some(&testing::token(Alg::Rs256, &testing::claims(NOW))),
    );
    assert_eq!(process(&rt, &host, false), Step::Pause);
    rt.add_waiter(9, NOW * 1000);
    tick(&rt, &host, 1); // fetch dispatched, never answered
    host.advance(std::time::Duration::from_millis(2500));
    tick(&rt, &host, 1);
    let (status, reason, _) = reply_reason(&host);
    assert_eq!((status, reason.as_str()), (503, "jwks_unavailable"));
    assert!(!rt.is_waiting(9));
    assert!(host.resumed.borrow().is_empty());
}

#[test]
fn waiter_whose_stream_is_gone_is_dropped() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, remote_config());
    rt.add_waiter(5, NOW * 1000);
    host.gone.borrow_mut().push(5);
    host.advance(std::time::Duration::from_secs(3));
    tick(&rt, &host, 1);
    assert!(!rt.is_waiting(5));
}

meshward_shared::test_stream_callbacks_declared!(concat!(
    include_str!("filter.rs"),
    include_str!("root.rs")
));

// Each host read that returns data costs a call back into the VM in Envoy
// (docs/performance.md): a request with a cached token reads :path and the
// token's header, plus :method when CORS preflights bypass (the default) or
// a rule matches methods.
#[test]
fn a_cached_token_costs_two_header_reads() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, config(json!({"bypass_cors_preflight": false})));
    let token = testing::token(
        Alg::Rs256,
        &json!({"iss": "https://idp.example", "aud": "api", "sub": "alice", "exp": NOW + 60}),
    );
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Continue);
    host.clear_reads();
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(host.reads(), ["header :path", "header authorization"]);
    // A rule that matches on methods needs :method too.
    let rt = runtime(
        &host,
        config(json!({"bypass_cors_preflight": false,
                      "rules": [{"match": {"prefix": "/", "methods": ["GET"]}, "requires": {"provider_name": "corp"}}]})),
    );
    request(&host, "/x", Some(&token));
    host.clear_reads();
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(host.reads()[..2], ["header :path", "header :method"]);
    let rt = runtime(&host, config(json!({})));
    request(&host, "/x", Some(&token));
    host.clear_reads();
    assert_eq!(process(&rt, &host, false), Step::Continue);
    assert_eq!(host.reads()[..2], ["header :path", "header :method"]);
}

#[test]
fn rules_match_the_normalised_path_and_ambiguous_paths_get_400() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        config(json!({"rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]})),
    );
    for p in ["/public/x", "/public/../public/y"] {
        request(&host, p, None);
        assert_eq!(process(&rt, &host, false), Step::Continue, "{p}");
    }
    for p in ["/public/../admin", "//admin", "/public/%2e%2e/admin"] {
        request(&host, p, None);
        assert_eq!(
            process(&rt, &host, false),
            Step::Replied,
            "{p}: walks out of /public"
        );
        assert_eq!(host.replies().last().map(|r| r.0), Some(401), "{p}");
    }
    for p in [
        "/public/..%2Fadmin",
        "/public%2F..%2Fadmin",
        "/../public",
        "/public\\..\\admin",
    ] {
        request(&host, p, None);
        assert_eq!(process(&rt, &host, false), Step::Replied, "{p}");
        assert_eq!(host.replies().last().map(|r| r.0), Some(400), "{p}");
    }
    let trusting = runtime(
        &host,
        config(json!({"path_normalization": "envoy", "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]})),
    );
    request(&host, "/public/%2e%2e/admin", None);
    assert_eq!(
        process(&trusting, &host, false),
        Step::Continue,
        "envoy mode matches :path as is"
    );
}

/// Installs `kids` as the provider's keys through a fetch, as the root does
/// when a refresh is due (`at_ms` must be past the next attempt).
fn install_keys(rt: &Runtime, at_ms: u64, kids: &[&str]) {
    let mut keys = rt.keys.borrow_mut();
    let (_, plan) = keys[0].poll(at_ms);
    keys[0].started(1, at_ms, &plan.expect("a refresh is due"));
    let body = testing::jwks_of(kids);
    let outcome = keys[0].on_response(at_ms, Some(200), Some(body.as_bytes()));
    assert!(matches!(outcome, crate::keys::FetchOutcome::Loaded { .. }));
}

#[test]
fn a_key_dropped_from_the_jwks_stops_its_cached_tokens_at_once() {
    let host = FakeHost::at(NOW);
    let mut cfg = remote_config();
    cfg["providers"]["corp"]["remote_jwks"]["cache_duration"] = json!("10s");
    let rt = runtime(&host, cfg);
    let both = [testing::KID_RSA, testing::KID_RSA_B];
    install_keys(&rt, NOW * 1000, &both);
    let token = testing::token(Alg::Rs256, &testing::claims(NOW));
    for _ in 0..2 {
        request(&host, "/x", Some(&token));
        assert_eq!(process(&rt, &host, true), Step::Continue);
    }
    let hits = || host.metric("meshward.jwt_auth.jwt_cache_hit", &[("provider", "corp")]);
    assert_eq!(hits(), 1, "verified, cached, then served from the cache");
    // The refresh returns the same document: the cached entry stays good.
    let generation = rt.keys.borrow()[0].generation();
    install_keys(&rt, (NOW + 10) * 1000, &both);
    assert_eq!(rt.keys.borrow()[0].generation(), generation);
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, true), Step::Continue);
    assert_eq!(hits(), 2);
    // The provider drops the token's key: the cached verification is not
    // served, and the token fails as its kid is no longer published.
    host.advance(std::time::Duration::from_secs(20));
    install_keys(&rt, (NOW + 20) * 1000, &[testing::KID_RSA_B]);
    request(&host, "/x", Some(&token));
    assert_eq!(process(&rt, &host, true), Step::Replied);
    let (status, reason, _) = reply_reason(&host);
    assert_eq!((status, reason.as_str()), (401, "kid_not_found"));
}
