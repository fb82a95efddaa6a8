//! The root context: compiles config and lays out the shared-data table;
//! on tick it resumes throttled requests, enforces the RLS deadline, gives
//! back expired leases, and (hybrid mode) reports usage to the RLS in batches.

use std::rc::Rc;
use std::time::Duration;

use meshward_shared::audit::AuditLine;
use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::config::{Admission, Config, Mode};
use crate::engine::{now_ms, parse_rls, rls_message, Runtime, SyncCall, WaitKind};
use crate::filter::{fails_closed, send, RateLimitFilter};
use crate::proto;
use crate::slots;

/// Tick period when anything waits on the clock (throttle resolution).
pub const TICK_MS: u64 = 20;

pub struct RateLimitRoot {
    pub context_id: u32,
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for RateLimitRoot {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if let Some(rt) = self.runtime.clone() {
            on_sync_response(&rt, &HostCalls, token, status, size);
        }
    }
}

impl RootContext for RateLimitRoot {
    fn on_configure(&mut self, config_size: usize) -> bool {
        let bytes = HostCalls.plugin_configuration(config_size);
        self.runtime = configure(&HostCalls, &bytes).map(Rc::new);
        self.runtime.is_some()
    }

    fn on_tick(&mut self) {
        if let Some(rt) = self.runtime.clone() {
            tick(&rt, &HostCalls, self.context_id);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let rt = self.runtime.clone()?;
        Some(Box::new(RateLimitFilter::new(context_id, rt)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Compile config, lay out the slot table; on error log the field path.
pub fn configure<H: Host + ?Sized>(host: &H, bytes: &[u8]) -> Option<Runtime> {
    let config = match Config::from_json(bytes) {
        Ok(c) => c,
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward rate-limit: invalid config: {e}"),
            );
            return None;
        }
    };
    let local = config.uses(Mode::Local) || config.uses(Mode::Hybrid);
    if local {
        if let Err(e) = slots::init(host, config.max_keys) {
            host.log(
                LogLevel::Error,
                &format!("meshward rate-limit: shared data unavailable: {e}"),
            );
            return None;
        }
    }
    if let Some(period) = tick_period(&config) {
        if let Err(e) = host.set_tick_period(period) {
            host.log(LogLevel::Error, &format!("meshward rate-limit: {e}"));
            return None;
        }
    }
    host.log(
        LogLevel::Info,
        &format!(
            "meshward rate-limit: configured {} rule(s), max_keys {}",
            config.rules.len(),
            config.max_keys
        ),
    );
    Some(Runtime::new(host, config))
}

/// How often the root must tick: throttling, RLS deadlines, leases and
/// hybrid reports need it.
pub fn tick_period(config: &Config) -> Option<Duration> {
    config
        .needs_tick
        .then(|| Duration::from_millis(TICK_MS.min(config.sync_interval_ms)))
}

pub fn tick<H: Host + ?Sized>(rt: &Runtime, host: &H, root_id: u32) {
    let now = now_ms(host);
    wake_waiters(rt, host, root_id, now);
    if rt.config.admission == Admission::Lease && rt.config.uses(Mode::Local) {
        rt.tick_leases(host, now);
    }
    if rt.config.uses(Mode::Hybrid) {
        expire_syncs(rt, host, now);
        if slots::try_lease(host, now, rt.config.sync_interval_ms) {
            sync(rt, host, now);
        }
    }
}

/// Resume throttled requests that are due; apply the failure mode to
/// requests whose RLS answer is overdue. Each acts in its own context.
fn wake_waiters<H: Host + ?Sized>(rt: &Runtime, host: &H, root_id: u32, now: u64) {
    let due: Vec<_> = rt
        .waiters
        .borrow()
        .iter()
        .filter(|w| now >= w.due_ms)
        .copied()
        .collect();
    if due.is_empty() {
        return;
    }
    for w in due {
        rt.remove_waiter(w.context_id);
        if host.set_effective_context(w.context_id).is_err() {
            continue;
        }
        match w.kind {
            WaitKind::Throttle => {
                let _ = host.resume_request();
            }
            WaitKind::Rls { rule } => {
                rt.metrics.rule(rule).rls_timeout.inc(host);
                if fails_closed(rt, rule) {
                    AuditLine::new("rate-limit", "deny", "rls_timeout")
                        .request(host)
                        .field("rule", rt.rule_name(rule))
                        .emit(host);
                    send(host, &rt.failure_reply());
                } else {
                    let _ = host.resume_request();
                }
            }
        }
    }
    let _ = host.set_effective_context(root_id);
}

/// Report unsynced hybrid usage: one ShouldRateLimit per dirty key, with
/// `hits_addend` = usage since the last report.
fn sync<H: Host + ?Sized>(rt: &Runtime, host: &H, now: u64) {
    let Some(rls) = rt.config.rls.as_ref() else {
        return;
    };
    for idx in slots::take_dirty(host) {
        let (bytes, _) = host.shared_data(&slots::slot_name(idx));
        let peek = slots::Slot::decode(bytes.as_deref().unwrap_or_default());
        let Some(rule) = rt.config.rules.get(usize::from(peek.rule)) else {
            continue;
        };
        let Some(spec) = rule.spec_for_key(&peek.key).cloned() else {
            continue;
        };
        let window = spec.limit.window_index(now) + 1;
        let mut delta = 0;
        let taken = slots::update_at(host, idx, peek.fingerprint, |s| {
            s.dirty = false;
            if s.state.a != window {
                // usage of a past window is not reported
                delta = 0;
                s.unsynced = 0;
                return true;
            }
            delta = s.unsynced;
            s.unsynced = 0;
            s.inflight += delta;
            true
        });
        let Some(slot) = taken else {
            continue;
        };
        if delta == 0 {
            continue;
        }
        let msg = rls_message(&rt.config.domain, &slot.key, &spec, delta);
        let timeout = Duration::from_millis(rls.timeout_ms);
        match host.dispatch_grpc_call(&rls.cluster, proto::SERVICE, proto::METHOD, &msg, timeout) {
            Ok(token) => rt.syncs.borrow_mut().push(SyncCall {
                token,
                slot: idx,
                fingerprint: slot.fingerprint,
                window,
                delta,
                rule: usize::from(slot.rule),
                requests: spec.limit.requests,
                deadline_ms: now + rls.timeout_ms,
            }),
            Err(_) => sync_failed(
                rt,
                host,
                &SyncCall {
                    token: 0,
                    slot: idx,
                    fingerprint: slot.fingerprint,
                    window,
                    delta,
                    rule: usize::from(slot.rule),
                    requests: spec.limit.requests,
                    deadline_ms: now,
                },
            ),
        }
    }
}

pub fn on_sync_response<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    token: u32,
    status: u32,
    size: usize,
) {
    let call = {
        let mut syncs = rt.syncs.borrow_mut();
        let Some(i) = syncs.iter().position(|s| s.token == token) else {
            return;
        };
        syncs.swap_remove(i)
    };
    let answer = if status == 0 {
        host.grpc_call_response(size).and_then(|b| parse_rls(&b))
    } else {
        None
    };
    let Some(a) = answer else {
        sync_failed(rt, host, &call);
        return;
    };
    rt.metrics.hybrid_sync_ok.inc(host);
    // usage against the key's own tier, as sent in the report
    let requests = call.requests;
    slots::update_at(host, call.slot, call.fingerprint, |s| {
        if s.state.a != call.window {
            return false;
        }
        s.inflight = s.inflight.saturating_sub(call.delta);
        let used = if a.over_limit {
            requests.max(s.known)
        } else {
            requests.saturating_sub(a.remaining)
        };
        s.known = s.known.max(used);
        true
    });
}

/// A report failed: put the usage back so the next sync carries it.
fn sync_failed<H: Host + ?Sized>(rt: &Runtime, host: &H, call: &SyncCall) {
    rt.metrics.hybrid_sync_failed.inc(host);
    rt.metrics.rule(call.rule).rls_error.inc(host);
    let mut requeue = false;
    slots::update_at(host, call.slot, call.fingerprint, |s| {
        if s.state.a != call.window {
            return false;
        }
        s.inflight = s.inflight.saturating_sub(call.delta);
        s.unsynced += call.delta;
        requeue = !s.dirty;
        s.dirty = true;
        true
    });
    if requeue {
        slots::push_dirty(host, call.slot);
    }
}

/// Reports whose answer is overdue count as failed (a late answer is ignored).
fn expire_syncs<H: Host + ?Sized>(rt: &Runtime, host: &H, now: u64) {
    let overdue: Vec<SyncCall> = {
        let mut syncs = rt.syncs.borrow_mut();
        let (late, keep): (Vec<_>, Vec<_>) = syncs.drain(..).partition(|s| now > s.deadline_ms);
        *syncs = keep;
        late
    };
    for call in overdue {
        rt.metrics.rule(call.rule).rls_timeout.inc(host);
        sync_failed(rt, host, &call);
    }
}
