//! Decisions: which rules apply to a request, their keys and limits, the
//! local/hybrid admission against shared data, the RLS messages, and the
//! response headers. Host access goes through the `Host` seam only.

use std::cell::RefCell;

use meshward_shared::host::Host;
use meshward_shared::response::LocalReply;
use prost::Message;

use crate::config::{Admission, Config, HeaderStyle, LimitSpec, Limits, Mode, OnFull, Rule};
use crate::keys::{compose, entries, RequestView};
use crate::lease::{self, Lease, Leases};
use crate::limiter::{Algorithm, Verdict};
use crate::metrics::Metrics;
use crate::proto;
use crate::slots::{self, Slot, SlotError};

/// A request waiting in a paused state, resumed or answered by the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub context_id: u32,
    pub due_ms: u64,
    pub kind: WaitKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// Throttled: resume at `due_ms`.
    Throttle,
    /// Waiting for the RLS: at `due_ms` apply the failure mode of `rule`.
    Rls { rule: usize },
}

/// A hybrid usage report in flight (owned by the root that sent it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCall {
    pub token: u32,
    pub slot: u32,
    pub fingerprint: u64,
    pub window: u64,
    pub delta: u64,
    pub rule: usize,
    /// The limit of the key's own tier, to turn `limit_remaining` into usage.
    pub requests: u64,
    pub deadline_ms: u64,
}

pub struct Runtime {
    pub config: Config,
    pub metrics: Metrics,
    pub waiters: RefCell<Vec<Waiter>>,
    pub syncs: RefCell<Vec<SyncCall>>,
    /// This worker's leases (lease admission).
    pub leases: RefCell<Leases>,
}

/// A rule that applies to the request: its key and its (tier's) limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: usize,
    pub key: String,
    pub spec: LimitSpec,
    pub cost: u64,
}

/// What one hit decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verdict(Verdict),
    KeySpaceFull,
}

/// Headers describing the limits that applied (for allowed responses too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderInfo {
    pub policies: Vec<(String, u64, u64)>,
    /// The tightest: (rule, limit, remaining, reset seconds).
    pub current: Option<(String, u64, u64, u64)>,
}

pub fn now_ms<H: Host + ?Sized>(host: &H) -> u64 {
    host.now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Runtime {
    pub fn new<H: Host + ?Sized>(host: &H, config: Config) -> Runtime {
        let metrics = Metrics::define(host, &config);
        Runtime {
            config,
            metrics,
            waiters: RefCell::new(Vec::new()),
            syncs: RefCell::new(Vec::new()),
            leases: RefCell::new(Leases::default()),
        }
    }

    pub fn add_waiter(&self, w: Waiter) {
        let mut ws = self.waiters.borrow_mut();
        ws.retain(|x| x.context_id != w.context_id);
        ws.push(w);
    }

    pub fn remove_waiter(&self, context_id: u32) -> Option<Waiter> {
        let mut ws = self.waiters.borrow_mut();
        let i = ws.iter().position(|w| w.context_id == context_id)?;
        Some(ws.swap_remove(i))
    }

    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters
            .borrow()
            .iter()
            .any(|w| w.context_id == context_id)
    }

    /// The rules that apply (first match, or all with `match_all`).
    pub fn hits<H: Host + ?Sized>(&self, view: &RequestView<'_, H>) -> Vec<Hit> {
        let mut out = Vec::new();
        for (i, rule) in self.config.rules.iter().enumerate() {
            if let Some(hit) = hit_for(i, rule, view) {
                out.push(hit);
                if !self.config.match_all {
                    break;
                }
            }
        }
        out
    }

    /// Admit one local or hybrid hit against the shared-data table.
    pub fn admit_local<H: Host + ?Sized>(&self, host: &H, hit: &Hit, now: u64) -> Outcome {
        let Some(rule) = self.config.rules.get(hit.rule) else {
            return Outcome::KeySpaceFull;
        };
        let rules = &self.config.rules;
        let idle = |s: &Slot| -> bool {
            match rules.get(usize::from(s.rule)) {
                Some(r) => r.limits_any_idle(s, now),
                None => true,
            }
        };
        let limit = hit.spec.limit;
        let rule_idx = u16::try_from(hit.rule).unwrap_or(u16::MAX);
        let key = slots::stored_key(&rule.name, &hit.key);
        let result = if rule.mode == Mode::Local && self.config.admission == Admission::Lease {
            self.admit_leased(host, hit, rule, key, &idle, now)
        } else if rule.mode == Mode::Hybrid {
            let share_cap = ((limit.requests as f64) * self.config.share).ceil() as u64;
            slots::update(host, self.config.max_keys, &key, rule_idx, &idle, |s| {
                hybrid_admit(
                    s,
                    limit.requests,
                    limit.window_index(now) + 1,
                    share_cap,
                    hit.cost,
                    now,
                    limit.period_ms,
                )
            })
            .map(|((v, newly_dirty), idx)| {
                if newly_dirty {
                    slots::push_dirty(host, idx);
                }
                v
            })
        } else {
            slots::update(host, self.config.max_keys, &key, rule_idx, &idle, |s| {
                let (v, next) = limit.admit(s.state, now, hit.cost, rule.max_delay_ms);
                if let Some(n) = next {
                    s.state = n;
                }
                (v, next.is_some())
            })
            .map(|(v, _)| v)
        };
        match result {
            Ok(v) => Outcome::Verdict(v),
            Err(SlotError::Full) => {
                self.metrics.key_space_full.inc(host);
                match self.config.on_key_space_full {
                    OnFull::Deny => Outcome::KeySpaceFull,
                    OnFull::Allow => Outcome::Verdict(Verdict {
                        allowed: true,
                        remaining: limit.requests,
                        ..Verdict::default()
                    }),
                }
            }
            Err(e @ (SlotError::Contention | SlotError::WriteFailed)) => {
                if e == SlotError::Contention {
                    self.metrics.cas_contention.inc(host);
                } else {
                    self.metrics.shared_data_error.inc(host);
                }
                // Fail closed: admitting a request that was not counted would
                // break the limit. The filter answers 429 (shadow lets it through).
                Outcome::Verdict(uncounted_denial())
            }
        }
    }

    /// Admit from this worker's lease for the key, or renew it with one CAS.
    fn admit_leased<H: Host + ?Sized>(
        &self,
        host: &H,
        hit: &Hit,
        rule: &Rule,
        key: String,
        idle: &dyn Fn(&Slot) -> bool,
        now: u64,
    ) -> Result<Verdict, SlotError> {
        let cost = hit.cost;
        let mut leases = self.leases.borrow_mut();
        if let Some(v) = leases.spend(&key, cost, now) {
            return Ok(v);
        }
        let cfg = self.config.lease;
        let limit = hit.spec.limit;
        let prev = leases.get(&key).copied();
        let want = lease::next_size(prev.as_ref(), cost, now, cfg.max);
        let back = prev.filter(|l| l.units > 0).map(|l| lease::Back {
            units: l.units,
            taken_ms: l.taken_ms,
            window: l.window,
        });
        let rule_idx = u16::try_from(hit.rule).unwrap_or(u16::MAX);
        let (renewal, slot) =
            slots::update(host, self.config.max_keys, &key, rule_idx, idle, |s| {
                let (r, next) = lease::renew(
                    &limit,
                    s.state,
                    now,
                    cost,
                    rule.max_delay_ms,
                    back.as_ref(),
                    want,
                );
                if let Some(n) = next {
                    s.state = n;
                }
                (r, next.is_some())
            })?;
        if let Some(b) = back {
            lease::count(host, &self.metrics, b.units, renewal.returned);
        }
        let granted = renewal.granted;
        if granted > 0 {
            self.metrics.lease_taken.inc(host);
        }
        let l = Lease {
            units: granted.saturating_sub(cost),
            size: want,
            taken_ms: now,
            expires_ms: lease::expiry(&limit, now, cfg.lifetime_ms),
            window: match limit.algorithm {
                Algorithm::FixedWindow => limit.window_index(now) + 1,
                _ => 0,
            },
            slot,
            fingerprint: slots::fingerprint(&key),
            limit,
            shared_remaining: renewal.verdict.remaining,
            last_used_ms: now,
        };
        let verdict = if granted > 0 {
            l.verdict(now)
        } else {
            renewal.verdict
        };
        if let Some((k, old)) = leases.put(key, l) {
            lease::give_back(host, &self.metrics, &k, &old, now);
        }
        Ok(verdict)
    }

    /// Give back what this worker's expired leases hold (root tick).
    pub fn tick_leases<H: Host + ?Sized>(&self, host: &H, now: u64) {
        lease::tick(&mut self.leases.borrow_mut(), host, &self.metrics, now);
    }

    /// The ShouldRateLimit request for one global hit.
    pub fn rls_request(&self, hit: &Hit) -> Vec<u8> {
        rls_message(&self.config.domain, &hit.key, &hit.spec, hit.cost)
    }

    /// The 429 (or configured) reply for a limited request.
    pub fn limited_reply(
        &self,
        rule: usize,
        v: &Verdict,
        reason: &str,
        info: &HeaderInfo,
    ) -> LocalReply {
        let name = self.rule_name(rule);
        let detail = format!("rate limit `{name}` exceeded");
        let retry = v.retry_after_ms.div_ceil(1000).max(1);
        let mut reply =
            LocalReply::problem(429, reason, &detail).with_header("retry-after", retry.to_string());
        for (k, val) in self.header_lines(info) {
            reply = reply.with_header(k, val);
        }
        if let Some(custom) = &self.config.deny_response {
            reply = reply.customize(custom, reason);
        }
        reply
    }

    /// The reply when the RLS cannot answer and `failure_mode_deny` holds.
    pub fn failure_reply(&self) -> LocalReply {
        let status = self.config.rls.as_ref().map_or(503, |r| r.failure_status);
        let mut reply = LocalReply::problem(
            status,
            "rls_unavailable",
            "the rate limit service did not answer",
        );
        if let Some(custom) = &self.config.deny_response {
            reply = reply.customize(custom, "rls_unavailable");
        }
        reply
    }

    pub fn rule_name(&self, rule: usize) -> &str {
        self.config.rules.get(rule).map_or("", |r| r.name.as_str())
    }

    /// Header lines for `info` in the configured style.
    pub fn header_lines(&self, info: &HeaderInfo) -> Vec<(&'static str, String)> {
        let style = self.config.response_headers;
        let mut out = Vec::new();
        if matches!(style, HeaderStyle::Draft | HeaderStyle::DraftAndLegacy) {
            if !info.policies.is_empty() {
                let p = info
                    .policies
                    .iter()
                    .map(|(n, q, w)| format!("\"{}\";q={q};w={w}", sf_string(n)))
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push(("ratelimit-policy", p));
            }
            if let Some((n, _, r, t)) = &info.current {
                out.push(("ratelimit", format!("\"{}\";r={r};t={t}", sf_string(n))));
            }
        }
        if matches!(style, HeaderStyle::Legacy | HeaderStyle::DraftAndLegacy) {
            if let Some((_, q, r, t)) = &info.current {
                out.push(("x-ratelimit-limit", q.to_string()));
                out.push(("x-ratelimit-remaining", r.to_string()));
                out.push(("x-ratelimit-reset", t.to_string()));
            }
        }
        out
    }
}

/// The verdict for a request whose counter could not be updated: denied, with
/// a short retry (the cause is transient contention, not the client's usage).
pub fn uncounted_denial() -> Verdict {
    Verdict {
        retry_after_ms: UNCOUNTED_RETRY_MS,
        ..Verdict::default()
    }
}

/// `Retry-After` for [`uncounted_denial`].
pub const UNCOUNTED_RETRY_MS: u64 = 1000;

/// Structured-field strings: drop what cannot be carried.
fn sf_string(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .collect()
}

impl HeaderInfo {
    pub fn add(&mut self, name: &str, spec: &LimitSpec, v: &Verdict) {
        let w = (spec.limit.period_ms / 1000).max(1);
        let q = spec.limit.requests;
        if !self.policies.iter().any(|(n, _, _)| n == name) {
            self.policies.push((name.to_string(), q, w));
        }
        let t = v.reset_ms.div_ceil(1000);
        let tighter = self
            .current
            .as_ref()
            .is_none_or(|(_, _, r, _)| v.remaining < *r);
        if tighter {
            self.current = Some((name.to_string(), q, v.remaining, t));
        }
    }
}

impl Rule {
    /// The limit that governs a stored key: its own tier's (the tier is part
    /// of the key). `None` when the tier is no longer configured.
    pub fn spec_for_key(&self, key: &str) -> Option<&LimitSpec> {
        match &self.limits {
            Limits::Single(s) => Some(s),
            Limits::Tiers { .. } => {
                // the last entry: `hit_for` appends the tier after the key parts
                let tier = entries(key)
                    .1
                    .into_iter()
                    .rfind(|(k, _)| *k == "tier")
                    .map(|(_, v)| crate::keys::unescape(v));
                self.limits.pick(tier.as_deref())
            }
        }
    }

    /// Whether a slot owned by this rule may be taken over (any tier).
    fn limits_any_idle(&self, s: &Slot, now: u64) -> bool {
        let idle = |spec: &LimitSpec| {
            if self.mode == Mode::Hybrid {
                // unsynced usage must reach the RLS before the slot is reused
                s.state.a != spec.limit.window_index(now) + 1 && s.unsynced == 0 && s.inflight == 0
            } else {
                spec.limit.idle(s.state, now)
            }
        };
        match (self.spec_for_key(&s.key), &self.limits) {
            (Some(spec), _) => idle(spec),
            // a tier that was removed: idle only if idle under every limit
            (
                None,
                Limits::Tiers {
                    by_value, default, ..
                },
            ) => by_value.iter().all(|(_, s)| idle(s)) && default.as_ref().is_none_or(idle),
            (None, Limits::Single(spec)) => idle(spec),
        }
    }
}

fn matches<H: Host + ?Sized>(rule: &Rule, view: &RequestView<'_, H>) -> bool {
    let m = &rule.matcher;
    if !m.methods.is_empty() && !m.methods.iter().any(|x| x == view.method()) {
        return false;
    }
    if let Some(p) = &m.prefix {
        if !view.path().starts_with(p.as_str()) {
            return false;
        }
    }
    if let Some(p) = &m.path {
        if view.path() != p {
            return false;
        }
    }
    if let Some(t) = &m.template {
        if !t.matches(view.path()) {
            return false;
        }
    }
    for (name, exact) in &m.headers {
        match (view.header(name), exact) {
            (None, _) => return false,
            (Some(v), Some(want)) if v != *want => return false,
            _ => {}
        }
    }
    true
}

/// The hit for `rule`, or `None` when it does not match or a key part is absent.
pub fn hit_for<H: Host + ?Sized>(i: usize, rule: &Rule, view: &RequestView<'_, H>) -> Option<Hit> {
    if !matches(rule, view) {
        return None;
    }
    let mut parts = Vec::with_capacity(rule.key.len() + 1);
    for p in &rule.key {
        parts.push((p.descriptor_key(), view.part(p)?));
    }
    let spec = match &rule.limits {
        Limits::Single(s) => s.clone(),
        Limits::Tiers {
            claim, by_value, ..
        } => {
            let tier = view.claim(claim);
            let spec = rule.limits.pick(tier.as_deref())?.clone();
            let label = match tier {
                Some(t) if by_value.iter().any(|(v, _)| *v == t) => t,
                _ => "default".to_string(),
            };
            parts.push(("tier", label));
            spec
        }
    };
    Some(Hit {
        rule: i,
        key: compose(&rule.name, &parts),
        spec,
        cost: rule.cost,
    })
}

/// Hybrid admission on one slot: fixed window, a local share, and the last
/// known global usage. Returns the verdict and whether the slot just became dirty.
pub fn hybrid_admit(
    s: &mut Slot,
    requests: u64,
    window: u64,
    share_cap: u64,
    cost: u64,
    now: u64,
    period_ms: u64,
) -> ((Verdict, bool), bool) {
    if s.state.a != window {
        s.state.a = window;
        s.state.b = 0;
        s.unsynced = 0;
        s.known = 0;
        s.inflight = 0;
        // re-queue on the first admission of the window even if an earlier
        // queue write was lost, so a key cannot stay unsynced for good
        s.dirty = false;
    }
    let reset_ms = (window * period_ms).saturating_sub(now);
    let used = s.known + s.unsynced + s.inflight;
    if s.state.b + cost <= share_cap && used + cost <= requests {
        s.state.b += cost;
        s.unsynced += cost;
        let newly = !s.dirty;
        s.dirty = true;
        let v = Verdict {
            allowed: true,
            remaining: requests - used - cost,
            reset_ms,
            ..Verdict::default()
        };
        return ((v, newly), true);
    }
    let v = Verdict {
        remaining: requests.saturating_sub(used),
        reset_ms,
        retry_after_ms: reset_ms,
        ..Verdict::default()
    };
    // the window reset above must still be written
    ((v, false), true)
}

pub fn rls_message(domain: &str, key: &str, spec: &LimitSpec, hits: u64) -> Vec<u8> {
    let (rule, kv) = entries(key);
    let mut e = Vec::with_capacity(kv.len() + 1);
    e.push(proto::Entry {
        key: "rule".into(),
        value: rule.to_string(),
    });
    e.extend(kv.into_iter().map(|(k, v)| proto::Entry {
        key: k.to_string(),
        value: crate::keys::unescape(v).into_owned(),
    }));
    let limit = spec.unit.map(|u| proto::RateLimitOverride {
        requests_per_unit: u32::try_from(spec.limit.requests).unwrap_or(u32::MAX),
        unit: u as i32,
    });
    proto::RateLimitRequest {
        domain: domain.to_string(),
        descriptors: vec![proto::RateLimitDescriptor { entries: e, limit }],
        hits_addend: u32::try_from(hits).unwrap_or(u32::MAX),
    }
    .encode_to_vec()
}

/// A decoded RLS answer for one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlsAnswer {
    pub over_limit: bool,
    pub remaining: u64,
    pub reset_ms: u64,
}

pub fn parse_rls(body: &[u8]) -> Option<RlsAnswer> {
    let r = proto::RateLimitResponse::decode(body).ok()?;
    let over = r.overall_code == proto::Code::OverLimit as i32;
    if !over && r.overall_code != proto::Code::Ok as i32 {
        return None;
    }
    let st = r.statuses.first();
    let remaining = st.map_or(0, |s| u64::from(s.limit_remaining));
    let reset_ms = st
        .and_then(|s| s.duration_until_reset.as_ref())
        .map_or(0, |d| {
            u64::try_from(d.seconds).unwrap_or(0) * 1000
                + u64::try_from(d.nanos / 1_000_000).unwrap_or(0)
        });
    Some(RlsAnswer {
        over_limit: over,
        remaining,
        reset_ms,
    })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
