//! Replays a request trace through the behaviour core with the trace's own
//! clock (the simulator's fake time), so days of traffic run in seconds.
//!
//! `behaviour_replay CONFIG.json < trace.jsonl > findings.jsonl`
//! CONFIG is a `behaviour` section. Each trace line:
//! `{"t": unix_ms, "id": "sub" | null, "src": "ip", "country": "DE" | null,
//!   "m": "GET", "p": "/path?q", "status": 200}`.
//! Each output line: `{"i": line_index, "rules": [...], "details": [...], "points": n}`
//! for the requests that got findings, then one summary line.

use std::io::{BufRead, Write};

use anomaly::behaviour::{Behaviour, BehaviourConfig, RequestFacts};
use serde_json::{json, Value};

fn main() {
    if let Err(e) = run() {
        eprintln!("behaviour_replay: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: behaviour_replay CONFIG.json < trace.jsonl")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let config = BehaviourConfig::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let mut b = Behaviour::new(&config, 0x5eed);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut found = Vec::new();
    let mut n = 0u64;
    // Time in the core only (not the JSON parsing of the trace).
    let mut core = std::time::Duration::ZERO;
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("line {i}: {e}"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let facts = RequestFacts {
            identity: s("id"),
            source: s("src").unwrap_or_default(),
            country: s("country"),
            method: s("m").unwrap_or("GET"),
            path: s("p").unwrap_or("/"),
        };
        let t = v
            .get("t")
            .and_then(Value::as_u64)
            .ok_or(format!("line {i}: no t"))?;
        found.clear();
        let status = v.get("status").and_then(Value::as_u64).unwrap_or(200);
        let started = std::time::Instant::now();
        let key = b.on_request(&facts, t, &mut found);
        b.on_response(key, u16::try_from(status).unwrap_or(500));
        core += started.elapsed();
        n += 1;
        if !found.is_empty() {
            let rules: Vec<&str> = found.iter().map(|f| f.rule).collect();
            let details: Vec<&str> = found.iter().map(|f| f.detail.as_str()).collect();
            let points: u32 = found.iter().map(|f| f.severity.points()).sum();
            writeln!(
                out,
                "{}",
                json!({"i": i, "rules": rules, "details": details, "points": points})
            )
            .map_err(|e| e.to_string())?;
        }
    }
    let summary = json!({
        "summary": {
            "requests": n,
            "tracked": b.tracked(),
            "evictions": b.evictions(),
            "allocated_bytes": b.allocated_bytes(),
            "core_ns_per_request": core.as_nanos() as u64 / n.max(1),
        }
    });
    writeln!(out, "{summary}").map_err(|e| e.to_string())?;
    Ok(())
}
