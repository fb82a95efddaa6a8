//! meshward anomaly filter: signature detection and CRS-style scoring.
//!
//! Pure core: `normalize`, `request` (the view), `detect`, `score`,
//! `engine`, `config`, `actions` (what a score leads to).
//! Glue: `root` (configure), `filter` (request lifecycle), `metrics`.

pub mod actions;
pub mod behaviour;
pub mod config;
pub mod detect;
pub mod engine;
pub mod filter;
pub mod metrics;
pub mod normalize;
pub mod request;
pub mod root;
pub mod score;

// The suite links this crate with `embedded`: its entry point is the suite's.
#[cfg(not(feature = "embedded"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::AnomalyRoot { runtime: None })
    });
}}

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod detect_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod normalize_tests;
