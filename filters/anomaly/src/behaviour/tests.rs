use super::*;

const T0: u64 = 1_795_996_800_000; // 2026-11-30 (a Monday), 00:00 UTC
const H: u64 = 3_600_000;
const D: u64 = 24 * H;

fn cfg() -> BehaviourConfig {
    BehaviourConfig {
        enabled: true,
        learning_period_s: 0,
        identity_min_requests: 20,
        identity_min_age_s: 0,
        ..BehaviourConfig::default()
    }
}

fn facts<'a>(id: &'a str, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        identity: Some(id),
        source: "10.1.2.3:4000",
        country: Some("DE"),
        method: "GET",
        path,
    }
}

fn rules(out: &[BehaviourFinding]) -> Vec<&'static str> {
    out.iter().map(|f| f.rule).collect()
}

/// `n` requests spaced `gap_ms` (each answered 200); all their findings.
fn run(
    b: &mut Behaviour,
    f: &RequestFacts,
    start: u64,
    n: u64,
    gap_ms: u64,
) -> Vec<BehaviourFinding> {
    let mut out = Vec::new();
    for i in 0..n {
        let k = b.on_request(f, start + i * gap_ms, &mut out);
        b.on_response(k, 200);
    }
    out
}

#[test]
fn full_table_stays_bounded() {
    // 100k identities touch every set: records plus set pointers.
    let mut c = cfg();
    c.max_identities = 100_000;
    let mut b = Behaviour::new(&c, 7);
    let mut out = Vec::new();
    for i in 0..300_000u64 {
        let id = format!("u{i}");
        b.on_request(&facts(&id, "/a"), T0 + i, &mut out);
    }
    assert_eq!(b.tracked(), 100_000);
    let bytes = b.allocated_bytes();
    eprintln!("record {RECORD_BYTES} B, 100k identities: {bytes} B");
    assert!(bytes < 11 * 1024 * 1024, "{bytes}");
}

#[test]
fn quiet_identity_has_no_findings() {
    let mut b = Behaviour::new(&cfg(), 7);
    let out = run(&mut b, &facts("alice", "/orders"), T0 + 9 * H, 200, 5_000);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn rate_spike_against_own_baseline() {
    let mut b = Behaviour::new(&cfg(), 7);
    let f = facts("alice", "/orders");
    assert!(run(&mut b, &f, T0 + 9 * H, 100, 2_000).is_empty());
    let start = T0 + 9 * H + 200_000;
    let mut out = Vec::new();
    let mut flagged_at = None;
    for i in 0..200u64 {
        out.clear();
        b.on_request(&f, start + i * 50, &mut out);
        if rules(&out).contains(&"behaviour.rate-spike") {
            flagged_at = Some(i);
            let d = &out[0].detail;
            assert!(d.starts_with("rate ") && d.contains("vs baseline"), "{d}");
            break;
        }
    }
    // 20 req/s against a 0.5/s baseline (floor 1/s, factor 4): flagged
    // once the 10 s average passes 4/s, about 2.2 s (45 requests) in.
    let at = flagged_at.unwrap_or(u64::MAX);
    assert!((30..=60).contains(&at), "flagged at {at}");
}

#[test]
fn new_identity_first_burst_is_judged_on_the_floor() {
    let mut b = Behaviour::new(&cfg(), 7);
    let f = facts("fresh", "/orders");
    // 3 req/s is under factor * floor (4/s): not flagged, though the
    // identity has no baseline yet.
    assert!(run(&mut b, &f, T0, 100, 333)
        .iter()
        .all(|x| x.rule != "behaviour.rate-spike"));
    let mut b = Behaviour::new(&cfg(), 7);
    let out = run(&mut b, &f, T0, 100, 50);
    assert!(rules(&out).contains(&"behaviour.rate-spike"));
}

#[test]
fn learning_period_only_observes() {
    let mut c = cfg();
    c.learning_period_s = 60;
    let mut b = Behaviour::new(&c, 7);
    let f = facts("alice", "/orders");
    // A burst inside the first minute gives nothing...
    assert!(run(&mut b, &f, T0, 200, 50).is_empty());
    // ...and the same burst after it is flagged.
    let out = run(&mut b, &f, T0 + 120_000, 200, 50);
    assert!(rules(&out).contains(&"behaviour.rate-spike"));
}

#[test]
fn error_burst_shows_on_next_requests() {
    let mut b = Behaviour::new(&cfg(), 7);
    let f = facts("bob", "/login");
    let mut out = Vec::new();
    let mut first = None;
    for i in 0..40u64 {
        out.clear();
        let k = b.on_request(&f, T0 + i * 1000, &mut out);
        if rules(&out).contains(&"behaviour.error-burst") && first.is_none() {
            first = Some(i);
        }
        b.on_response(k, 401);
    }
    // min_errors 10, decayed over 60 s: one 401 a second reaches it at
    // the 13th request.
    assert_eq!(first, Some(12));
    // Mostly successes with a few errors do not count.
    let mut b = Behaviour::new(&cfg(), 7);
    for i in 0..200u64 {
        out.clear();
        let k = b.on_request(&f, T0 + i * 1000, &mut out);
        assert!(!rules(&out).contains(&"behaviour.error-burst"));
        b.on_response(k, if i % 4 == 0 { 404 } else { 200 });
    }
}

#[test]
fn new_path_template_after_history() {
    let mut b = Behaviour::new(&cfg(), 7);
    let mut out = Vec::new();
    for i in 0..50u64 {
        out.clear();
        let p = format!("/orders/{}", 1000 + i % 5);
        b.on_request(&facts("carol", &p), T0 + 9 * H + i * 5000, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
    out.clear();
    // Same template, another id: known.
    b.on_request(&facts("carol", "/orders/77"), T0 + 10 * H, &mut out);
    assert!(out.is_empty(), "{out:?}");
    b.on_request(
        &facts("carol", "/admin/users"),
        T0 + 10 * H + 5000,
        &mut out,
    );
    assert_eq!(rules(&out), vec!["behaviour.new-path"]);
    // Flagged once: now it is known.
    out.clear();
    b.on_request(
        &facts("carol", "/admin/users"),
        T0 + 10 * H + 10_000,
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn new_address_and_country_for_a_known_token() {
    let mut b = Behaviour::new(&cfg(), 7);
    let f = facts("dave", "/a");
    run(&mut b, &f, T0 + 9 * H, 30, 5000);
    let mut out = Vec::new();
    // Same /24: not new.
    let mut g = f;
    g.source = "10.1.2.99:1";
    b.on_request(&g, T0 + 10 * H, &mut out);
    assert!(out.is_empty(), "{out:?}");
    g.source = "203.0.113.5:1";
    g.country = Some("br");
    b.on_request(&g, T0 + 10 * H + 5000, &mut out);
    let r = rules(&out);
    assert!(
        r.contains(&"behaviour.new-address") && r.contains(&"behaviour.new-country"),
        "{r:?}"
    );
    assert!(
        !out.iter().any(|x| x.detail.contains("203.0")),
        "no address in detail"
    );
    // An address-keyed identity is never "new address".
    let mut b = Behaviour::new(&cfg(), 7);
    let mut anon = f;
    anon.identity = None;
    run(&mut b, &anon, T0 + 9 * H, 30, 5000);
    out.clear();
    anon.source = "203.0.113.5";
    b.on_request(&anon, T0 + 10 * H, &mut out);
    assert!(!rules(&out).contains(&"behaviour.new-address"));
}

#[test]
fn off_hours_after_enough_history() {
    let mut b = Behaviour::new(&cfg(), 7);
    let f = facts("erin", "/a");
    let mut out = Vec::new();
    // Five weekdays, 09:00-17:00, one request every 6 minutes.
    for day in 0..5u64 {
        for i in 0..80u64 {
            out.clear();
            b.on_request(&f, T0 + day * D + 9 * H + i * 360_000, &mut out);
            assert!(out.is_empty(), "day {day} i {i}: {out:?}");
        }
    }
    // Friday 16:30 and Thursday 08:30 (next to 09:00): usual.
    out.clear();
    b.on_request(&f, T0 + 4 * D + 16 * H + 1_800_000, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Saturday 03:00: unusual.
    b.on_request(&f, T0 + 5 * D + 3 * H, &mut out);
    assert_eq!(rules(&out), vec!["behaviour.off-hours"]);
    assert!(
        out[0].detail.contains("weekend UTC hour 03"),
        "{}",
        out[0].detail
    );
}

#[test]
fn enumeration_of_object_ids() {
    let mut b = Behaviour::new(&cfg(), 7);
    let mut out = Vec::new();
    let mut first = None;
    for i in 0..100u64 {
        out.clear();
        let p = format!("/invoices/{}", 5000 + i);
        b.on_request(&facts("frank", &p), T0 + i * 500, &mut out);
        if rules(&out).contains(&"behaviour.enumeration") && first.is_none() {
            first = Some(i);
        }
    }
    // max_distinct 40; linear counting on 64 bits is within about 15%.
    let at = first.unwrap_or(u64::MAX);
    assert!((30..=55).contains(&at), "flagged at {at}");
    // Rereading a handful of objects never is.
    let mut b = Behaviour::new(&cfg(), 7);
    for i in 0..300u64 {
        out.clear();
        let p = format!("/invoices/{}", 5000 + i % 8);
        b.on_request(&facts("frank", &p), T0 + i * 500, &mut out);
        assert!(!rules(&out).contains(&"behaviour.enumeration"));
    }
}

#[test]
fn enumeration_through_configured_params() {
    let mut c = cfg();
    c.enumeration = Some(config::EnumerationConfig {
        window_s: 60,
        max_distinct: 20,
        params: vec!["doc".to_string()],
    });
    let mut b = Behaviour::new(&c, 7);
    let mut out = Vec::new();
    let mut hit = false;
    for i in 0..60u64 {
        out.clear();
        let p = format!("/view?doc=report-{i}&lang=en");
        b.on_request(&facts("gina", &p), T0 + i * 500, &mut out);
        hit |= rules(&out).contains(&"behaviour.enumeration");
    }
    assert!(hit);
}

#[test]
fn identity_cap_evicts_least_recent() {
    let mut c = cfg();
    c.max_identities = 64;
    let mut b = Behaviour::new(&c, 7);
    let mut out = Vec::new();
    for i in 0..10_000u64 {
        let id = format!("user-{i}");
        b.on_request(&facts(&id, "/a"), T0 + i, &mut out);
    }
    assert!(b.tracked() <= 64, "{}", b.tracked());
    assert_eq!(b.tracked() as u64 + b.evictions(), 10_000);
    assert!(b.allocated_bytes() <= 64 * RECORD_BYTES + 8 * 8);
    // A hot identity survives a flood of new ones in its set.
    let mut c = cfg();
    c.max_identities = 8; // one set
    let mut b = Behaviour::new(&c, 7);
    for i in 0..1000u64 {
        b.on_request(&facts("hot", "/a"), T0 + i * 1000, &mut out);
        let id = format!("flood-{i}");
        b.on_request(&facts(&id, "/a"), T0 + i * 1000 + 500, &mut out);
    }
    let before = b.evictions();
    b.on_request(&facts("hot", "/a"), T0 + 1_000_100, &mut out);
    assert_eq!(b.evictions(), before, "hot identity was evicted");
}

#[test]
fn response_for_an_evicted_identity_is_ignored() {
    let mut c = cfg();
    c.max_identities = 1;
    let mut b = Behaviour::new(&c, 7);
    let mut out = Vec::new();
    let k = b.on_request(&facts("a", "/"), T0, &mut out);
    b.on_request(&facts("b", "/"), T0 + 1, &mut out);
    b.on_response(k, 500);
    assert_eq!(b.tracked(), 1);
}

#[test]
fn hostile_input_does_not_panic() {
    let mut b = Behaviour::new(&cfg(), 7);
    let mut out = Vec::new();
    let long = "/".repeat(100_000) + &"9".repeat(10_000);
    for (src, path, country) in [
        ("", "", Some("")),
        ("not an ip", "?", Some("ÄÖ")),
        ("[::1]:80", &long[..], Some("a very long country value")),
        ("::ffff:1.2.3.4", "/x?=&&=&id", None),
    ] {
        let f = RequestFacts {
            identity: Some("x"),
            source: src,
            country,
            method: "",
            path,
        };
        b.on_request(&f, 0, &mut out);
        b.on_request(&f, u64::MAX, &mut out);
    }
    // A clock that starts at the end of time and then goes back.
    let mut b = Behaviour::new(&cfg(), 7);
    for now in [u64::MAX, 0, u64::MAX - 1, 1] {
        for _ in 0..60 {
            b.on_request(&facts("late", "/x/1"), now, &mut out);
        }
    }
}

#[test]
fn disabled_does_nothing() {
    let mut b = Behaviour::new(&BehaviourConfig::default(), 7);
    let out = run(&mut b, &facts("a", "/x"), T0, 500, 1);
    assert_eq!(b.tracked(), 0);
    assert!(out.is_empty());
}

#[test]
fn templates_and_ids() {
    let mut ids = [0u64; path::MAX_IDS];
    let (a, n) = path::analyse(
        1,
        "GET",
        "/users/42/orders/9f1c2e7a-0000-4000-8000-000000000001",
        &[],
        &mut ids,
    );
    assert_eq!(n, 2);
    let (b2, _) = path::analyse(1, "GET", "/users/7/orders/ord_81724kq9", &[], &mut ids);
    assert_eq!(a, b2);
    let (c, n) = path::analyse(1, "GET", "/v1/users/me", &[], &mut ids);
    assert_eq!(n, 0);
    assert_ne!(a, c);
    let (d, _) = path::analyse(1, "POST", "/v1/users/me", &[], &mut ids);
    assert_ne!(c, d);
}

#[test]
fn config_parses_and_rejects() {
    let c = BehaviourConfig::parse(br#"{"country_header":"X-Geo-Country","rate":{"factor":3}}"#);
    let c = c.unwrap_or_default();
    assert!(c.enabled);
    assert_eq!(c.country_header.as_deref(), Some("x-geo-country"));
    assert_eq!(c.rate.map(|r| r.factor), Some(3.0));
    for (json, path) in [
        (r#"{"max_identities":0}"#, "behaviour.max_identities"),
        (r#"{"rate":{"factor":1}}"#, "behaviour.rate.factor"),
        (r#"{"errors":{"ratio":2}}"#, "behaviour.errors.ratio"),
        (
            r#"{"enumeration":{"max_distinct":1000}}"#,
            "behaviour.enumeration.max_distinct",
        ),
        (r#"{"country_header":""}"#, "behaviour.country_header"),
        (r#"{"rates":{}}"#, ""),
    ] {
        match BehaviourConfig::parse(json.as_bytes()) {
            Ok(_) => panic!("{json} accepted"),
            Err(e) => assert!(e.to_string().contains(path), "{json}: {e}"),
        }
    }
    let off = BehaviourConfig::parse(br#"{"rate":{"enabled":false},"hours":{"enabled":false}}"#);
    let off = off.unwrap_or_default();
    assert!(off.rate.is_none() && off.hours.is_none() && off.errors.is_some());
}

#[test]
fn address_key_ignores_the_port() {
    let mut b = Behaviour::new(&cfg(), 7);
    let mut out = Vec::new();
    for src in [
        "192.0.2.1:1000",
        "192.0.2.1:2000",
        "192.0.2.1",
        "::ffff:192.0.2.1",
    ] {
        let f = RequestFacts {
            identity: None,
            source: src,
            country: None,
            method: "GET",
            path: "/",
        };
        b.on_request(&f, T0, &mut out);
    }
    assert_eq!(b.tracked(), 1);
}
