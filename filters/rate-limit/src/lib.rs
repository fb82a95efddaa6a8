//! meshward `rate-limit`: local (shared data, exact across workers), global
//! (Envoy RateLimitService over gRPC) and hybrid rate limits, quotas and
//! throttling, as a proxy-wasm filter.
//!
//! Pure core: `limiter` (bucket / GCRA / window arithmetic), `keys`
//! (descriptors), `config`, `proto` (RLS messages), `slots` (the bounded
//! shared-data table), `lease` (per-worker leases of units from it: sizing,
//! give-back, the per-worker map), `engine` (decisions and headers).
//! Glue: `root` (configure, tick, hybrid sync) and `filter` (request lifecycle).

pub mod config;
pub mod engine;
pub mod filter;
pub mod keys;
pub mod lease;
pub mod limiter;
pub mod metrics;
pub mod proto;
pub mod root;
pub mod slots;

// The suite links this crate with `embedded`: its entry point is the suite's.
#[cfg(not(feature = "embedded"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::RateLimitRoot { context_id, runtime: None })
    });
}}
