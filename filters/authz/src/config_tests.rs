use serde_json::json;

use super::*;

fn err(v: serde_json::Value) -> ConfigError {
    match Config::from_json(v.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {v}"),
        Err(e) => e,
    }
}

fn pol(rule: serde_json::Value) -> serde_json::Value {
    json!({"policies": [{"name": "p", "rules": [rule]}]})
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    assert_eq!(err(json!({"polices": []})).path, "polices");
    assert_eq!(
        err(json!({"policies": [{"name": "p", "actoin": "DENY"}]})).path,
        "policies[0].actoin"
    );
    assert_eq!(
        err(pol(json!({"from": [{"source": {"principal": ["x"]}}]}))).path,
        "policies[0].rules[0].from[0].source.principal"
    );
    assert_eq!(
        err(pol(json!({"to": [{"operation": {"path": ["/x"]}}]}))).path,
        "policies[0].rules[0].to[0].operation.path"
    );
    assert_eq!(
        err(pol(json!({"when": [{"key": "source.ip", "value": ["x"]}]}))).path,
        "policies[0].rules[0].when[0].value"
    );
    assert_eq!(err(json!({"identity": {"jwt": {}}})).path, "identity.jwt");
    assert_eq!(
        err(json!({"rbac": {"roles": {"a": {"perms": []}}}})).path,
        "rbac.roles.a.perms"
    );
    assert!(
        err(json!({"policies": [{"name": "p", "action": "CUSTOM"}]}))
            .message
            .contains("unknown variant")
    );
    assert!(err(json!({"default_action": "MAYBE"}))
        .path
        .contains("default_action"));
}

#[test]
fn bad_values_name_the_field() {
    let cases = [
        (
            pol(json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/40"]}}]})),
            "policies[0].rules[0].from[0].source.ipBlocks[0]",
        ),
        (
            pol(json!({"from": [{"source": {"notRemoteIpBlocks": ["nope"]}}]})),
            "policies[0].rules[0].from[0].source.notRemoteIpBlocks[0]",
        ),
        (
            pol(json!({"to": [{"operation": {"paths": ["/ok", "/a/{**}/{*}"]}}]})),
            "policies[0].rules[0].to[0].operation.paths[1]",
        ),
        (
            pol(json!({"to": [{"operation": {"notPaths": ["/a/{x"]}}]})),
            "policies[0].rules[0].to[0].operation.notPaths[0]",
        ),
        (
            pol(json!({"to": [{"operation": {"ports": ["http"]}}]})),
            "policies[0].rules[0].to[0].operation.ports[0]",
        ),
        (
            pol(json!({"to": [{"operation": {"methods": []}}]})),
            "policies[0].rules[0].to[0].operation.methods",
        ),
        (
            pol(json!({"to": [{"operation": {"hosts": ["a*b"]}}]})),
            "policies[0].rules[0].to[0].operation.hosts[0]",
        ),
        (
            pol(json!({"when": [{"key": "request.color", "values": ["x"]}]})),
            "policies[0].rules[0].when[0].key",
        ),
        (
            pol(json!({"when": [{"key": "request.headers[]", "values": ["x"]}]})),
            "policies[0].rules[0].when[0].key",
        ),
        (
            pol(json!({"when": [{"key": "request.auth.claims[a]b", "values": ["x"]}]})),
            "policies[0].rules[0].when[0].key",
        ),
        (
            pol(json!({"when": [{"key": "source.ip"}]})),
            "policies[0].rules[0].when[0].values",
        ),
        (
            pol(json!({"when": [{"key": "remote.ip", "values": ["x"]}]})),
            "policies[0].rules[0].when[0].values[0]",
        ),
        (
            pol(json!({"when": [{"key": "destination.port", "notValues": ["0"]}]})),
            "policies[0].rules[0].when[0].notValues[0]",
        ),
        (
            pol(json!({"roles": ["ghost"]})),
            "policies[0].rules[0].roles[0]",
        ),
        (
            pol(json!({"permissions": ["x:y"]})),
            "policies[0].rules[0].permissions[0]",
        ),
        (
            pol(json!({"scopes": ["a b"]})),
            "policies[0].rules[0].scopes[0]",
        ),
        (
            pol(json!({"objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]})),
            "policies[0].rules[0].objects[0].capture",
        ),
        (
            pol(
                json!({"to": [{"operation": {"paths": ["/u/{user}"]}}], "objects": [{"capture": "user", "equals": "source.ip"}]}),
            ),
            "policies[0].rules[0].objects[0].equals",
        ),
        (
            pol(
                json!({"objects": [{"capture": "u", "attribute": "source.principal", "equals": "source.principal"}]}),
            ),
            "policies[0].rules[0].objects[0]",
        ),
        (
            pol(json!({"objects": [{"attribute": "nope", "equals": "source.principal"}]})),
            "policies[0].rules[0].objects[0].attribute",
        ),
        (
            pol(json!({"time_windows": [{"start": "25:00"}]})),
            "policies[0].rules[0].time_windows[0].start",
        ),
        (
            pol(json!({"time_windows": [{"days": ["FUNDAY"]}]})),
            "policies[0].rules[0].time_windows[0].days",
        ),
        (
            pol(json!({"countries": ["DEU"]})),
            "policies[0].rules[0].countries[0]",
        ),
        (
            pol(json!({"notCountries": []})),
            "policies[0].rules[0].notCountries",
        ),
        (json!({"policies": [{"name": ""}]}), "policies[0].name"),
        (
            json!({"policies": [{"name": "a.b"}, {"name": "a_b"}]}),
            "policies[1].name",
        ),
        (
            json!({"policies": [{"name": "a", "deny_response": {"status": 403}}]}),
            "policies[0].deny_response",
        ),
        (
            json!({"policies": [{"name": "a", "action": "DENY", "deny_response": {"status": 99}}]}),
            "policies[0].deny_response.status",
        ),
        (
            json!({"deny_response": {"headers": {"bad name": "x"}}}),
            "deny_response.headers.bad name",
        ),
        (json!({"xff_num_trusted_hops": 17}), "xff_num_trusted_hops"),
        (json!({"geo_header": ":x"}), "geo_header"),
        (
            json!({"rbac": {"role_claims": ["r"], "roles": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}}}),
            "rbac.roles.a.inherits",
        ),
        (
            json!({"identity": {"meshward": false}, "policies": [{"name": "p", "rules": [{"scopes": ["x"]}]}]}),
            "identity",
        ),
        (
            json!({"identity": {"jwt_authn": {"payload_in_metadata": ""}}}),
            "identity.jwt_authn.payload_in_metadata",
        ),
    ];
    for (cfg, path) in cases {
        let e = err(cfg.clone());
        assert_eq!(e.path, path, "{cfg} -> {e}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn empty_and_malformed_json_refused() {
    assert!(Config::from_json(b"").is_err());
    assert!(Config::from_json(b"{").is_err());
    assert!(Config::from_json(b"[]").is_err());
    assert!(Config::from_json(b"{} {}").is_err());
}

#[test]
fn needs_cover_exactly_what_the_policies_read() {
    let c = Config::from_json(
        br#"{"policies":[{"name":"p","rules":[{"to":[{"operation":{"paths":["/a"]}}]}]}]}"#,
    )
    .unwrap();
    let n = &c.needs;
    assert!(
        n.path && !n.method && !n.host && !n.port && !n.auth && !n.peer && !n.source_ip && !n.time
    );
    assert!(n.headers.is_empty() && n.claims.is_empty());
    let c = Config::from_json(
        br#"{"xff_num_trusted_hops":2,"geo_header":"X-Geo","policies":[{"name":"p","rules":[{
            "from":[{"source":{"remoteIpBlocks":["1.0.0.0/8"],"principals":["*"]}}],
            "when":[{"key":"request.headers[X-A]","values":["1"]},{"key":"request.auth.claims[a][b]","values":["x"]},
                    {"key":"request.auth.claims[a][b]","notValues":["y"]},{"key":"connection.sni","values":["s"]}],
            "countries":["DE"],"time_windows":[{"days":["MON"]}]}]}]}"#,
    )
    .unwrap();
    let n = &c.needs;
    assert_eq!(n.headers, vec!["x-a", "x-geo"]);
    assert_eq!(
        n.claims,
        vec![crate::request::ClaimPath {
            path: vec!["a".to_string(), "b".to_string()],
            dotted_keys: false
        }]
    );
    // remote.ip alone does not need the TCP peer (it falls back to it only when it can).
    assert!(n.remote_ip && !n.source_ip && n.peer && n.auth && n.sni && n.time && !n.roles);
    assert_eq!(n.geo, Some(1));
}

#[test]
fn istio_shaped_policies_compile() {
    let c = Config::from_json(
        br#"{"policies":[
          {"name":"allow-get","action":"ALLOW","rules":[{"from":[{"source":{"principals":["cluster.local/ns/default/sa/sleep"],"namespaces":["default"]}}],
            "to":[{"operation":{"methods":["GET"],"paths":["/info*"],"hosts":["*.example.com"],"ports":["8080"]}}],
            "when":[{"key":"request.auth.claims[iss]","values":["https://accounts.google.com"]}]}]},
          {"name":"deny-ip","action":"DENY","rules":[{"from":[{"source":{"ipBlocks":["1.2.3.4"],"notNamespaces":["prod"]}}]}]},
          {"name":"audit","action":"AUDIT","rules":[{"to":[{"operation":{"notMethods":["GET"]}}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(c.engine.policies.len(), 3);
    assert!(c.engine.has_audit && !c.engine.has_dry_run);
}
