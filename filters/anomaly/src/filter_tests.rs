use meshward_shared::fake::FakeHost;
use serde_json::{json, Value};

use super::*;
use crate::root::configure;

fn runtime(host: &FakeHost, v: Value) -> Runtime {
    configure(host, v.to_string().as_bytes()).unwrap()
}

fn req(path: &str, extra: &[(&str, &str)]) -> FakeHost {
    let h = FakeHost::at(1_704_067_200);
    let mut headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example"),
        ("x-request-id", "rid-1"),
    ];
    headers.extend_from_slice(extra);
    h.set_headers(&headers);
    h
}

fn audit(h: &FakeHost) -> Vec<Value> {
    h.logs()
        .iter()
        .filter(|(_, l)| l.contains("meshward_audit"))
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect()
}

const SQLI: &str = "/items?id=1%27%20OR%201%3D1--";

meshward_shared::test_stream_callbacks_declared!(concat!(
    include_str!("filter.rs"),
    include_str!("root.rs")
));

#[test]
fn benign_request_passes_with_one_header_read_and_no_audit() {
    let h = req("/items?id=42", &[("user-agent", "curl/8")]);
    let rt = runtime(&h, json!({}));
    h.clear_reads();
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert_eq!(h.reads(), vec!["headers".to_string()]);
    assert!(audit(&h).is_empty());
    assert_eq!(h.metric("meshward.anomaly.allowed", &[]), 1);
    assert_eq!(h.histogram("meshward.anomaly.score"), vec![0]);
    assert!(h.raw_property(actions::STATE_KEY).is_none());
}

#[test]
fn attack_is_blocked_with_problem_json_naming_fields_not_values() {
    let h = req(SQLI, &[]);
    let rt = runtime(&h, json!({}));
    assert_eq!(on_headers(&rt, &h, true), AtHeaders::Decided(Step::Replied));
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    let (status, headers, body) = &replies[0];
    assert_eq!(*status, 403);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/problem+json"));
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(!text.contains("OR 1=1") && !text.contains("1'"), "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["reason"], "anomaly_detected");
    assert_eq!(b["detectors"][0], "sqli");
    assert_eq!(b["findings"][0]["field"], "query.id");
    assert_eq!(h.metric("meshward.anomaly.blocked", &[]), 1);
    assert_eq!(
        h.metric("meshward.anomaly.detections", &[("detector", "sqli")]),
        1
    );
    assert_eq!(
        h.metric("meshward.anomaly.actions", &[("action", "block")]),
        1
    );
    let lines = audit(&h);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["decision"], "block");
    assert_eq!(lines[0]["request_id"], "rid-1");
    assert_eq!(lines[0]["findings"][0]["detector"], "sqli");
    assert!(lines[0]["findings"][0].get("offset").is_some());
}

#[test]
fn tag_sets_headers_and_state_and_replaces_spoofed_ones() {
    let h = req(
        SQLI,
        &[
            ("x-meshward-anomaly-score", "0"),
            ("x-meshward-anomaly", "none"),
        ],
    );
    let rt = runtime(&h, json!({"tag_threshold": 3, "blocking_threshold": 100}));
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert_eq!(h.header_count("x-meshward-anomaly-score"), 1);
    let score: u32 = h
        .header("x-meshward-anomaly-score")
        .unwrap()
        .parse()
        .unwrap();
    assert!(score >= 5);
    assert_eq!(
        h.header("x-meshward-anomaly-detectors").as_deref(),
        Some("sqli")
    );
    assert_eq!(h.header("x-meshward-anomaly"), None, "spoofed hint removed");
    let state: Value =
        serde_json::from_slice(&h.raw_property(actions::STATE_KEY).unwrap()).unwrap();
    assert_eq!(state["decision"], "tag");
    assert_eq!(state["findings"][0]["field"], "query.id");
    assert!(h.replies().is_empty());
}

#[test]
fn spoofed_headers_are_stripped_from_benign_requests() {
    let h = req("/ok", &[("x-meshward-anomaly", "throttle")]);
    let rt = runtime(&h, json!({}));
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert_eq!(h.header("x-meshward-anomaly"), None);
}

#[test]
fn a_spoofed_header_envoy_will_not_strip_refuses_the_request() {
    let h = req("/ok", &[("x-meshward-anomaly-score", "0")]);
    let rt = runtime(&h, json!({}));
    *h.fail_header_writes.borrow_mut() = true;
    assert_eq!(on_headers(&rt, &h, true), AtHeaders::Decided(Step::Replied));
    let (status, _, body) = h.replies().last().cloned().unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["reason"].as_str()),
        (500, Some("header_write_failed"))
    );
    // nothing to strip: nothing to refuse
    let h = req("/ok", &[]);
    *h.fail_header_writes.borrow_mut() = true;
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
}

#[test]
fn throttle_hint_is_set_between_its_threshold_and_blocking() {
    let h = req(SQLI, &[]);
    let rt = runtime(
        &h,
        json!({"throttle_threshold": 3, "blocking_threshold": 100}),
    );
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert_eq!(h.header("x-meshward-anomaly").as_deref(), Some("throttle"));
    assert_eq!(audit(&h)[0]["decision"], "throttle");
}

#[test]
fn shadow_reports_but_neither_blocks_nor_throttles() {
    let h = req(SQLI, &[]);
    let rt = runtime(&h, json!({"shadow": true, "throttle_threshold": 3}));
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert!(h.replies().is_empty());
    assert_eq!(h.header("x-meshward-anomaly"), None);
    assert_eq!(
        h.metric("meshward.anomaly.actions", &[("action", "shadow_block")]),
        1
    );
    assert_eq!(
        h.metric("meshward.anomaly.actions", &[("action", "shadow_throttle")]),
        1
    );
    assert_eq!(audit(&h)[0]["decision"], "shadow_block");
}

#[test]
fn route_override_raises_blocking_on_its_prefix_only() {
    let cfg = json!({"routes": [{"path_prefix": "/search", "blocking_threshold": 100, "tag_threshold": 3}]});
    let h = req("/search?id=1%27%20OR%201%3D1--", &[]);
    let rt = runtime(&h, cfg.clone());
    assert_eq!(
        on_headers(&rt, &h, true),
        AtHeaders::Decided(Step::Continue)
    );
    assert!(h.header("x-meshward-anomaly-score").is_some());
    let h = req(SQLI, &[]);
    let rt = runtime(&h, cfg);
    assert_eq!(on_headers(&rt, &h, true), AtHeaders::Decided(Step::Replied));
}

#[test]
fn bodies_of_parsed_types_are_awaited_and_scanned() {
    let h = req("/items", &[("content-type", "application/json")]);
    let rt = runtime(&h, json!({}));
    let AtHeaders::AwaitBody(headers) = on_headers(&rt, &h, false) else {
        panic!("should wait for the JSON body");
    };
    let body = br#"{"q": "1' OR 1=1--"}"#;
    assert_eq!(
        decide(&rt, &h, &headers, Some(body), false, false),
        Step::Replied
    );
    let b: Value = serde_json::from_slice(&h.replies()[0].2).unwrap();
    assert_eq!(b["findings"][0]["field"], "body.$.q");

    // after the headers went on, a body finding tags filter state only
    let h = req("/items", &[("content-type", "application/json")]);
    let rt = runtime(
        &h,
        json!({"tag_threshold": 3, "throttle_threshold": 3, "blocking_threshold": 100}),
    );
    let AtHeaders::AwaitBody(headers) = on_headers(&rt, &h, false) else {
        panic!("should wait for the JSON body");
    };
    assert_eq!(
        decide(&rt, &h, &headers, Some(body), false, false),
        Step::Continue
    );
    assert_eq!(h.header("x-meshward-anomaly-score"), None);
    assert_eq!(h.header("x-meshward-anomaly"), None);
    assert!(h.raw_property(actions::STATE_KEY).is_some());

    let h = req("/upload", &[("content-type", "application/octet-stream")]);
    assert_eq!(
        on_headers(&rt, &h, false),
        AtHeaders::Decided(Step::Continue)
    );
    let h = req("/items", &[("content-type", "application/json")]);
    let rt = runtime(&h, json!({"inspect_body": false}));
    assert_eq!(
        on_headers(&rt, &h, false),
        AtHeaders::Decided(Step::Continue)
    );
}

#[test]
fn inspected_types() {
    let t = |ct: &str| inspected(&[("content-type".to_string(), ct.to_string())]);
    assert!(t("application/json; charset=utf-8"));
    assert!(t("Application/Problem+JSON"));
    assert!(t("application/x-www-form-urlencoded"));
    assert!(t("multipart/form-data; boundary=x"));
    assert!(t("text/xml"));
    assert!(t("text/plain"));
    assert!(inspected(&[]));
    assert!(!t("image/png"));
    assert!(!t("application/octet-stream"));
}

#[test]
fn invalid_config_is_refused_with_the_field_path() {
    let h = FakeHost::default();
    assert!(configure(&h, br#"{"tag_threshold": 1, "detection_threshold": 3}"#).is_none());
    assert!(configure(
        &h,
        br#"{"routes": [{"path_prefix": "/a", "throttle_threshold": 2}]}"#
    )
    .is_none());
    assert!(configure(&h, br#"{"shadow": "yes"}"#).is_none());
    let logs: Vec<String> = h.logs().into_iter().map(|(_, l)| l).collect();
    assert!(logs[0].contains("tag_threshold"), "{logs:?}");
    assert!(logs[1].contains("routes[0].throttle_threshold"), "{logs:?}");
    assert!(logs[2].contains("shadow"), "{logs:?}");
}
