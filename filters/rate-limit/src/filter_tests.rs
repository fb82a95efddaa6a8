//! The lifecycle against the fake host: local limits, headers, tiers,
//! throttling on tick, the RLS round trip, its deadline, and hybrid sync.

use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use prost::Message;
use serde_json::{json, Value};

use super::*;
use crate::root::{configure, tick};

const NOW: u64 = 1_800_000_000;

fn runtime(host: &FakeHost, cfg: Value) -> Rc<Runtime> {
    Rc::new(configure(host, cfg.to_string().as_bytes()).expect("config accepted"))
}

fn request(host: &FakeHost, path: &str, extra: &[(&str, &str)]) {
    let mut h = vec![(":method", "GET"), (":path", path), ("x-request-id", "r-1")];
    h.extend_from_slice(extra);
    host.set_headers(&h);
    host.put_property(&["source", "address"], b"10.0.0.1:4000");
}

fn run(host: &FakeHost, rt: &Rc<Runtime>, ctx: u32) -> (Step, RateLimitFilter) {
    let mut f = RateLimitFilter::new(ctx, Rc::clone(rt));
    let s = f.on_request(host);
    (s, f)
}

fn last_status(host: &FakeHost) -> Option<u32> {
    host.replies().last().map(|r| r.0)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn local_limit_admits_exactly_n_then_429_with_headers() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({
            "response_headers": "draft_and_legacy",
            "rules": [{"name": "per-ip", "key": [{"source_ip": {}}],
                       "limit": {"requests": 3, "per": "minute", "algorithm": "fixed_window"}}]
        }),
    );
    for i in 0..3 {
        request(&host, "/a", &[]);
        let (s, f) = run(&host, &rt, 10 + i);
        assert_eq!(s, Step::Continue);
        host.clear_response_headers();
        f.on_response_headers(&host);
        let h = host.response_headers();
        assert_eq!(header(&h, "ratelimit-policy"), Some("\"per-ip\";q=3;w=60"));
        assert_eq!(
            header(&h, "x-ratelimit-remaining"),
            Some((2 - i).to_string().as_str())
        );
        assert!(header(&h, "ratelimit")
            .is_some_and(|v| v.starts_with(&format!("\"per-ip\";r={};t=", 2 - i))));
    }
    request(&host, "/a", &[]);
    let (s, f) = run(&host, &rt, 20);
    assert_eq!(s, Step::Replied);
    let (status, headers, body) = host.replies().last().cloned().expect("reply");
    assert_eq!(status, 429);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    let retry: u64 = header(&headers, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1..=60).contains(&retry));
    assert_eq!(header(&headers, "x-ratelimit-limit"), Some("3"));
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["reason"], "rate_limited");
    // the reply already carries the headers: none are added again
    host.clear_response_headers();
    f.on_response_headers(&host);
    assert!(host.response_headers().is_empty());
    // another client has its own bucket
    host.put_property(&["source", "address"], b"10.0.0.2:4000");
    let mut f = RateLimitFilter::new(21, Rc::clone(&rt));
    assert_eq!(f.on_request(&host), Step::Continue);
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "per-ip")]),
        4
    );
    assert_eq!(
        host.metric("meshward.rate_limit.limited", &[("rule", "per-ip")]),
        1
    );
    let audit: Vec<_> = host
        .logs()
        .into_iter()
        .filter(|(_, l)| l.contains("meshward_audit"))
        .collect();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].1.contains("\"rule\":\"per-ip\"") && audit[0].1.contains("rate_limited"));
    // after the window, the client may come back
    host.advance(std::time::Duration::from_secs(60));
    host.put_property(&["source", "address"], b"10.0.0.1:4000");
    assert_eq!(run(&host, &rt, 22).0, Step::Continue);
}

#[test]
fn first_match_or_all_match() {
    let rules = json!([
        {"name": "strict", "match": {"prefix": "/x"}, "limit": {"requests": 1, "per": "hour"}},
        {"name": "loose", "limit": {"requests": 100, "per": "hour"}}
    ]);
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, json!({"rules": rules}));
    request(&host, "/y", &[]);
    assert_eq!(run(&host, &rt, 1).0, Step::Continue);
    request(&host, "/x", &[]);
    assert_eq!(run(&host, &rt, 2).0, Step::Continue);
    assert_eq!(run(&host, &rt, 3).0, Step::Replied);
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "loose")]),
        1
    );

    let host = FakeHost::at(NOW);
    let rt = runtime(&host, json!({"rules": rules, "match_all": true}));
    request(&host, "/x", &[]);
    assert_eq!(run(&host, &rt, 1).0, Step::Continue);
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "strict")]),
        1
    );
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "loose")]),
        1
    );
}

#[test]
fn tiers_by_claim_and_costs() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"rules": [{
        "name": "plan", "key": [{"identity": "sub"}], "cost": 2,
        "tiers": {"claim": "plan", "limits": {"free": {"requests": 4, "per": "hour"},
                                              "gold": {"requests": 40, "per": "hour"}}}}]}),
    );
    let login = |sub: &str, plan: Option<&str>| {
        let mut id = Identity {
            subject: sub.into(),
            issuer: "i".into(),
            ..Default::default()
        };
        if let Some(p) = plan {
            id.claims.insert("plan".into(), json!(p));
        }
        id.write(&host).expect("identity");
    };
    request(&host, "/", &[]);
    login("free-user", Some("free"));
    let admitted = (0..10)
        .filter(|i| run(&host, &rt, 100 + i).0 == Step::Continue)
        .count();
    assert_eq!(admitted, 2, "4 per hour at cost 2");
    login("gold-user", Some("gold"));
    let admitted = (0..30)
        .filter(|i| run(&host, &rt, 200 + i).0 == Step::Continue)
        .count();
    assert_eq!(admitted, 20);
    // no tier and no default: the rule does not apply
    login("anon", None);
    assert_eq!(run(&host, &rt, 300).0, Step::Continue);
    assert_eq!(run(&host, &rt, 301).0, Step::Continue);
    // no identity at all: the key is absent, the rule does not apply
    host.put_property(&[meshward_shared::identity::FILTER_STATE_KEY], b"");
    assert_eq!(run(&host, &rt, 302).0, Step::Continue);
}

#[test]
fn shadow_counts_but_lets_through() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"shadow": true, "rules": [{"name": "s", "limit": {"requests": 1, "per": "hour"}}]}),
    );
    request(&host, "/", &[]);
    for i in 0..3 {
        assert_eq!(run(&host, &rt, i).0, Step::Continue);
    }
    assert!(host.replies().is_empty());
    assert_eq!(
        host.metric("meshward.rate_limit.shadow_limited", &[("rule", "s")]),
        2
    );
    assert!(host.logs().iter().any(|(_, l)| l.contains("shadow_deny")));
}

#[test]
fn custom_deny_response() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({
        "deny_response": {"status": 503, "body": "slow down ({reason})", "headers": {"x-why": "rl"}},
        "rules": [{"name": "s", "limit": {"requests": 1, "per": "hour"}}]}),
    );
    request(&host, "/", &[]);
    run(&host, &rt, 1);
    run(&host, &rt, 2);
    let (status, headers, body) = host.replies().last().cloned().expect("reply");
    assert_eq!(status, 503);
    assert_eq!(body, b"slow down (rate_limited)");
    assert_eq!(header(&headers, "x-why"), Some("rl"));
    assert!(header(&headers, "retry-after").is_some());
}

#[test]
fn throttle_pauses_then_resumes_on_tick_and_rejects_past_max_delay() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"rules": [{"name": "t", "throttle": {"max_delay": "0.25s"},
        "limit": {"requests": 10, "per": "second", "burst": 1, "algorithm": "gcra"}}]}),
    );
    assert!(host.tick_period.borrow().is_some());
    request(&host, "/", &[]);
    assert_eq!(run(&host, &rt, 1).0, Step::Continue);
    // Paused streams stay alive until resumed (dropping one forgets its wait).
    let (s2, _f2) = run(&host, &rt, 2);
    assert_eq!(s2, Step::Pause); // waits 100 ms
    let (s3, _f3) = run(&host, &rt, 3);
    assert_eq!(s3, Step::Pause); // waits 200 ms
    assert_eq!(run(&host, &rt, 4).0, Step::Replied); // would wait 300 ms > 250
    assert_eq!(last_status(&host), Some(429));
    host.advance(std::time::Duration::from_millis(50));
    tick(&rt, &host, 0);
    assert!(host.resumed.borrow().is_empty());
    host.advance(std::time::Duration::from_millis(50));
    tick(&rt, &host, 0);
    assert_eq!(*host.resumed.borrow(), vec![2]);
    host.advance(std::time::Duration::from_millis(100));
    tick(&rt, &host, 0);
    assert_eq!(*host.resumed.borrow(), vec![2, 3]);
    assert_eq!(
        host.metric("meshward.rate_limit.delayed", &[("rule", "t")]),
        2
    );
}

fn global_cfg(extra: Value) -> Value {
    let mut v = json!({
        "mode": "global",
        "rate_limit_service": {"cluster": "rls", "timeout": "0.1s"},
        "rules": [{"name": "g", "key": [{"header": "x-api-key"}], "cost": 3,
                   "limit": {"requests": 100, "per": "minute"}}]
    });
    if let (Some(b), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            b.insert(k.clone(), x.clone());
        }
    }
    v
}

fn rls_answer(over: bool, remaining: u32) -> Vec<u8> {
    crate::proto::RateLimitResponse {
        overall_code: if over { 2 } else { 1 },
        statuses: vec![crate::proto::DescriptorStatus {
            code: if over { 2 } else { 1 },
            current_limit: None,
            limit_remaining: remaining,
            duration_until_reset: Some(crate::proto::Duration {
                seconds: 12,
                nanos: 0,
            }),
        }],
    }
    .encode_to_vec()
}

#[test]
fn global_asks_the_rls_and_follows_its_answer() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, global_cfg(json!({})));
    request(&host, "/", &[("x-api-key", "k1")]);
    let (s, mut f) = run(&host, &rt, 7);
    assert_eq!(s, Step::Pause);
    let call = host.grpc_calls().pop().expect("a call");
    assert_eq!(call.cluster, "rls");
    assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
    assert_eq!(call.method, "ShouldRateLimit");
    let req = crate::proto::RateLimitRequest::decode(call.message.as_slice()).expect("decodes");
    assert_eq!(req.domain, "meshward");
    assert_eq!(req.hits_addend, 3);
    let d = &req.descriptors[0];
    let e: Vec<_> = d
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(e, vec![("rule", "g"), ("x-api-key", "k1")]);
    assert_eq!(
        d.limit.as_ref().map(|l| (l.requests_per_unit, l.unit)),
        Some((100, 2))
    );
    host.set_grpc_response(Some(&rls_answer(false, 97)));
    host.advance(std::time::Duration::from_millis(3));
    f.on_rls_response(&host, call.token, 0, 10);
    assert_eq!(*host.resumed.borrow(), vec![0]);
    assert!(!rt.is_waiting(7));
    assert_eq!(
        host.histogram("meshward.rate_limit.rule=.=g;.;rls_time_us"),
        vec![3000],
        "the answer took 3 ms"
    );
    f.on_response_headers(&host);
    assert_eq!(
        header(&host.response_headers(), "ratelimit"),
        Some("\"g\";r=97;t=12")
    );

    let (_, mut f) = run(&host, &rt, 8);
    let call = host.grpc_calls().pop().expect("a call");
    host.set_grpc_response(Some(&rls_answer(true, 0)));
    f.on_rls_response(&host, call.token, 0, 10);
    assert_eq!(last_status(&host), Some(429));
}

#[test]
fn global_failure_modes_and_deadline() {
    // RLS error, failing closed (default)
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, global_cfg(json!({})));
    request(&host, "/", &[("x-api-key", "k1")]);
    let (_, mut f) = run(&host, &rt, 1);
    let token = host.grpc_calls()[0].token;
    f.on_rls_response(&host, token, 14, 0);
    assert_eq!(last_status(&host), Some(503));
    assert_eq!(
        host.metric("meshward.rate_limit.rls_error", &[("rule", "g")]),
        1
    );

    // no answer by the deadline, failing open
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        global_cfg(
            json!({"rate_limit_service": {"cluster": "rls", "timeout": "0.1s", "failure_mode_deny": false}}),
        ),
    );
    request(&host, "/", &[("x-api-key", "k1")]);
    let (_, mut f) = run(&host, &rt, 5);
    host.advance(std::time::Duration::from_millis(99));
    tick(&rt, &host, 0);
    assert!(host.resumed.borrow().is_empty());
    host.advance(std::time::Duration::from_millis(1));
    tick(&rt, &host, 0);
    assert_eq!(*host.resumed.borrow(), vec![5]);
    assert_eq!(
        host.metric("meshward.rate_limit.rls_timeout", &[("rule", "g")]),
        1
    );
    // the late answer is ignored
    host.set_grpc_response(Some(&rls_answer(true, 0)));
    f.on_rls_response(&host, host.grpc_calls()[0].token, 0, 10);
    assert!(host.replies().is_empty());

    // no answer by the deadline, failing closed
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, global_cfg(json!({})));
    request(&host, "/", &[("x-api-key", "k1")]);
    let _paused = run(&host, &rt, 6);
    host.advance(std::time::Duration::from_millis(150));
    tick(&rt, &host, 0);
    assert_eq!(last_status(&host), Some(503));

    // dispatch refused (e.g. unknown cluster): failure mode at once
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, global_cfg(json!({})));
    *host.fail_dispatch.borrow_mut() = true;
    request(&host, "/", &[("x-api-key", "k1")]);
    assert_eq!(run(&host, &rt, 9).0, Step::Replied);
}

#[test]
fn hybrid_admits_locally_and_syncs_in_batches() {
    let cfg = |share: f64| {
        json!({
            "mode": "hybrid", "hybrid": {"share": share, "sync_interval": "0.1s"},
            "rate_limit_service": {"cluster": "rls"},
            "rules": [{"name": "h", "key": [{"header": "x-api-key"}], "limit": {"requests": 10, "per": "hour"}}]
        })
    };
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, cfg(0.5));
    request(&host, "/", &[("x-api-key", "k1")]);
    let admitted = (0..10)
        .filter(|i| run(&host, &rt, *i).0 == Step::Continue)
        .count();
    assert_eq!(admitted, 5, "share 0.5 of 10");

    let host = FakeHost::at(NOW);
    let rt = runtime(&host, cfg(1.0));
    request(&host, "/", &[("x-api-key", "k1")]);
    let admitted = (0..3)
        .filter(|i| run(&host, &rt, *i).0 == Step::Continue)
        .count();
    assert_eq!(admitted, 3);
    assert!(host.grpc_calls().is_empty(), "no per-request RPC");
    tick(&rt, &host, 0);
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), 1, "one report for the key");
    let req = crate::proto::RateLimitRequest::decode(calls[0].message.as_slice()).expect("decodes");
    assert_eq!(req.hits_addend, 3);
    // the fleet used 9 of 10: one more admitted here, then none
    host.set_grpc_response(Some(&rls_answer(false, 1)));
    crate::root::on_sync_response(&rt, &host, calls[0].token, 0, 10);
    assert_eq!(host.counter("meshward.rate_limit.hybrid_sync_ok"), 1);
    let admitted = (0..5)
        .filter(|i| run(&host, &rt, 100 + i).0 == Step::Continue)
        .count();
    assert_eq!(admitted, 1);
    // a failed report puts the usage back for the next one
    host.advance(std::time::Duration::from_millis(100));
    tick(&rt, &host, 0);
    let calls = host.grpc_calls();
    let last = calls.last().expect("second report");
    crate::root::on_sync_response(&rt, &host, last.token, 14, 0);
    assert_eq!(host.counter("meshward.rate_limit.hybrid_sync_failed"), 1);
    host.advance(std::time::Duration::from_millis(100));
    tick(&rt, &host, 0);
    let again = host.grpc_calls();
    assert_eq!(again.len(), calls.len() + 1);
    let req = crate::proto::RateLimitRequest::decode(again[again.len() - 1].message.as_slice())
        .expect("decodes");
    assert_eq!(req.hits_addend, 1);
}

meshward_shared::test_stream_callbacks_declared!(concat!(
    include_str!("filter.rs"),
    include_str!("root.rs")
));

#[test]
fn a_stream_that_ends_while_paused_leaves_no_waiter() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, global_cfg(json!({})));
    request(&host, "/", &[("x-api-key", "k1")]);
    let (step, f) = run(&host, &rt, 9);
    assert_eq!(step, Step::Pause);
    assert!(rt.is_waiting(9));
    drop(f); // the client went away: Envoy deletes the context
    assert!(!rt.is_waiting(9));
}

// Each host read that returns data costs a call back into the VM in Envoy
// (docs/performance.md), so the hot path is held to a budget.
#[test]
fn a_constant_key_reads_only_its_counter() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"response_headers": "none", "rules": [{"name": "all", "key": [{"literal": "all"}],
               "limit": {"requests": 1000, "per": "second"}}]}),
    );
    request(&host, "/a?b=1", &[("x-api-key", "k")]);
    host.clear_reads();
    let (step, _f) = run(&host, &rt, 1);
    assert_eq!(step, Step::Continue);
    let reads = host.reads();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].starts_with("shared mwrl:"), "{reads:?}");
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "all")]),
        1
    );
}

#[test]
fn request_facts_are_read_once_and_only_when_a_rule_needs_them() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"rules": [{"name": "r", "match": {"prefix": "/a", "methods": ["GET"]},
               "key": [{"path": {}}, {"query": "b"}, {"method": {}}, {"header": "x-api-key"}],
               "limit": {"requests": 1000, "per": "second"}}]}),
    );
    request(&host, "/a?b=1", &[("x-api-key", "k")]);
    host.clear_reads();
    let (step, _f) = run(&host, &rt, 1);
    assert_eq!(step, Step::Continue);
    let mut reads = host.reads();
    reads.retain(|r| !r.starts_with("shared "));
    // The path first (an ambiguous one is refused before any rule), and
    // ordinary headers in one read that keeps every value.
    assert_eq!(reads, ["header :path", "header :method", "headers"]);
}

#[test]
fn ambiguous_paths_are_refused_when_a_rule_reads_the_path() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"rules": [{"name": "r", "match": {"prefix": "/admin"}, "key": [{"literal": "x"}],
               "limit": {"requests": 1, "per": "minute"}}]}),
    );
    request(&host, "/a%2F..%2Fadmin", &[]);
    let (step, _f) = run(&host, &rt, 1);
    assert_eq!(step, Step::Replied);
    assert_eq!(host.replies()[0].0, 400);
    // Dot segments and doubled slashes land on the rule they resolve to.
    for p in ["/public/../admin", "//admin", "/%61dmin"] {
        let host = FakeHost::at(NOW);
        let rt = runtime(
            &host,
            json!({"rules": [{"name": "r", "match": {"prefix": "/admin"}, "key": [{"literal": "x"}],
                   "limit": {"requests": 1, "per": "minute"}}]}),
        );
        request(&host, p, &[]);
        assert_eq!(run(&host, &rt, 1).0, Step::Continue, "{p}");
        request(&host, p, &[]);
        assert_eq!(
            run(&host, &rt, 2).0,
            Step::Replied,
            "{p}: counted as /admin"
        );
    }
}
