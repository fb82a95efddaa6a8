//! The pass against a fake host: order, handover in memory, the read
//! budget, and a request that waited for keys going through every stage.

use std::time::Duration;

use jwt_auth::jose::{testing, Alg};
use meshward_shared::fake::FakeHost;
use meshward_shared::identity::{Identity, FILTER_STATE_KEY};
use serde_json::{json, Value};

use super::*;
use crate::root::{configure, on_keys_response, tick, Runtime};

const NOW: u64 = 1_800_000_000;

fn jwt_section(keys: Value) -> Value {
    let mut provider = json!({"issuer": "https://idp.example", "audiences": ["api"]});
    for (k, v) in keys.as_object().into_iter().flatten() {
        provider[k] = v.clone();
    }
    json!({
        "providers": {"corp": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}],
    })
}

fn local_keys() -> Value {
    json!({"local_jwks": {"inline_string": testing::jwks_json()}})
}

fn authz_section() -> Value {
    json!({"policies": [{"name": "readers", "rules": [
        {"to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"]}}],
         "when": [{"key": "request.auth.claims[sub]", "values": ["alice"]}]}]}]})
}

fn rate_section(requests: u64) -> Value {
    json!({"response_headers": "draft", "rules": [{"name": "per-user", "key": [{"identity": "sub"}],
           "limit": {"requests": requests, "per": "minute", "algorithm": "fixed_window"}}]})
}

fn suite(host: &FakeHost, cfg: Value) -> Runtime {
    configure(host, cfg.to_string().as_bytes()).expect("config accepted")
}

fn request(host: &FakeHost, path: &str, sub: &str) {
    let mut claims = testing::claims(NOW);
    claims["sub"] = json!(sub);
    let auth = format!("Bearer {}", testing::token(Alg::Rs256, &claims));
    host.set_headers(&[
        (":method", "GET"),
        (":path", path),
        ("x-request-id", "r1"),
        ("authorization", &auth),
    ]);
}

fn filter(rt: &Runtime, id: u32) -> SuiteFilter {
    SuiteFilter {
        suite: Rc::clone(&rt.suite),
        stream: rt.suite.stream(id),
    }
}

/// A counter as Envoy shows it once the tick has flushed the held increments.
fn metric(rt: &Runtime, host: &FakeHost, name: &str, labels: &[(&str, &str)]) -> i64 {
    rt.suite.counters.flush(host);
    host.metric(name, labels)
}

fn status(host: &FakeHost) -> Option<u32> {
    host.replies().last().map(|r| r.0)
}

fn full() -> Value {
    json!({"jwt_auth": jwt_section(local_keys()), "authz": authz_section(), "rate_limit": rate_section(2)})
}

#[test]
fn every_stage_runs_in_order_with_the_identity_handed_over_in_memory() {
    let host = FakeHost::at(NOW);
    let rt = suite(&host, full());
    request(&host, "/api/orders", "alice");
    host.clear_reads();
    let f = filter(&rt, 2);
    assert_eq!(f.on_request(&host), Flow::Continue);
    // counters are held in the VM until the tick
    assert_eq!(host.counter("meshward.jwt_auth.allowed"), 0);
    tick(&rt, &host, 1);
    assert_eq!(host.counter("meshward.jwt_auth.allowed"), 1);
    assert_eq!(metric(&rt, &host, "meshward.authz.allowed", &[]), 1);
    assert_eq!(
        metric(
            &rt,
            &host,
            "meshward.rate_limit.allowed",
            &[("rule", "per-user")]
        ),
        1
    );
    // Nothing downstream asked for them: no identity, no decision in filter state.
    assert_eq!(host.raw_property(FILTER_STATE_KEY), None);
    assert_eq!(host.raw_property(authz::filter::DECISION_KEY), None);
    // The read budget: each header at most once across the three stages, and
    // no filter-state read for the identity.
    let reads: Vec<String> = host
        .reads()
        .into_iter()
        .filter(|r| !r.starts_with("shared"))
        .collect();
    let mut unique = reads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(reads.len(), unique.len(), "a fact read twice: {reads:?}");
    assert!(reads.iter().all(|r| r.starts_with("header ")), "{reads:?}");
    // rate-limit's headers on the response
    f.on_response(&host);
    assert!(host
        .response_headers()
        .iter()
        .any(|(k, _)| k == "ratelimit-policy"));
}

#[test]
fn a_request_denied_early_never_reaches_the_later_stages() {
    let host = FakeHost::at(NOW);
    let rt = suite(&host, full());
    host.set_headers(&[(":method", "GET"), (":path", "/api/orders")]);
    assert_eq!(filter(&rt, 2).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(401));
    request(&host, "/api/orders", "bob");
    assert_eq!(filter(&rt, 3).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(403));
    assert_eq!(metric(&rt, &host, "meshward.authz.denied", &[]), 1);
    // neither spent a rate-limit unit: alice still has both
    for id in 4..6 {
        request(&host, "/api/orders", "alice");
        assert_eq!(filter(&rt, id).on_request(&host), Flow::Continue);
    }
    request(&host, "/api/orders", "alice");
    assert_eq!(filter(&rt, 6).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(429));
}

#[test]
fn outputs_are_written_when_the_sections_ask() {
    let host = FakeHost::at(NOW);
    let mut cfg = full();
    cfg["jwt_auth"]["identity_state"] = json!(true);
    cfg["authz"]["decision_state"] = json!(true);
    let rt = suite(&host, cfg);
    request(&host, "/api/orders", "alice");
    assert_eq!(filter(&rt, 2).on_request(&host), Flow::Continue);
    let id = Identity::read(&host).expect("identity in filter state");
    assert_eq!(id.subject, "alice");
    assert!(host.raw_property(authz::filter::DECISION_KEY).is_some());
}

#[test]
fn an_absent_stage_does_nothing() {
    let host = FakeHost::at(NOW);
    let rt = suite(&host, json!({"rate_limit": rate_section(1)}));
    assert!(rt.suite.jwt_auth.is_none() && rt.suite.authz.is_none());
    // no token, no policy: only the limit applies (keyed on no identity)
    host.set_headers(&[(":method", "GET"), (":path", "/x")]);
    assert_eq!(filter(&rt, 2).on_request(&host), Flow::Continue);
    assert!(host
        .counter_names()
        .iter()
        .all(|n| !n.contains("jwt_auth") && !n.contains("authz")));
}

#[test]
fn a_rejected_section_rejects_the_config_and_says_which() {
    let host = FakeHost::at(NOW);
    let bad = json!({"jwt_auth": jwt_section(local_keys()), "authz": {"policies": 5}});
    assert!(configure(&host, bad.to_string().as_bytes()).is_none());
    let logs: Vec<String> = host.logs().into_iter().map(|(_, l)| l).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("meshward authz: invalid config: policies")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("section `authz` rejected")),
        "{logs:?}"
    );
    assert!(configure(&host, br#"{"waf": {}}"#).is_none());
    assert!(configure(&host, b"not json").is_none());
}

#[test]
fn a_request_waiting_for_keys_goes_through_every_stage_when_they_come() {
    let host = FakeHost::at(NOW);
    let remote = json!({"remote_jwks": {"http_uri": {"uri": "http://idp.local/jwks", "cluster": "idp", "timeout": "1s"}}});
    let mut cfg = full();
    cfg["jwt_auth"] = jwt_section(remote);
    cfg["jwt_auth"]["jwks_pending_timeout"] = json!("2s");
    let rt = suite(&host, cfg);
    // one tick for the module: the shorter of jwt-auth's and rate-limit's
    assert_eq!(*host.tick_period.borrow(), Some(Duration::from_millis(20)));

    request(&host, "/api/orders", "alice");
    let ok = filter(&rt, 7);
    assert_eq!(ok.on_request(&host), Flow::AwaitKeys);
    request(&host, "/api/orders", "bob");
    let denied = filter(&rt, 8);
    assert_eq!(denied.on_request(&host), Flow::AwaitKeys);
    assert!(rt.suite.is_waiting(7) && rt.suite.is_waiting(8));

    tick(&rt, &host, 1);
    let calls = host.calls();
    assert_eq!(calls.len(), 1, "the JWKS fetch");
    host.set_call_response(&[(":status", "200")], Some(testing::jwks_json().as_bytes()));
    on_keys_response(&rt, &host, 1, calls[0].token, testing::jwks_json().len());

    // alice: authenticated, authorized, admitted, resumed
    assert_eq!(
        host.resumed.borrow().as_slice(),
        &[7],
        "{:?} {:?}",
        host.replies(),
        host.logs()
    );
    assert_eq!(
        metric(
            &rt,
            &host,
            "meshward.rate_limit.allowed",
            &[("rule", "per-user")]
        ),
        1
    );
    // bob: authenticated, then denied by authz in his own context
    assert_eq!(status(&host), Some(403));
    assert!(!rt.suite.is_waiting(7) && !rt.suite.is_waiting(8));
    // the stage state lives until the stream goes
    drop(ok);
    drop(denied);
    assert!(rt.suite.paused(7).is_none());
}

#[test]
fn a_stream_that_goes_away_while_waiting_is_forgotten() {
    let host = FakeHost::at(NOW);
    let remote = json!({"remote_jwks": {"http_uri": {"uri": "http://idp.local/jwks", "cluster": "idp", "timeout": "1s"}}});
    let rt = suite(&host, json!({"jwt_auth": jwt_section(remote)}));
    request(&host, "/api/orders", "alice");
    let f = filter(&rt, 9);
    assert_eq!(f.on_request(&host), Flow::AwaitKeys);
    assert!(rt.suite.paused(9).is_some());
    drop(f);
    assert!(!rt.suite.is_waiting(9));
    assert!(rt.suite.paused(9).is_none());
}

meshward_shared::test_stream_callbacks_declared!(concat!(
    include_str!("filter.rs"),
    include_str!("root.rs")
));

/// C4 of the benchmark (bench/harness/filters.py `suite_wasm`): a cached
/// token, a subject policy and one constant-key bucket. The data-returning
/// host calls of one request, pinned: docs/performance.md quotes them.
#[test]
fn the_benchmark_policy_reads_two_headers_per_request_and_one_lease_per_64() {
    let host = FakeHost::at(NOW);
    let mut jwt = jwt_section(local_keys());
    jwt["providers"]["corp"]["jwt_cache_config"] = json!({"jwt_cache_size": 1000});
    // jwt_authn's default, so C1's policy; meshward's default also reads `:method`
    jwt["bypass_cors_preflight"] = json!(false);
    let cfg = json!({
        "jwt_auth": jwt,
        "authz": {"policies": [{"name": "bench-subject", "action": "ALLOW",
                   "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": ["alice"]}]}]}]},
        "rate_limit": {"mode": "local", "response_headers": "none", "rules": [{
            "name": "bench-global", "key": [{"literal": "all"}],
            "limit": {"requests": 1_000_000_000u64, "per": "second", "algorithm": "token_bucket"}}]},
    });
    let rt = suite(&host, cfg);
    // warm up: the token cache and a full-size rate-limit lease
    for id in 2..70 {
        request(&host, "/api/x", "alice");
        assert_eq!(filter(&rt, id).on_request(&host), Flow::Continue);
    }
    host.clear_reads();
    for id in 100..164 {
        request(&host, "/api/x", "alice");
        let f = filter(&rt, id);
        assert_eq!(f.on_request(&host), Flow::Continue);
        f.on_response(&host);
    }
    let reads = host.reads();
    let count = |kind: &str| reads.iter().filter(|r| r.starts_with(kind)).count();
    for h in [":path", "authorization"] {
        assert_eq!(count(&format!("header {h}")), 64, "{reads:?}");
    }
    assert_eq!(count("header "), 2 * 64, "{reads:?}");
    assert_eq!(count("property "), 0, "{reads:?}");
    // a lease of up to 64 units: one shared-data read per lease, not per request
    assert!(count("shared ") <= 2, "{reads:?}");
    assert!(
        metric(
            &rt,
            &host,
            "meshward.jwt_auth.jwt_cache_hit",
            &[("provider", "corp")]
        ) >= 64
    );
}

#[test]
fn the_module_ticks_at_least_as_often_as_counters_flush() {
    let host = FakeHost::at(NOW);
    let rt = suite(&host, json!({"authz": authz_section()}));
    assert_eq!(*host.tick_period.borrow(), Some(crate::root::COUNTER_FLUSH));
    assert_eq!(rt.tick_period(), crate::root::COUNTER_FLUSH);
}

fn rls_answer(over: bool) -> Vec<u8> {
    use prost::Message;
    use rate_limit::proto::{DescriptorStatus, Duration as PDuration, RateLimitResponse};
    RateLimitResponse {
        overall_code: if over { 2 } else { 1 },
        statuses: vec![DescriptorStatus {
            code: if over { 2 } else { 1 },
            current_limit: None,
            limit_remaining: if over { 0 } else { 99 },
            duration_until_reset: Some(PDuration {
                seconds: 30,
                nanos: 0,
            }),
        }],
    }
    .encode_to_vec()
}

/// Keys arrive in the root context, which re-runs the waiting request through
/// rate-limit; its RLS call therefore answers to the root, which must hand the
/// answer to the request that asked.
#[test]
fn an_rls_answer_to_a_call_made_while_re_running_reaches_its_request() {
    let host = FakeHost::at(NOW);
    let remote = json!({"remote_jwks": {"http_uri": {"uri": "http://idp.local/jwks", "cluster": "idp", "timeout": "1s"}}});
    let rt = suite(
        &host,
        json!({"jwt_auth": jwt_section(remote), "rate_limit": {
            "mode": "global", "rate_limit_service": {"cluster": "rls", "timeout": "1s"},
            "rules": [{"name": "g", "key": [{"identity": "sub"}], "limit": {"requests": 100, "per": "minute"}}]}}),
    );
    let mut ids = Vec::new();
    for (id, sub) in [(7, "alice"), (8, "bob")] {
        request(&host, "/api/orders", sub);
        let f = filter(&rt, id);
        assert_eq!(f.on_request(&host), Flow::AwaitKeys);
        ids.push(f);
    }
    tick(&rt, &host, 1);
    let fetch = host.calls()[0].token;
    host.set_call_response(&[(":status", "200")], Some(testing::jwks_json().as_bytes()));
    on_keys_response(&rt, &host, 1, fetch, testing::jwks_json().len());
    // authenticated, now waiting for the RLS: not resumed yet
    assert!(host.resumed.borrow().is_empty());
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), 2);
    assert!(rt.suite.is_waiting(7) && rt.suite.is_waiting(8));

    host.set_grpc_response(Some(&rls_answer(false)));
    crate::root::on_rls_response(&rt, &host, calls[0].token, 0, 10);
    assert_eq!(host.resumed.borrow().as_slice(), &[7]);
    host.set_grpc_response(Some(&rls_answer(true)));
    crate::root::on_rls_response(&rt, &host, calls[1].token, 0, 10);
    assert_eq!(status(&host), Some(429));
    assert_eq!(
        host.effective.borrow().last(),
        Some(&8),
        "answered in bob's context"
    );
    assert!(!rt.suite.is_waiting(7) && !rt.suite.is_waiting(8));
    // an answer nobody waits for is a hybrid report's: ignored here
    crate::root::on_rls_response(&rt, &host, 4242, 0, 10);
    drop(ids);
}

#[test]
fn anomaly_runs_after_authz_and_its_throttle_hint_reaches_rate_limit() {
    let host = FakeHost::at(NOW);
    let cfg = json!({
        "jwt_auth": jwt_section(local_keys()),
        "anomaly": {"throttle_threshold": 3, "blocking_threshold": 1000},
        "rate_limit": {"rules": [
            {"name": "suspect", "match": {"headers": [{"name": "x-meshward-anomaly", "exact": "throttle"}]},
             "key": [{"identity": "sub"}], "limit": {"requests": 1, "per": "minute"}}]},
    });
    let rt = suite(&host, cfg);
    let attack = "/api/orders?id=1%27%20OR%201%3D1--";
    request(&host, attack, "alice");
    assert_eq!(filter(&rt, 2).on_request(&host), Flow::Continue);
    request(&host, attack, "alice");
    assert_eq!(filter(&rt, 3).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(429));
    // a forged hint on a benign request is stripped before rate-limit reads it
    request(&host, "/api/orders?id=7", "alice");
    host.add_request_header("x-meshward-anomaly", "throttle")
        .unwrap();
    assert_eq!(filter(&rt, 4).on_request(&host), Flow::Continue);
    assert_eq!(
        metric(
            &rt,
            &host,
            "meshward.anomaly.actions",
            &[("action", "throttle")]
        ),
        2
    );
}

#[test]
fn anomaly_blocks_before_rate_limit_spends_a_unit_and_unauthenticated_never_reach_it() {
    let host = FakeHost::at(NOW);
    let cfg = json!({"jwt_auth": jwt_section(local_keys()), "anomaly": {}, "rate_limit": rate_section(1)});
    let rt = suite(&host, cfg);
    host.set_headers(&[
        (":method", "GET"),
        (":path", "/api/x?id=1%27%20OR%201%3D1--"),
    ]);
    assert_eq!(filter(&rt, 2).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(401));
    assert_eq!(metric(&rt, &host, "meshward.anomaly.blocked", &[]), 0);
    request(&host, "/api/x?id=1%27%20OR%201%3D1--", "alice");
    assert_eq!(filter(&rt, 3).on_request(&host), Flow::Replied);
    assert_eq!(status(&host), Some(403));
    // the blocked request spent nothing: alice's one unit is still there
    request(&host, "/api/x", "alice");
    assert_eq!(filter(&rt, 4).on_request(&host), Flow::Continue);
}

#[test]
fn anomaly_waits_for_an_inspected_body() {
    let host = FakeHost::at(NOW);
    let rt = suite(&host, json!({"anomaly": {}}));
    host.set_headers(&[
        (":method", "POST"),
        (":path", "/submit"),
        ("content-type", "application/json"),
    ]);
    let f = filter(&rt, 2);
    f.stream.end_of_stream.set(false);
    assert_eq!(f.on_request(&host), Flow::Continue);
    assert!(f.stream.anomaly_body.borrow().is_some());
    // without a body there is nothing to wait for
    let g = filter(&rt, 3);
    g.stream.end_of_stream.set(true);
    assert_eq!(g.on_request(&host), Flow::Continue);
    assert!(g.stream.anomaly_body.borrow().is_none());
}
