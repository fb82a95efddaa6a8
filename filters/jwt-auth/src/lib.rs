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

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::JwtRoot { context_id, runtime: None })
    });
}}
