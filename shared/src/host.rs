//! The host seam: everything a filter asks of Envoy goes through [`Host`].
//! Production uses [`HostCalls`] (raw `hostcalls`, whose errors we map instead
//! of unwrapping like the SDK's trait helpers do, and [`crate::abi`] for the
//! calls whose SDK wrappers panic on a status); tests use `fake::FakeHost`.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::abi;
use crate::identity::Identity;

/// A host call failed; carries the call name and the proxy-wasm status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub status: String,
}

impl HostError {
    pub fn new(call: &'static str, status: Status) -> Self {
        HostError {
            call,
            status: format!("{status:?}"),
        }
    }

    /// Whether the call failed with this proxy-wasm status.
    pub fn is(&self, status: Status) -> bool {
        self.status == format!("{status:?}")
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host call {} failed: {}", self.call, self.status)
    }
}

/// Result of a compare-and-swap write to shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Written,
    Conflict,
}

pub trait Host {
    /// Wall-clock time, from the host (deterministic in tests).
    fn now(&self) -> SystemTime;

    fn now_unix(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn request_header(&self, name: &str) -> Option<String>;
    fn request_headers(&self) -> Vec<(String, String)>;
    /// Replace (or, with `None`, remove) a request header. Envoy refuses
    /// when it no longer holds the request headers; a filter that strips or
    /// sets a header the upstream trusts must then not let the request go
    /// on ([`crate::facts::refuse_header_write`]).
    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError>;
    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError>;

    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError>;

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<CasOutcome, HostError>;

    /// Start an HTTP callout to an Envoy cluster; returns the call token.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// Response headers and body of the callout being delivered.
    fn http_call_response(&self, body_size: usize) -> (Vec<(String, String)>, Option<Vec<u8>>);

    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;

    fn log(&self, level: LogLevel, message: &str);

    fn define_counter(&self, name: &str) -> Result<u32, HostError>;
    fn increment_counter(&self, id: u32, by: i64);
    fn define_histogram(&self, name: &str) -> Result<u32, HostError>;
    fn record_histogram(&self, id: u32, value: u64);

    /// Direct the following calls at another context (e.g. a paused request).
    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError>;
    fn resume_request(&self) -> Result<(), HostError>;
    fn set_tick_period(&self, period: Duration) -> Result<(), HostError>;

    /// Start a unary gRPC callout to an Envoy cluster; returns the call token.
    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// The response message of the gRPC callout being delivered.
    fn grpc_call_response(&self, size: usize) -> Option<Vec<u8>>;
    /// Add a header to the response of the current request.
    fn add_response_header(&self, name: &str, value: &str);

    /// Call a function the host registered by name (Envoy: `verify_signature`,
    /// see `foreign`). `Ok(None)` when it answered with no bytes; a missing
    /// function fails with `NotFound`.
    fn call_foreign_function(&self, name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, HostError>;

    /// Whether outputs meant for other filters (identity and decision in
    /// filter state) are written when the config does not say. A standalone
    /// module has no other way to hand them over; the suite hands them over
    /// in memory and writes them only when asked.
    fn writes_outputs_by_default(&self) -> bool;
    /// Hand the verified caller to the stages after this one; `write_state`
    /// also writes its JSON to filter state ([`crate::identity::FILTER_STATE_KEY`]).
    fn publish_identity(
        &self,
        identity: &Rc<Identity>,
        json: &[u8],
        write_state: bool,
    ) -> Result<(), HostError>;
    /// The caller an earlier stage of this module published, in memory.
    fn handed_identity(&self) -> Option<Rc<Identity>>;
}

/// Production host: thin wrappers over `proxy_wasm::hostcalls`.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostCalls;

impl HostCalls {
    /// The plugin configuration handed to `on_configure` (empty if unreadable,
    /// which the config parser then reports as an empty configuration).
    pub fn plugin_configuration(&self, size: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

/// Header bytes as text, each invalid UTF-8 sequence replaced by U+FFFD.
fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn lossy_map(map: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    map.into_iter().map(|(k, v)| (k, lossy(v))).collect()
}

impl Host for HostCalls {
    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
    }

    // The SDK's string getters unwrap `String::from_utf8`: one header value with a byte
    // >= 0x80 (legal obs-text, passed on by Envoy) would panic the VM and fail every later
    // request on the worker. Read bytes; invalid sequences become U+FFFD.
    fn request_header(&self, name: &str) -> Option<String> {
        abi::header_value(MapType::HttpRequestHeaders, name).map(lossy)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        lossy_map(hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default())
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        abi::set_header(MapType::HttpRequestHeaders, name, value)
    }

    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        abi::add_header(MapType::HttpRequestHeaders, name, value)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        abi::set_property(path, value)
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<CasOutcome, HostError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(CasOutcome::Written),
            Err(Status::CasMismatch) => Ok(CasOutcome::Conflict),
            Err(s) => Err(HostError::new("set_shared_data", s)),
        }
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, vec![], timeout)
            .map_err(|s| HostError::new("dispatch_http_call", s))
    }

    fn http_call_response(&self, body_size: usize) -> (Vec<(String, String)>, Option<Vec<u8>>) {
        let headers = lossy_map(
            hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default(),
        );
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten();
        (headers, body)
    }

    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body))
            .map_err(|s| HostError::new("send_http_response", s))
    }

    fn log(&self, level: LogLevel, message: &str) {
        let _ = hostcalls::log(level, message);
    }

    fn define_counter(&self, name: &str) -> Result<u32, HostError> {
        hostcalls::define_metric(MetricType::Counter, name)
            .map_err(|s| HostError::new("define_metric", s))
    }

    fn increment_counter(&self, id: u32, by: i64) {
        let _ = hostcalls::increment_metric(id, by);
    }

    fn define_histogram(&self, name: &str) -> Result<u32, HostError> {
        hostcalls::define_metric(MetricType::Histogram, name)
            .map_err(|s| HostError::new("define_metric", s))
    }

    fn record_histogram(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        hostcalls::set_effective_context(context_id)
            .map_err(|s| HostError::new("set_effective_context", s))
    }

    fn resume_request(&self) -> Result<(), HostError> {
        hostcalls::resume_http_request().map_err(|s| HostError::new("resume_http_request", s))
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        hostcalls::set_tick_period(period).map_err(|s| HostError::new("set_tick_period", s))
    }

    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        let upstream = abi::grpc_upstream(cluster);
        hostcalls::dispatch_grpc_call(&upstream, service, method, vec![], Some(message), timeout)
            .map_err(|s| HostError::new("dispatch_grpc_call", s))
    }

    fn grpc_call_response(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size)
            .ok()
            .flatten()
    }

    fn add_response_header(&self, name: &str, value: &str) {
        let _ = abi::add_header(MapType::HttpResponseHeaders, name, value);
    }

    fn call_foreign_function(&self, name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::call_foreign_function(name, Some(args))
            .map_err(|s| HostError::new("call_foreign_function", s))
    }

    fn writes_outputs_by_default(&self) -> bool {
        true
    }

    fn publish_identity(
        &self,
        _identity: &Rc<Identity>,
        json: &[u8],
        write_state: bool,
    ) -> Result<(), HostError> {
        crate::identity::write_state(self, json, write_state)
    }

    fn handed_identity(&self) -> Option<Rc<Identity>> {
        None
    }
}

#[cfg(test)]
mod tests {
    /// Every host capability is implemented on purpose by each host: a default
    /// body would let a new host silently drop gRPC calls or response headers.
    /// Only `now_unix`, derived from `now`, may have one.
    #[test]
    fn host_methods_have_no_silent_defaults() {
        let src = include_str!("host.rs");
        let start = src.find("pub trait Host {").unwrap_or(0);
        let end = start + src[start..].find("\n}\n").unwrap_or(0);
        let body = &src[start..end];
        let mut defaults = Vec::new();
        let mut name = "";
        for line in body.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("fn ") {
                name = rest.split(['(', '<']).next().unwrap_or("");
            }
            // a trait-level line (signature end) ending in `{` opens a default body
            if line.starts_with("    ") && !line.starts_with("     ") && t.ends_with('{') {
                defaults.push(name.to_string());
            }
        }
        assert_eq!(defaults, vec!["now_unix".to_string()], "{body}");
    }

    #[test]
    fn header_bytes_that_are_not_utf8_read_as_replacement_characters() {
        assert_eq!(super::lossy(b"acme".to_vec()), "acme");
        assert_eq!(super::lossy(b"a\xffb".to_vec()), "a\u{fffd}b");
        // a truncated sequence and a Latin-1 byte: one replacement each
        assert_eq!(
            super::lossy(b"\xc3\x28caf\xe9".to_vec()),
            "\u{fffd}(caf\u{fffd}"
        );
        assert_eq!(super::lossy(Vec::new()), "");
    }
}
