//! The root context: compile the config and the engine once, define the
//! metrics, and hand each request the immutable [`Runtime`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::behaviour::{Behaviour, IdentityKey};
use crate::config::Config;
use crate::engine::Engine;
use crate::filter::AnomalyFilter;
use crate::metrics::Metrics;

pub struct Runtime {
    pub engine: Engine,
    pub metrics: Metrics,
    /// Per-identity behaviour state, per VM (one per worker); see crate::behaviour.
    pub behaviour: RefCell<Behaviour>,
    /// The identity the request just decided was counted in; the stream
    /// takes it at once for its response (the VM is single-threaded).
    pub last_key: Cell<IdentityKey>,
}

impl Runtime {
    pub fn config(&self) -> &Config {
        self.engine.config()
    }
}

pub struct AnomalyRoot {
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for AnomalyRoot {}

impl RootContext for AnomalyRoot {
    fn on_configure(&mut self, config_size: usize) -> bool {
        let bytes = HostCalls.plugin_configuration(config_size);
        self.runtime = configure(&HostCalls, &bytes).map(Rc::new);
        self.runtime.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let runtime = self.runtime.clone()?;
        Some(Box::new(AnomalyFilter::new(runtime)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Compile the config; on error log the field path and refuse it.
pub fn configure<H: Host + ?Sized>(host: &H, bytes: &[u8]) -> Option<Runtime> {
    let config = match Config::parse(bytes) {
        Ok(c) => c,
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward anomaly: invalid config: {e}"),
            );
            return None;
        }
    };
    let shadow = config.shadow;
    let engine = match Engine::new(config) {
        Ok(e) => e,
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward anomaly: could not build the detectors: {e}"),
            );
            return None;
        }
    };
    let t = engine.config().thresholds;
    host.log(
        LogLevel::Info,
        &format!(
            "meshward anomaly: configured, detection at {}, blocking at {}{}",
            t.detection,
            t.blocking,
            if shadow { ", shadow mode" } else { "" }
        ),
    );
    // The clock keys the behaviour hashes, so identities cannot be aimed
    // at one slot set from outside.
    let seed = host
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let behaviour = RefCell::new(Behaviour::new(&engine.config().behaviour, seed));
    Some(Runtime {
        engine,
        metrics: Metrics::define(host),
        behaviour,
        last_key: Cell::new(IdentityKey::default()),
    })
}
