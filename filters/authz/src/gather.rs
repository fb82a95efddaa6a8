//! Build the engine's [`Request`] from the host, reading only what the
//! policy set needs (see [`crate::request::Needs`]).

use meshward_shared::host::Host;
use meshward_shared::identity::Identity;
use serde_json::Value;

use crate::config::{Config, JwtAuthnSource};
use crate::matchers::parse_ip_loose;
use crate::props;
use crate::request::{Auth, Peer, Request};

pub fn gather<H: Host + ?Sized>(cfg: &Config, host: &H) -> Request {
    let n = &cfg.needs;
    let mut r = Request {
        geo_slot: n.geo,
        ..Default::default()
    };
    if n.method {
        r.method = host.request_header(":method").unwrap_or_default();
    }
    if n.path {
        let full = host.request_header(":path").unwrap_or_default();
        r.path = match full.find(['?', '#']) {
            Some(i) => full[..i].to_string(),
            None => full,
        };
    }
    if n.host {
        r.host = host
            .request_header(":authority")
            .unwrap_or_default()
            .to_ascii_lowercase();
    }
    if n.port {
        r.port = host
            .property(&["destination", "port"])
            .and_then(|b| props::int(&b))
            .and_then(|p| u32::try_from(p).ok());
    }
    r.headers = n.headers.iter().map(|h| host.request_header(h)).collect();
    if n.source_ip {
        r.source_ip = host
            .property(&["source", "address"])
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| parse_ip_loose(&s));
    }
    if n.remote_ip && cfg.trusted_xff_hops > 0 {
        r.remote_ip = cfg
            .xff_slot
            .and_then(|s| r.header(s))
            .and_then(|xff| xff_client(xff, cfg.trusted_xff_hops));
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
        r.auth = auth(cfg, host);
    }
    if n.time {
        r.now_unix = host.now_unix();
    }
    r
}

/// The client address with `hops` trusted proxies on the right of the
/// `x-forwarded-for` list (Envoy's `xff_num_trusted_hops` convention, with
/// the peer appended by Envoy as the last entry).
pub fn xff_client(xff: &str, hops: u32) -> Option<std::net::IpAddr> {
    let hops = hops as usize;
    let count = xff.split(',').count();
    if count <= hops {
        return None;
    }
    xff.split(',')
        .nth(count - 1 - hops)
        .and_then(parse_ip_loose)
}

fn auth<H: Host + ?Sized>(cfg: &Config, host: &H) -> Option<Auth> {
    let mut a = None;
    if cfg.meshward_identity {
        a = Identity::read(host).map(|id| from_identity(cfg, &id));
    }
    if a.is_none() {
        if let Some(src) = &cfg.jwt_authn {
            a = from_jwt_authn(cfg, host, src);
        }
    }
    let mut a = a?;
    if cfg.needs.roles {
        let (roles, perms) = cfg.rbac.resolve(&a.claims);
        a.roles = roles;
        a.permissions = perms;
    }
    Some(a)
}

pub fn from_identity(cfg: &Config, id: &Identity) -> Auth {
    Auth {
        principal: if id.issuer.is_empty() || id.subject.is_empty() {
            String::new()
        } else {
            id.principal()
        },
        audiences: id.audiences.clone(),
        presenter: id.presenter.clone(),
        scopes: id.scopes.clone(),
        claims: cfg
            .needs
            .claims
            .iter()
            .map(|path| json_strings(json_at(&id.claims, path)))
            .collect(),
        ..Default::default()
    }
}

fn json_at<'a>(claims: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first)?;
    for seg in rest {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

fn json_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Identity from Envoy `jwt_authn` dynamic metadata (`payload_in_metadata`).
/// When the policies need only a few fields, each is read as its own leaf
/// property (Envoy then serializes just that value); otherwise one call
/// returns the whole payload and it is decoded here.
pub fn from_jwt_authn<H: Host + ?Sized>(
    cfg: &Config,
    host: &H,
    src: &JwtAuthnSource,
) -> Option<Auth> {
    let base = [
        "metadata",
        "filter_metadata",
        src.filter.as_str(),
        src.payload_key.as_str(),
    ];
    if cfg.jwt_leaf_reads {
        let leaf = |path: &[&str]| -> Option<Vec<u8>> {
            let mut full: Vec<&str> = base.to_vec();
            full.extend_from_slice(path);
            host.property(&full)
        };
        return Some(auth_from(cfg, &|path: &[&str]| leaf(path)));
    }
    let payload = host.property(&base)?;
    auth_from_payload(cfg, &payload)
}

pub fn auth_from_payload(cfg: &Config, payload: &[u8]) -> Option<Auth> {
    props::pairs(payload)?;
    Some(auth_from(cfg, &|path: &[&str]| {
        props::lookup(payload, path).map(<[u8]>::to_vec)
    }))
}

/// Build the identity from a payload accessor, reading only needed fields.
fn auth_from(cfg: &Config, get: &dyn Fn(&[&str]) -> Option<Vec<u8>>) -> Auth {
    let n = &cfg.needs;
    let one = |k: &str| {
        get(&[k])
            .map(|v| props::strings(&v))
            .and_then(|v| v.into_iter().next())
    };
    let mut a = Auth::default();
    if n.auth_principal {
        a.principal = match (one("iss"), one("sub")) {
            (Some(iss), Some(sub)) => format!("{iss}/{sub}"),
            _ => String::new(),
        };
    }
    if n.auth_audiences {
        a.audiences = get(&["aud"])
            .map(|v| props::strings(&v))
            .unwrap_or_default();
    }
    if n.auth_presenter {
        a.presenter = one("azp").or_else(|| one("client_id"));
    }
    if n.auth_scopes {
        if let Some(s) = one("scope") {
            a.scopes
                .extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_string));
        }
        if let Some(v) = get(&["scp"]) {
            for s in props::strings(&v) {
                a.scopes
                    .extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_string));
            }
        }
        a.scopes.sort();
        a.scopes.dedup();
    }
    a.claims = n
        .claims
        .iter()
        .map(|path| {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            get(&p).map(|v| props::strings(&v)).unwrap_or_default()
        })
        .collect();
    a
}
