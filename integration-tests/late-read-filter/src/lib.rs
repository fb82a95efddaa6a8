//! Test-only: on the response, reads the request's `:path` (which Envoy has
//! let go once `on_http_request_headers` returned Continue) and sets
//! `x-late-path` on the response to what it got, or `absent`. The plugin
//! configuration picks the reader: `abi` (`meshward_shared::abi`, which the
//! shipped modules use) or `sdk` (`proxy_wasm::hostcalls`, which panics on
//! the status Envoy answers). Also tries `set_property` from the root
//! context at configure time, answering the outcome in `x-root-set-property`.
//! Not shipped.

use std::cell::RefCell;

use meshward_shared::abi;
use meshward_shared::host::HostCalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

thread_local! {
    static ROOT_SET_PROPERTY: RefCell<String> = const { RefCell::new(String::new()) };
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { sdk: false }) });
}}

struct Root {
    sdk: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        self.sdk = HostCalls.plugin_configuration(size) == b"sdk";
        let outcome = match abi::set_property(&["meshward", "late_read"], b"1") {
            Ok(()) => "ok".to_string(),
            Err(e) => e.status,
        };
        ROOT_SET_PROPERTY.with(|r| *r.borrow_mut() = outcome);
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { sdk: self.sdk }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    sdk: bool,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let path = if self.sdk {
            #[allow(clippy::disallowed_methods)] // the point: this is the call that panics
            let v =
                proxy_wasm::hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":path");
            v.ok().flatten()
        } else {
            abi::header_value(MapType::HttpRequestHeaders, ":path")
        };
        let shown = path.map_or_else(
            || "absent".to_string(),
            |p| String::from_utf8_lossy(&p).into_owned(),
        );
        let root = ROOT_SET_PROPERTY.with(|r| r.borrow().clone());
        let _ = abi::add_header(MapType::HttpResponseHeaders, "x-late-path", &shown);
        let _ = abi::add_header(MapType::HttpResponseHeaders, "x-root-set-property", &root);
        Action::Continue
    }
}
