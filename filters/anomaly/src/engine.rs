//! Runs the detectors over a request view and adds up the score. Pure: no
//! host calls, so it is tested natively and reused by the glue and the suite.

use crate::config::{Config, DetectorSet, Exclusion};
use crate::detect::{
    cmdi, java::Java, php, prefilter, protocol, sqli, ssrf, traversal::Traversal, xss,
};
use crate::normalize::normalize;
use crate::request::{Input, Kind, View};
use crate::score::{Detector, Hit, Score, Verdict};

use std::sync::Mutex;

/// Headers whose values have a fixed grammar (media types, dates, tokens,
/// trace ids) or carry credentials; the view makes no field of them, so the
/// injection detectors skip them. The protocol detector still checks them.
const STRUCTURED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "proxy-authorization",
    "cache-control",
    "connection",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "host",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "pragma",
    "te",
    "upgrade",
    "keep-alive",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-envoy-expected-rq-timeout-ms",
    "x-forwarded-proto",
    "date",
];

/// `name`: lowercase, as the view keeps header names.
pub(crate) fn structured_header(name: &str) -> bool {
    STRUCTURED_HEADERS.contains(&name)
}

/// The detectors that apply to a kind of field. SSRF looks only at values a
/// client chooses to be fetched (parameters, cookies, bodies), not at the
/// path or headers such as `referer`, where local URLs are normal.
fn applicable(kind: Kind) -> DetectorSet {
    let injection = DetectorSet::default()
        .with(Detector::Sqli)
        .with(Detector::Xss)
        .with(Detector::Traversal)
        .with(Detector::Cmdi)
        .with(Detector::Java)
        .with(Detector::Php);
    match kind {
        Kind::Path => injection,
        Kind::Header => injection,
        Kind::ParamName | Kind::JsonKey | Kind::FileName => injection,
        Kind::ParamValue | Kind::Cookie | Kind::JsonValue | Kind::RawBody | Kind::XmlValue => {
            injection.with(Detector::Ssrf)
        }
        // Markup is XML's own syntax, so the HTML tokenizer flags any document.
        Kind::XmlBody => injection.without(Detector::Xss).with(Detector::Ssrf),
    }
}

pub struct Engine {
    config: Config,
    traversal: Traversal,
    java: Java,
    clean: Mutex<CleanCache>,
}

/// Header and cookie values repeat from request to request (user agents,
/// referers, session cookies). The last values that no detector flagged are
/// kept whole, and an exact repeat (same bytes, decoding and detector set)
/// skips normalisation and detection: the detectors are pure functions of
/// those, so the result is the same. A value that differs in any byte is
/// scanned in full; flagged values are never kept.
struct CleanCache {
    slots: Vec<Option<(u16, Vec<u8>)>>,
}

const CLEAN_SLOTS: usize = 64;
/// Longer values are rarer repeats and would cost more memory than they save.
const CLEAN_MAX_BYTES: usize = 256;

impl CleanCache {
    fn slot(key: u16, raw: &[u8]) -> usize {
        // FNV-1a; a collision only evicts, since a hit compares the bytes.
        let h = raw
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64 ^ u64::from(key), |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        (h % CLEAN_SLOTS as u64) as usize
    }

    fn contains(&self, key: u16, raw: &[u8]) -> bool {
        matches!(self.slots.get(Self::slot(key, raw)), Some(Some((k, v))) if *k == key && v == raw)
    }

    fn insert(&mut self, key: u16, raw: &[u8]) {
        if let Some(slot) = self.slots.get_mut(Self::slot(key, raw)) {
            match slot {
                Some((k, v)) => {
                    *k = key;
                    v.clear();
                    v.extend_from_slice(raw);
                }
                None => *slot = Some((key, raw.to_vec())),
            }
        }
    }
}

/// The cache key besides the bytes: the detectors run and the decoding.
fn clean_key(run: DetectorSet, kind: Kind) -> u16 {
    let bits = Detector::ALL
        .iter()
        .enumerate()
        .filter(|(_, d)| run.contains(**d))
        .fold(0u16, |acc, (i, _)| acc | 1 << i);
    bits | u16::from(kind == Kind::Cookie) << Detector::ALL.len()
}

/// The score and what it means for this request's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub score: Score,
    pub verdict: Verdict,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, String> {
        sqli::warm();
        Ok(Engine {
            config,
            traversal: Traversal::new()?,
            java: Java::new()?,
            clean: Mutex::new(CleanCache {
                slots: vec![None; CLEAN_SLOTS],
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn evaluate(&self, input: &Input<'_>) -> Outcome {
        let view = View::build(input, self.config.limits);
        let score = self.score_view(&view);
        let path_only = input.path.split(|&b| b == b'?').next().unwrap_or_default();
        let thresholds = self
            .config
            .route_for(path_only)
            .map_or(self.config.thresholds, |r| r.thresholds);
        let verdict = score.verdict(thresholds);
        Outcome { score, verdict }
    }

    pub fn score_view(&self, view: &View) -> Score {
        let mut score = Score::default();
        let route = self.config.route_for(
            view.raw_path
                .split(|&b| b == b'?')
                .next()
                .unwrap_or_default(),
        );
        let route_ex: &[Exclusion] = route.map_or(&[], |r| &r.exclusions);
        let allowed =
            |field: &str, d: Detector| {
                self.config.enabled.contains(d)
                    && !self.config.exclusions.iter().chain(route_ex).any(|e| {
                        e.detectors.contains(d) && e.fields.iter().any(|p| p.matches(field))
                    })
            };
        if self.config.enabled.contains(Detector::Protocol) {
            for a in &view.anomalies {
                if allowed(&a.field, Detector::Protocol) {
                    score.add(Detector::Protocol, a.hit.clone(), &a.field);
                }
            }
            let mut found = Vec::new();
            protocol::detect(view, self.config.protocol, &mut found);
            for (field, hit) in found {
                if allowed(&field, Detector::Protocol) {
                    score.add(Detector::Protocol, hit, &field);
                }
            }
        }
        let mut hits: Vec<Hit> = Vec::new();
        for field in &view.fields {
            let mut run = applicable(field.kind);
            for d in Detector::ALL {
                if run.contains(d) && !allowed(&field.name, d) {
                    run = run.without(d);
                }
            }
            if run == DetectorSet::default() {
                continue;
            }
            // One byte cannot hold an injection (`/`, `1`, `y`: no detector
            // flags any byte alone, checked for all 256), and most values hold
            // no byte any detector needs (one table scan).
            if field.raw.len() < 2 || prefilter::inert(&field.raw) {
                continue;
            }
            let cacheable = matches!(field.kind, Kind::Header | Kind::Cookie)
                && field.raw.len() <= CLEAN_MAX_BYTES;
            let key = clean_key(run, field.kind);
            // A poisoned lock needs a panic, which aborts the VM; natively the
            // cache is then simply not used.
            if cacheable && self.clean.lock().is_ok_and(|c| c.contains(key, &field.raw)) {
                continue;
            }
            let mut flagged = false;
            let value = normalize(&field.raw, field.kind.plus());
            for d in Detector::ALL {
                if !run.contains(d) {
                    continue;
                }
                hits.clear();
                match d {
                    Detector::Sqli => sqli::detect(&value, &mut hits),
                    Detector::Xss => hits.extend(xss::detect(&value)),
                    Detector::Traversal => self.traversal.detect(&value, &mut hits),
                    Detector::Cmdi => hits.extend(cmdi::detect(&value)),
                    Detector::Ssrf => ssrf::detect(&value, &mut hits),
                    Detector::Java => self.java.detect(&value, &mut hits),
                    Detector::Php => php::detect(&value, &mut hits),
                    // Protocol runs above; behaviour is not a field detector.
                    Detector::Protocol | Detector::Behaviour => {}
                }
                // A rule counts once per field (two internal URLs in one value
                // are one finding), at its strongest match.
                hits.sort_by(|a, b| a.rule.cmp(b.rule).then(b.severity.cmp(&a.severity)));
                hits.dedup_by(|a, b| a.rule == b.rule);
                for hit in hits.drain(..) {
                    flagged = true;
                    score.add(d, hit, &field.name);
                }
            }
            if cacheable && !flagged {
                if let Ok(mut c) = self.clean.lock() {
                    c.insert(key, &field.raw);
                }
            }
        }
        score
    }
}
