//! The request lifecycle: read the headers once (one map read), strip the
//! headers this filter owns, then decide at once, or buffer a body of a type
//! the view parses (up to `max_body_bytes`) and decide at its end. The
//! decision counts, audits, tags, hints a throttle or blocks.
//!
//! Envoy's Wasm host turns a pause on request headers into "stop all
//! iteration", which withholds the body from the filter too; so to read the
//! body the headers go on, and a body decision can no longer change them:
//! it blocks (resetting the upstream request) and writes filter state, but
//! sets no header.

use std::rc::Rc;

use meshward_shared::abi;
use meshward_shared::audit::AuditLine;
use meshward_shared::facts;
use meshward_shared::host::{Host, HostCalls, HostError};
use meshward_shared::identity::Identity;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use serde_json::{json, Value};

use crate::actions::{self, Plan};
use crate::engine::Outcome;
use crate::metrics::Action as Act;
use crate::request::Input;
use crate::root::Runtime;
use crate::score::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The block reply was sent.
    Replied,
}

/// What the headers lead to.
#[derive(Debug, PartialEq, Eq)]
pub enum AtHeaders {
    Decided(Step),
    /// Buffer the body, then call [`decide`] with these headers.
    AwaitBody(Vec<(String, String)>),
}

/// Request headers arrived (`end_of_stream`: there is no body).
pub fn on_headers<H: Host + ?Sized>(rt: &Runtime, host: &H, end_of_stream: bool) -> AtHeaders {
    let mut headers = host.request_headers();
    let cfg = rt.config();
    if let Err(e) = strip_own(host, &mut headers) {
        let replied = facts::refuse_header_write(host, "anomaly", &e, cfg.shadow);
        return AtHeaders::Decided(if replied {
            Step::Replied
        } else {
            Step::Continue
        });
    }
    if !end_of_stream && cfg.inspect_body && cfg.max_body_bytes > 0 && inspected(&headers) {
        return AtHeaders::AwaitBody(headers);
    }
    AtHeaders::Decided(decide(rt, host, &headers, None, false, true))
}

/// Remove incoming copies of the headers this filter sets, so a client cannot
/// forge a score or a hint. Costs a host call only when one is present.
fn strip_own<H: Host + ?Sized>(
    host: &H,
    headers: &mut Vec<(String, String)>,
) -> Result<(), HostError> {
    let before = headers.len();
    headers.retain(|(k, _)| {
        !actions::OWN_HEADERS
            .iter()
            .any(|o| k.eq_ignore_ascii_case(o))
    });
    if headers.len() != before {
        for name in actions::OWN_HEADERS {
            host.set_request_header(name, None)?;
        }
    }
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether the body is of a type the view reads: JSON, forms, multipart,
/// XML, plain text, or no declared type.
pub fn inspected(headers: &[(String, String)]) -> bool {
    let Some(ct) = header(headers, "content-type") else {
        return true;
    };
    let media = ct.split(';').next().unwrap_or_default().trim();
    let media = media.to_ascii_lowercase();
    media.is_empty()
        || media == "application/json"
        || media.ends_with("+json")
        || media == "application/x-www-form-urlencoded"
        || media == "multipart/form-data"
        || media.ends_with("/xml")
        || media.ends_with("+xml")
        || media == "text/plain"
}

/// Score the request and act on the score. `headers_open`: the request
/// headers have not gone on yet, so tag and throttle headers can be set.
pub fn decide<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    body_truncated: bool,
    headers_open: bool,
) -> Step {
    let pairs: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let path = header(headers, ":path").unwrap_or_default().as_bytes();
    let input = Input {
        method: header(headers, ":method").unwrap_or_default().as_bytes(),
        path,
        headers: &pairs,
        body,
        body_truncated,
    };
    let mut outcome = rt.engine.evaluate(&input);
    behaviour(rt, host, headers, &mut outcome);
    let m = &rt.metrics;
    m.score.record(host, u64::from(outcome.score.total));
    if outcome.verdict == Verdict::Pass {
        m.allowed.inc(host);
        return Step::Continue;
    }
    let mut plan = Plan::of(rt.config(), path, &outcome);
    // The hint is a header: once the headers went on, rate-limit has decided.
    plan.throttle &= headers_open;
    apply(rt, host, headers, &outcome, &plan, headers_open)
}

/// Behaviour detectors: count the request for its identity (the handed-over
/// or filter-state identity, else the client address) and add their findings
/// to the score. Costs no host call when the section is off.
fn behaviour<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    headers: &[(String, String)],
    outcome: &mut Outcome,
) {
    let cfg = &rt.config().behaviour;
    if !cfg.enabled {
        return;
    }
    let identity = host
        .handed_identity()
        .map(|i| (*i).clone())
        .or_else(|| Identity::read(host));
    let key = identity.as_ref().map(|i| {
        if i.subject.is_empty() {
            i.presenter.clone().unwrap_or_default()
        } else {
            i.principal()
        }
    });
    let source = host.property(&["source", "address"]).unwrap_or_default();
    let source = String::from_utf8_lossy(&source);
    let path = header(headers, ":path").unwrap_or_default();
    let facts = crate::behaviour::RequestFacts {
        identity: key.as_deref().filter(|k| !k.is_empty()),
        source: &source,
        country: cfg
            .country_header
            .as_deref()
            .and_then(|h| header(headers, h)),
        method: header(headers, ":method").unwrap_or_default(),
        path,
    };
    let mut found = Vec::new();
    let now_ms = host
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let Ok(mut b) = rt.behaviour.try_borrow_mut() else {
        return;
    };
    rt.last_key.set(b.on_request(&facts, now_ms, &mut found));
    drop(b);
    if found.is_empty() {
        return;
    }
    for f in &found {
        f.add_to(&mut outcome.score);
    }
    let path_only = path.split('?').next().unwrap_or_default().as_bytes();
    let thresholds = rt
        .config()
        .route_for(path_only)
        .map_or(rt.config().thresholds, |r| r.thresholds);
    outcome.verdict = outcome.score.verdict(thresholds);
}

fn apply<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    headers: &[(String, String)],
    outcome: &Outcome,
    plan: &Plan,
    headers_open: bool,
) -> Step {
    let m = &rt.metrics;
    for d in actions::detectors(&outcome.score) {
        m.detection(d).inc(host);
    }
    m.action(Act::Monitor).inc(host);
    if plan.tag {
        m.action(Act::Tag).inc(host);
        if headers_open {
            // Tags and the hint are advice to the upstream: a refused
            // write loses the advice, not a check.
            let _ = host.set_request_header(
                actions::SCORE_HEADER,
                Some(&outcome.score.total.to_string()),
            );
            let _ = host.set_request_header(
                actions::DETECTORS_HEADER,
                Some(&actions::detector_list(&outcome.score)),
            );
        }
        let text = actions::explanation(outcome, plan).to_string();
        if let Err(e) = host.set_property(&[actions::STATE_KEY], text.as_bytes()) {
            host.log(
                LogLevel::Debug,
                &format!("meshward anomaly: could not write the explanation: {e}"),
            );
        }
    }
    if plan.throttle {
        if plan.shadow {
            m.action(Act::ShadowThrottle).inc(host);
        } else {
            m.action(Act::Throttle).inc(host);
            let _ = host.set_request_header(actions::HINT_HEADER, Some(actions::HINT_THROTTLE));
        }
    }
    let blocks = plan.block && !plan.shadow;
    if plan.block {
        m.action(if plan.shadow {
            Act::ShadowBlock
        } else {
            Act::Block
        })
        .inc(host);
    }
    audit(host, headers, outcome, plan);
    if !blocks {
        m.allowed.inc(host);
        return Step::Continue;
    }
    m.blocked.inc(host);
    if let Err(e) = actions::block_reply(&outcome.score).send(host) {
        host.log(
            LogLevel::Error,
            &format!("meshward anomaly: could not send the block reply: {e}"),
        );
    }
    Step::Replied
}

/// The audit line, with the request's id, method, path and authority taken
/// from the headers already read: after the header phase Envoy no longer
/// answers header reads.
fn audit<H: Host + ?Sized>(host: &H, headers: &[(String, String)], outcome: &Outcome, plan: &Plan) {
    let findings: Vec<Value> = outcome
        .score
        .findings
        .iter()
        .map(|f| json!({"detector": f.detector, "rule": f.rule, "field": f.field, "offset": f.offset}))
        .collect();
    let mut line = AuditLine::new("anomaly", plan.decision(), actions::REASON);
    for (key, name) in [
        ("request_id", "x-request-id"),
        ("method", ":method"),
        ("path", ":path"),
        ("authority", ":authority"),
    ] {
        if let Some(v) = header(headers, name) {
            let v = if key == "path" {
                v.split('?').next().unwrap_or_default()
            } else {
                v
            };
            line = line.field(key, v);
        }
    }
    line = line
        .field("score", outcome.score.total)
        .field("verdict", json!(outcome.verdict))
        .field("findings", findings);
    if outcome.score.omitted > 0 {
        line = line.field("omitted", outcome.score.omitted);
    }
    if plan.block && !plan.shadow {
        line = line.field("status", 403);
    }
    line.emit(host);
}

/// A request waiting for its body: the headers read at the header phase and
/// the bytes buffered so far.
#[derive(Debug)]
pub struct Pending {
    headers: Vec<(String, String)>,
    seen: usize,
}

/// What a body chunk leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStep {
    /// Keep buffering (the chunk stays in Envoy's buffer).
    Wait,
    Decided(Step),
}

impl Pending {
    pub fn new(headers: Vec<(String, String)>) -> Pending {
        Pending { headers, seen: 0 }
    }

    /// A body chunk arrived; `size` is everything buffered so far. Decides
    /// at the end of the body or past the cap, whichever comes first. A body
    /// of exactly the cap is waited on: Envoy may say end of stream with a
    /// later, empty chunk, and the body is then whole, not cut.
    pub fn on_body<H: Host + ?Sized>(
        &mut self,
        rt: &Runtime,
        host: &H,
        size: usize,
        end_of_stream: bool,
    ) -> BodyStep {
        self.seen = size;
        if end_of_stream || size > rt.config().max_body_bytes {
            BodyStep::Decided(self.finish(rt, host, !end_of_stream))
        } else {
            BodyStep::Wait
        }
    }

    /// Decide on what was buffered (`more`: more was or may be sent). Trailers
    /// end a body that never said end of stream.
    pub fn finish<H: Host + ?Sized>(&self, rt: &Runtime, host: &H, more: bool) -> Step {
        let cap = rt.config().max_body_bytes;
        let n = self.seen.min(cap);
        let body = if n == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpRequestBody, 0, n)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        decide(
            rt,
            host,
            &self.headers,
            Some(&body),
            more || self.seen > cap,
            false,
        )
    }
}

/// The response of a request the behaviour detectors counted (`key`) is
/// here: its status feeds the error-burst detector. Reads the status only
/// for a counted request.
pub fn on_response(rt: &Runtime, key: crate::behaviour::IdentityKey) {
    if key == crate::behaviour::IdentityKey::default() {
        return;
    }
    let status = abi::header_value(MapType::HttpResponseHeaders, ":status")
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
    if let (Some(status), Ok(mut b)) = (status, rt.behaviour.try_borrow_mut()) {
        b.on_response(key, status);
    }
}

/// Where a request is in its lifecycle.
#[derive(Debug)]
enum State {
    Headers,
    Buffering(Pending),
    Decided,
    Replied,
}

pub struct AnomalyFilter {
    rt: Rc<Runtime>,
    state: State,
    /// Behaviour record of this request, for its response status.
    key: crate::behaviour::IdentityKey,
}

impl AnomalyFilter {
    pub fn new(rt: Rc<Runtime>) -> AnomalyFilter {
        AnomalyFilter {
            rt,
            state: State::Headers,
            key: crate::behaviour::IdentityKey::default(),
        }
    }

    fn finish(&mut self, step: Step) -> Action {
        self.key = self.rt.last_key.take();
        match step {
            Step::Continue => {
                self.state = State::Decided;
                Action::Continue
            }
            Step::Replied => {
                self.state = State::Replied;
                Action::Pause
            }
        }
    }
}

meshward_shared::stream_callbacks!(
    "request_headers",
    "request_body",
    "request_trailers",
    "response_headers"
);

impl Context for AnomalyFilter {}

impl HttpContext for AnomalyFilter {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        match on_headers(&self.rt, &HostCalls, end_of_stream) {
            AtHeaders::Decided(step) => self.finish(step),
            // Continue: a paused header phase would withhold the body (see above).
            AtHeaders::AwaitBody(headers) => {
                self.state = State::Buffering(Pending::new(headers));
                Action::Continue
            }
        }
    }

    // Buffer until the end of the body or the cap; a longer body is scanned
    // up to the cap and the rest passes without waiting.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let rt = Rc::clone(&self.rt);
        match &mut self.state {
            State::Buffering(p) => match p.on_body(&rt, &HostCalls, body_size, end_of_stream) {
                BodyStep::Wait => Action::Pause,
                BodyStep::Decided(step) => self.finish(step),
            },
            State::Replied => Action::Pause,
            State::Headers | State::Decided => Action::Continue,
        }
    }

    // The status feeds the behaviour error-burst detector.
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        on_response(&self.rt, std::mem::take(&mut self.key));
        Action::Continue
    }

    // Trailers end a body that never said end_of_stream.
    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        match &self.state {
            State::Buffering(p) => {
                let step = p.finish(&self.rt, &HostCalls, false);
                self.finish(step)
            }
            State::Replied => Action::Pause,
            State::Headers | State::Decided => Action::Continue,
        }
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
