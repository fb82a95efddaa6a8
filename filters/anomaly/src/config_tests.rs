use crate::config::{Config, DetectorSet, FieldPattern};
use crate::score::Detector;

fn err(json: &str) -> String {
    Config::parse(json.as_bytes())
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn defaults() {
    let c = Config::parse(b"{}").expect("empty object is valid");
    assert_eq!(c, Config::default());
    assert_eq!(c.thresholds.detection, 3);
    assert_eq!(c.thresholds.blocking, 5);
    assert_eq!(c.max_body_bytes, 16 * 1024);
    assert_eq!(c.enabled, DetectorSet::ALL);
}

#[test]
fn errors_name_the_field() {
    assert!(err(r#"{"blocking_threshhold": 5}"#).contains("unknown field `blocking_threshhold`"));
    assert_eq!(
        err(r#"{"detection_threshold": 6, "blocking_threshold": 5}"#),
        "blocking_threshold: 5 is below detection_threshold 6; blocking must not be stricter than detection"
    );
    assert!(
        err(r#"{"detection_threshold": 0}"#).starts_with("detection_threshold: must be at least 1")
    );
    assert!(
        err(r#"{"exclusions": [{"fields": ["a"], "detectors": ["sql"]}]}"#)
            .starts_with("exclusions[0].detectors[0]: unknown detector \"sql\"")
    );
    assert_eq!(
        err(r#"{"exclusions": [{"fields": ["a*b"]}]}"#),
        "exclusions[0].fields[0]: only a trailing * is allowed"
    );
    assert_eq!(
        err(r#"{"exclusions": [{"fields": []}]}"#),
        "exclusions[0].fields: must name at least one field"
    );
    assert_eq!(
        err(r#"{"routes": [{"path_prefix": "api"}]}"#),
        "routes[0].path_prefix: must start with /"
    );
    assert_eq!(
        err(r#"{"routes": [{"path_prefix": "/a", "blocking_threshold": 1}]}"#),
        "routes[0].blocking_threshold: 1 is below detection_threshold 3; blocking must not be stricter than detection"
    );
    assert!(err(r#"{"detectors": {"sqli": {"enabled": "yes"}}}"#)
        .starts_with("detectors.sqli.enabled: invalid type"));
    let e = err(r#"{"detectors": {"csrf": {"enabled": true}}}"#);
    assert!(e.contains("unknown field `csrf`"), "{e}");
    assert!(err(r#"{"max_body_bytes": 99999999}"#)
        .starts_with("max_body_bytes: 99999999 is over the limit"));
    assert!(err("").contains("configuration is empty"));
}

#[test]
fn exclusions_compile() {
    let c = Config::parse(br#"{"exclusions": [{"fields": ["query.q", "body.$.notes.*"], "detectors": ["xss", "sqli"]}]}"#)
        .expect("valid");
    let e = &c.exclusions[0];
    assert_eq!(
        e.fields,
        [
            FieldPattern::Exact("query.q".into()),
            FieldPattern::Prefix("body.$.notes.".into())
        ]
    );
    assert!(e.detectors.contains(Detector::Xss) && e.detectors.contains(Detector::Sqli));
    assert!(!e.detectors.contains(Detector::Cmdi));
    // No detectors listed: all of them.
    let c = Config::parse(br#"{"exclusions": [{"fields": ["header.x"]}]}"#).expect("valid");
    assert_eq!(c.exclusions[0].detectors, DetectorSet::ALL);
}

#[test]
fn longest_route_prefix_wins() {
    let c = Config::parse(
        br#"{"routes": [{"path_prefix": "/api", "blocking_threshold": 10},
                        {"path_prefix": "/api/search", "blocking_threshold": 20}]}"#,
    )
    .expect("valid");
    let t = |p: &str| c.route_for(p.as_bytes()).map(|r| r.thresholds.blocking);
    assert_eq!(t("/api/search/x"), Some(20));
    assert_eq!(t("/api/users"), Some(10));
    assert_eq!(t("/other"), None);
}

#[test]
fn route_prefix_ends_at_a_slash_and_matches_the_normalised_path() {
    let c = Config::parse(
        br#"{"routes": [{"path_prefix": "/admin/sql-console", "blocking_threshold": 50},
                        {"path_prefix": "/static/", "blocking_threshold": 40}]}"#,
    )
    .expect("valid");
    let t = |p: &str| c.route_for(p.as_bytes()).map(|r| r.thresholds.blocking);
    assert_eq!(t("/admin/sql-console"), Some(50));
    assert_eq!(t("/admin/sql-console/run"), Some(50));
    assert_eq!(t("/admin/sql-consoleX"), None);
    // Climbs out of the relaxed route once decoded and resolved.
    assert_eq!(t("/admin/sql-console..%2F..%2Fapi/x"), None);
    assert_eq!(t("/admin/sql-console/..%2F..%2Fapi/x"), None);
    assert_eq!(t("/admin/sql-console/%252e%252e/x"), None);
    // And an encoded or dotted path into the route still gets it.
    assert_eq!(t("/admin/%73ql-console/run"), Some(50));
    assert_eq!(t("/x/../admin/sql-console"), Some(50));
    assert_eq!(t("/static/app.js"), Some(40));
    assert_eq!(t("/staticX"), None);
}
