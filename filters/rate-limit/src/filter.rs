//! The request lifecycle: find the rules that apply, admit locally (shared
//! data) or ask the RLS, then continue, wait (throttle / RLS) or answer 429.
//! RateLimit headers are added to the response when the request went through.

use std::rc::Rc;

use meshward_shared::audit::AuditLine;
use meshward_shared::facts;
use meshward_shared::host::{Host, HostCalls};
use meshward_shared::response::LocalReply;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use crate::config::{HeaderStyle, Mode};
use crate::engine::{now_ms, parse_rls, HeaderInfo, Hit, Outcome, Runtime, WaitKind, Waiter};
use crate::keys::RequestView;
use crate::limiter::Verdict;
use crate::proto;

/// What the lifecycle wants the host to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Paused: the root (tick) or an RLS answer resumes it.
    Pause,
    /// A local reply was sent.
    Replied,
}

pub struct RateLimitFilter {
    pub context_id: u32,
    pub rt: Rc<Runtime>,
    pub info: HeaderInfo,
    /// RLS calls not answered yet: (token, hit).
    pub pending: Vec<(u32, Hit)>,
    /// When the RLS calls were dispatched (for `rls_time_us`).
    pub rls_started: Option<std::time::SystemTime>,
    /// Throttle delay still owed once the RLS has answered.
    pub delay_until_ms: u64,
    /// We sent a local reply (it already carries the headers).
    pub replied: bool,
}

impl RateLimitFilter {
    pub fn new(context_id: u32, rt: Rc<Runtime>) -> Self {
        RateLimitFilter {
            context_id,
            rt,
            info: HeaderInfo::default(),
            pending: Vec::new(),
            rls_started: None,
            delay_until_ms: 0,
            replied: false,
        }
    }

    /// Request headers arrived: decide, or start the RLS calls and pause.
    pub fn on_request<H: Host + ?Sized>(&mut self, host: &H) -> Step {
        let rt = Rc::clone(&self.rt);
        let config = &rt.config;
        let now = now_ms(host);
        let view = RequestView::new(host, &config.sources);
        if config.reads_path {
            if let Err(e) = view.facts.path() {
                if facts::refuse_path(host, "rate-limit", e, config.shadow) {
                    self.replied = true;
                    return Step::Replied;
                }
            }
        }
        let hits = rt.hits(&view);
        if hits.is_empty() {
            return Step::Continue;
        }
        let mut delay_ms = 0;
        let mut remote = Vec::new();
        for hit in hits {
            let Some(rule) = config.rules.get(hit.rule) else {
                continue;
            };
            let m = rt.metrics.rule(hit.rule);
            if rule.mode == Mode::Global {
                remote.push(hit);
                continue;
            }
            let shadow = rule.shadow || config.shadow;
            match rt.admit_local(host, &hit, now) {
                Outcome::Verdict(v) if v.allowed => {
                    // An allowed request's headers exist only to go on the response.
                    if config.response_headers != HeaderStyle::None {
                        self.info.add(&rule.name, &hit.spec, &v);
                    }
                    m.allowed.inc(host);
                    if v.delay_ms > 0 {
                        m.delayed.inc(host);
                        delay_ms = delay_ms.max(v.delay_ms);
                    }
                }
                Outcome::Verdict(v) => {
                    self.info.add(&rule.name, &hit.spec, &v);
                    if let Some(step) = self.limited(host, &hit, &v, "rate_limited", shadow) {
                        return step;
                    }
                }
                Outcome::KeySpaceFull => {
                    let v = Verdict {
                        retry_after_ms: hit.spec.limit.period_ms,
                        ..Verdict::default()
                    };
                    if let Some(step) = self.limited(host, &hit, &v, "key_space_full", shadow) {
                        return step;
                    }
                }
            }
        }
        if !remote.is_empty() {
            if let Some(step) = self.ask_rls(host, remote, now) {
                if step == Step::Pause {
                    self.delay_until_ms = now + delay_ms;
                }
                return step;
            }
        }
        if config.audit_allow {
            AuditLine::new("rate-limit", "allow", "ok")
                .request(host)
                .emit(host);
        }
        if delay_ms > 0 {
            rt.add_waiter(Waiter {
                context_id: self.context_id,
                due_ms: now + delay_ms,
                kind: WaitKind::Throttle,
            });
            return Step::Pause;
        }
        Step::Continue
    }

    /// Count, audit and (unless shadow) answer a limited request.
    fn limited<H: Host + ?Sized>(
        &mut self,
        host: &H,
        hit: &Hit,
        v: &Verdict,
        reason: &str,
        shadow: bool,
    ) -> Option<Step> {
        let rt = &self.rt;
        let m = rt.metrics.rule(hit.rule);
        let name = rt.rule_name(hit.rule);
        let decision = if shadow { "shadow_deny" } else { "deny" };
        AuditLine::new("rate-limit", decision, reason)
            .request(host)
            .field("rule", name)
            .field(
                "key_id",
                format!("{:016x}", crate::slots::fingerprint(&hit.key)),
            )
            .field("status", 429)
            .emit(host);
        if shadow {
            m.shadow_limited.inc(host);
            return None;
        }
        m.limited.inc(host);
        let reply = rt.limited_reply(hit.rule, v, reason, &self.info);
        send(host, &reply);
        self.replied = true;
        rt.remove_waiter(self.context_id);
        self.pending.clear();
        Some(Step::Replied)
    }

    /// Dispatch one ShouldRateLimit per global hit. `None`: nothing to wait for.
    fn ask_rls<H: Host + ?Sized>(&mut self, host: &H, remote: Vec<Hit>, now: u64) -> Option<Step> {
        let rt = Rc::clone(&self.rt);
        let rls = rt.config.rls.as_ref()?;
        let timeout = std::time::Duration::from_millis(rls.timeout_ms);
        let mut first_rule = None;
        // One clock read per request that calls the RLS, and one per answer.
        self.rls_started = Some(host.now());
        for hit in remote {
            let msg = rt.rls_request(&hit);
            match host.dispatch_grpc_call(
                &rls.cluster,
                proto::SERVICE,
                proto::METHOD,
                &msg,
                timeout,
            ) {
                Ok(token) => {
                    first_rule.get_or_insert(hit.rule);
                    self.pending.push((token, hit));
                }
                Err(e) => {
                    rt.metrics.rule(hit.rule).rls_error.inc(host);
                    host.log(
                        LogLevel::Warn,
                        &format!("meshward rate-limit: RLS call failed: {e}"),
                    );
                    if let Some(step) = self.rls_failed(host, hit.rule) {
                        return Some(step);
                    }
                }
            }
        }
        let rule = first_rule?;
        rt.add_waiter(Waiter {
            context_id: self.context_id,
            due_ms: now + rls.timeout_ms,
            kind: WaitKind::Rls { rule },
        });
        Some(Step::Pause)
    }

    /// The RLS failed for `rule`: deny per `failure_mode_deny`, else go on.
    fn rls_failed<H: Host + ?Sized>(&mut self, host: &H, rule: usize) -> Option<Step> {
        let rt = &self.rt;
        if !fails_closed(rt, rule) {
            return None;
        }
        AuditLine::new("rate-limit", "deny", "rls_unavailable")
            .request(host)
            .field("rule", rt.rule_name(rule))
            .emit(host);
        send(host, &rt.failure_reply());
        self.replied = true;
        rt.remove_waiter(self.context_id);
        self.pending.clear();
        Some(Step::Replied)
    }

    /// An RLS answer (or failure) for one of our calls.
    pub fn on_rls_response<H: Host + ?Sized>(
        &mut self,
        host: &H,
        token: u32,
        status: u32,
        size: usize,
    ) {
        let Some(pos) = self.pending.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, hit) = self.pending.swap_remove(pos);
        if !self.rt.is_waiting(self.context_id) {
            // the deadline already decided for this request
            self.pending.clear();
            return;
        }
        let rt = Rc::clone(&self.rt);
        let m = rt.metrics.rule(hit.rule);
        if let Some(took) = self
            .rls_started
            .and_then(|t| host.now().duration_since(t).ok())
        {
            m.rls_time_us
                .record(host, u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
        let answer = if status == 0 {
            host.grpc_call_response(size).and_then(|b| parse_rls(&b))
        } else {
            None
        };
        let shadow = rt.config.shadow || rt.config.rules.get(hit.rule).is_some_and(|r| r.shadow);
        match answer {
            None => {
                m.rls_error.inc(host);
                if self.rls_failed(host, hit.rule).is_some() {
                    return;
                }
            }
            Some(a) => {
                let v = Verdict {
                    allowed: !a.over_limit,
                    remaining: a.remaining,
                    reset_ms: a.reset_ms,
                    retry_after_ms: a.reset_ms,
                    delay_ms: 0,
                };
                self.info.add(rt.rule_name(hit.rule), &hit.spec, &v);
                if a.over_limit {
                    if self
                        .limited(host, &hit, &v, "rate_limited", shadow)
                        .is_some()
                    {
                        return;
                    }
                } else {
                    m.allowed.inc(host);
                }
            }
        }
        if !self.pending.is_empty() {
            return;
        }
        rt.remove_waiter(self.context_id);
        let now = now_ms(host);
        if now < self.delay_until_ms {
            rt.add_waiter(Waiter {
                context_id: self.context_id,
                due_ms: self.delay_until_ms,
                kind: WaitKind::Throttle,
            });
            return;
        }
        let _ = host.resume_request();
    }

    pub fn on_response_headers<H: Host + ?Sized>(&self, host: &H) {
        if self.replied {
            return;
        }
        for (k, v) in self.rt.header_lines(&self.info) {
            host.add_response_header(k, &v);
        }
    }
}

pub fn fails_closed(rt: &Runtime, rule: usize) -> bool {
    let shadow = rt.config.shadow || rt.config.rules.get(rule).is_some_and(|r| r.shadow);
    !shadow && rt.config.rls.as_ref().is_some_and(|r| r.failure_mode_deny)
}

pub fn send<H: Host + ?Sized>(host: &H, reply: &LocalReply) {
    if let Err(e) = reply.send(host) {
        host.log(
            LogLevel::Error,
            &format!("meshward rate-limit: could not send the reply: {e}"),
        );
    }
}

meshward_shared::stream_callbacks!(
    "request_headers",
    "request_body",
    "request_trailers",
    "response_headers"
);

impl Context for RateLimitFilter {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        self.on_rls_response(&HostCalls, token, status, size);
    }
}

// The stream is gone (proxy_on_delete): forget a pending wait. Done here
// rather than in `on_done`, which would cost one more call into the VM per request.
impl Drop for RateLimitFilter {
    fn drop(&mut self) {
        self.rt.remove_waiter(self.context_id);
    }
}

impl HttpContext for RateLimitFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.on_request(&HostCalls) {
            Step::Continue => Action::Continue,
            Step::Pause | Step::Replied => Action::Pause,
        }
    }

    // While paused, body and trailers must not slip past the decision.
    fn on_http_request_body(&mut self, _: usize, _: bool) -> Action {
        if self.rt.is_waiting(self.context_id) {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        self.on_http_request_body(0, true)
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.on_response_headers(&HostCalls);
        Action::Continue
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
