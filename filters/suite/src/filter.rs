//! The request lifecycle: one pass over every stage on request headers;
//! body and trailers wait while a stage still decides, or while anomaly
//! buffers the body it inspects; rate-limit's headers go on the response.

use std::rc::Rc;

use anomaly::filter::{BodyStep, Step};
use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::stages::{Flow, Stream, Suite};

pub struct SuiteFilter {
    pub suite: Rc<Suite>,
    pub stream: Rc<Stream>,
}

meshward_shared::stream_callbacks!(
    "request_headers",
    "request_body",
    "request_trailers",
    "response_headers"
);

impl SuiteFilter {
    pub fn on_request<H: Host + ?Sized>(&self, host: &H) -> Flow {
        let flow = self.suite.run(&self.stream, host, false);
        match flow {
            Flow::AwaitKeys => {
                if let Some(rt) = &self.suite.jwt_auth {
                    rt.add_waiter(self.stream.context_id, jwt_auth::filter::now_ms(host));
                }
                self.suite.hold(&self.stream);
            }
            Flow::AwaitAdmission => self.suite.hold(&self.stream),
            Flow::Continue | Flow::Replied => {}
        }
        flow
    }

    pub fn on_response<H: Host + ?Sized>(&self, host: &H) {
        if let Some(rate) = self.stream.rate.borrow().as_ref() {
            rate.on_response_headers(&self.suite.host(host, &self.stream));
        }
    }

    /// A body chunk (`None`: the trailers, which end the body): anomaly
    /// buffers up to its cap and decides at the end. `None` from here: no
    /// stage holds the body.
    pub fn on_body<H: Host + ?Sized>(
        &self,
        host: &H,
        chunk: Option<(usize, bool)>,
    ) -> Option<Action> {
        if self.stream.replied.get() {
            return Some(Action::Pause);
        }
        let rt = self.suite.anomaly.as_ref()?;
        let mut slot = self.stream.anomaly_body.borrow_mut();
        let pending = slot.as_mut()?;
        let memo = self.suite.host(host, &self.stream);
        let step = match chunk {
            Some((size, end)) => match pending.on_body(rt, &memo, size, end) {
                BodyStep::Wait => return Some(Action::Pause),
                BodyStep::Decided(step) => step,
            },
            None => pending.finish(rt, &memo, false),
        };
        *slot = None;
        if step == Step::Replied {
            self.stream.replied.set(true);
            return Some(Action::Pause);
        }
        None
    }
}

impl SuiteFilter {
    fn waiting(&self) -> Action {
        if self.suite.is_waiting(self.stream.context_id) {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

impl Context for SuiteFilter {
    // RLS answers to calls rate-limit started from this context.
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let host = self.suite.host(&HostCalls, &self.stream);
        if let Some(rate) = self.stream.rate.borrow_mut().as_mut() {
            rate.on_rls_response(&host, token, status, size);
        }
    }
}

// The stream is gone (proxy_on_delete): forget its waits. Done here rather
// than in `on_done`, which would cost one more call into the VM per request.
impl Drop for SuiteFilter {
    fn drop(&mut self) {
        self.suite.release(self.stream.context_id);
    }
}

impl HttpContext for SuiteFilter {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        self.stream.end_of_stream.set(end_of_stream);
        match self.on_request(&HostCalls) {
            Flow::Continue => Action::Continue,
            Flow::AwaitKeys | Flow::AwaitAdmission | Flow::Replied => Action::Pause,
        }
    }

    // While a stage waits, body and trailers must not slip past its decision.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(action) = self.on_body(&HostCalls, Some((body_size, end_of_stream))) {
            return action;
        }
        self.waiting()
    }

    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        if let Some(action) = self.on_body(&HostCalls, None) {
            return action;
        }
        self.waiting()
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.on_response(&HostCalls);
        if let Some(rt) = &self.suite.anomaly {
            anomaly::filter::on_response(rt, self.stream.anomaly_key.take());
        }
        Action::Continue
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
