//! Runs the detectors over a request view and adds up the score. Pure: no
//! host calls, so it is tested natively and reused by the glue and the suite.

use crate::config::{Config, DetectorSet, Exclusion};
use crate::detect::{cmdi, protocol, sqli, ssrf, traversal::Traversal, xss};
use crate::normalize::normalize;
use crate::request::{Input, Kind, View};
use crate::score::{Detector, Hit, Score, Verdict};

/// Headers whose values have a fixed grammar (media types, dates, tokens,
/// trace ids) or carry credentials; the injection detectors skip them. The
/// protocol detector still checks them.
const STRUCTURED_HEADERS: &[&str] = &[
    "header.accept",
    "header.accept-encoding",
    "header.accept-language",
    "header.authorization",
    "header.proxy-authorization",
    "header.cache-control",
    "header.connection",
    "header.content-length",
    "header.content-type",
    "header.content-encoding",
    "header.transfer-encoding",
    "header.host",
    "header.if-match",
    "header.if-none-match",
    "header.if-modified-since",
    "header.if-unmodified-since",
    "header.pragma",
    "header.te",
    "header.upgrade",
    "header.keep-alive",
    "header.x-request-id",
    "header.traceparent",
    "header.tracestate",
    "header.x-b3-traceid",
    "header.x-b3-spanid",
    "header.x-b3-parentspanid",
    "header.x-b3-sampled",
    "header.x-envoy-expected-rq-timeout-ms",
    "header.x-forwarded-proto",
    "header.date",
];

/// The detectors that apply to a kind of field. SSRF looks only at values a
/// client chooses to be fetched (parameters, cookies, bodies), not at the
/// path or headers such as `referer`, where local URLs are normal.
fn applicable(kind: Kind) -> DetectorSet {
    let injection = DetectorSet::default()
        .with(Detector::Sqli)
        .with(Detector::Xss)
        .with(Detector::Traversal)
        .with(Detector::Cmdi);
    match kind {
        Kind::Path => DetectorSet::default()
            .with(Detector::Traversal)
            .with(Detector::Xss)
            .with(Detector::Sqli),
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
}

/// The score and what it means for this request's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub score: Score,
    pub verdict: Verdict,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, String> {
        Ok(Engine {
            config,
            traversal: Traversal::new()?,
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
            if field.kind == Kind::Header && STRUCTURED_HEADERS.contains(&field.name.as_str()) {
                continue;
            }
            for d in Detector::ALL {
                if run.contains(d) && !allowed(&field.name, d) {
                    run = run.without(d);
                }
            }
            if run == DetectorSet::default() {
                continue;
            }
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
                    // Protocol runs above; behaviour is not a field detector.
                    Detector::Protocol | Detector::Behaviour => {}
                }
                // A rule counts once per field (two internal URLs in one value
                // are one finding), at its strongest match.
                hits.sort_by(|a, b| a.rule.cmp(b.rule).then(b.severity.cmp(&a.severity)));
                hits.dedup_by(|a, b| a.rule == b.rule);
                for hit in hits.drain(..) {
                    score.add(d, hit, &field.name);
                }
            }
        }
        score
    }
}
