//! In-memory [`Host`] for unit tests of filter glue: records replies, logs,
//! properties and counters; the clock is set by the test.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::types::LogLevel;

use crate::host::{CasOutcome, Host, HostError};
use crate::identity::Identity;

/// Headers as (name, value) pairs.
pub type Headers = Vec<(String, String)>;
/// A recorded local reply: status, headers, body.
pub type Reply = (u32, Headers, Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Default)]
pub struct FakeHost {
    /// Milliseconds since the Unix epoch.
    pub now: RefCell<u64>,
    headers: RefCell<Vec<(String, String)>>,
    properties: RefCell<HashMap<String, Vec<u8>>>,
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    calls: RefCell<Vec<HttpCall>>,
    call_response: RefCell<(Headers, Option<Vec<u8>>)>,
    replies: RefCell<Vec<Reply>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
    counter_names: RefCell<Vec<String>>,
    counter_values: RefCell<HashMap<u32, i64>>,
    /// Histograms by id: name and every recorded value.
    histograms: RefCell<Vec<(String, Vec<u64>)>>,
    pub fail_dispatch: RefCell<bool>,
    /// The next N compare-and-swap writes lose their race (`Conflict`), as if
    /// another worker had written first.
    pub cas_conflicts: RefCell<u32>,
    /// `set_shared_data` fails with a host error.
    pub fail_shared_writes: RefCell<bool>,
    /// Request-header writes fail as Envoy's do once it let the headers go.
    pub fail_header_writes: RefCell<bool>,
    /// Contexts made effective, in order, and requests resumed (by context).
    pub effective: RefCell<Vec<u32>>,
    pub resumed: RefCell<Vec<u32>>,
    /// Contexts that no longer exist: switching to them fails.
    pub gone: RefCell<Vec<u32>>,
    pub tick_period: RefCell<Option<Duration>>,
    grpc_calls: RefCell<Vec<GrpcCall>>,
    grpc_response: RefCell<Option<Vec<u8>>>,
    response_headers: RefCell<Vec<(String, String)>>,
    /// Host reads that return data, in order (see [`FakeHost::reads`]).
    reads: RefCell<Vec<String>>,
    /// Answers `call_foreign_function`; unset, every function is missing
    /// (`NotFound`), as on a host without them.
    foreign: RefCell<Option<ForeignFn>>,
    foreign_calls: RefCell<Vec<(String, Vec<u8>)>>,
}

/// What a foreign function answers, as `Host::call_foreign_function` returns it.
pub type ForeignResult = Result<Option<Vec<u8>>, HostError>;

type ForeignBody = dyn Fn(&str, &[u8]) -> ForeignResult;

/// A scripted foreign function: (name, arguments) -> answer.
pub struct ForeignFn(Box<ForeignBody>);

impl std::fmt::Debug for ForeignFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignFn")
    }
}

/// A recorded gRPC callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    pub token: u32,
    pub cluster: String,
    pub service: String,
    pub method: String,
    pub message: Vec<u8>,
    pub timeout: Duration,
}

impl FakeHost {
    fn header_write(&self, call: &'static str) -> Result<(), HostError> {
        if *self.fail_header_writes.borrow() {
            return Err(HostError {
                call,
                status: "BadArgument".into(),
            });
        }
        Ok(())
    }
    pub fn at(unix_secs: u64) -> Self {
        let h = FakeHost::default();
        *h.now.borrow_mut() = unix_secs * 1000;
        h
    }
    pub fn set_time_ms(&self, ms: u64) {
        *self.now.borrow_mut() = ms;
    }
    pub fn advance(&self, d: Duration) {
        *self.now.borrow_mut() += d.as_millis() as u64;
    }
    pub fn set_headers(&self, headers: &[(&str, &str)]) {
        *self.headers.borrow_mut() = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.request_header(name)
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .borrow()
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
    pub fn set_call_response(&self, headers: &[(&str, &str)], body: Option<&[u8]>) {
        *self.call_response.borrow_mut() = (
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body.map(<[u8]>::to_vec),
        );
    }
    pub fn calls(&self) -> Vec<HttpCall> {
        self.calls.borrow().clone()
    }
    pub fn replies(&self) -> Vec<Reply> {
        self.replies.borrow().clone()
    }
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }
    pub fn counter(&self, name: &str) -> i64 {
        let names = self.counter_names.borrow();
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.counter_values.borrow().get(&(i as u32)).copied())
            .unwrap_or(0)
    }
    /// The sum of the counters that Envoy's tag extraction turns into `name`
    /// and that carry every label in `labels` (a Prometheus selector).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> i64 {
        let names = self.counter_names.borrow();
        let values = self.counter_values.borrow();
        names
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                let (base, tags) = crate::metrics::untagged(n);
                base == name
                    && labels
                        .iter()
                        .all(|(k, v)| tags.iter().any(|(tk, tv)| tk == k && tv == v))
            })
            .filter_map(|(i, _)| values.get(&(i as u32)))
            .sum()
    }
    /// Values recorded into the histogram called `name`.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        self.histograms
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    pub fn counter_names(&self) -> Vec<String> {
        self.counter_names.borrow().clone()
    }
    pub fn raw_property(&self, key: &str) -> Option<Vec<u8>> {
        self.properties.borrow().get(key).cloned()
    }
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        self.grpc_calls.borrow().clone()
    }
    pub fn set_grpc_response(&self, message: Option<&[u8]>) {
        *self.grpc_response.borrow_mut() = message.map(<[u8]>::to_vec);
    }
    pub fn response_headers(&self) -> Vec<(String, String)> {
        self.response_headers.borrow().clone()
    }
    pub fn clear_response_headers(&self) {
        self.response_headers.borrow_mut().clear();
    }
    /// Every host read that hands data back to the filter (`header :path`,
    /// `property source.address`, `shared mwrl:3`, ...). In Envoy each one
    /// costs a call back into the VM to allocate the result, the dominant
    /// per-request cost of a filter (docs/performance.md), so tests can hold
    /// a request path to a budget.
    pub fn reads(&self) -> Vec<String> {
        self.reads.borrow().clone()
    }
    pub fn clear_reads(&self) {
        self.reads.borrow_mut().clear();
    }
    fn record(&self, what: String) {
        self.reads.borrow_mut().push(what);
    }
    /// Script the host's foreign functions (see `foreign` for Envoy's).
    pub fn set_foreign(&self, f: impl Fn(&str, &[u8]) -> ForeignResult + 'static) {
        *self.foreign.borrow_mut() = Some(ForeignFn(Box::new(f)));
    }
    /// Every `call_foreign_function`, in order: (name, arguments).
    pub fn foreign_calls(&self) -> Vec<(String, Vec<u8>)> {
        self.foreign_calls.borrow().clone()
    }
    pub fn clear_foreign_calls(&self) {
        self.foreign_calls.borrow_mut().clear();
    }
    pub fn put_property(&self, path: &[&str], value: &[u8]) {
        self.properties
            .borrow_mut()
            .insert(path.join("."), value.to_vec());
    }
}

impl Host for FakeHost {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(*self.now.borrow())
    }
    fn request_header(&self, name: &str) -> Option<String> {
        self.record(format!("header {name}"));
        self.headers
            .borrow()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
    fn request_headers(&self) -> Vec<(String, String)> {
        self.record("headers".to_string());
        self.headers.borrow().clone()
    }
    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        self.header_write("set_header_map_value")?;
        let mut h = self.headers.borrow_mut();
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            h.push((name.to_ascii_lowercase(), v.to_string()));
        }
        Ok(())
    }
    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.header_write("add_header_map_value")?;
        self.headers
            .borrow_mut()
            .push((name.to_ascii_lowercase(), value.to_string()));
        Ok(())
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.record(format!("property {}", path.join(".")));
        self.properties.borrow().get(&path.join(".")).cloned()
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        self.put_property(path, value);
        Ok(())
    }
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.record(format!("shared {key}"));
        match self.shared.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<CasOutcome, HostError> {
        if *self.fail_shared_writes.borrow() {
            return Err(HostError {
                call: "set_shared_data",
                status: "InternalFailure".into(),
            });
        }
        if cas.is_some() {
            let mut lose = self.cas_conflicts.borrow_mut();
            if *lose > 0 {
                *lose -= 1;
                return Ok(CasOutcome::Conflict);
            }
        }
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map(|(_, c)| *c);
        if let (Some(want), Some(have)) = (cas, current) {
            if want != have {
                return Ok(CasOutcome::Conflict);
            }
        }
        let next = current.unwrap_or(0) + 1;
        shared.insert(key.to_string(), (value.to_vec(), next));
        Ok(CasOutcome::Written)
    }
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        _body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        if *self.fail_dispatch.borrow() {
            return Err(HostError {
                call: "dispatch_http_call",
                status: "BadArgument".into(),
            });
        }
        let mut calls = self.calls.borrow_mut();
        let token = calls.len() as u32 + 1;
        calls.push(HttpCall {
            token,
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout,
        });
        Ok(token)
    }
    fn http_call_response(&self, _body_size: usize) -> (Vec<(String, String)>, Option<Vec<u8>>) {
        self.call_response.borrow().clone()
    }
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.replies.borrow_mut().push((
            status,
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body.to_vec(),
        ));
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
    fn define_counter(&self, name: &str) -> Result<u32, HostError> {
        let mut names = self.counter_names.borrow_mut();
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(i as u32);
        }
        names.push(name.to_string());
        Ok(names.len() as u32 - 1)
    }
    fn increment_counter(&self, id: u32, by: i64) {
        *self.counter_values.borrow_mut().entry(id).or_insert(0) += by;
    }
    fn define_histogram(&self, name: &str) -> Result<u32, HostError> {
        let mut h = self.histograms.borrow_mut();
        if let Some(i) = h.iter().position(|(n, _)| n == name) {
            return Ok(i as u32);
        }
        h.push((name.to_string(), Vec::new()));
        Ok(h.len() as u32 - 1)
    }
    fn record_histogram(&self, id: u32, value: u64) {
        if let Some((_, v)) = self.histograms.borrow_mut().get_mut(id as usize) {
            v.push(value);
        }
    }
    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        if self.gone.borrow().contains(&context_id) {
            return Err(HostError {
                call: "set_effective_context",
                status: "NotFound".into(),
            });
        }
        self.effective.borrow_mut().push(context_id);
        Ok(())
    }
    fn resume_request(&self) -> Result<(), HostError> {
        let ctx = self.effective.borrow().last().copied().unwrap_or(0);
        self.resumed.borrow_mut().push(ctx);
        Ok(())
    }
    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        *self.tick_period.borrow_mut() = Some(period);
        Ok(())
    }
    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        if *self.fail_dispatch.borrow() {
            return Err(HostError {
                call: "dispatch_grpc_call",
                status: "BadArgument".into(),
            });
        }
        let mut calls = self.grpc_calls.borrow_mut();
        let token = 1000 + calls.len() as u32;
        calls.push(GrpcCall {
            token,
            cluster: cluster.to_string(),
            service: service.to_string(),
            method: method.to_string(),
            message: message.to_vec(),
            timeout,
        });
        Ok(token)
    }
    fn grpc_call_response(&self, _size: usize) -> Option<Vec<u8>> {
        self.grpc_response.borrow().clone()
    }
    fn add_response_header(&self, name: &str, value: &str) {
        self.response_headers
            .borrow_mut()
            .push((name.to_ascii_lowercase(), value.to_string()));
    }
    fn call_foreign_function(&self, name: &str, args: &[u8]) -> ForeignResult {
        self.foreign_calls
            .borrow_mut()
            .push((name.to_string(), args.to_vec()));
        let answer = match &*self.foreign.borrow() {
            Some(f) => (f.0)(name, args),
            None => Err(HostError {
                call: "call_foreign_function",
                status: "NotFound".into(),
            }),
        };
        // An answer with bytes is a call back into the VM, like a read.
        if matches!(&answer, Ok(Some(b)) if !b.is_empty()) {
            self.record(format!("foreign {name}"));
        }
        answer
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
