//! Build the engine's [`Request`] from the shared request facts, reading
//! only what the policy set needs (see [`crate::request::Needs`]).

use meshward_shared::facts::{claims, PathError, RequestFacts};
use meshward_shared::host::Host;
use meshward_shared::identity::Identity;

use crate::config::Config;
use crate::request::{Auth, Peer, Request};

/// Why a request cannot be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// The path is ambiguous (answered with 400).
    Path(PathError),
    /// The policies read `source.ip` and the TCP peer is unknown: the
    /// `peer_address` source is missing from the Envoy config.
    NoPeer,
}

pub fn gather<H: Host + ?Sized>(
    cfg: &Config,
    facts: &RequestFacts<'_, H>,
) -> Result<Request, Unfit> {
    let n = &cfg.needs;
    let host = facts.host();
    let mut r = Request {
        geo_slot: n.geo,
        ..Default::default()
    };
    if n.path {
        r.path = facts.path().map_err(Unfit::Path)?.to_string();
    }
    if n.method {
        r.method = facts.method().to_string();
    }
    if n.host {
        r.host = facts.authority().to_ascii_lowercase();
    }
    if n.port {
        r.port = host
            .property(&["destination", "port"])
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .and_then(|b| u32::try_from(i64::from_le_bytes(b)).ok());
    }
    r.headers = n
        .headers
        .iter()
        .map(|h| facts.header_values(h).map(str::to_string).collect())
        .collect();
    if n.source_ip {
        r.source_ip = Some(facts.peer_ip().ok_or(Unfit::NoPeer)?);
    }
    if n.remote_ip {
        r.remote_ip = facts.client_ip();
    }
    if n.peer {
        r.peer = host
            .property(&["connection", "uri_san_peer_certificate"])
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .map(|s| Peer::from_uri_san(&s));
    }
    if n.sni {
        r.sni = host
            .property(&["connection", "requested_server_name"])
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty());
    }
    if n.auth {
        r.auth = facts.identity().map(|id| auth(cfg, id));
    }
    if n.time {
        r.now_unix = host.now_unix();
    }
    Ok(r)
}

/// The identity as the policies read it: claims keep their JSON types.
pub fn auth(cfg: &Config, id: &Identity) -> Auth {
    let n = &cfg.needs;
    let strings = |path: &[&str]| -> Vec<String> {
        claims::strings(claims::lookup(&id.claims, path))
            .map(str::to_string)
            .collect()
    };
    let text = |k: &str| {
        id.claims
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let mut a = Auth::default();
    if n.auth_principal {
        a.issuer = text("iss");
        a.subject = text("sub");
        if let (Some(i), Some(s)) = (&a.issuer, &a.subject) {
            a.principal = format!("{i}/{s}");
        }
    }
    if n.auth_audiences {
        a.audiences = strings(&["aud"]);
    }
    if n.auth_presenter {
        a.presenter = strings(&["azp"]);
        if a.presenter.is_empty() && cfg.presenter_fallback {
            a.presenter = strings(&["client_id"]);
        }
    }
    if n.auth_scopes {
        a.scopes = id.scopes.clone();
    }
    a.claims = n
        .claims
        .iter()
        .map(|c| {
            let found = if c.dotted_keys {
                claims::dotted(&id.claims, &c.path)
            } else {
                claims::lookup(&id.claims, &c.path)
            };
            claims::strings(found).map(str::to_string).collect()
        })
        .collect();
    if n.roles {
        let (roles, perms) = cfg.rbac.resolve(&a.claims);
        a.roles = roles;
        a.permissions = perms;
    }
    a
}

/// [`gather`] over a fresh view of `host` (tests and benchmarks).
pub fn request_of<H: Host + ?Sized>(cfg: &Config, host: &H) -> Result<Request, Unfit> {
    gather(cfg, &RequestFacts::new(host, &cfg.sources))
}
