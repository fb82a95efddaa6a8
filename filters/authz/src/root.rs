//! The root context: compile the config once, define the counters, and hand
//! each request an immutable [`Runtime`].

use std::rc::Rc;

use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::config::Config;
use crate::engine::{Outcome, Reason};
use crate::filter::{explanation, AuthzFilter};
use crate::metrics::Metrics;
use crate::policy::Action;
use crate::request::Request;

#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub metrics: Metrics,
    /// Decision JSON for every (policy, rule), for the decision that rule
    /// makes, built once so the allow path writes filter state without
    /// serializing anything.
    explained: Vec<Vec<String>>,
    default_allow: String,
    /// The missing-peer misconfiguration has been logged (once per VM).
    warned_no_peer: std::cell::Cell<bool>,
}

impl Runtime {
    pub fn new(config: Config, metrics: Metrics) -> Runtime {
        let req = Request::default();
        let explained = config
            .engine
            .policies
            .iter()
            .enumerate()
            .map(|(p, policy)| {
                (0..policy.rules.len())
                    .map(|ri| {
                        let (reason, decision) = match policy.action {
                            Action::Deny if config.shadow => {
                                (Reason::DeniedByPolicy, "shadow_deny")
                            }
                            Action::Deny => (Reason::DeniedByPolicy, "deny"),
                            _ => (Reason::AllowedByPolicy, "allow"),
                        };
                        let out = Outcome {
                            reason,
                            policy: Some(p),
                            rule: Some(ri),
                        };
                        explanation(&config, &req, &out, decision).to_string()
                    })
                    .collect()
            })
            .collect();
        let out = Outcome {
            reason: Reason::AllowedByDefault,
            policy: None,
            rule: None,
        };
        let default_allow = explanation(&config, &req, &out, "allow").to_string();
        Runtime {
            config,
            metrics,
            explained,
            default_allow,
            warned_no_peer: std::cell::Cell::new(false),
        }
    }

    /// Log, once, that `source.ip` rules cannot be evaluated.
    pub fn warn_no_peer<H: Host + ?Sized>(&self, host: &H) {
        if !self.warned_no_peer.replace(true) {
            host.log(
                LogLevel::Error,
                "meshward authz: policies read source.ip/ipBlocks but the TCP peer is unknown; add the set_filter_state filter for `meshward.peer` (docs/authz.md, Required Envoy settings) or set peer_address; denying such requests",
            );
        }
    }

    /// The pre-built decision JSON for `out`, when it does not depend on the request.
    pub fn static_explanation(&self, out: &Outcome) -> Option<&str> {
        match (out.reason, out.policy, out.rule) {
            (Reason::AllowedByDefault, _, _) => Some(&self.default_allow),
            (Reason::AllowedByPolicy | Reason::DeniedByPolicy, Some(p), Some(r)) => self
                .explained
                .get(p)
                .and_then(|rules| rules.get(r))
                .map(String::as_str),
            _ => None,
        }
    }
}

pub struct AuthzRoot {
    pub runtime: Option<Rc<Runtime>>,
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, config_size: usize) -> bool {
        let bytes = HostCalls.plugin_configuration(config_size);
        self.runtime = configure(&HostCalls, &bytes).map(Rc::new);
        self.runtime.is_some()
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
        Ok(config) => Some(start(host, config)),
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("meshward authz: invalid config: {e}"),
            );
            None
        }
    }
}

/// The runtime of a compiled config: its counters defined on `host`.
pub fn start<H: Host + ?Sized>(host: &H, config: Config) -> Runtime {
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
    Runtime::new(config, metrics)
}
