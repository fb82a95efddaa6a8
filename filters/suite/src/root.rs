//! The root context: configures every stage from its section, ticks each
//! stage at its own period, and routes callouts: JWKS answers to jwt-auth
//! (then re-runs the waiting requests through the later stages), RLS
//! answers to rate-limit.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use jwt_auth::root::Woken;
use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::config::Sections;
use crate::filter::SuiteFilter;
use crate::stages::{Flow, Suite};

/// How often held counter increments reach Envoy (the module ticks at
/// least this often).
pub const COUNTER_FLUSH: Duration = Duration::from_millis(100);

/// A compiled suite and the tick periods its stages asked for.
pub struct Runtime {
    pub suite: Rc<Suite>,
    jwt_tick: Option<Duration>,
    rate_tick: Option<Duration>,
    last_jwt_tick_ms: Cell<u64>,
}

impl Runtime {
    /// The module's tick: the shortest period any stage needs, and at
    /// least the counter flush.
    pub fn tick_period(&self) -> Duration {
        [self.jwt_tick, self.rate_tick]
            .into_iter()
            .flatten()
            .fold(COUNTER_FLUSH, Duration::min)
    }
}

pub struct SuiteRoot {
    pub context_id: u32,
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for SuiteRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        if let Some(rt) = self.runtime.clone() {
            on_keys_response(&rt, &HostCalls, self.context_id, token, body_size);
        }
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if let Some(rt) = self.runtime.clone() {
            on_rls_response(&rt, &HostCalls, token, status, size);
        }
    }
}

impl RootContext for SuiteRoot {
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
        let suite = Rc::clone(&self.runtime.as_ref()?.suite);
        let stream = suite.stream(context_id);
        Some(Box::new(SuiteFilter { suite, stream }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Configure each present stage from its section; any rejected section
/// rejects the whole config (its stage has logged the field path).
pub fn configure<H: Host + ?Sized>(host: &H, bytes: &[u8]) -> Option<Runtime> {
    let sections = match Sections::from_json(bytes) {
        Ok(s) => s,
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward suite: invalid config: {e}"),
            );
            return None;
        }
    };
    let jwt = stage(
        host,
        "jwt_auth",
        &sections.jwt_auth,
        jwt_auth::root::configure,
    )?;
    let authz = stage(host, "authz", &sections.authz, authz::root::configure)?;
    let anomaly = stage(host, "anomaly", &sections.anomaly, anomaly::root::configure)?;
    let rate = stage(
        host,
        "rate_limit",
        &sections.rate_limit,
        rate_limit::root::configure,
    )?;
    let jwt_tick = jwt.as_ref().and_then(jwt_auth::root::tick_period);
    let rate_tick = rate
        .as_ref()
        .and_then(|rt| rate_limit::root::tick_period(&rt.config));
    let names: Vec<&str> = [
        ("jwt_auth", jwt.is_some()),
        ("authz", authz.is_some()),
        ("anomaly", anomaly.is_some()),
        ("rate_limit", rate.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    let rt = Runtime {
        suite: Rc::new(Suite::new(jwt, authz, anomaly, rate)),
        jwt_tick,
        rate_tick,
        last_jwt_tick_ms: Cell::new(0),
    };
    // Each stage set its own period while configuring; the module has one.
    if let Err(e) = host.set_tick_period(rt.tick_period()) {
        host.log(LogLevel::Error, &format!("meshward suite: {e}"));
        return None;
    }
    host.log(
        LogLevel::Info,
        &format!("meshward suite: stages {}", names.join(" -> ")),
    );
    Some(rt)
}

/// `Some(None)`: the stage is absent; `None`: its section was rejected.
fn stage<H: Host + ?Sized, T>(
    host: &H,
    name: &str,
    section: &Option<Vec<u8>>,
    configure: impl Fn(&H, &[u8]) -> Option<T>,
) -> Option<Option<T>> {
    let Some(bytes) = section else {
        return Some(None);
    };
    let configured = configure(host, bytes);
    if configured.is_none() {
        host.log(
            LogLevel::Error,
            &format!("meshward suite: invalid config: section `{name}` rejected (its error is logged above)"),
        );
    }
    configured.map(Some)
}

pub fn tick<H: Host + ?Sized>(rt: &Runtime, host: &H, root_id: u32) {
    let suite = &rt.suite;
    suite.counters.flush(host);
    if let (Some(rate), Some(_)) = (&suite.rate_limit, rt.rate_tick) {
        rate_limit::root::tick(rate, host, root_id);
    }
    if let (Some(jwt), Some(period)) = (&suite.jwt_auth, rt.jwt_tick) {
        let now = jwt_auth::filter::now_ms(host);
        if now.saturating_sub(rt.last_jwt_tick_ms.get()) >= period.as_millis() as u64 {
            rt.last_jwt_tick_ms.set(now);
            jwt_auth::root::tick_with(jwt, host, root_id, &mut |ctx, last| {
                rerun(suite, host, ctx, last)
            });
        }
    }
}

/// A request that waited for keys, re-run from jwt-auth through every later stage.
fn rerun<H: Host + ?Sized>(suite: &Suite, host: &H, context_id: u32, final_attempt: bool) -> Woken {
    let Some(stream) = suite.paused(context_id) else {
        return Woken::Done;
    };
    match suite.run(&stream, host, final_attempt) {
        Flow::AwaitKeys => Woken::StillWaiting,
        Flow::Continue => Woken::Resume,
        Flow::Replied | Flow::AwaitAdmission => Woken::Done,
    }
}

pub fn on_keys_response<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    root_id: u32,
    token: u32,
    body_size: usize,
) {
    let suite = &rt.suite;
    if let Some(jwt) = &suite.jwt_auth {
        jwt_auth::root::on_keys_response(jwt, host, root_id, token, body_size, &mut |ctx, last| {
            rerun(suite, host, ctx, last)
        });
    }
}

/// An RLS answer: to the paused request that asked (the call was started
/// here, while re-running it after its keys came), else a hybrid report's.
pub fn on_rls_response<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    token: u32,
    status: u32,
    size: usize,
) {
    let suite = &rt.suite;
    let Some(rate) = &suite.rate_limit else {
        return;
    };
    match suite.rls_caller(token) {
        Some(stream) => {
            if host.set_effective_context(stream.context_id).is_err() {
                return;
            }
            let memo_host = suite.host(host, &stream);
            if let Some(r) = stream.rate.borrow_mut().as_mut() {
                r.on_rls_response(&memo_host, token, status, size);
            }
        }
        None => rate_limit::root::on_sync_response(rate, host, token, status, size),
    }
}
