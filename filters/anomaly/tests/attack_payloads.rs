#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Our own list of classic attack payloads, one per line as `family<TAB>value`
//! (`attack_payloads.txt`), written from the common shapes of each family (not
//! copied from a payload collection). Each value is sent as a JSON string
//! field; the test reports how many reach the blocking threshold and lists
//! the misses. Reporting only: the list was written by the people who wrote
//! the detectors, so it checks breadth, not an independent detection rate.
//! `cargo test --release -p anomaly --test attack_payloads -- --nocapture`

use std::collections::BTreeMap;

use anomaly::config::Config;
use anomaly::engine::Engine;
use anomaly::request::Input;
use anomaly::score::Verdict;

#[test]
fn own_attack_payloads() {
    let engine = Engine::new(Config::default()).expect("engine");
    let text = include_str!("attack_payloads.txt");
    let mut tally: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let (family, value) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("attack_payloads.txt:{}: no tab", n + 1));
        let body = serde_json::json!({ "v": value }).to_string();
        let headers: [(&[u8], &[u8]); 1] = [(b"content-type", b"application/json")];
        let out = engine.evaluate(&Input {
            method: b"POST",
            path: b"/",
            headers: &headers,
            body: Some(body.as_bytes()),
            body_truncated: false,
        });
        let t = tally.entry(family).or_default();
        t.0 += 1;
        if out.verdict == Verdict::Block {
            t.1 += 1;
        } else {
            let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
            println!("missed ({family}): {value:?} {rules:?}");
        }
    }
    assert!(tally.len() == 4, "expected four families, got {tally:?}");
    println!("\nown attack payloads, blocked (score >= 5):");
    for (family, (rows, blocked)) in &tally {
        println!("{family:<10} {blocked}/{rows}");
    }
}
