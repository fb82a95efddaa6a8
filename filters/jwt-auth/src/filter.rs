//! The request lifecycle: strip spoofable headers, extract tokens, decide,
//! then continue (with identity and claim headers) or respond.

use std::rc::Rc;

use meshward_shared::audit::AuditLine;
use meshward_shared::facts::{self, RequestFacts};
use meshward_shared::host::{Host, HostCalls, HostError};
use meshward_shared::response::LocalReply;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::authn::{Decision, Runtime};
use crate::config::{Config, TokenLocation};
use crate::extract::{find_token, removed_param, Found};
use crate::reason::Reason;
use crate::requirement::Outcome;
use crate::verify::Verified;

/// What the lifecycle wants the host to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Wait for keys; the root context resumes or rejects the request.
    Pause,
    /// A local reply was sent.
    Replied,
}

pub struct JwtFilter {
    pub context_id: u32,
    pub runtime: Rc<Runtime>,
}

meshward_shared::stream_callbacks!("request_headers", "request_body", "request_trailers");

impl Context for JwtFilter {}

// The stream is gone (proxy_on_delete): forget a pending wait. Done here
// rather than in `on_done`, which would cost one more call into the VM per request.
impl Drop for JwtFilter {
    fn drop(&mut self) {
        self.runtime.remove_waiter(self.context_id);
    }
}

impl HttpContext for JwtFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let host = HostCalls;
        match process(&self.runtime, &host, false) {
            Step::Continue => Action::Continue,
            Step::Replied => Action::Pause,
            Step::Pause => {
                self.runtime.add_waiter(self.context_id, now_ms(&host));
                Action::Pause
            }
        }
    }

    // While paused, body and trailers must not slip past the decision.
    fn on_http_request_body(&mut self, _: usize, _: bool) -> Action {
        if self.runtime.is_waiting(self.context_id) {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        self.on_http_request_body(0, true)
    }
}

pub fn now_ms<H: Host + ?Sized>(host: &H) -> u64 {
    host.now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run the whole lifecycle for the request the host currently points at.
pub fn process<H: Host + ?Sized>(rt: &Runtime, host: &H, final_attempt: bool) -> Step {
    let config = &rt.config;
    for name in &config.output_headers {
        if let Err(e) = host.set_request_header(name, None) {
            return refused_write(host, config, &e);
        }
    }
    let facts = RequestFacts::new(host, &config.sources);
    // Rules match the normalised path, so `/public/../admin` is `/admin`.
    let path = match facts.path() {
        Ok(p) => p,
        Err(e) => {
            return if facts::refuse_path(host, "jwt-auth", e, config.shadow) {
                Step::Replied
            } else {
                Step::Continue
            };
        }
    };
    let method = if config.reads_method {
        facts.method()
    } else {
        ""
    };
    if config.bypass_cors_preflight && is_cors_preflight(host, method) {
        return Step::Continue;
    }
    let Some(rule) = config.rule_for(method, path) else {
        return Step::Continue;
    };
    let full_path = facts.raw_target();
    let tokens = extract_tokens(host, config, rule.requires.is_some(), facts.query());
    let decision = rt.decide(host, rule, &tokens, now_ms(host), final_attempt);
    match decision.outcome {
        Outcome::Pending => Step::Pause,
        Outcome::Allow => match allow(rt, host, &decision, full_path) {
            Ok(()) => Step::Continue,
            Err(e) => refused_write(host, config, &e),
        },
        Outcome::Deny(reason, provider) => deny(rt, host, reason, provider, &rule.required_scopes),
    }
}

fn is_cors_preflight<H: Host + ?Sized>(host: &H, method: &str) -> bool {
    method == "OPTIONS"
        && host.request_header("origin").is_some()
        && host
            .request_header("access-control-request-method")
            .is_some()
}

/// Tokens per provider; headers shared by providers are read once.
fn extract_tokens<H: Host + ?Sized>(
    host: &H,
    config: &Config,
    needed: bool,
    query: Option<&str>,
) -> Vec<Option<Found>> {
    if !needed {
        return Vec::new();
    }
    let mut seen: Vec<(String, Option<String>)> = Vec::new();
    let mut header = |name: &str| -> Option<String> {
        if let Some((_, v)) = seen.iter().find(|(n, _)| n == name) {
            return v.clone();
        }
        let v = host.request_header(name);
        seen.push((name.to_string(), v.clone()));
        v
    };
    config
        .providers
        .iter()
        .map(|p| find_token(&p.locations, &mut header, query))
        .collect()
}

/// Envoy refused to strip or set a header: the request must not go on
/// (a spoofed identity header, or a token, could reach the upstream).
fn refused_write<H: Host + ?Sized>(host: &H, config: &Config, e: &HostError) -> Step {
    if facts::refuse_header_write(host, "jwt-auth", e, config.shadow) {
        Step::Replied
    } else {
        Step::Continue
    }
}

fn allow<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    decision: &Decision,
    full_path: &str,
) -> Result<(), HostError> {
    let config = &rt.config;
    // Copied only when a token parameter is removed from it.
    let mut path: Option<String> = None;
    for (p, location, verified) in &decision.verified {
        let Some(provider) = config.providers.get(*p) else {
            continue;
        };
        // The verified token goes unless `forward`; a token in any other of the
        // provider's locations was never verified, so it never goes upstream.
        for (i, loc) in provider.locations.iter().enumerate() {
            if i == *location && provider.forward {
                continue;
            }
            match loc {
                TokenLocation::Header { name, prefix } => {
                    let carries = i == *location
                        || host
                            .request_header(name)
                            .is_some_and(|v| crate::extract::has_prefix(&v, prefix));
                    if carries {
                        host.set_request_header(name, None)?;
                    }
                }
                TokenLocation::Param(name) => {
                    if let Some(p) = removed_param(path.as_deref().unwrap_or(full_path), name) {
                        path = Some(p);
                    }
                }
            }
        }
        if let Some(h) = &provider.forward_payload_header {
            host.set_request_header(h, Some(&verified.payload_segment))?;
        }
        for c in &provider.claim_to_headers {
            if let Some(value) =
                crate::claims::claim_at(&verified.identity.claims, &c.claim).and_then(header_value)
            {
                host.set_request_header(&c.header, Some(&value))?;
            }
        }
        if let Some(m) = rt.metrics.provider(*p) {
            m.allowed.inc(host);
        }
    }
    if let Some(path) = path.filter(|p| p != full_path) {
        host.set_request_header(":path", Some(&path))?;
    }
    if let Some((_, _, first)) = decision.verified.first() {
        publish_identity(host, config, first);
    }
    rt.metrics.allowed.inc(host);
    if config.audit_allow {
        let mut line = AuditLine::new("jwt-auth", "allow", "ok").request(host);
        if let Some((p, _, v)) = decision.verified.first() {
            line = line
                .field("provider", provider_name(config, Some(*p)))
                .field("subject", v.identity.subject.as_str());
        }
        line.emit(host);
    }
    Ok(())
}

fn publish_identity<H: Host + ?Sized>(host: &H, config: &Config, verified: &Verified) {
    let write_state = config
        .identity_state
        .unwrap_or_else(|| host.writes_outputs_by_default());
    if let Err(e) = host.publish_identity(&verified.identity, &verified.identity_json, write_state)
    {
        host.log(
            proxy_wasm::types::LogLevel::Warn,
            &format!("meshward jwt-auth: could not write identity to filter state: {e}"),
        );
    }
}

/// Claim value as a header value: arrays become a comma list; values with
/// control characters are dropped rather than forwarded.
fn header_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!text.bytes().any(|b| b < 0x20 || b == 0x7f)).then_some(text)
}

fn provider_name(config: &Config, p: Option<usize>) -> String {
    p.and_then(|p| config.providers.get(p))
        .map_or_else(String::new, |p| p.name.clone())
}

fn deny<H: Host + ?Sized>(
    rt: &Runtime,
    host: &H,
    reason: Reason,
    provider: Option<usize>,
    scopes: &[String],
) -> Step {
    let config = &rt.config;
    let status = match reason {
        Reason::InsufficientScope => 403,
        Reason::JwksUnavailable => config.jwks_unavailable_status,
        _ => 401,
    };
    let decision = if config.shadow { "shadow_deny" } else { "deny" };
    let mut line = AuditLine::new("jwt-auth", decision, reason.code())
        .request(host)
        .field("status", status);
    if provider.is_some() {
        line = line.field("provider", provider_name(config, provider));
    }
    line.emit(host);
    if config.shadow {
        rt.metrics.shadow_denied(reason).inc(host);
        return Step::Continue;
    }
    rt.metrics.denied(reason).inc(host);
    if let Some(m) = provider.and_then(|p| rt.metrics.provider(p)) {
        m.denied(reason).inc(host);
    }
    let mut reply = LocalReply::problem(status, reason.code(), reason.detail());
    if let Some(challenge) = challenge(config, reason, status, scopes) {
        reply = reply.with_header("www-authenticate", challenge);
    }
    if let Some(custom) = &config.deny_response {
        reply = reply.customize(custom, reason.code());
    }
    if let Err(e) = reply.send(host) {
        host.log(
            proxy_wasm::types::LogLevel::Error,
            &format!("meshward jwt-auth: could not send the deny reply: {e}"),
        );
    }
    Step::Replied
}

/// RFC 6750 §3: no error code when the request carried no token.
fn challenge(config: &Config, reason: Reason, status: u32, scopes: &[String]) -> Option<String> {
    match (status, reason) {
        (401, Reason::TokenMissing) => Some(config.challenge.clone()),
        (401, r) => Some(format!(
            "{}, error=\"invalid_token\", error_description=\"{}\"",
            config.challenge,
            r.detail()
        )),
        (403, Reason::InsufficientScope) => Some(format!(
            "{}, error=\"insufficient_scope\", scope=\"{}\"",
            config.challenge,
            scopes.join(" ")
        )),
        _ => None,
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
