//! The engine against the fake host: hits and tier keys, local admission when
//! shared data fails (fail closed, counted), hybrid usage per tier, and the
//! RLS messages.

use std::rc::Rc;
use std::time::Duration;

use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use prost::Message;
use serde_json::{json, Value};

use super::*;
use crate::filter::{RateLimitFilter, Step};
use crate::root::{configure, on_sync_response, tick};
use crate::slots::MAX_RETRIES;

const NOW: u64 = 1_800_000_000;

fn runtime(host: &FakeHost, cfg: Value) -> Rc<Runtime> {
    Rc::new(configure(host, cfg.to_string().as_bytes()).expect("config accepted"))
}

fn request(host: &FakeHost, extra: &[(&str, &str)]) {
    let mut h = vec![(":method", "GET"), (":path", "/"), ("x-request-id", "r-1")];
    h.extend_from_slice(extra);
    host.set_headers(&h);
    host.put_property(&["source", "address"], b"10.0.0.1:4000");
}

fn login(host: &FakeHost, sub: &str, plan: &str) {
    let mut id = Identity {
        subject: sub.into(),
        issuer: "i".into(),
        ..Default::default()
    };
    id.claims.insert("plan".into(), json!(plan));
    id.write(host).expect("identity");
}

/// Requests `n` times; returns how many went through.
fn admitted(host: &FakeHost, rt: &Rc<Runtime>, n: u32) -> usize {
    (0..n)
        .filter(|i| {
            RateLimitFilter::new(1000 + i, Rc::clone(rt)).on_request(host) == Step::Continue
        })
        .count()
}

fn rls_answer(over: bool, remaining: u32) -> Vec<u8> {
    proto::RateLimitResponse {
        overall_code: if over { 2 } else { 1 },
        statuses: vec![proto::DescriptorStatus {
            code: if over { 2 } else { 1 },
            current_limit: None,
            limit_remaining: remaining,
            duration_until_reset: Some(proto::Duration {
                seconds: 30,
                nanos: 0,
            }),
        }],
    }
    .encode_to_vec()
}

fn local_rule(limit: u64) -> Value {
    json!({"rules": [{"name": "r", "key": [{"header": "x-k"}],
                      "limit": {"requests": limit, "per": "hour", "algorithm": "fixed_window"}}]})
}

// ---------------------------------------------------------------- hits

#[test]
fn tier_hits_carry_the_tier_in_the_key_and_its_limit() {
    let host = FakeHost::at(NOW);
    let rt = runtime(
        &host,
        json!({"rules": [{"name": "plan", "key": [{"identity": "sub"}],
            "tiers": {"claim": "plan", "limits": {"free": {"requests": 4, "per": "hour"}},
                      "default": {"requests": 9, "per": "hour"}}}]}),
    );
    request(&host, &[]);
    login(&host, "u1", "free");
    let view = RequestView::new(&host, &rt.config.sources);
    let hits = rt.hits(&view);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, "plan\u{1f}sub=u1\u{1f}tier=free");
    assert_eq!(hits[0].spec.limit.requests, 4);
    // an unknown plan falls to the default tier, labelled as such
    login(&host, "u1", "platinum");
    let view = RequestView::new(&host, &rt.config.sources);
    let hits = rt.hits(&view);
    assert_eq!(hits[0].key, "plan\u{1f}sub=u1\u{1f}tier=default");
    assert_eq!(hits[0].spec.limit.requests, 9);
    // the stored key names its own tier's limit
    let rule = &rt.config.rules[0];
    let spec = |k: &str| rule.spec_for_key(k).map(|s| s.limit.requests);
    assert_eq!(spec("plan\u{1f}sub=u1\u{1f}tier=free"), Some(4));
    assert_eq!(spec("plan\u{1f}sub=u1\u{1f}tier=default"), Some(9));
    // also when a long key is stored by its hash
    let long = format!("plan\u{1f}sub={}\u{1f}tier=free", "x".repeat(400));
    assert_eq!(spec(&slots::stored_key("plan", &long)), Some(4));
    // a key part that is itself named `tier` does not pick the limit
    assert_eq!(spec("plan\u{1f}tier=free\u{1f}tier=default"), Some(9));
    let long = format!(
        "plan\u{1f}tier=free\u{1f}s={}\u{1f}tier=default",
        "x".repeat(400)
    );
    assert_eq!(spec(&slots::stored_key("plan", &long)), Some(9));
}

// ---------------------------------------------------------------- shared data failures

/// Regression: a request whose counter update lost every CAS race used to be
/// admitted and not counted.
#[test]
fn lost_cas_races_deny_and_are_counted() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, local_rule(5));
    request(&host, &[("x-k", "a")]);
    let view = RequestView::new(&host, &rt.config.sources);
    let hit = rt.hits(&view).remove(0);
    let now = now_ms(&host);
    *host.cas_conflicts.borrow_mut() = MAX_RETRIES;
    assert_eq!(
        rt.admit_local(&host, &hit, now),
        Outcome::Verdict(uncounted_denial())
    );
    assert_eq!(host.counter("meshward.rate_limit.cas_contention"), 1);
    // nothing was counted: the full limit is still there
    assert_eq!(admitted(&host, &rt, 10), 5);
}

#[test]
fn shared_data_write_errors_deny_and_are_counted() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, local_rule(5));
    request(&host, &[("x-k", "a")]);
    *host.fail_shared_writes.borrow_mut() = true;
    let mut f = RateLimitFilter::new(1, Rc::clone(&rt));
    assert_eq!(f.on_request(&host), Step::Replied);
    let (status, headers, _) = host.replies().last().cloned().expect("reply");
    assert_eq!(status, 429);
    let retry = headers.iter().find(|(k, _)| k == "retry-after");
    assert_eq!(retry.map(|(_, v)| v.as_str()), Some("1"));
    assert_eq!(host.counter("meshward.rate_limit.shared_data_error"), 1);
    assert_eq!(
        host.metric("meshward.rate_limit.limited", &[("rule", "r")]),
        1
    );
    assert_eq!(
        host.metric("meshward.rate_limit.allowed", &[("rule", "r")]),
        0
    );
    *host.fail_shared_writes.borrow_mut() = false;
    assert_eq!(admitted(&host, &rt, 10), 5);
}

#[test]
fn shadow_rules_let_uncounted_requests_through() {
    let host = FakeHost::at(NOW);
    let mut cfg = local_rule(5);
    cfg["shadow"] = json!(true);
    let rt = runtime(&host, cfg);
    request(&host, &[("x-k", "a")]);
    *host.cas_conflicts.borrow_mut() = MAX_RETRIES;
    assert_eq!(admitted(&host, &rt, 1), 1);
    assert_eq!(host.counter("meshward.rate_limit.cas_contention"), 1);
    assert_eq!(
        host.metric("meshward.rate_limit.shadow_limited", &[("rule", "r")]),
        1
    );
}

#[test]
fn fewer_lost_races_than_the_budget_still_count() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, local_rule(3));
    request(&host, &[("x-k", "a")]);
    *host.cas_conflicts.borrow_mut() = MAX_RETRIES - 1;
    assert_eq!(admitted(&host, &rt, 5), 3);
    assert_eq!(host.counter("meshward.rate_limit.cas_contention"), 0);
}

// ---------------------------------------------------------------- hybrid tiers

fn hybrid_tiers(default: Option<u64>) -> Value {
    let mut tiers = json!({"claim": "plan", "limits": {
        "free": {"requests": 4, "per": "hour"},
        "gold": {"requests": 40, "per": "hour"}}});
    if let Some(d) = default {
        tiers["default"] = json!({"requests": d, "per": "hour"});
    }
    json!({
        "mode": "hybrid", "hybrid": {"sync_interval": "0.1s"},
        "rate_limit_service": {"cluster": "rls"},
        "rules": [{"name": "plan", "key": [{"identity": "sub"}], "tiers": tiers}]
    })
}

/// Sync now and answer the (only new) report with `remaining`.
fn sync_and_answer(host: &FakeHost, rt: &Runtime, remaining: u32) -> proto::RateLimitRequest {
    host.advance(Duration::from_millis(200));
    let before = host.grpc_calls().len();
    tick(rt, host, 0);
    let calls = host.grpc_calls();
    assert_eq!(calls.len(), before + 1, "one report");
    let call = calls.last().cloned().expect("report");
    host.set_grpc_response(Some(&rls_answer(false, remaining)));
    on_sync_response(rt, host, call.token, 0, 10);
    proto::RateLimitRequest::decode(call.message.as_slice()).expect("decodes")
}

/// Regression: usage was computed against the default tier's limit (100), so a
/// `free` key (limit 4) was locked out after its first sync.
#[test]
fn hybrid_sync_keeps_a_small_tier_open() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, hybrid_tiers(Some(100)));
    request(&host, &[]);
    login(&host, "u1", "free");
    assert_eq!(admitted(&host, &rt, 2), 2);
    // the fleet used 2 of 4 (this proxy's 2)
    let sent = sync_and_answer(&host, &rt, 2);
    assert_eq!(sent.hits_addend, 2);
    assert_eq!(
        sent.descriptors[0]
            .limit
            .as_ref()
            .map(|l| l.requests_per_unit),
        Some(4)
    );
    assert_eq!(admitted(&host, &rt, 5), 2, "the other 2 of the free tier");
}

/// Regression: with no default, usage was computed against the first tier
/// (`free`, 4), so a `gold` key (40) never learned the fleet's usage.
#[test]
fn hybrid_sync_teaches_a_large_tier_its_usage() {
    let host = FakeHost::at(NOW);
    let rt = runtime(&host, hybrid_tiers(None));
    request(&host, &[]);
    login(&host, "u2", "gold");
    assert_eq!(admitted(&host, &rt, 10), 10);
    // other proxies used 25 more: 5 left of 40
    sync_and_answer(&host, &rt, 5);
    assert_eq!(admitted(&host, &rt, 20), 5);
}

#[test]
fn hybrid_window_change_requeues_a_slot_whose_queue_write_was_lost() {
    let mut s = Slot {
        dirty: true,
        ..Slot::default()
    };
    // last window's slot, still flagged dirty but no longer queued
    s.state.a = 7;
    let ((v, newly), write) = hybrid_admit(&mut s, 10, 8, 10, 1, 8_000, 1000);
    assert!(v.allowed && write);
    assert!(newly, "queued again in the new window");
    assert_eq!((s.unsynced, s.state.b), (1, 1));
}

// ---------------------------------------------------------------- RLS messages

#[test]
fn rls_messages_round_trip() {
    let spec = LimitSpec {
        limit: crate::limiter::Limit {
            requests: 7,
            period_ms: 60_000,
            burst: 7,
            algorithm: crate::limiter::Algorithm::FixedWindow,
        },
        unit: Some(proto::Unit::Minute),
    };
    let msg = rls_message("d", "r\u{1f}sub=a\u{1f}tier=free", &spec, 3);
    let req = proto::RateLimitRequest::decode(msg.as_slice()).expect("decodes");
    assert_eq!(req.domain, "d");
    assert_eq!(req.hits_addend, 3);
    let e: Vec<_> = req.descriptors[0]
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(e, [("rule", "r"), ("sub", "a"), ("tier", "free")]);
    assert_eq!(
        parse_rls(&rls_answer(true, 0)),
        Some(RlsAnswer {
            over_limit: true,
            remaining: 0,
            reset_ms: 30_000
        })
    );
    assert_eq!(parse_rls(b"\xff\xff"), None);
}

#[test]
fn header_lines_follow_the_style_and_report_the_tightest() {
    let host = FakeHost::at(NOW);
    let mut cfg = local_rule(5);
    cfg["response_headers"] = json!("draft_and_legacy");
    let rt = runtime(&host, cfg);
    let spec = rt.config.rules[0].spec_for_key("r").cloned().expect("spec");
    let mut info = HeaderInfo::default();
    let v = |remaining| Verdict {
        allowed: true,
        remaining,
        reset_ms: 1500,
        ..Verdict::default()
    };
    info.add("a\"b", &spec, &v(4));
    info.add("c", &spec, &v(2));
    let lines = rt.header_lines(&info);
    let get = |k: &str| lines.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("ratelimit-policy"),
        Some("\"ab\";q=5;w=3600, \"c\";q=5;w=3600")
    );
    assert_eq!(get("ratelimit"), Some("\"c\";r=2;t=2"));
    assert_eq!(get("x-ratelimit-remaining"), Some("2"));
}
