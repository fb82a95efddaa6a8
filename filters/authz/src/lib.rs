//! meshward `authz`: Istio-compatible RBAC/ABAC authorization as a
//! proxy-wasm filter, with object-level checks and explainable decisions.
//!
//! Pure core: `matchers` (strings, CIDRs, path templates), `request`
//! (attributes and what the policies need), `policy` (rule matching),
//! `engine` (evaluation order and indexing), `rbac`, `time`, `config`,
//! `reply`. Request facts (path, peer, client, claims) come from
//! `meshward_shared::facts`.
//! Glue: `root` (configure), `filter` (request lifecycle), `gather`
//! (facts -> request), `metrics`.

pub mod config;
pub mod engine;
pub mod filter;
pub mod gather;
pub mod matchers;
pub mod metrics;
pub mod policy;
pub mod rbac;
pub mod reply;
pub mod request;
pub mod root;
pub mod time;

// The suite links this crate with `embedded`: its entry point is the suite's.
#[cfg(not(feature = "embedded"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::AuthzRoot { runtime: None })
    });
}}
