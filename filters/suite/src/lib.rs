//! meshward suite: every stage in one proxy-wasm module, so a request pays
//! one VM, one set of calls into it, and one read of each fact.
//!
//! `config` (sections), `stages` (the fixed order and the one pass),
//! `filter` (request lifecycle), `root` (configure, tick, callouts). The
//! stages are the standalone filters' own crates, linked with `embedded`.

pub mod config;
pub mod filter;
pub mod root;
pub mod stages;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::SuiteRoot { context_id, runtime: None })
    });
}}
