//! The request lifecycle: gather the attributes the policies read, decide,
//! count, explain (filter state + audit line), then continue or deny.

use std::rc::Rc;

use meshward_shared::audit::AuditLine;
use meshward_shared::facts::{self, RequestFacts};
use meshward_shared::host::{Host, HostCalls};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};
use serde_json::{json, Value};

use crate::engine::{Outcome, Reason};
use crate::gather::{gather, Unfit};
use crate::request::Request;
use crate::root::Runtime;

/// Filter state key of the decision explanation (Envoy stores it as
/// `wasm.meshward.authz.decision`).
pub const DECISION_KEY: &str = "meshward.authz.decision";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// A deny reply was sent.
    Replied,
}

pub struct AuthzFilter {
    pub runtime: Rc<Runtime>,
}

meshward_shared::stream_callbacks!("request_headers");

impl Context for AuthzFilter {}

impl HttpContext for AuthzFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match process(&self.runtime, &HostCalls) {
            Step::Continue => Action::Continue,
            Step::Replied => Action::Pause,
        }
    }
}

/// Decide the request the host currently points at.
pub fn process<H: Host + ?Sized>(rt: &Runtime, host: &H) -> Step {
    let cfg = &rt.config;
    let engine = &cfg.engine;
    let facts = RequestFacts::new(host, &cfg.sources);
    let (req, out) = match gather(cfg, &facts) {
        Ok(req) => {
            let out = engine.decide(&req, false);
            (req, out)
        }
        Err(Unfit::Path(e)) => {
            return if facts::refuse_path(host, "authz", e, cfg.shadow) {
                Step::Replied
            } else {
                Step::Continue
            };
        }
        Err(Unfit::NoPeer) => {
            rt.warn_no_peer(host);
            let out = Outcome {
                reason: Reason::PeerUnknown,
                policy: None,
                rule: None,
            };
            (Request::default(), out)
        }
    };
    // Dry-run policies: would the decision be a deny if they were enforced?
    let would = engine
        .has_dry_run
        .then(|| engine.decide(&req, true))
        .filter(|w| out.allowed() && !w.allowed());
    let audits = if engine.has_audit {
        engine.audits(&req)
    } else {
        Vec::new()
    };
    for (p, _) in &audits {
        if let Some(c) = rt.metrics.audited.get(*p) {
            c.inc(host);
        }
    }

    let (decision, step) = if out.allowed() {
        rt.metrics.of(out.policy).allowed.inc(host);
        ("allow", Step::Continue)
    } else if cfg.shadow {
        rt.metrics.of(out.policy).shadow_denied.inc(host);
        ("shadow_deny", Step::Continue)
    } else {
        rt.metrics.of(out.policy).denied.inc(host);
        ("deny", Step::Replied)
    };
    if let Some(w) = &would {
        rt.metrics.of(w.policy).shadow_denied.inc(host);
    }

    if cfg
        .decision_state
        .unwrap_or_else(|| host.writes_outputs_by_default())
    {
        let text = match rt.static_explanation(&out) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(explanation(cfg, &req, &out, decision).to_string()),
        };
        if let Err(e) = host.set_property(&[DECISION_KEY], text.as_bytes()) {
            host.log(
                LogLevel::Debug,
                &format!("meshward authz: could not write the decision: {e}"),
            );
        }
    }
    if !out.allowed() || cfg.audit_allow || !audits.is_empty() {
        let explain = explanation(cfg, &req, &out, decision);
        audit(rt, host, &out, decision, &explain, &audits);
    }
    if let Some(w) = &would {
        let we = explanation(cfg, &req, w, "shadow_deny");
        audit(rt, host, w, "shadow_deny", &we, &[]);
    }

    if step == Step::Replied {
        if let Some(reply) = cfg.replies.get(out.reason, out.policy) {
            if let Err(e) = reply.send(host) {
                host.log(
                    LogLevel::Error,
                    &format!("meshward authz: could not send the deny reply: {e}"),
                );
            }
        }
    }
    step
}

/// Which policy and rule decided, and why, as a JSON object.
pub fn explanation(
    cfg: &crate::config::Config,
    req: &crate::request::Request,
    out: &Outcome,
    decision: &str,
) -> Value {
    let engine = &cfg.engine;
    let policy = out.policy.and_then(|p| engine.policies.get(p));
    let mut v = json!({
        "decision": decision,
        "reason": out.reason.code(),
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(p) = policy {
        obj.insert("policy".into(), p.name.as_str().into());
        obj.insert("action".into(), p.action.as_str().into());
        if p.dry_run {
            obj.insert("dry_run".into(), true.into());
        }
        if let Some(ri) = out.rule {
            obj.insert("rule".into(), ri.into());
            if let Some(rule) = p.rules.get(ri) {
                obj.insert("why".into(), rule.summary.as_str().into());
            }
        }
    } else {
        let why: Value = match out.reason {
            Reason::NoAllowMatch => {
                let with_dry = decision == "shadow_deny" && engine.has_dry_run;
                let misses: Vec<String> = engine
                    .allow_misses(req, with_dry, 8)
                    .into_iter()
                    .filter_map(|(p, ri, miss)| {
                        engine
                            .policies
                            .get(p)
                            .map(|pol| format!("{} rules[{ri}]: {miss} did not match", pol.name))
                    })
                    .collect();
                misses.join("; ").into()
            }
            other => other.detail().into(),
        };
        obj.insert("why".into(), why);
    }
    v
}

fn audit<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    out: &Outcome,
    decision: &str,
    explain: &Value,
    audits: &[(usize, usize)],
) {
    let mut line = AuditLine::new("authz", decision, out.reason.code()).request(host);
    for key in ["policy", "action", "rule", "why", "dry_run"] {
        if let Some(v) = explain.get(key) {
            line = line.field(key, v.clone());
        }
    }
    if decision == "deny" {
        let status = rt
            .config
            .replies
            .get(out.reason, out.policy)
            .map_or(403, |r| r.status);
        line = line.field("status", status);
    }
    if !audits.is_empty() {
        let names: Vec<Value> = audits
            .iter()
            .filter_map(|(p, _)| rt.config.engine.policies.get(*p))
            .map(|p| Value::from(p.name.as_str()))
            .collect();
        line = line.field("audit_policies", names);
    }
    line.emit(host);
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
