//! Deny replies, built once at configure time: a problem+json body (RFC 9457)
//! with the reason code and, when `expose_policy` is set, the policy name;
//! status, headers and body can be overridden globally or per DENY policy.

use meshward_shared::response::{CustomResponse, LocalReply, PROBLEM_JSON};

use crate::engine::Reason;
use crate::policy::{Action, Policy};

#[derive(Debug, Clone)]
pub struct Replies {
    /// Per policy index: the reply a matching DENY policy sends.
    per_policy: Vec<Option<LocalReply>>,
    no_allow: LocalReply,
    default_deny: LocalReply,
    peer_unknown: LocalReply,
}

impl Replies {
    pub fn compile(
        custom: &[Option<CustomResponse>],
        policies: &[Policy],
        global: Option<&CustomResponse>,
        expose_policy: bool,
    ) -> Replies {
        let per_policy = policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (p.action == Action::Deny).then(|| {
                    let own = custom.get(i).and_then(Option::as_ref).or(global);
                    let name = expose_policy.then_some(p.name.as_str());
                    build(Reason::DeniedByPolicy, name, &p.name, own)
                })
            })
            .collect();
        Replies {
            per_policy,
            no_allow: build(Reason::NoAllowMatch, None, "", global),
            default_deny: build(Reason::DefaultDeny, None, "", global),
            peer_unknown: build(Reason::PeerUnknown, None, "", global),
        }
    }

    pub fn get(&self, reason: Reason, policy: Option<usize>) -> Option<&LocalReply> {
        match reason {
            Reason::DeniedByPolicy => policy
                .and_then(|p| self.per_policy.get(p))
                .and_then(Option::as_ref),
            Reason::NoAllowMatch => Some(&self.no_allow),
            Reason::DefaultDeny => Some(&self.default_deny),
            Reason::PeerUnknown => Some(&self.peer_unknown),
            Reason::AllowedByPolicy | Reason::AllowedByDefault => None,
        }
    }
}

fn build(
    reason: Reason,
    shown: Option<&str>,
    name: &str,
    custom: Option<&CustomResponse>,
) -> LocalReply {
    let status = custom.and_then(|c| c.status).map_or(403, u32::from);
    let mut body = serde_json::json!({
        "type": format!("urn:meshward:problem:{}", reason.code()),
        "title": if status == 403 { "Forbidden" } else { "Request Denied" },
        "status": status,
        "detail": reason.detail(),
        "reason": reason.code(),
    });
    if let (Some(n), Some(obj)) = (shown, body.as_object_mut()) {
        obj.insert("policy".into(), n.into());
    }
    let mut reply = LocalReply {
        status,
        headers: vec![("content-type".into(), PROBLEM_JSON.into())],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    };
    if let Some(c) = custom {
        if let Some(b) = &c.body {
            reply.body = b
                .replace("{reason}", reason.code())
                .replace("{policy}", name)
                .into_bytes();
            let ctype = c.content_type.as_deref().unwrap_or("text/plain");
            reply.headers.retain(|(k, _)| k != "content-type");
            reply.headers.push(("content-type".into(), ctype.into()));
        }
        for (k, v) in &c.headers {
            reply.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            reply.headers.push((k.to_ascii_lowercase(), v.clone()));
        }
    }
    reply
}
