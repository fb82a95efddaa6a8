//! What a score leads to, by threshold: monitor (metric + audit line), tag
//! (headers and filter state for the upstream), throttle (a hint header that
//! a `rate-limit` rule can match) and block (403 problem+json). Pure: the
//! glue applies the plan.

use meshward_shared::response::{LocalReply, PROBLEM_JSON};
use serde_json::{json, Value};

use crate::config::{Actions, Config};
use crate::engine::Outcome;
use crate::score::{Detector, Score, Verdict};

/// Headers this filter sets for the upstream; any incoming copy is removed
/// first, so a client cannot forge them.
pub const SCORE_HEADER: &str = "x-meshward-anomaly-score";
pub const DETECTORS_HEADER: &str = "x-meshward-anomaly-detectors";
/// The throttle hint: `x-meshward-anomaly: throttle`.
pub const HINT_HEADER: &str = "x-meshward-anomaly";
pub const HINT_THROTTLE: &str = "throttle";
pub const OWN_HEADERS: [&str; 3] = [SCORE_HEADER, DETECTORS_HEADER, HINT_HEADER];

/// Filter state key of the explanation (Envoy stores it as `wasm.meshward.anomaly`).
pub const STATE_KEY: &str = "meshward.anomaly";

/// The reason code of every audit line and of the block reply.
pub const REASON: &str = "anomaly_detected";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// The score reached the detection threshold: count and audit it.
    pub detected: bool,
    pub tag: bool,
    pub throttle: bool,
    pub block: bool,
    /// Shadow mode: `throttle` and `block` are reported, not done.
    pub shadow: bool,
}

impl Plan {
    pub fn of(config: &Config, path: &[u8], outcome: &Outcome) -> Plan {
        let path_only = path.split(|&b| b == b'?').next().unwrap_or_default();
        let actions: Actions = config
            .route_for(path_only)
            .map_or(config.actions, |r| r.actions);
        let total = outcome.score.total;
        let reached = |t: Option<u32>| t.is_some_and(|t| total >= t);
        let detected = outcome.verdict != Verdict::Pass;
        Plan {
            detected,
            tag: detected && reached(actions.tag),
            throttle: detected && reached(actions.throttle),
            block: outcome.verdict == Verdict::Block,
            shadow: config.shadow,
        }
    }

    /// The decision word of the audit line and the explanation.
    pub fn decision(&self) -> &'static str {
        match (self.block, self.throttle, self.shadow) {
            (true, _, false) => "block",
            (true, _, true) => "shadow_block",
            (false, true, false) => "throttle",
            (false, true, true) => "shadow_throttle",
            _ if self.tag => "tag",
            _ => "monitor",
        }
    }
}

/// The detectors that found something, in a fixed order, without repeats.
pub fn detectors(score: &Score) -> Vec<Detector> {
    Detector::ALL
        .into_iter()
        .filter(|d| score.detected_by(*d))
        .collect()
}

pub fn detector_list(score: &Score) -> String {
    let names: Vec<&str> = detectors(score).iter().map(|d| d.name()).collect();
    names.join(",")
}

/// The explanation: score, verdict, decision and every finding (detector,
/// rule, severity, points, field, offset), never a value.
pub fn explanation(outcome: &Outcome, plan: &Plan) -> Value {
    json!({
        "score": outcome.score.total,
        "verdict": outcome.verdict,
        "decision": plan.decision(),
        "findings": outcome.score.findings,
        "omitted": outcome.score.omitted,
    })
}

/// The 403 of a blocked request: the reason code and where the detectors
/// matched (detector, rule, field), never the values.
pub fn block_reply(score: &Score) -> LocalReply {
    let findings: Vec<Value> = score
        .findings
        .iter()
        .map(|f| json!({"detector": f.detector, "rule": f.rule, "field": f.field}))
        .collect();
    let body = json!({
        "type": format!("urn:meshward:problem:{REASON}"),
        "title": "Forbidden",
        "status": 403,
        "detail": "the request matched attack signatures",
        "reason": REASON,
        "score": score.total,
        "detectors": detectors(score),
        "findings": findings,
    });
    LocalReply {
        status: 403,
        headers: vec![("content-type".into(), PROBLEM_JSON.into())],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}
