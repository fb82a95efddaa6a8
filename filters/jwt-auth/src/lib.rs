//! meshward `jwt-auth`: JWT/OIDC authentication as a proxy-wasm filter.
//!
//! Pure core: `jose` (parse, keys, signatures), `claims`, `verify`,
//! `requirement`, `route`, `cache`, `keys` (fetch state machine), `config`,
//! `signature` (Envoy's crypto or ring, chosen at configure).
//! Glue: `root` (configure, tick, callouts) and `filter` (request lifecycle).

pub mod authn;
pub mod cache;
pub mod claims;
pub mod config;
pub mod extract;
pub mod filter;
pub mod jose;
pub mod keys;
pub mod metrics;
pub mod reason;
pub mod requirement;
pub mod root;
pub mod route;
pub mod signature;
pub mod verify;

// The suite links this crate with `embedded`: its entry point is the suite's.
#[cfg(not(feature = "embedded"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::JwtRoot { context_id, runtime: None })
    });
}}
