//! One test per kind of config mistake: each must name the field path.

use serde_json::{json, Value};

use super::*;
use crate::jose::testing;

fn base() -> Value {
    json!({
        "providers": {
            "corp": {
                "issuer": "https://idp.example",
                "audiences": ["api"],
                "local_jwks": {"inline_string": testing::jwks_json()}
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    })
}

fn err(v: Value) -> ConfigError {
    Config::from_json(v.to_string().as_bytes()).expect_err("config should be refused")
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.to_string(), value);
    v
}

#[test]
fn base_config_compiles_with_defaults() {
    let c = Config::from_json(base().to_string().as_bytes()).unwrap();
    let p = &c.providers[0];
    assert_eq!(p.claims.clock_skew, 60);
    assert!(p.claims.require_exp);
    assert_eq!(p.cache_size, DEFAULT_CACHE_SIZE);
    assert_eq!(
        p.locations.len(),
        2,
        "Authorization Bearer + access_token by default"
    );
    assert_eq!(c.jwks_unavailable_status, 401);
    assert_eq!(c.challenge, "Bearer realm=\"meshward\"");
    assert!(c.bypass_cors_preflight);
}

#[test]
fn not_json_or_empty() {
    assert!(Config::from_json(b"")
        .unwrap_err()
        .message
        .contains("empty"));
    assert!(Config::from_json(b"{").is_err());
    assert!(Config::from_json(b"[]").is_err());
}

#[test]
fn unknown_fields_are_named() {
    let e = err(with(base(), "/providers/corp/issuer_url", json!("x")));
    assert_eq!(e.path, "providers.corp.issuer_url");
    let e = err(with(base(), "/bogus", json!(1)));
    assert_eq!(e.path, "bogus");
}

#[test]
fn missing_and_wrong_types() {
    let mut v = base();
    v["providers"]["corp"]
        .as_object_mut()
        .unwrap()
        .remove("issuer");
    assert!(err(v).to_string().contains("missing field `issuer`"));
    let e = err(with(base(), "/providers/corp/audiences", json!("api")));
    assert_eq!(e.path, "providers.corp.audiences");
    let e = err(with(
        base(),
        "/providers/corp/clock_skew_seconds",
        json!(-1),
    ));
    assert_eq!(e.path, "providers.corp.clock_skew_seconds");
}

#[test]
fn no_providers() {
    assert_eq!(err(json!({"providers": {}})).path, "providers");
}

#[test]
fn key_source_must_be_exactly_one() {
    let mut v = base();
    v["providers"]["corp"]
        .as_object_mut()
        .unwrap()
        .remove("local_jwks");
    assert_eq!(err(v).path, "providers.corp");
    let v = with(
        base(),
        "/providers/corp/oidc_discovery",
        json!({"cluster": "idp"}),
    );
    assert!(err(v).message.contains("exactly one of"));
}

#[test]
fn bad_local_jwks() {
    let e = err(with(
        base(),
        "/providers/corp/local_jwks/inline_string",
        json!("not json"),
    ));
    assert_eq!(e.path, "providers.corp.local_jwks.inline_string");
    let weak = format!("{{\"keys\":[{}]}}", testing::RSA_1024_JWK);
    let e = err(with(
        base(),
        "/providers/corp/local_jwks/inline_string",
        json!(weak),
    ));
    assert_eq!(e.path, "providers.corp.local_jwks.inline_string");
    assert!(e.message.contains("2048"), "{e}");
    let e = err(with(
        base(),
        "/providers/corp/local_jwks/inline_string",
        json!("{\"keys\":[]}"),
    ));
    assert_eq!(e.path, "providers.corp.local_jwks.inline_string");
}

#[test]
fn bad_remote_jwks() {
    let mut v = base();
    v["providers"]["corp"]
        .as_object_mut()
        .unwrap()
        .remove("local_jwks");
    let remote = |uri: &str, cluster: &str, timeout: &str| {
        let mut v = v.clone();
        v["providers"]["corp"]["remote_jwks"] =
            json!({"http_uri": {"uri": uri, "cluster": cluster, "timeout": timeout}});
        v
    };
    let e = err(remote("http://idp/jwks", "", "5s"));
    assert_eq!(e.path, "providers.corp.remote_jwks.http_uri.cluster");
    let e = err(remote("ftp://idp/jwks", "idp", "5s"));
    assert_eq!(e.path, "providers.corp.remote_jwks.http_uri.uri");
    let e = err(remote("http://idp/jwks", "idp", "5"));
    assert_eq!(e.path, "providers.corp.remote_jwks.http_uri.timeout");
    let e = err(remote("http://idp/jwks", "idp", "0s"));
    assert_eq!(e.path, "providers.corp.remote_jwks.http_uri.timeout");
    let mut missing = v.clone();
    missing["providers"]["corp"]["remote_jwks"] = json!({"http_uri": {"uri": "http://idp/jwks"}});
    let e = err(missing);
    assert!(e.to_string().contains("missing field `cluster`"));
    assert_eq!(e.path, "providers.corp.remote_jwks.http_uri.cluster");
    let ok = remote("http://idp:8080/jwks?x=1", "idp", "2.5s");
    let c = Config::from_json(ok.to_string().as_bytes()).unwrap();
    match &c.providers[0].keys {
        KeySource::Remote(spec) => {
            assert_eq!(spec.target.authority, "idp:8080");
            assert_eq!(spec.target.path, "/jwks?x=1");
            assert_eq!(spec.target.timeout, Duration::from_millis(2500));
        }
        KeySource::Local(_) => panic!("expected remote"),
    }
}

#[test]
fn discovery_uses_issuer() {
    let mut v = base();
    v["providers"]["corp"]
        .as_object_mut()
        .unwrap()
        .remove("local_jwks");
    v["providers"]["corp"]["oidc_discovery"] = json!({"cluster": "idp"});
    let c = Config::from_json(v.to_string().as_bytes()).unwrap();
    match &c.providers[0].keys {
        KeySource::Remote(spec) => {
            assert_eq!(spec.target.path, "/.well-known/openid-configuration");
            assert_eq!(
                spec.discovery_issuer.as_deref(),
                Some("https://idp.example")
            );
        }
        KeySource::Local(_) => panic!("expected remote"),
    }
    v["providers"]["corp"]["issuer"] = json!("urn:not-a-url");
    assert_eq!(err(v).path, "providers.corp.issuer");
}

#[test]
fn bad_headers_and_claims() {
    let e = err(with(
        base(),
        "/providers/corp/from_headers",
        json!([{"name": "bad header"}]),
    ));
    assert_eq!(e.path, "providers.corp.from_headers[0].name");
    let e = err(with(base(), "/providers/corp/from_params", json!(["a=b"])));
    assert_eq!(e.path, "providers.corp.from_params[0]");
    let e = err(with(base(), "/providers/corp/from_headers", json!([])));
    assert_eq!(e.path, "providers.corp.from_headers");
    let e = err(with(
        base(),
        "/providers/corp/forward_payload_header",
        json!(":path"),
    ));
    assert_eq!(e.path, "providers.corp.forward_payload_header");
    let e = err(with(
        base(),
        "/providers/corp/claim_to_headers",
        json!([{"header_name": "x-org", "claim_name": "org..id"}]),
    ));
    assert_eq!(e.path, "providers.corp.claim_to_headers[0].claim_name");
    let e = err(with(
        base(),
        "/providers/corp/required_claims",
        json!([{"name": "tenant", "equals": "a", "contains": "b"}]),
    ));
    assert_eq!(e.path, "providers.corp.required_claims[0]");
    let e = err(with(
        base(),
        "/providers/corp/required_claims",
        json!([{"name": "t", "one_of": []}]),
    ));
    assert_eq!(e.path, "providers.corp.required_claims[0].one_of");
    let e = err(with(base(), "/providers/corp/max_lifetime", json!("0s")));
    assert_eq!(e.path, "providers.corp.max_lifetime");
    let e = err(with(
        base(),
        "/providers/corp/jwt_cache_config",
        json!({"jwt_cache_size": 1_000_000}),
    ));
    assert_eq!(e.path, "providers.corp.jwt_cache_config.jwt_cache_size");
}

#[test]
fn bad_rules() {
    let rule = |r: Value| with(base(), "/rules", json!([r]));
    let e = err(rule(json!({"match": {}})));
    assert_eq!(e.path, "rules[0].match");
    let e = err(rule(json!({"match": {"prefix": "/", "path": "/a"}})));
    assert_eq!(e.path, "rules[0].match");
    let e = err(rule(json!({"match": {"safe_regex": {"regex": "("}}})));
    assert_eq!(e.path, "rules[0].match.safe_regex.regex");
    let e = err(rule(json!({"match": {"path_template": "/a/{**}/{*}"}})));
    assert_eq!(e.path, "rules[0].match.path_template");
    let e = err(rule(json!({"match": {"prefix": "/", "methods": ["get"]}})));
    assert_eq!(e.path, "rules[0].match.methods[0]");
    let e = err(rule(
        json!({"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}),
    ));
    assert_eq!(e.path, "rules[0].requires.provider_name");
    let e = err(rule(json!({"match": {"prefix": "/"}, "requires": {}})));
    assert_eq!(e.path, "rules[0].requires");
    let e = err(rule(json!({"match": {"prefix": "/"},
        "requires": {"requires_any": {"requirements": [{"provider_name": "corp"}, {"provider_name": "x"}]}}})));
    assert_eq!(
        e.path,
        "rules[0].requires.requires_any.requirements[1].provider_name"
    );
    let e = err(rule(
        json!({"match": {"prefix": "/"}, "required_scopes": ["a"]}),
    ));
    assert_eq!(e.path, "rules[0].required_scopes");
    let e = err(rule(
        json!({"match": {"prefix": "/"}, "requires": {"allow_missing": {"x": 1}}}),
    ));
    assert_eq!(e.path, "rules[0].requires.allow_missing.x");
}

#[test]
fn bad_top_level_values() {
    assert_eq!(
        err(with(base(), "/jwks_unavailable_status", json!(500))).path,
        "jwks_unavailable_status"
    );
    assert_eq!(
        err(with(base(), "/max_token_bytes", json!(1))).path,
        "max_token_bytes"
    );
    assert_eq!(err(with(base(), "/realm", json!("a\"b"))).path, "realm");
    assert_eq!(
        err(with(base(), "/jwks_pending_timeout", json!("soon"))).path,
        "jwks_pending_timeout"
    );
    assert_eq!(
        err(with(base(), "/deny_response", json!({"status": 42}))).path,
        "deny_response.status"
    );
}

#[test]
fn rules_match_first_in_order() {
    let v = with(
        base(),
        "/rules",
        json!([
            {"match": {"prefix": "/public"}},
            {"match": {"path": "/admin", "methods": ["POST"]}, "requires": {"provider_name": "corp"}},
            {"match": {"path_template": "/users/{id}/orders/{**}"}, "requires": {"allow_missing": {}}}
        ]),
    );
    let c = Config::from_json(v.to_string().as_bytes()).unwrap();
    assert!(c.rule_for("GET", "/public/x").unwrap().requires.is_none());
    assert!(c.rule_for("POST", "/admin").unwrap().requires.is_some());
    assert!(c.rule_for("GET", "/admin").is_none());
    assert_eq!(
        c.rule_for("GET", "/users/a/orders/1").unwrap().requires,
        Some(Requirement::AllowMissing)
    );
}

#[test]
fn signature_backend_values() {
    use crate::signature::SignatureBackend;
    let c = Config::from_json(base().to_string().as_bytes()).unwrap();
    assert_eq!(c.signature_backend, SignatureBackend::Auto);
    for (v, want) in [
        ("auto", SignatureBackend::Auto),
        ("host", SignatureBackend::Host),
        ("ring", SignatureBackend::Ring),
    ] {
        let c = with(base(), "/signature_backend", json!(v));
        let c = Config::from_json(c.to_string().as_bytes()).unwrap();
        assert_eq!(c.signature_backend, want);
    }
    let e = err(with(base(), "/signature_backend", json!("boringssl")));
    assert_eq!(e.path, "signature_backend");
    assert!(
        e.message
            .contains("unknown variant `boringssl`, expected one of `auto`, `host`, `ring`"),
        "{e}"
    );
    for bad in [
        json!("Host"),
        json!(""),
        json!(1),
        json!(null),
        json!(["host"]),
    ] {
        let e = err(with(base(), "/signature_backend", bad.clone()));
        assert_eq!(e.path, "signature_backend", "{bad}: {e}");
    }
}
