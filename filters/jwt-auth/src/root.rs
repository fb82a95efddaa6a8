//! The root context: compiles config, drives JWKS fetches on tick, and
//! resumes or rejects requests that were waiting for keys.

use std::rc::Rc;
use std::time::Duration;

use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::authn::Runtime;
use crate::config::Config;
use crate::filter::{now_ms, process, JwtFilter, Step};
use crate::keys::{FetchOutcome, FetchPlan, MAX_DOCUMENT_BYTES};
use crate::signature;

const TICK: Duration = Duration::from_millis(250);

pub struct JwtRoot {
    pub context_id: u32,
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for JwtRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let mut rerun = alone(&rt, &HostCalls);
        on_keys_response(
            &rt,
            &HostCalls,
            self.context_id,
            token,
            body_size,
            &mut rerun,
        );
    }
}

impl RootContext for JwtRoot {
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
        let runtime = self.runtime.clone()?;
        Some(Box::new(JwtFilter {
            context_id,
            runtime,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Compile config; on error log the field path and refuse it.
pub fn configure<H: Host + ?Sized>(host: &H, bytes: &[u8]) -> Option<Runtime> {
    match Config::from_json(bytes) {
        Ok(config) => {
            let backend = match signature::select(host, config.signature_backend) {
                Ok(b) => b,
                Err(e) => {
                    host.log(
                        LogLevel::Error,
                        &format!("meshward jwt-auth: invalid config: {e}"),
                    );
                    return None;
                }
            };
            let rt = Runtime::new(host, config, backend.use_host);
            if let Some(period) = tick_period(&rt) {
                if let Err(e) = host.set_tick_period(period) {
                    host.log(LogLevel::Error, &format!("meshward jwt-auth: {e}"));
                    return None;
                }
            }
            host.log(
                if backend.warn {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                },
                &format!(
                    "meshward jwt-auth: configured {} provider(s), {} rule(s); {}",
                    rt.config.providers.len(),
                    rt.config.rules.len(),
                    backend.note
                ),
            );
            Some(rt)
        }
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward jwt-auth: invalid config: {e}"),
            );
            None
        }
    }
}

/// What re-running a request that waited for keys did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Keys are still pending: keep waiting.
    StillWaiting,
    /// Let the request go on.
    Resume,
    /// Answered, or handed to a later stage's own wait (the suite).
    Done,
}

/// Re-runs a woken request (the effective context is already the request's):
/// standalone, jwt-auth alone ([`alone`]); in the suite, jwt-auth and the
/// stages after it.
pub type Rerun<'a> = dyn FnMut(u32, bool) -> Woken + 'a;

/// The standalone module's [`Rerun`]: this filter's lifecycle only.
pub fn alone<'a, H: Host + ?Sized>(
    rt: &'a Runtime,
    host: &'a H,
) -> impl FnMut(u32, bool) -> Woken + 'a {
    move |_, final_attempt| match process(rt, host, final_attempt) {
        Step::Pause => Woken::StillWaiting,
        Step::Continue => Woken::Resume,
        Step::Replied => Woken::Done,
    }
}

/// How often the root must tick: only remote key sources need it (fetches,
/// refreshes, waiting requests' deadlines).
pub fn tick_period(rt: &Runtime) -> Option<Duration> {
    rt.config
        .providers
        .iter()
        .any(|p| matches!(p.keys, crate::keys::KeySource::Remote(_)))
        .then_some(TICK)
}

/// The standalone module's tick.
pub fn tick<H: Host + ?Sized>(rt: &Runtime, host: &H, root_id: u32) {
    tick_with(rt, host, root_id, &mut alone(rt, host));
}

/// Start due fetches, then re-run the requests whose keys came or whose wait expired.
pub fn tick_with<H: Host + ?Sized>(rt: &Runtime, host: &H, root_id: u32, rerun: &mut Rerun) {
    let changed = poll_sources(rt, host);
    wake_waiters(rt, host, root_id, changed, rerun);
}

/// A JWKS or discovery document arrived: load it, start what is due, and
/// re-run the requests that waited for it.
pub fn on_keys_response<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    root_id: u32,
    token: u32,
    body_size: usize,
    rerun: &mut Rerun,
) {
    on_fetch_response(rt, host, token, body_size);
    poll_sources(rt, host);
    // Re-run every waiting request now: keys may be there (waiting for the
    // deadline instead held them up to `jwks_pending_timeout`).
    wake_waiters(rt, host, root_id, true, rerun);
}

/// Start due fetches; returns true when a stuck fetch was expired.
fn poll_sources<H: Host + ?Sized>(rt: &Runtime, host: &H) -> bool {
    let now = now_ms(host);
    let mut changed = false;
    for p in 0..rt.config.providers.len() {
        let (expired, plan) = match rt.keys.borrow_mut().get_mut(p) {
            Some(state) => state.poll(now),
            None => continue,
        };
        if let Some(outcome) = expired {
            record(rt, host, p, &outcome);
            changed = true;
        }
        if let Some(plan) = plan {
            changed |= dispatch(rt, host, p, &plan, now);
        }
    }
    changed
}

fn dispatch<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    p: usize,
    plan: &FetchPlan,
    now: u64,
) -> bool {
    let t = &plan.target;
    let headers = [
        (":method", "GET"),
        (":path", t.path.as_str()),
        (":authority", t.authority.as_str()),
        ("accept", "application/json"),
    ];
    let result = host.dispatch_http_call(&t.cluster, &headers, None, t.timeout);
    let mut keys = rt.keys.borrow_mut();
    let Some(state) = keys.get_mut(p) else {
        return false;
    };
    match result {
        Ok(token) => {
            state.started(token, now, plan);
            false
        }
        Err(e) => {
            let outcome = state.dispatch_failed(now, &e.to_string());
            drop(keys);
            record(rt, host, p, &outcome);
            true
        }
    }
}

fn on_fetch_response<H: Host + ?Sized>(rt: &Runtime, host: &H, token: u32, body_size: usize) {
    let now = now_ms(host);
    let Some(p) = rt.keys.borrow().iter().position(|k| k.owns(token)) else {
        return;
    };
    let (headers, body) = if body_size > MAX_DOCUMENT_BYTES {
        (
            host.http_call_response(0).0,
            Some(vec![0u8; MAX_DOCUMENT_BYTES + 1]),
        )
    } else {
        host.http_call_response(body_size)
    };
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse::<u32>().ok());
    let outcome = match rt.keys.borrow_mut().get_mut(p) {
        Some(state) => state.on_response(now, status, body.as_deref()),
        None => return,
    };
    record(rt, host, p, &outcome);
}

fn record<H: Host + ?Sized>(rt: &Runtime, host: &H, p: usize, outcome: &FetchOutcome) {
    let name = rt.config.providers.get(p).map_or("", |p| p.name.as_str());
    let Some(m) = rt.metrics.provider(p) else {
        return;
    };
    match outcome {
        FetchOutcome::Loaded { keys, skipped } => {
            m.jwks_fetch_ok.inc(host);
            host.log(
                LogLevel::Info,
                &format!("meshward jwt-auth: provider {name}: loaded {keys} key(s)"),
            );
            for s in skipped {
                host.log(
                    LogLevel::Warn,
                    &format!("meshward jwt-auth: provider {name}: skipped key {s}"),
                );
            }
        }
        FetchOutcome::Discovered => {
            host.log(
                LogLevel::Info,
                &format!("meshward jwt-auth: provider {name}: discovery ok"),
            );
        }
        FetchOutcome::Failed(why) => {
            m.jwks_fetch_failed.inc(host);
            host.log(
                LogLevel::Warn,
                &format!("meshward jwt-auth: provider {name}: JWKS fetch failed: {why}"),
            );
        }
    }
}

/// Re-run paused requests: after a fetch finished (`changed`) or once their
/// deadline passed. Each is processed in its own context.
fn wake_waiters<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    root_id: u32,
    changed: bool,
    rerun: &mut Rerun,
) {
    let now = now_ms(host);
    let due: Vec<_> = rt
        .waiters
        .borrow()
        .iter()
        .filter(|w| changed || now >= w.deadline_ms)
        .copied()
        .collect();
    if due.is_empty() {
        return;
    }
    for w in due {
        if host.set_effective_context(w.context_id).is_err() {
            rt.remove_waiter(w.context_id);
            continue;
        }
        let final_attempt = now >= w.deadline_ms;
        match rerun(w.context_id, final_attempt) {
            Woken::StillWaiting => {}
            Woken::Resume => {
                rt.remove_waiter(w.context_id);
                let _ = host.resume_request();
            }
            Woken::Done => rt.remove_waiter(w.context_id),
        }
    }
    let _ = host.set_effective_context(root_id);
}
