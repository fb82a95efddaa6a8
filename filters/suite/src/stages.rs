//! The stages and the one pass over them. Order is fixed: authenticate
//! (jwt-auth), authorize (authz), score (anomaly), then admit (rate-limit),
//! so a request denied earlier never spends a rate-limit unit, anomaly's
//! behaviour detectors know the verified identity, and rate-limit keys and
//! matches see both the identity and anomaly's throttle hint.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anomaly::behaviour::IdentityKey;
use anomaly::filter::Pending;
use meshward_shared::host::Host;
use meshward_shared::memo::{MemoHost, RequestMemo};
use meshward_shared::metrics::CounterBatch;
use rate_limit::filter::RateLimitFilter;
use std::cell::Cell;

/// What the pass decided for the request so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Every stage let it through.
    Continue,
    /// jwt-auth waits for keys; its wake-up re-runs the pass from jwt-auth.
    AwaitKeys,
    /// rate-limit waits (throttle delay or RLS answer) and resumes it itself.
    AwaitAdmission,
    /// A stage answered it.
    Replied,
}

/// Every configured stage's compiled runtime; `None`: the stage is absent.
pub struct Suite {
    pub jwt_auth: Option<Rc<jwt_auth::authn::Runtime>>,
    pub authz: Option<Rc<authz::root::Runtime>>,
    pub anomaly: Option<Rc<anomaly::root::Runtime>>,
    pub rate_limit: Option<Rc<rate_limit::engine::Runtime>>,
    /// Requests paused in any stage, by context: the root reaches them to
    /// re-run the pass after keys arrive, or to deliver an RLS answer to a
    /// call it started on their behalf.
    paused: RefCell<HashMap<u32, Rc<Stream>>>,
    /// The stages' counter increments, handed to Envoy on the root's tick.
    pub counters: CounterBatch,
}

/// One request's state across stages and pauses.
pub struct Stream {
    pub context_id: u32,
    pub memo: RequestMemo,
    /// rate-limit's per-request state (its RateLimit headers, RLS calls).
    pub rate: RefCell<Option<RateLimitFilter>>,
    /// The request has no body (its headers ended the stream; set by the
    /// header callback before the pass).
    pub end_of_stream: Cell<bool>,
    /// anomaly waits for the body to decide.
    pub anomaly_body: RefCell<Option<Pending>>,
    /// The identity anomaly's behaviour detectors counted the request in.
    pub anomaly_key: Cell<IdentityKey>,
    /// A stage answered the request.
    pub replied: Cell<bool>,
}

impl Suite {
    pub fn new(
        jwt_auth: Option<jwt_auth::authn::Runtime>,
        authz: Option<authz::root::Runtime>,
        anomaly: Option<anomaly::root::Runtime>,
        rate_limit: Option<rate_limit::engine::Runtime>,
    ) -> Suite {
        Suite {
            jwt_auth: jwt_auth.map(Rc::new),
            authz: authz.map(Rc::new),
            anomaly: anomaly.map(Rc::new),
            rate_limit: rate_limit.map(Rc::new),
            paused: RefCell::new(HashMap::new()),
            counters: CounterBatch::default(),
        }
    }

    pub fn stream(&self, context_id: u32) -> Rc<Stream> {
        Rc::new(Stream {
            context_id,
            memo: RequestMemo::new(self.jwt_auth.is_some()),
            rate: RefCell::new(
                self.rate_limit
                    .as_ref()
                    .map(|rt| RateLimitFilter::new(context_id, Rc::clone(rt))),
            ),
            end_of_stream: Cell::new(true),
            anomaly_body: RefCell::new(None),
            anomaly_key: Cell::new(IdentityKey::default()),
            replied: Cell::new(false),
        })
    }

    /// Run every stage, in order, for the request `stream` (the host's
    /// effective context must be that request's). A request that waited for
    /// keys runs again from the start, its facts answered from its memo.
    pub fn run<H: Host + ?Sized>(&self, stream: &Stream, inner: &H, final_attempt: bool) -> Flow {
        let host = self.host(inner, stream);
        if let Some(rt) = &self.jwt_auth {
            use jwt_auth::filter::{process, Step};
            match process(rt, &host, final_attempt) {
                Step::Continue => {}
                Step::Pause => return Flow::AwaitKeys,
                Step::Replied => return Flow::Replied,
            }
        }
        if let Some(rt) = &self.authz {
            use authz::filter::{process, Step};
            if process(rt, &host) == Step::Replied {
                return Flow::Replied;
            }
        }
        if let Some(rt) = &self.anomaly {
            use anomaly::filter::{on_headers, AtHeaders, Step};
            let at = on_headers(rt, &host, stream.end_of_stream.get());
            stream.anomaly_key.set(rt.last_key.take());
            match at {
                AtHeaders::Decided(Step::Continue) => {}
                AtHeaders::Decided(Step::Replied) => return Flow::Replied,
                // Decided at the end of the body (the suite's body callback).
                AtHeaders::AwaitBody(headers) => {
                    *stream.anomaly_body.borrow_mut() = Some(Pending::new(headers));
                }
            }
        }
        if let Some(rate) = stream.rate.borrow_mut().as_mut() {
            use rate_limit::filter::Step;
            match rate.on_request(&host) {
                Step::Continue => {}
                Step::Pause => return Flow::AwaitAdmission,
                Step::Replied => return Flow::Replied,
            }
        }
        Flow::Continue
    }

    /// The host as the stages see it for `stream`: its request view, and
    /// counters held for the tick.
    pub fn host<'a, H: Host + ?Sized>(
        &'a self,
        inner: &'a H,
        stream: &'a Stream,
    ) -> MemoHost<'a, H> {
        MemoHost::new(inner, &stream.memo).with_counters(&self.counters)
    }

    pub fn hold(&self, stream: &Rc<Stream>) {
        self.paused
            .borrow_mut()
            .insert(stream.context_id, Rc::clone(stream));
    }

    /// The request is gone: forget every wait of it.
    pub fn release(&self, context_id: u32) {
        if let Some(rt) = &self.jwt_auth {
            rt.remove_waiter(context_id);
        }
        if let Some(rt) = &self.rate_limit {
            rt.remove_waiter(context_id);
        }
        self.paused.borrow_mut().remove(&context_id);
    }

    pub fn paused(&self, context_id: u32) -> Option<Rc<Stream>> {
        self.paused.borrow().get(&context_id).cloned()
    }

    /// The paused request that started RLS call `token`.
    pub fn rls_caller(&self, token: u32) -> Option<Rc<Stream>> {
        self.paused
            .borrow()
            .values()
            .find(|s| {
                s.rate
                    .borrow()
                    .as_ref()
                    .is_some_and(|r| r.pending.iter().any(|(t, _)| *t == token))
            })
            .cloned()
    }

    /// Body and trailers wait while any stage still decides.
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.jwt_auth
            .as_ref()
            .is_some_and(|rt| rt.is_waiting(context_id))
            || self
                .rate_limit
                .as_ref()
                .is_some_and(|rt| rt.is_waiting(context_id))
    }
}
