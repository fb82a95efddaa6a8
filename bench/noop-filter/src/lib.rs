//! Does nothing on purpose: the benchmark's C3 configuration uses it to
//! measure what loading any Wasm filter costs before it does real work.
//!
//! With a `probe` list in its configuration it also makes those host calls
//! on every request, so the benchmark can price each kind of call (the
//! `P-*` design configurations, docs/performance.md "Where the time goes"):
//! `{"probe": [{"header": ":path"}, {"property": ["source", "address"]},
//! {"set_property": "meshward.probe"}, {"shared": "probe"}]}`.

use std::rc::Rc;

use meshward_shared::abi;
use meshward_shared::config::parse_json;
use meshward_shared::host::HostCalls;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};
use serde::Deserialize;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NoopRoot { probe: Rc::new(Vec::new()) })
    });
}}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Probe {
    /// Read one request header.
    Header(String),
    /// Read one property (a path of segments).
    Property(Vec<String>),
    /// Write a small value to filter state.
    SetProperty(String),
    /// Read a shared-data key, then write it back with its CAS token.
    Shared(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    probe: Vec<Probe>,
}

struct NoopRoot {
    probe: Rc<Vec<Probe>>,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = HostCalls.plugin_configuration(size);
        let text = if bytes.is_empty() { &b"{}"[..] } else { &bytes };
        match parse_json::<Config>(text) {
            Ok(c) => {
                self.probe = Rc::new(c.probe);
                true
            }
            Err(e) => {
                let _ = hostcalls::log(LogLevel::Error, &format!("noop: bad config: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop {
            probe: Rc::clone(&self.probe),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

meshward_shared::stream_callbacks!("request_headers");

struct Noop {
    probe: Rc<Vec<Probe>>,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        for p in self.probe.iter() {
            // Results are ignored: only the cost of the call is of interest.
            match p {
                Probe::Header(name) => {
                    let _ = abi::header_value(MapType::HttpRequestHeaders, name);
                }
                Probe::Property(path) => {
                    let _ = hostcalls::get_property(path.iter().map(String::as_str).collect());
                }
                Probe::SetProperty(key) => {
                    let _ = abi::set_property(&[key.as_str()], b"{\"probe\":1}");
                }
                Probe::Shared(key) => {
                    if let Ok((value, cas)) = hostcalls::get_shared_data(key) {
                        let v = value.unwrap_or_else(|| vec![0; 48]);
                        let _ = hostcalls::set_shared_data(key, Some(&v), cas);
                    }
                }
            }
        }
        Action::Continue
    }
}
