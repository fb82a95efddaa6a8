#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Corpus evaluation, reporting only: detection per attack family on the CRS
//! regression requests, false positives on their `benign-for-rule` rows and on
//! our own benign API values, and time per request. Run with
//! `cargo test --release -p anomaly --test corpus -- --nocapture`.
//! It asserts only that the inputs were found and parsed: the figures are
//! measured, not targets (the corpus is the one the detectors were tuned on).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anomaly::config::Config;
use anomaly::engine::Engine;
use anomaly::request::Input;
use anomaly::score::Verdict;
use serde_json::Value;

fn corpora_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MESHWARD_CORPORA") {
        return PathBuf::from(dir);
    }
    // filters/anomaly -> repo root -> ../shared/corpora
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

struct Row {
    family: String,
    attack: bool,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn load() -> Vec<Row> {
    let path = corpora_dir().join("crs-regression-requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "corpus not found at {} ({e}); set MESHWARD_CORPORA to the directory holding it",
            path.display()
        )
    });
    let mut rows = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{}:{}: no string {k}", path.display(), n + 1))
                .to_string()
        };
        let headers = v
            .get("headers")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{}:{}: no headers object", path.display(), n + 1))
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let label = s("label");
        assert!(
            label == "attack" || label == "benign-for-rule",
            "{}:{}: unknown label {label}",
            path.display(),
            n + 1
        );
        rows.push(Row {
            family: s("family"),
            attack: label == "attack",
            method: s("method"),
            uri: s("uri"),
            headers,
            body: s("body"),
        });
    }
    rows
}

#[derive(Default)]
struct Tally {
    rows: u32,
    detect: u32,
    block: u32,
    by_detector: BTreeMap<&'static str, u32>,
}

fn pct(n: u32, d: u32) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * f64::from(n) / f64::from(d)
    }
}

#[test]
fn crs_regression_corpus() {
    let rows = load();
    assert!(rows.len() > 1000, "corpus has only {} rows", rows.len());
    let engine = Engine::new(Config::default()).expect("engine");
    let mut attacks: BTreeMap<String, Tally> = BTreeMap::new();
    let mut benign: BTreeMap<String, Tally> = BTreeMap::new();
    let mut elapsed = Duration::ZERO;
    // MESHWARD_CORPUS_SHOW=sqli:attack lists the missed rows of a family
    // (or, with :benign, its false positives) while tuning.
    let show = std::env::var("MESHWARD_CORPUS_SHOW").unwrap_or_default();
    for row in &rows {
        let headers: Vec<(&[u8], &[u8])> = row
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let body = row.body.as_bytes();
        let cap = engine.config().max_body_bytes;
        let input = Input {
            method: row.method.as_bytes(),
            path: row.uri.as_bytes(),
            headers: &headers,
            body: Some(&body[..body.len().min(cap)]),
            body_truncated: body.len() > cap,
        };
        let start = Instant::now();
        let outcome = engine.evaluate(&input);
        elapsed += start.elapsed();
        if let Some((fam, kind)) = show.split_once(':') {
            let flagged = outcome.verdict != Verdict::Pass;
            if fam == row.family
                && ((kind == "attack" && row.attack && !flagged)
                    || (kind == "benign" && !row.attack && flagged))
            {
                let cut = |s: &str| s.chars().take(160).collect::<String>();
                println!(
                    "{} {} | {} | {:?}",
                    row.method,
                    cut(&row.uri),
                    cut(&row.body),
                    outcome
                        .score
                        .findings
                        .iter()
                        .map(|f| (f.rule, f.field.as_str()))
                        .collect::<Vec<_>>()
                );
            }
        }
        let table = if row.attack {
            &mut attacks
        } else {
            &mut benign
        };
        let t = table.entry(row.family.clone()).or_default();
        t.rows += 1;
        if outcome.verdict != Verdict::Pass {
            t.detect += 1;
        }
        if outcome.verdict == Verdict::Block {
            t.block += 1;
        }
        let mut seen: Vec<&'static str> = outcome
            .score
            .findings
            .iter()
            .map(|f| f.detector.name())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for d in seen {
            *t.by_detector.entry(d).or_default() += 1;
        }
    }
    let t = engine.config().thresholds;
    println!(
        "\nCRS regression corpus: {} rows; detect = score >= {}, block = score >= {}",
        rows.len(),
        t.detection,
        t.blocking
    );
    for (title, table) in [
        ("attack rows (detection rate)", &attacks),
        ("benign-for-rule rows (false positives)", &benign),
    ] {
        println!("\n{title}");
        println!(
            "{:<18} {:>5} {:>8} {:>8}  detectors that fired",
            "family", "rows", "detect%", "block%"
        );
        let mut total = Tally::default();
        for (family, t) in table {
            println!(
                "{:<18} {:>5} {:>7.1}% {:>7.1}%  {:?}",
                family,
                t.rows,
                pct(t.detect, t.rows),
                pct(t.block, t.rows),
                t.by_detector
            );
            total.rows += t.rows;
            total.detect += t.detect;
            total.block += t.block;
        }
        println!(
            "{:<18} {:>5} {:>7.1}% {:>7.1}%",
            "all",
            total.rows,
            pct(total.detect, total.rows),
            pct(total.block, total.rows)
        );
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "\ntime: {:.1} us per request on average ({} build, native, one thread)",
        elapsed.as_secs_f64() * 1e6 / rows.len() as f64,
        profile
    );
}

/// libinjectionrs cost per KiB, on prose and on hostile repetitions, at 1, 4
/// and 16 KiB (a growing per-KiB cost would show a super-linear scan).
#[test]
fn libinjection_speed() {
    let prose = "The quick brown fox's owner said: \"select the best (and cheapest) one\"; ok? ";
    println!("\nlibinjectionrs, us per KiB (sqli / xss)");
    for (name, unit) in [
        ("prose", prose),
        ("'or ", "'or "),
        ("<a ", "<a "),
        ("/*", "/*"),
        ("&#x", "&#x"),
    ] {
        let mut line = format!("{name:<8}");
        for kib in [1usize, 4, 16] {
            let value = unit.repeat(kib * 1024 / unit.len() + 1);
            let value = &value.as_bytes()[..kib * 1024];
            let reps = 64 / kib;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(libinjectionrs::detect_sqli(value).is_injection());
            }
            let sqli = t.elapsed().as_secs_f64() * 1e6 / (reps * kib) as f64;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(libinjectionrs::detect_xss(value).is_injection());
            }
            let xss = t.elapsed().as_secs_f64() * 1e6 / (reps * kib) as f64;
            line.push_str(&format!("  {kib:>2} KiB: {sqli:>7.1} / {xss:>7.1}"));
        }
        println!("{line}");
    }
}
