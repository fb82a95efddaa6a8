//! `meshward explain`: authz's own lifecycle (`authz::filter::process`) run
//! on an in-memory host that holds the request described in a JSON file, so
//! the answer is the one the filter gives in Envoy: the decision, the policy
//! and rule, the reason, and the reply a denied request gets.

use meshward_shared::facts::PEER_FILTER_STATE;
use meshward_shared::fake::FakeHost;
use meshward_shared::identity::{Identity, FILTER_STATE_KEY};
use serde_json::{json, Map, Value};

/// The request as the file describes it. Every field is optional.
///
/// ```json
/// {"method": "GET", "path": "/users/alice/orders", "authority": "api.example.com",
///  "headers": {"x-tenant": "acme", "x-forwarded-for": ["203.0.113.9"]},
///  "claims": {"iss": "https://idp.example.com", "sub": "alice", "roles": ["viewer"]},
///  "source_ip": "10.0.0.7", "remote_ip": "203.0.113.9", "port": 8080,
///  "peer_principal": "spiffe://cluster.local/ns/shop/sa/frontend",
///  "sni": "api.example.com", "time": 1767261600}
/// ```
pub fn request_host(req: &Value) -> Result<FakeHost, String> {
    let obj = req.as_object().ok_or("the request must be a JSON object")?;
    let known = [
        "method",
        "path",
        "authority",
        "headers",
        "claims",
        "source_ip",
        "remote_ip",
        "port",
        "peer_principal",
        "sni",
        "time",
    ];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "request: unknown field `{k}` (known: {})",
            known.join(", ")
        ));
    }
    let text = |k: &str, default: &str| -> Result<String, String> {
        match obj.get(k) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("request.{k}: must be a string")),
        }
    };
    let time = match obj.get("time") {
        None => 1_767_261_600, // 2026-01-01T10:00:00Z
        Some(v) => v.as_u64().ok_or("request.time: Unix seconds")?,
    };
    let host = FakeHost::at(time);
    let mut headers = vec![
        (":method".to_string(), text("method", "GET")?),
        (":path".to_string(), text("path", "/")?),
        (":authority".to_string(), text("authority", "localhost")?),
    ];
    if let Some(h) = obj.get("headers") {
        let h = h.as_object().ok_or("request.headers: must be an object")?;
        for (name, v) in h {
            let values = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(format!("request.headers.{name}: strings only"))?,
                _ => {
                    return Err(format!(
                        "request.headers.{name}: a string or a list of strings"
                    ))
                }
            };
            headers.extend(values.into_iter().map(|v| (name.to_ascii_lowercase(), v)));
        }
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    host.set_headers(&pairs);
    let source = text("source_ip", "127.0.0.1")?;
    host.put_property(&["filter_state", PEER_FILTER_STATE], source.as_bytes());
    let remote = text("remote_ip", &source)?;
    host.put_property(&["source", "address"], format!("{remote}:0").as_bytes());
    if let Some(port) = obj.get("port") {
        let port = port.as_i64().ok_or("request.port: a number")?;
        host.put_property(&["destination", "port"], &port.to_le_bytes());
    }
    for (field, path) in [
        ("peer_principal", ["connection", "uri_san_peer_certificate"]),
        ("sni", ["connection", "requested_server_name"]),
    ] {
        if obj.contains_key(field) {
            host.put_property(&path, text(field, "")?.as_bytes());
        }
    }
    if let Some(claims) = obj.get("claims") {
        let claims: Map<String, Value> = claims
            .as_object()
            .cloned()
            .ok_or("request.claims: must be an object (the verified token payload)")?;
        let identity = Identity::from_claims("explain", claims);
        let json = serde_json::to_vec(&identity).map_err(|e| e.to_string())?;
        host.put_property(&[FILTER_STATE_KEY], &json);
    }
    Ok(host)
}

/// The decision for `request` under the authz `config`.
pub fn explain(config: &[u8], request: &Value) -> Result<Value, String> {
    let mut cfg: Value =
        serde_json::from_slice(config).map_err(|e| format!("authz config: not JSON: {e}"))?;
    // the explanation is what we print: have the filter write it whatever the config says
    if let Some(obj) = cfg.as_object_mut() {
        obj.insert("decision_state".into(), Value::Bool(true));
    }
    let config = authz::config::Config::from_json(cfg.to_string().as_bytes())
        .map_err(|e| format!("authz config: {e}"))?;
    let host = request_host(request)?;
    let rt = authz::root::start(&host, config);
    let step = authz::filter::process(&rt, &host);
    let mut out: Value = host
        .raw_property(authz::filter::DECISION_KEY)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    if let (Some(obj), Some((status, _, body))) = (out.as_object_mut(), host.replies().last()) {
        obj.insert("status".into(), json!(status));
        obj.insert(
            "body".into(),
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        );
    }
    if let Some(obj) = out.as_object_mut() {
        let continues = step == authz::filter::Step::Continue;
        obj.insert("continues".into(), Value::Bool(continues));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"policies": [
        {"name": "own-orders", "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/users/{user}/orders"]}}],
          "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]},
        {"name": "no-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}]}"#;

    #[test]
    fn allows_by_the_policy_that_matched() {
        let out = explain(
            CONFIG.as_bytes(),
            &json!({"path": "/users/alice/orders", "claims": {"iss": "i", "sub": "alice"}}),
        )
        .unwrap();
        assert_eq!(out["decision"], "allow");
        assert_eq!(out["policy"], "own-orders");
        assert_eq!(out["continues"], true);
    }

    #[test]
    fn denies_with_the_reply_envoy_would_send() {
        let out = explain(
            CONFIG.as_bytes(),
            &json!({"path": "/users/bob/orders", "claims": {"iss": "i", "sub": "alice"}}),
        )
        .unwrap();
        assert_eq!(out["decision"], "deny");
        assert_eq!(out["status"], 403);
        assert_eq!(out["continues"], false);
        let out = explain(CONFIG.as_bytes(), &json!({"path": "/admin/x"})).unwrap();
        assert_eq!(out["policy"], "no-admin");
        assert_eq!(out["reason"], "denied_by_policy");
    }

    #[test]
    fn a_bad_request_file_says_which_field() {
        for (req, want) in [
            (json!([]), "must be a JSON object"),
            (json!({"pth": "/"}), "unknown field `pth`"),
            (json!({"headers": {"x": 1}}), "request.headers.x"),
            (json!({"claims": "alice"}), "request.claims"),
            (json!({"time": "noon"}), "request.time"),
        ] {
            let e = explain(CONFIG.as_bytes(), &req).unwrap_err();
            assert!(e.contains(want), "{req}: {e}");
        }
        assert!(explain(b"{", &json!({}))
            .unwrap_err()
            .starts_with("authz config: not JSON"));
        assert!(explain(br#"{"policies": 1}"#, &json!({}))
            .unwrap_err()
            .starts_with("authz config: policies"));
    }
}
