//! Evaluation through the real gather path: config JSON + a fake host.

use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::json;

use super::*;
use crate::config::Config;
use crate::gather::request_of;

pub fn cfg(v: serde_json::Value) -> Config {
    Config::from_json(v.to_string().as_bytes()).unwrap()
}

fn host(headers: &[(&str, &str)]) -> FakeHost {
    let h = FakeHost::at(1_704_067_200 + 10 * 3600); // Monday 10:00Z
    h.set_headers(headers);
    h.put_property(&["source", "address"], b"10.0.0.5:4444");
    h.put_property(&["filter_state", "meshward.peer"], b"10.0.0.5");
    h
}

fn get(path: &str) -> FakeHost {
    host(&[
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com"),
    ])
}

fn with_identity(h: FakeHost, sub: &str, claims: serde_json::Value) -> FakeHost {
    let mut id = Identity {
        provider: "corp".into(),
        issuer: "https://idp".into(),
        subject: sub.into(),
        audiences: vec!["api".into()],
        scopes: vec!["orders.read".into()],
        presenter: Some("web".into()),
        ..Default::default()
    };
    if let serde_json::Value::Object(m) = claims {
        id.claims = m;
    }
    id.claims.insert("sub".into(), json!(sub));
    id.claims.entry("iss").or_insert(json!("https://idp"));
    id.claims.entry("aud").or_insert(json!(["api"]));
    id.claims.entry("azp").or_insert(json!("web"));
    id.write(&h).unwrap();
    h
}

fn decide(c: &Config, h: &FakeHost) -> Outcome {
    c.engine.decide(&request_of(c, h).unwrap(), false)
}

fn reason(c: &Config, h: &FakeHost) -> Reason {
    decide(c, h).reason
}

#[test]
fn no_policies_allows_and_default_action_deny_denies() {
    let c = cfg(json!({}));
    assert_eq!(reason(&c, &get("/")), Reason::AllowedByDefault);
    let c = cfg(json!({"default_action": "DENY"}));
    assert_eq!(reason(&c, &get("/")), Reason::DefaultDeny);
    let c = cfg(json!({"default_action": "ALLOW"}));
    assert_eq!(reason(&c, &get("/")), Reason::AllowedByDefault);
}

#[test]
fn allow_policy_presence_makes_default_deny() {
    let c = cfg(json!({"policies": [{"name": "a", "action": "ALLOW",
        "rules": [{"to": [{"operation": {"paths": ["/public*"]}}]}]}]}));
    let o = decide(&c, &get("/public/x"));
    assert_eq!(
        (o.reason, o.policy, o.rule),
        (Reason::AllowedByPolicy, Some(0), Some(0))
    );
    assert_eq!(reason(&c, &get("/private")), Reason::NoAllowMatch);
    // An ALLOW policy with no rules matches nothing (Istio "allow-nothing").
    let c = cfg(json!({"policies": [{"name": "nothing"}]}));
    assert_eq!(reason(&c, &get("/")), Reason::NoAllowMatch);
    // An empty rule matches everything (Istio "allow-all").
    let c = cfg(json!({"policies": [{"name": "all", "rules": [{}]}]}));
    assert_eq!(reason(&c, &get("/")), Reason::AllowedByPolicy);
}

#[test]
fn deny_is_evaluated_before_allow() {
    let c = cfg(json!({"policies": [
        {"name": "allow-all", "action": "ALLOW", "rules": [{}]},
        {"name": "no-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}]}));
    let o = decide(&c, &get("/admin/x"));
    assert_eq!((o.reason, o.policy), (Reason::DeniedByPolicy, Some(1)));
    assert_eq!(reason(&c, &get("/x")), Reason::AllowedByPolicy);
    // DENY with no rules never matches
    let c = cfg(json!({"policies": [{"name": "d", "action": "DENY"}]}));
    assert_eq!(reason(&c, &get("/")), Reason::AllowedByDefault);
}

#[test]
fn audit_policies_never_decide() {
    let c = cfg(json!({"policies": [
        {"name": "aud", "action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}]}));
    let h = get("/x");
    assert_eq!(reason(&c, &h), Reason::AllowedByDefault);
    assert_eq!(c.engine.audits(&request_of(&c, &h).unwrap()), vec![(0, 0)]);
    let h = host(&[(":method", "POST"), (":path", "/x")]);
    assert!(c.engine.audits(&request_of(&c, &h).unwrap()).is_empty());
}

#[test]
fn rule_needs_from_and_to_and_all_when() {
    let c = cfg(json!({"policies": [{"name": "p", "rules": [{
        "from": [{"source": {"ipBlocks": ["192.168.0.0/16"]}}, {"source": {"ipBlocks": ["10.0.0.0/8"]}}],
        "to": [{"operation": {"methods": ["POST"]}}, {"operation": {"methods": ["GET"], "paths": ["/a"]}}],
        "when": [{"key": "request.headers[x-a]", "values": ["1"]}, {"key": "request.headers[x-b]", "values": ["2"]}]}]}]}));
    let h = host(&[
        (":method", "GET"),
        (":path", "/a"),
        ("x-a", "1"),
        ("x-b", "2"),
    ]);
    assert!(decide(&c, &h).allowed());
    let h = host(&[(":method", "GET"), (":path", "/a"), ("x-a", "1")]);
    assert!(!decide(&c, &h).allowed(), "when conditions are ANDed");
    let h = host(&[
        (":method", "GET"),
        (":path", "/b"),
        ("x-a", "1"),
        ("x-b", "2"),
    ]);
    assert!(!decide(&c, &h).allowed());
    let h = host(&[
        (":method", "POST"),
        (":path", "/b"),
        ("x-a", "1"),
        ("x-b", "2"),
    ]);
    assert!(decide(&c, &h).allowed(), "operations are ORed");
    h.put_property(&["filter_state", "meshward.peer"], b"172.16.0.1");
    assert!(!decide(&c, &h).allowed());
}

#[test]
fn operation_fields_and_not_forms() {
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"to": [{"operation": {
        "hosts": ["API.example.com", "*.internal"], "notHosts": ["bad.internal"],
        "methods": ["GET", "HEAD"], "notMethods": ["HEAD"],
        "paths": ["/v1/*"], "notPaths": ["/v1/secret*"],
        "ports": ["8080"], "notPorts": ["9090"]}}]}]}]}),
    );
    let h = |m: &str, p: &str, a: &str, port: u64| {
        let h = host(&[(":method", m), (":path", p), (":authority", a)]);
        h.put_property(&["destination", "port"], &port.to_le_bytes());
        h
    };
    assert!(decide(&c, &h("GET", "/v1/x?q=1", "api.example.com", 8080)).allowed());
    assert!(
        !decide(&c, &h("GET", "/v1/x", "api.example.com:8080", 8080)).allowed(),
        "Istio: hosts match :authority exactly"
    );
    assert!(decide(&c, &h("GET", "/v1/x", "svc.internal", 8080)).allowed());
    assert!(
        !decide(&c, &h("GET", "/v1/x", "bad.internal", 8080)).allowed(),
        "notHosts"
    );
    assert!(
        !decide(&c, &h("HEAD", "/v1/x", "svc.internal", 8080)).allowed(),
        "notMethods"
    );
    assert!(
        !decide(&c, &h("POST", "/v1/x", "svc.internal", 8080)).allowed(),
        "methods"
    );
    assert!(
        !decide(&c, &h("GET", "/v1/secret/1", "svc.internal", 8080)).allowed(),
        "notPaths"
    );
    assert!(
        !decide(&c, &h("GET", "/v2/x", "svc.internal", 8080)).allowed(),
        "paths"
    );
    assert!(
        !decide(&c, &h("GET", "/v1/x", "svc.internal", 9090)).allowed(),
        "ports"
    );
    assert!(
        !decide(&c, &h("GET", "/v1/x", "other.com", 8080)).allowed(),
        "hosts"
    );
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"to": [{"operation": {"notPorts": ["9090"]}}]}]}]}),
    );
    assert!(decide(&c, &h("GET", "/", "x", 80)).allowed());
    assert!(!decide(&c, &h("GET", "/", "x", 9090)).allowed());
}

#[test]
fn source_ip_remote_ip_and_xff_hops() {
    let c = cfg(
        json!({"xff_num_trusted_hops": 1, "policies": [{"name": "p", "rules": [{"from": [{"source": {
        "remoteIpBlocks": ["203.0.113.0/24"], "notRemoteIpBlocks": ["203.0.113.66"],
        "ipBlocks": ["10.0.0.0/8"], "notIpBlocks": ["10.0.0.9"]}}]}]}]}),
    );
    let h = |xff: &str| host(&[(":path", "/"), ("x-forwarded-for", xff)]);
    assert!(decide(&c, &h("203.0.113.7, 10.0.0.5")).allowed());
    assert!(
        decide(&c, &h("1.1.1.1, 203.0.113.7, 10.0.0.5")).allowed(),
        "client is the entry left of the trusted hop"
    );
    assert!(
        !decide(&c, &h("203.0.113.7")).allowed(),
        "too few entries: remote.ip falls back to the peer"
    );
    assert!(
        !decide(&c, &h("203.0.113.66, 10.0.0.5")).allowed(),
        "notRemoteIpBlocks"
    );
    let hh = h("203.0.113.7, 10.0.0.9");
    hh.put_property(&["filter_state", "meshward.peer"], b"10.0.0.9");
    assert!(!decide(&c, &hh).allowed(), "notIpBlocks");
    // source.ip is the TCP peer: x-forwarded-for cannot move it.
    let c = cfg(
        json!({"policies": [{"name": "d", "action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.5"]}}]}]}]}),
    );
    assert!(!decide(&c, &h("1.2.3.4")).allowed());
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"when": [{"key": "source.ip", "notValues": ["10.0.0.5"]}]}]}]}),
    );
    assert!(!decide(&c, &h("8.8.8.8")).allowed());
    // No hops here: remote.ip is Envoy's derived address (`source.address`).
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"when": [{"key": "remote.ip", "values": ["203.0.113.0/24"]}]}]}]}),
    );
    assert!(c.needs.headers.is_empty());
    let hh = h("1.1.1.1");
    assert!(!decide(&c, &hh).allowed());
    hh.put_property(&["source", "address"], b"203.0.113.7:0");
    assert!(decide(&c, &hh).allowed());
}

#[test]
fn a_missing_peer_fails_closed() {
    let c = cfg(
        json!({"policies": [{"name": "d", "action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["192.0.2.0/24"]}}]}]}]}),
    );
    let h = FakeHost::at(1);
    h.set_headers(&[(":path", "/")]);
    assert_eq!(request_of(&c, &h).err(), Some(crate::gather::Unfit::NoPeer));
}

#[test]
fn mtls_principals_namespaces_trust_domains() {
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"from": [{"source": {
        "principals": ["spiffe://prod.example/ns/shop/sa/*", "cluster.local/ns/default/sa/a"],
        "notPrincipals": ["prod.example/ns/shop/sa/evil"],
        "namespaces": ["shop", "default"], "notNamespaces": ["kube-system"],
        "trustDomains": ["prod.example", "cluster.local"], "notTrustDomains": ["evil.example"]}}]}]}]}),
    );
    let h = |san: Option<&str>| {
        let h = get("/");
        if let Some(s) = san {
            h.put_property(&["connection", "uri_san_peer_certificate"], s.as_bytes());
        }
        h
    };
    assert!(decide(&c, &h(Some("spiffe://prod.example/ns/shop/sa/api"))).allowed());
    assert!(decide(&c, &h(Some("spiffe://cluster.local/ns/default/sa/a"))).allowed());
    assert_eq!(
        decide(&c, &h(Some("spiffe://prod.example/ns/shop/sa/evil"))).reason,
        Reason::NoAllowMatch
    );
    assert!(!decide(&c, &h(Some("spiffe://cluster.local/ns/default/sa/b"))).allowed());
    assert!(!decide(&c, &h(None)).allowed(), "no client certificate");
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"from": [{"source": {"notTrustDomains": ["evil.example"]}}]}]}]}),
    );
    assert!(
        decide(&c, &h(None)).allowed(),
        "not* passes when the attribute is absent"
    );
    assert!(!decide(&c, &h(Some("spiffe://evil.example/x"))).allowed());
    let c = cfg(json!({"policies": [{"name": "p", "rules": [{"when": [
        {"key": "source.principal", "values": ["spiffe://td/ns/a/sa/b"]},
        {"key": "source.namespace", "values": ["a"]},
        {"key": "source.trust_domain", "values": ["td"]},
        {"key": "connection.sni", "values": ["api.td"]}]}]}]}));
    let hh = h(Some("spiffe://td/ns/a/sa/b"));
    assert!(!decide(&c, &hh).allowed(), "no SNI yet");
    hh.put_property(&["connection", "requested_server_name"], b"api.td");
    assert!(decide(&c, &hh).allowed());
}

#[test]
fn request_principals_and_auth_when_keys() {
    let c = cfg(json!({"policies": [{"name": "p", "rules": [{
        "from": [{"source": {"requestPrincipals": ["https://idp/*"], "notRequestPrincipals": ["https://idp/mallory"]}}],
        "when": [
            {"key": "request.auth.principal", "values": ["https://idp/alice", "https://idp/bob"]},
            {"key": "request.auth.audiences", "values": ["api"]},
            {"key": "request.auth.presenter", "values": ["web"]},
            {"key": "request.auth.claims[org][id]", "values": ["acme"]},
            {"key": "request.auth.claims[groups]", "values": ["eng"], "notValues": ["contractors"]},
            {"key": "request.auth.scopes", "values": ["orders.read"]}]}]}]}));
    let good = json!({"org": {"id": "acme"}, "groups": ["eng", "ops"]});
    assert!(decide(&c, &with_identity(get("/"), "alice", good.clone())).allowed());
    assert!(!decide(&c, &with_identity(get("/"), "carol", good.clone())).allowed());
    assert!(!decide(&c, &with_identity(get("/"), "mallory", good)).allowed());
    let other_org = json!({"org": {"id": "globex"}, "groups": ["eng"]});
    assert!(!decide(&c, &with_identity(get("/"), "alice", other_org)).allowed());
    let contractor = json!({"org": {"id": "acme"}, "groups": ["eng", "contractors"]});
    assert!(!decide(&c, &with_identity(get("/"), "alice", contractor)).allowed());
    assert!(!decide(&c, &get("/")).allowed(), "no identity");
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}]}),
    );
    assert!(decide(&c, &with_identity(get("/"), "x", json!({}))).allowed());
    assert!(!decide(&c, &get("/")).allowed());
}

#[test]
fn header_when_values_and_not_values() {
    let c = cfg(json!({"policies": [{"name": "p", "rules": [{"when": [
        {"key": "request.headers[X-Env]", "values": ["prod*"], "notValues": ["prod-eu"]}]}]}]}));
    assert!(decide(&c, &host(&[("x-env", "prod-us")])).allowed());
    assert!(!decide(&c, &host(&[("x-env", "prod-eu")])).allowed());
    assert!(!decide(&c, &host(&[("x-env", "dev")])).allowed());
    assert!(!decide(&c, &host(&[])).allowed());
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"when": [{"key": "request.headers[x-block]", "notValues": ["*"]}]}]}]}),
    );
    assert!(
        decide(&c, &host(&[])).allowed(),
        "absent header passes notValues"
    );
    assert!(!decide(&c, &host(&[("x-block", "1")])).allowed());
    let c = cfg(
        json!({"policies": [{"name": "p", "rules": [{"when": [{"key": "destination.port", "values": ["443"]}]}]}]}),
    );
    let h = host(&[]);
    h.put_property(&["destination", "port"], &443u64.to_le_bytes());
    assert!(decide(&c, &h).allowed());
}

fn rbac_cfg(rules: serde_json::Value) -> Config {
    cfg(json!({
        "rbac": {"role_claims": ["roles", "realm_access.roles"], "roles": {
            "viewer": {"permissions": ["orders:read"]},
            "editor": {"permissions": ["orders:write"], "inherits": ["viewer"]},
            "admin": {"permissions": ["users:manage"], "inherits": ["editor"]}}},
        "policies": [{"name": "p", "rules": rules}]}))
}

#[test]
fn roles_permissions_inheritance_and_scopes() {
    let c = rbac_cfg(json!([{"permissions": ["orders:read", "orders:write"]}]));
    let who = |claims| with_identity(get("/"), "u", claims);
    assert!(decide(&c, &who(json!({"roles": ["editor"]}))).allowed());
    assert!(
        decide(&c, &who(json!({"realm_access": {"roles": ["admin"]}}))).allowed(),
        "nested claim, inherited permissions"
    );
    assert!(
        !decide(&c, &who(json!({"roles": ["viewer"]}))).allowed(),
        "all permissions required"
    );
    assert!(!decide(&c, &who(json!({"roles": "editorial"}))).allowed());
    let c = rbac_cfg(json!([{"roles": ["editor"]}]));
    assert!(
        decide(&c, &who(json!({"roles": ["admin"]}))).allowed(),
        "admin inherits editor"
    );
    assert!(!decide(&c, &who(json!({"roles": ["viewer"]}))).allowed());
    let c = rbac_cfg(json!([{"when": [{"key": "request.auth.roles", "values": ["view*"]}]}]));
    assert!(decide(&c, &who(json!({"roles": ["editor"]}))).allowed());
    let c = rbac_cfg(json!([{"scopes": ["orders.read"]}]));
    assert!(decide(&c, &who(json!({}))).allowed());
    let c = rbac_cfg(json!([{"scopes": ["orders.read", "orders.write"]}]));
    assert!(
        !decide(&c, &who(json!({}))).allowed(),
        "all scopes required"
    );
}

#[test]
fn object_level_checks_bola_and_tenant() {
    let c = cfg(json!({"policies": [
        {"name": "own-orders", "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/users/{user}/orders/{**}"]}}],
          "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]},
        {"name": "tenant", "rules": [{"to": [{"operation": {"paths": ["/tenants/{tenant}/{**}"]}}],
          "objects": [{"capture": "tenant", "equals": "request.auth.claims[tenant]"},
                      {"attribute": "request.headers[x-tenant]", "equals": "request.auth.claims[tenant]"}]}]}]}));
    let alice = |p: &str, hdr: &[(&str, &str)]| {
        let mut h = vec![(":method", "GET"), (":path", p)];
        h.extend_from_slice(hdr);
        with_identity(host(&h), "alice", json!({"tenant": "a"}))
    };
    assert!(decide(&c, &alice("/users/alice/orders/", &[])).allowed());
    assert!(decide(&c, &alice("/users/alice/orders/42", &[])).allowed());
    assert_eq!(
        decide(&c, &alice("/users/bob/orders/", &[])).reason,
        Reason::NoAllowMatch
    );
    assert_eq!(
        decide(&c, &alice("/users/alice/orders/../../bob/orders/1", &[])).reason,
        Reason::NoAllowMatch,
        "dot segments are resolved before matching"
    );
    assert!(decide(&c, &alice("/users/alice//orders/./1", &[])).allowed());
    assert!(
        !decide(
            &c,
            &alice("/tenants/a/x", &[("x-tenant", "a"), ("x-tenant", "b")])
        )
        .allowed(),
        "a duplicated tenant header is ambiguous"
    );
    let obj_tenant = with_identity(
        host(&[
            (":method", "GET"),
            (":path", "/tenants/a/x"),
            ("x-tenant", "a"),
        ]),
        "alice",
        json!({"tenant": {"a": ""}}),
    );
    assert!(
        !decide(&c, &obj_tenant).allowed(),
        "an object-typed tenant claim matches nothing"
    );
    assert!(decide(&c, &alice("/tenants/a/x", &[("x-tenant", "a")])).allowed());
    assert!(!decide(&c, &alice("/tenants/b/x", &[("x-tenant", "b")])).allowed());
    assert!(
        !decide(&c, &alice("/tenants/a/x", &[("x-tenant", "b")])).allowed(),
        "header vs claim"
    );
    assert!(
        !decide(&c, &alice("/tenants/a/x", &[])).allowed(),
        "missing header"
    );
    let anon = host(&[(":method", "GET"), (":path", "/users/alice/orders/")]);
    assert!(!decide(&c, &anon).allowed());
}

#[test]
fn time_windows_and_countries() {
    let c = cfg(
        json!({"geo_header": "x-country", "policies": [{"name": "p", "rules": [{
        "time_windows": [{"days": ["MON", "TUE"], "start": "09:00", "end": "17:00"}],
        "countries": ["de", "FR"]}]}, {"name": "block", "action": "DENY", "rules": [{"notCountries": ["DE", "FR", "NL"]}]}]}),
    );
    let h = host(&[("x-country", "DE")]);
    assert!(decide(&c, &h).allowed());
    h.set_time_ms((1_704_067_200 + 18 * 3600) * 1000);
    assert!(!decide(&c, &h).allowed(), "outside hours");
    let h = host(&[("x-country", "nl")]);
    assert_eq!(reason(&c, &h), Reason::NoAllowMatch);
    let h = host(&[("x-country", "US")]);
    assert_eq!(reason(&c, &h), Reason::DeniedByPolicy);
    let h = host(&[]);
    assert_eq!(
        reason(&c, &h),
        Reason::DeniedByPolicy,
        "no geo header fails the allow-list"
    );
}

#[test]
fn dry_run_policies_only_change_the_what_if_decision() {
    let c = cfg(json!({"policies": [
        {"name": "new-deny", "action": "DENY", "dry_run": true, "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}]}));
    let h = get("/x");
    let r = request_of(&c, &h).unwrap();
    assert!(c.engine.decide(&r, false).allowed());
    let w = c.engine.decide(&r, true);
    assert_eq!((w.reason, w.policy), (Reason::DeniedByPolicy, Some(0)));
    assert!(c.engine.has_dry_run);
}

#[test]
fn exact_path_index_keeps_config_order_and_non_indexed_rules() {
    let mut policies = Vec::new();
    for i in 0..200 {
        policies.push(json!({"name": format!("p{i}"), "rules": [{"to": [{"operation": {"paths": [format!("/r/{i}")], "methods": ["GET"]}}]}]}));
    }
    policies.insert(
        50,
        json!({"name": "prefix", "rules": [{"to": [{"operation": {"paths": ["/r/1*"]}}]}]}),
    );
    let c = cfg(json!({"policies": policies}));
    let o = decide(&c, &get("/r/150"));
    assert_eq!(
        o.policy,
        Some(50),
        "the prefix policy comes first in config order"
    );
    let o = decide(&c, &get("/r/7"));
    assert_eq!(o.policy, Some(7));
    let o = decide(&c, &get("/r/99"));
    assert_eq!(o.policy, Some(100));
    assert_eq!(reason(&c, &get("/r/999x")), Reason::NoAllowMatch);
    let h = host(&[(":method", "POST"), (":path", "/r/7")]);
    assert_eq!(reason(&c, &h), Reason::NoAllowMatch);
}

#[test]
fn misses_explain_no_allow_match() {
    let c = cfg(json!({"policies": [
        {"name": "a", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]},
        {"name": "b", "rules": [{"when": [{"key": "request.headers[x]", "values": ["1"]}]}]},
        {"name": "c"}]}));
    let m = c
        .engine
        .allow_misses(&request_of(&c, &get("/")).unwrap(), false, 8);
    assert_eq!(
        m,
        vec![
            (0, 0, "to.operation.methods"),
            (1, 0, "when"),
            (2, 0, "rules (the policy has none, so it matches nothing)")
        ]
    );
}

#[test]
fn jwt_authn_metadata_identity() {
    let claims = json!({"iss": "https://idp", "sub": "alice", "aud": ["api", "web"],
        "scope": "a b", "azp": "cli", "exp": 1.7e9, "realm_access": {"roles": ["admin"]}});
    let c = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "jwt_payload"}},
        "rbac": {"role_claims": ["realm_access.roles"], "roles": {"admin": {}}},
        "policies": [{"name": "p", "rules": [{"roles": ["admin"],
            "from": [{"source": {"requestPrincipals": ["https://idp/alice"]}}],
            "when": [{"key": "request.auth.audiences", "values": ["web"]},
                     {"key": "request.auth.presenter", "values": ["cli"]},
                     {"key": "request.auth.scopes", "values": ["b"]}]}]}]}),
    );
    let h = get("/");
    assert!(!decide(&c, &h).allowed());
    let h = with_jwt_authn(h, "jwt_payload", claims);
    assert!(decide(&c, &h).allowed());
    // The meshward identity is ignored when that source is off.
    let c2 = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "other"}},
        "policies": [{"name": "p", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}]}),
    );
    assert!(!decide(&c2, &with_identity(get("/"), "x", json!({}))).allowed());
}

#[test]
fn meshward_identity_wins_over_jwt_authn() {
    let c = cfg(
        json!({"identity": {"jwt_authn": {"payload_in_metadata": "jwt_payload"}},
        "policies": [{"name": "p", "rules": [{"from": [{"source": {"requestPrincipals": ["https://idp/alice"]}}]}]}]}),
    );
    assert!(decide(&c, &with_identity(get("/"), "alice", json!({}))).allowed());
}

fn with_jwt_authn(h: FakeHost, key: &str, claims: serde_json::Value) -> FakeHost {
    let claims = claims.as_object().cloned().unwrap_or_default();
    h.put_property(
        &["metadata"],
        &meshward_shared::facts::metadata::encode_payload(
            "envoy.filters.http.jwt_authn",
            key,
            &claims,
        ),
    );
    h
}

#[test]
fn jwt_authn_claims_keep_their_json_types() {
    let c = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "payload"}},
        "policies": [{"name": "d", "action": "DENY", "rules": [{"when": [{"key": "request.auth.claims[role]", "notValues": ["user"]}]}]}]}),
    );
    let deny = |claims| !decide(&c, &with_jwt_authn(get("/"), "payload", claims)).allowed();
    assert!(!deny(json!({"role": "user"})));
    assert!(
        !deny(json!({"role": ["user", "x"]})),
        "a list matches by any string element"
    );
    // Istio: an object, a number or a bool is not a string, so notValues holds.
    assert!(
        deny(json!({"role": {"user": ""}})),
        "an object is not the list of its keys"
    );
    assert!(deny(json!({"role": 5})));
    assert!(deny(json!({"role": true})));
    assert!(deny(json!({})), "absent: notValues holds");
    let allow = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "payload"}},
        "policies": [{"name": "a", "rules": [{"when": [{"key": "request.auth.claims[code]", "values": ["abcdefgh"]}]}]}]}),
    );
    let ok = |claims| decide(&allow, &with_jwt_authn(get("/"), "payload", claims)).allowed();
    assert!(ok(json!({"code": "abcdefgh"})));
    assert!(
        !ok(json!({"code": 8.540_883_223_036_124e194})),
        "bytes of a number are not text"
    );
}

#[test]
fn presenter_is_azp_only_unless_asked() {
    let p = json!([{"name": "a", "rules": [{"when": [{"key": "request.auth.presenter", "values": ["web"]}]}]}]);
    let c = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "payload"}}, "policies": p}),
    );
    let h = |claims| with_jwt_authn(get("/"), "payload", claims);
    assert!(decide(&c, &h(json!({"azp": "web"}))).allowed());
    assert!(!decide(&c, &h(json!({"client_id": "web"}))).allowed());
    let wide = cfg(
        json!({"identity": {"meshward": false, "jwt_authn": {"payload_in_metadata": "payload"}},
        "presenter_falls_back_to_client_id": true, "policies": p}),
    );
    assert!(decide(&wide, &h(json!({"client_id": "web"}))).allowed());
}

#[test]
fn role_claims_with_dots_in_the_key_are_found() {
    // Auth0-style namespaced claims: the key itself holds dots, so the dotted path
    // `https://example.com/roles` split at them names no nested object.
    let c = cfg(json!({
        "rbac": {"role_claims": ["https://example.com/roles", "realm_access.roles"],
                 "roles": {"admin": {}, "ops": {}}},
        "policies": [{"name": "p", "rules": [{"roles": ["admin"]}]},
                     {"name": "q", "rules": [{"roles": ["ops"], "to": [{"operation": {"paths": ["/ops"]}}]}]}]}));
    let namespaced = with_identity(
        get("/"),
        "a",
        json!({"https://example.com/roles": ["admin"]}),
    );
    assert!(decide(&c, &namespaced).allowed());
    let nested = with_identity(
        get("/ops"),
        "b",
        json!({"realm_access": {"roles": ["ops"]}}),
    );
    assert!(decide(&c, &nested).allowed());
    let neither = with_identity(
        get("/"),
        "c",
        json!({"https://example": {"com/roles": ["x"]}}),
    );
    assert!(!decide(&c, &neither).allowed());
    // `when` claims keep Istio's reading: nested objects only, no joined keys.
    let c = cfg(json!({"policies": [{"name": "p", "rules": [{"when": [
        {"key": "request.auth.claims[a][b]", "values": ["x"]}]}]}]}));
    assert!(decide(&c, &with_identity(get("/"), "d", json!({"a": {"b": "x"}}))).allowed());
    assert!(!decide(&c, &with_identity(get("/"), "d", json!({"a.b": "x"}))).allowed());
}
