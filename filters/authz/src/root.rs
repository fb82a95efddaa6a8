//! The root context: compile the config once, define the counters, and hand
//! each request an immutable [`Runtime`].

use std::rc::Rc;

use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::config::Config;
use crate::filter::AuthzFilter;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub metrics: Metrics,
}

pub struct AuthzRoot {
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, config_size: usize) -> bool {
        let bytes = proxy_wasm::hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            config_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        match configure(&HostCalls, &bytes) {
            Some(rt) => {
                self.runtime = Some(Rc::new(rt));
                true
            }
            None => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let runtime = self.runtime.clone()?;
        Some(Box::new(AuthzFilter { runtime }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Compile config; on error log the field path and refuse it.
pub fn configure<H: Host + ?Sized>(host: &H, bytes: &[u8]) -> Option<Runtime> {
    match Config::from_json(bytes) {
        Ok(config) => {
            let metrics = Metrics::define(host, &config.engine.policies);
            let rules: usize = config.engine.policies.iter().map(|p| p.rules.len()).sum();
            host.log(
                LogLevel::Info,
                &format!(
                    "meshward authz: configured {} polic(ies), {} rule(s){}",
                    config.engine.policies.len(),
                    rules,
                    if config.shadow { ", shadow mode" } else { "" }
                ),
            );
            Some(Runtime { config, metrics })
        }
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward authz: invalid config: {e}"),
            );
            None
        }
    }
}
