//! The behaviour detectors through the filter glue, on a fake host.

use meshward_shared::fake::FakeHost;
use meshward_shared::identity::Identity;
use serde_json::json;

use crate::filter::{on_headers, AtHeaders, Step};
use crate::root::{configure, Runtime};

const T0_S: u64 = 1_795_996_800 + 10 * 3600; // a Monday, 10:00 UTC

fn runtime(cfg: serde_json::Value) -> Runtime {
    let h = FakeHost::at(T0_S);
    match configure(&h, cfg.to_string().as_bytes()) {
        Some(rt) => rt,
        None => panic!("config refused: {:?}", h.logs()),
    }
}

/// One request at `ms` after T0 from `sub` (or no identity), through the glue.
fn request(rt: &Runtime, ms: u64, sub: Option<&str>, path: &str) -> (FakeHost, Step) {
    let h = FakeHost::at(T0_S);
    h.set_time_ms(T0_S * 1000 + ms);
    h.set_headers(&[(":method", "GET"), (":path", path), (":authority", "api")]);
    h.put_property(&["source", "address"], b"10.0.0.7:41000");
    if let Some(sub) = sub {
        let id = Identity {
            issuer: "https://idp".into(),
            subject: sub.into(),
            ..Identity::default()
        };
        if let Ok(bytes) = serde_json::to_vec(&id) {
            h.put_property(&["meshward.identity"], &bytes);
        }
    }
    let step = match on_headers(rt, &h, true) {
        AtHeaders::Decided(s) => s,
        AtHeaders::AwaitBody(_) => panic!("no body expected"),
    };
    (h, step)
}

fn audit_rules(h: &FakeHost) -> Vec<String> {
    h.logs()
        .iter()
        .filter(|(_, l)| l.contains("meshward_audit"))
        .filter_map(|(_, l)| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| {
            v["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f["rule"].as_str().map(str::to_string))
        })
        .collect()
}

#[test]
fn enumeration_by_an_identity_is_scored_and_blocked() {
    // Enumeration is an error (4 points): blocked at a threshold of 4.
    let rt = runtime(json!({"blocking_threshold": 4, "behaviour": {"learning_period_s": 0}}));
    let mut blocked_at = None;
    for i in 0..80u64 {
        let (h, step) = request(
            &rt,
            i * 400,
            Some("alice"),
            &format!("/invoices/{}", 9000 + i),
        );
        if step == Step::Replied {
            blocked_at = Some(i);
            assert!(audit_rules(&h).contains(&"behaviour.enumeration".to_string()));
            break;
        }
    }
    let at = blocked_at.unwrap_or(u64::MAX);
    assert!((30..=55).contains(&at), "blocked at {at}");
    // Another identity reading its own few invoices is untouched.
    for i in 0..80u64 {
        let (_, step) = request(
            &rt,
            i * 400,
            Some("bob"),
            &format!("/invoices/{}", 10 + i % 3),
        );
        assert_eq!(step, Step::Continue);
    }
    assert_eq!(rt.behaviour.borrow().tracked(), 2);
}

#[test]
fn learning_period_only_observes_through_the_glue() {
    let rt = runtime(json!({"behaviour": {"learning_period_s": 3600}}));
    for i in 0..80u64 {
        let (h, step) = request(
            &rt,
            i * 400,
            Some("alice"),
            &format!("/invoices/{}", 9000 + i),
        );
        assert_eq!(step, Step::Continue);
        assert!(audit_rules(&h).is_empty());
    }
}

#[test]
fn without_identity_the_address_is_the_key_and_section_off_costs_nothing() {
    let rt = runtime(json!({"behaviour": {"learning_period_s": 0}}));
    request(&rt, 0, None, "/a");
    request(&rt, 10, None, "/b");
    assert_eq!(rt.behaviour.borrow().tracked(), 1);
    let off = runtime(json!({}));
    let (h, _) = request(&off, 0, Some("alice"), "/a");
    assert!(
        !h.reads().iter().any(|r| r.contains("source")),
        "{:?}",
        h.reads()
    );
    assert_eq!(off.behaviour.borrow().tracked(), 0);
}

#[test]
fn behaviour_config_errors_name_the_field() {
    let h = FakeHost::at(T0_S);
    assert!(configure(&h, br#"{"behaviour": {"rate": {"factor": 0.5}}}"#).is_none());
    assert!(h
        .logs()
        .iter()
        .any(|(_, l)| l.contains("behaviour.rate.factor")));
}
