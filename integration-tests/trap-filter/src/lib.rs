//! Test-only module: traps (`unreachable`) on a request carrying `x-trap: 1`, answers every
//! other request by passing it on, adding `x-trap-vm-seq: <n>` (requests this VM instance has
//! seen) and `x-trap-vm-id: <id>` (a per-VM number from the clock at VM start) to the response,
//! so a test can tell a fresh VM from the old one.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::Cell;

thread_local! {
    static SEQ: Cell<u64> = const { Cell::new(0) };
    static VM_ID: Cell<u64> = const { Cell::new(0) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        let id = proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        VM_ID.with(|v| v.set(id));
        true
    }
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream;
impl Context for Stream {}
impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if let Ok(Some(v)) = proxy_wasm::hostcalls::get_map_value(
            proxy_wasm::types::MapType::HttpRequestHeaders,
            "x-trap",
        ) {
            if v == "1" {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
            }
        }
        SEQ.with(|s| s.set(s.get() + 1));
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let seq = SEQ.with(|s| s.get()).to_string();
        let id = VM_ID.with(|v| v.get()).to_string();
        let _ = proxy_wasm::hostcalls::add_map_value(
            proxy_wasm::types::MapType::HttpResponseHeaders, "x-trap-vm-seq", &seq);
        let _ = proxy_wasm::hostcalls::add_map_value(
            proxy_wasm::types::MapType::HttpResponseHeaders, "x-trap-vm-id", &id);
        Action::Continue
    }
}
