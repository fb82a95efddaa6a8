use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::{json, Value};

use super::*;
use crate::root::configure;

fn runtime(host: &FakeHost, v: Value) -> Runtime {
    configure(host, v.to_string().as_bytes()).unwrap()
}

fn req(path: &str) -> FakeHost {
    let h = FakeHost::at(1_704_067_200);
    h.set_headers(&[
        (":method", "GET"),
        (":path", path),
        ("x-request-id", "rid-1"),
    ]);
    h
}

fn audit(h: &FakeHost) -> Vec<Value> {
    h.logs()
        .iter()
        .filter(|(_, l)| l.contains("meshward_audit"))
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect()
}

fn decision(h: &FakeHost) -> Value {
    serde_json::from_slice(&h.raw_property(DECISION_KEY).unwrap()).unwrap()
}

const POLICIES: &str = r#"{"expose_policy": true, "policies": [
  {"name": "no-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]},
  {"name": "teapot", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/tea"]}}]}],
   "deny_response": {"status": 418, "headers": {"X-Why": "tea"}, "body": "{\"no\":\"{reason} by {policy}\"}", "content_type": "application/json"}},
  {"name": "public", "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/public/*"]}}]}]}]}"#;

#[test]
fn deny_by_policy_sends_problem_json_with_policy() {
    let h = req("/admin/x");
    let rt = runtime(&h, serde_json::from_str(POLICIES).unwrap());
    assert_eq!(process(&rt, &h), Step::Replied);
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    let (status, headers, body) = &replies[0];
    assert_eq!(*status, 403);
    assert!(headers.contains(&("content-type".into(), "application/problem+json".into())));
    let b: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(b["reason"], "denied_by_policy");
    assert_eq!(b["policy"], "no-admin");
    assert_eq!(b["type"], "urn:meshward:problem:denied_by_policy");
    assert_eq!(h.metric("meshward.authz.denied", &[]), 1);
    assert_eq!(
        h.metric("meshward.authz.denied", &[("policy", "no-admin")]),
        1
    );
    let a = audit(&h);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["decision"], "deny");
    assert_eq!(a[0]["policy"], "no-admin");
    assert_eq!(a[0]["rule"], 0);
    assert_eq!(a[0]["status"], 403);
    assert_eq!(a[0]["request_id"], "rid-1");
    let why = a[0]["why"].as_str().unwrap();
    assert!(why.starts_with("rules[0] matched: paths /admin*"), "{why}");
    assert_eq!(decision(&h)["policy"], "no-admin");
}

#[test]
fn policy_name_hidden_unless_exposed() {
    let h = req("/admin/x");
    let mut cfg: Value = serde_json::from_str(POLICIES).unwrap();
    cfg["expose_policy"] = json!(false);
    let rt = runtime(&h, cfg);
    process(&rt, &h);
    let b: Value = serde_json::from_slice(&h.replies()[0].2).unwrap();
    assert!(b.get("policy").is_none());
    assert_eq!(b["reason"], "denied_by_policy");
}

#[test]
fn per_policy_custom_deny_response() {
    let h = req("/tea");
    let rt = runtime(&h, serde_json::from_str(POLICIES).unwrap());
    process(&rt, &h);
    let (status, headers, body) = &h.replies()[0];
    assert_eq!(*status, 418);
    assert!(headers.contains(&("x-why".into(), "tea".into())));
    assert!(headers.contains(&("content-type".into(), "application/json".into())));
    assert_eq!(
        String::from_utf8_lossy(body),
        r#"{"no":"denied_by_policy by teapot"}"#
    );
    assert_eq!(audit(&h)[0]["status"], 418);
}

#[test]
fn no_allow_match_is_explained_and_counted_as_default() {
    let h = req("/private");
    let rt = runtime(&h, serde_json::from_str(POLICIES).unwrap());
    assert_eq!(process(&rt, &h), Step::Replied);
    let b: Value = serde_json::from_slice(&h.replies()[0].2).unwrap();
    assert_eq!(b["reason"], "no_allow_match");
    assert_eq!(
        h.metric("meshward.authz.denied", &[("policy", "_default")]),
        1
    );
    let d = decision(&h);
    assert_eq!(d["decision"], "deny");
    assert!(
        d["why"]
            .as_str()
            .unwrap()
            .contains("public rules[0]: to.operation.paths"),
        "{d}"
    );
}

#[test]
fn allow_continues_counts_and_writes_decision() {
    let h = req("/public/a");
    let rt = runtime(&h, serde_json::from_str(POLICIES).unwrap());
    assert_eq!(process(&rt, &h), Step::Continue);
    assert!(h.replies().is_empty());
    assert_eq!(h.metric("meshward.authz.allowed", &[]), 1);
    assert_eq!(
        h.metric("meshward.authz.allowed", &[("policy", "public")]),
        1
    );
    // one counter increment per decision: the policy's (totals are sums over `policy`)
    let increments: i64 = h.counter_names().iter().map(|n| h.counter(n)).sum();
    assert_eq!(increments, 1);
    assert!(audit(&h).is_empty(), "allow is not audited by default");
    assert_eq!(h.raw_property("meshward.audit.authz"), None);
    let d = decision(&h);
    assert_eq!(
        (
            d["decision"].as_str(),
            d["policy"].as_str(),
            d["rule"].as_u64()
        ),
        (Some("allow"), Some("public"), Some(0))
    );
}

#[test]
fn shadow_mode_never_denies_but_counts_and_audits() {
    let h = req("/admin/x");
    let mut cfg: Value = serde_json::from_str(POLICIES).unwrap();
    cfg["shadow"] = json!(true);
    let rt = runtime(&h, cfg);
    assert_eq!(process(&rt, &h), Step::Continue);
    assert!(h.replies().is_empty());
    assert_eq!(h.metric("meshward.authz.shadow_denied", &[]), 1);
    assert_eq!(
        h.metric("meshward.authz.shadow_denied", &[("policy", "no-admin")]),
        1
    );
    assert_eq!(h.metric("meshward.authz.denied", &[]), 0);
    assert_eq!(audit(&h)[0]["decision"], "shadow_deny");
}

#[test]
fn dry_run_policy_counts_shadow_denied_without_enforcing() {
    let h = req("/beta");
    let rt = runtime(
        &h,
        json!({"policies": [
        {"name": "beta-block", "action": "DENY", "dry_run": true, "rules": [{"to": [{"operation": {"paths": ["/beta"]}}]}]}]}),
    );
    assert_eq!(process(&rt, &h), Step::Continue);
    assert_eq!(h.metric("meshward.authz.allowed", &[]), 1);
    assert_eq!(
        h.metric("meshward.authz.shadow_denied", &[("policy", "beta-block")]),
        1
    );
    let a = audit(&h);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (
            a[0]["decision"].as_str(),
            a[0]["policy"].as_str(),
            a[0]["dry_run"].as_bool()
        ),
        (Some("shadow_deny"), Some("beta-block"), Some(true))
    );
}

#[test]
fn audit_policy_writes_a_line_and_counts() {
    let h = req("/x");
    let rt = runtime(
        &h,
        json!({"policies": [{"name": "watch", "action": "AUDIT", "rules": [{}]}]}),
    );
    assert_eq!(process(&rt, &h), Step::Continue);
    assert_eq!(
        h.metric("meshward.authz.audited", &[("policy", "watch")]),
        1
    );
    let a = audit(&h);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["decision"], "allow");
    assert_eq!(a[0]["audit_policies"], json!(["watch"]));
}

#[test]
fn global_deny_response_and_audit_allow() {
    let h = req("/x");
    let rt = runtime(
        &h,
        json!({"default_action": "DENY", "deny_response": {"status": 404, "body": "nope"}}),
    );
    process(&rt, &h);
    let (status, _, body) = &h.replies()[0];
    assert_eq!((*status, body.as_slice()), (404, &b"nope"[..]));
    let h = req("/x");
    let rt = runtime(&h, json!({"audit_allow": true, "decision_state": false}));
    process(&rt, &h);
    assert_eq!(audit(&h)[0]["decision"], "allow");
    assert!(h.raw_property(DECISION_KEY).is_none());
}

#[test]
fn bola_with_identity_from_filter_state() {
    let cfg = json!({"policies": [{"name": "own", "rules": [{
        "to": [{"operation": {"paths": ["/users/{user}/orders/{**}"]}}],
        "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]}]});
    for (path, ok) in [
        ("/users/alice/orders/", true),
        ("/users/bob/orders/", false),
        ("/users/alice/orders/../../bob/orders/1", false),
    ] {
        let h = req(path);
        let id = Identity {
            issuer: "https://idp".into(),
            subject: "alice".into(),
            claims: json!({"sub": "alice"}).as_object().cloned().unwrap(),
            ..Default::default()
        };
        id.write(&h).unwrap();
        let rt = runtime(&h, cfg.clone());
        assert_eq!(process(&rt, &h) == Step::Continue, ok, "{path}");
    }
}

#[test]
fn invalid_config_logs_field_path() {
    let h = FakeHost::default();
    assert!(configure(&h, br#"{"policies":[{"name":"p","rules":[{"from":[{"source":{"ipBlocks":["300.0.0.1"]}}]}]}]}"#).is_none());
    let logs = h.logs();
    assert!(
        logs.iter().any(|(_, l)| l.starts_with(
            "meshward authz: invalid config: policies[0].rules[0].from[0].source.ipBlocks[0]: "
        )),
        "{logs:?}"
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let rt = runtime(
        &FakeHost::default(),
        json!({
        "xff_num_trusted_hops": 3, "identity": {"jwt_authn": {"payload_in_metadata": "p"}},
        "rbac": {"role_claims": ["roles"], "roles": {"a": {}}},
        "policies": [{"name": "p", "rules": [{"roles": ["a"], "from": [{"source": {"remoteIpBlocks": ["1.0.0.0/8"], "principals": ["*"]}}],
            "to": [{"operation": {"paths": ["/u/{u}/{**}"], "hosts": ["x"], "ports": ["1"]}}],
            "objects": [{"capture": "u", "equals": "request.auth.claims[sub]"}],
            "when": [{"key": "request.auth.claims[a][b]", "values": ["x"]}]}]}]}),
    );
    let junk: [&[u8]; 6] = [
        b"",
        b"\xff\xff\xff\xff",
        b"\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00",
        b"not pairs",
        &[0; 3],
        &[2, 0, 0, 0, 1, 0, 0, 0],
    ];
    for j in junk {
        let h = FakeHost::default();
        h.set_headers(&[
            (":path", "/u//%00/?#"),
            (":authority", "[::1]:x"),
            ("x-forwarded-for", ",,, ,"),
        ]);
        h.put_property(&["source", "address"], j);
        h.put_property(&["destination", "port"], j);
        h.put_property(&["connection", "uri_san_peer_certificate"], j);
        h.put_property(&["metadata"], j);
        h.put_property(&["filter_state", "meshward.peer"], j);
        h.put_property(&["meshward.identity"], j);
        assert_eq!(process(&rt, &h), Step::Replied);
    }
    let h = FakeHost::default();
    assert_eq!(process(&rt, &h), Step::Replied, "no headers at all");
}

meshward_shared::test_stream_callbacks_declared!(concat!(
    include_str!("filter.rs"),
    include_str!("root.rs")
));

// Each host read that returns data costs a call back into the VM in Envoy
// (docs/performance.md): the benchmark's policy (one claim from jwt_authn
// metadata) must cost exactly one read, the whole `metadata` message (the
// only form that keeps claim types).
#[test]
fn a_subject_policy_on_jwt_authn_metadata_reads_metadata_once() {
    let rt = runtime(
        &FakeHost::default(),
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "jwt_payload"}},
               "policies": [{"name": "p", "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": ["alice"]}]}]}]}),
    );
    let h = req("/x");
    let claims = json!({"sub": "alice"}).as_object().cloned().unwrap();
    h.put_property(
        &["metadata"],
        &meshward_shared::facts::metadata::encode_payload(
            "envoy.filters.http.jwt_authn",
            "jwt_payload",
            &claims,
        ),
    );
    h.clear_reads();
    assert_eq!(process(&rt, &h), Step::Continue);
    assert_eq!(h.reads(), ["property metadata"]);
}

#[test]
fn ambiguous_paths_get_400_and_missing_peers_403() {
    let rt = runtime(
        &FakeHost::default(),
        json!({"policies": [{"name": "p", "rules": [{"to": [{"operation": {"paths": ["/ok"]}}]}]}]}),
    );
    for p in ["/a%2Fb", "/../ok", "/a\\b", "/x%00"] {
        let h = req(p);
        assert_eq!(process(&rt, &h), Step::Replied, "{p}");
        assert_eq!(h.replies()[0].0, 400, "{p}");
        assert_eq!(audit(&h)[0]["reason"], "ambiguous_path");
    }
    let h = req("/x/../ok");
    assert_eq!(process(&rt, &h), Step::Continue);
    let rt = runtime(
        &FakeHost::default(),
        json!({"policies": [{"name": "d", "action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["192.0.2.1"]}}]}]}]}),
    );
    let h = req("/x");
    assert_eq!(process(&rt, &h), Step::Replied);
    assert_eq!(h.replies()[0].0, 403);
    assert_eq!(audit(&h)[0]["reason"], "peer_unknown");
    let errors = h
        .logs()
        .iter()
        .filter(|(l, _)| *l == LogLevel::Error)
        .count();
    assert_eq!(errors, 1);
    process(&rt, &req("/y"));
    let h2 = req("/y");
    process(&rt, &h2);
    assert_eq!(
        h2.logs()
            .iter()
            .filter(|(l, _)| *l == LogLevel::Error)
            .count(),
        0,
        "logged once per VM"
    );
}
