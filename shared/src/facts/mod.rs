//! One source of request facts for every filter: a view filled lazily, so
//! each fact is read from the host at most once, and only when a compiled
//! rule asks for it. Semantics follow Envoy and istiod:
//! - headers keep every value (a repeated header is not its first line);
//! - the TCP peer (`source.ip`) is the connection's address, never a header;
//! - the client address (`remote.ip`) is Envoy's derived remote address, or
//!   the `x-forwarded-for` entry under `xff_num_trusted_hops` when set here;
//! - the path is the RFC 3986 normal form unless Envoy's is trusted;
//! - identity claims keep their JSON types.

pub mod addr;
pub mod cidr;
pub mod claims;
pub mod metadata;
pub mod path;

use std::cell::OnceCell;
use std::net::IpAddr;
use std::rc::Rc;

use serde::Deserialize;

use crate::audit::AuditLine;
use crate::config::ConfigError;
use crate::host::Host;
use crate::identity::Identity;
use crate::response::LocalReply;
pub use path::{PathError, PathNormalization};

/// Filter-state key the shipped configs fill with the TCP peer, through
/// `envoy.filters.http.set_filter_state` and
/// `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%`.
pub const PEER_FILTER_STATE: &str = "meshward.peer";

/// Where the TCP peer comes from. No Wasm property carries Envoy's direct
/// remote address (`source.address` follows `x-forwarded-for` whenever
/// `use_remote_address` is false or `xff_num_trusted_hops` is set), so it
/// is handed over in filter state, or `source.address` is trusted when the
/// HCM makes the two equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSource {
    FilterState(String),
    SourceAddress,
}

impl Default for PeerSource {
    fn default() -> Self {
        PeerSource::FilterState(PEER_FILTER_STATE.into())
    }
}

/// `peer_address` as written in a filter config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    from: RawPeerFrom,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawPeerFrom {
    FilterState,
    SourceAddress,
}

impl RawPeer {
    pub fn compile(self) -> Result<PeerSource, ConfigError> {
        match (self.from, self.key) {
            (RawPeerFrom::FilterState, None) => Ok(PeerSource::default()),
            (RawPeerFrom::FilterState, Some(k)) if !k.is_empty() => Ok(PeerSource::FilterState(k)),
            (RawPeerFrom::FilterState, Some(_)) => {
                Err(ConfigError::new("key", "must not be empty"))
            }
            (RawPeerFrom::SourceAddress, None) => Ok(PeerSource::SourceAddress),
            (RawPeerFrom::SourceAddress, Some(_)) => {
                Err(ConfigError::new("key", "only with `from: filter_state`"))
            }
        }
    }
}

/// Envoy `jwt_authn` dynamic metadata (`payload_in_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthnSource {
    pub filter: String,
    pub payload_key: String,
}

/// Where each fact comes from; compiled once per filter config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub path: PathNormalization,
    /// `None`: the client is Envoy's derived remote address (`source.address`).
    pub xff_num_trusted_hops: Option<u32>,
    pub peer: PeerSource,
    /// Read meshward's identity (filter state written by `jwt-auth`).
    pub meshward_identity: bool,
    pub jwt_authn: Option<JwtAuthnSource>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            path: PathNormalization::default(),
            xff_num_trusted_hops: None,
            peer: PeerSource::default(),
            meshward_identity: true,
            jwt_authn: None,
        }
    }
}

/// The largest `xff_num_trusted_hops` accepted (as a sanity bound).
pub const MAX_TRUSTED_HOPS: u32 = 16;

pub fn check_hops(hops: Option<u32>) -> Result<Option<u32>, ConfigError> {
    match hops {
        Some(h) if h > MAX_TRUSTED_HOPS => Err(ConfigError::new(
            "xff_num_trusted_hops",
            format!("at most {MAX_TRUSTED_HOPS}"),
        )),
        other => Ok(other),
    }
}

struct Target {
    /// `:path` as received.
    raw: String,
    /// End of the path part of `raw`.
    path_end: usize,
    /// Start of the query in `raw`, when there is one.
    query_start: Option<usize>,
    /// The normal form when it differs from the raw path part.
    normal: Result<Option<String>, PathError>,
}

/// The facts of one request.
pub struct RequestFacts<'a, H: Host + ?Sized> {
    host: &'a H,
    src: &'a Sources,
    method: OnceCell<String>,
    authority: OnceCell<String>,
    target: OnceCell<Target>,
    headers: OnceCell<Vec<(String, String)>>,
    peer: OnceCell<Option<IpAddr>>,
    client: OnceCell<Option<IpAddr>>,
    identity: OnceCell<Option<Rc<Identity>>>,
}

impl<'a, H: Host + ?Sized> RequestFacts<'a, H> {
    pub fn new(host: &'a H, src: &'a Sources) -> Self {
        RequestFacts {
            host,
            src,
            method: OnceCell::new(),
            authority: OnceCell::new(),
            target: OnceCell::new(),
            headers: OnceCell::new(),
            peer: OnceCell::new(),
            client: OnceCell::new(),
            identity: OnceCell::new(),
        }
    }

    pub fn host(&self) -> &'a H {
        self.host
    }

    pub fn method(&self) -> &str {
        self.method
            .get_or_init(|| self.host.request_header(":method").unwrap_or_default())
    }

    /// `:authority` as received (matching decides on case).
    pub fn authority(&self) -> &str {
        self.authority
            .get_or_init(|| self.host.request_header(":authority").unwrap_or_default())
    }

    fn target(&self) -> &Target {
        self.target.get_or_init(|| {
            let raw = self.host.request_header(":path").unwrap_or_default();
            let (p, q) = path::split_target(&raw);
            let path_end = p.len();
            let query_start = q.map(|_| path_end + 1);
            let normal = match path::derive(p, self.src.path) {
                Ok(std::borrow::Cow::Borrowed(_)) => Ok(None),
                Ok(std::borrow::Cow::Owned(s)) => Ok(Some(s)),
                Err(e) => Err(e),
            };
            Target {
                query_start,
                raw,
                path_end,
                normal,
            }
        })
    }

    /// `:path` as received, query included.
    pub fn raw_target(&self) -> &str {
        &self.target().raw
    }

    /// The path the rules match on (see [`PathNormalization`]).
    pub fn path(&self) -> Result<&str, PathError> {
        let t = self.target();
        match &t.normal {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Ok(t.raw.get(..t.path_end).unwrap_or("")),
            Err(e) => Err(*e),
        }
    }

    /// The query string without `?`, as received.
    pub fn query(&self) -> Option<&str> {
        let t = self.target();
        let start = t.query_start?;
        let end = t.raw.find('#').unwrap_or(t.raw.len());
        t.raw.get(start..end.max(start))
    }

    /// The first value of query parameter `name` (not decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        path::query_param(self.query()?, name)
    }

    fn all_headers(&self) -> &[(String, String)] {
        self.headers.get_or_init(|| self.host.request_headers())
    }

    /// Every value of a request header, in order (`name` lower-case).
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.all_headers()
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The TCP peer of the downstream connection (Istio `source.ip`).
    pub fn peer_ip(&self) -> Option<IpAddr> {
        *self.peer.get_or_init(|| {
            let raw = match &self.src.peer {
                PeerSource::FilterState(key) => self.host.property(&["filter_state", key]),
                PeerSource::SourceAddress => self.host.property(&["source", "address"]),
            }?;
            addr::parse_socket_ip(std::str::from_utf8(&raw).ok()?)
        })
    }

    /// The client address (Istio `remote.ip`).
    pub fn client_ip(&self) -> Option<IpAddr> {
        *self
            .client
            .get_or_init(|| match self.src.xff_num_trusted_hops {
                Some(hops) => {
                    let joined: Vec<&str> = self.header_values("x-forwarded-for").collect();
                    addr::xff_client(&joined.join(","), hops)
                        .or_else(|| self.peer_ip())
                        .or_else(|| self.envoy_remote())
                }
                None => self.envoy_remote(),
            })
    }

    /// Envoy's derived remote address (`source.address`).
    fn envoy_remote(&self) -> Option<IpAddr> {
        let raw = self.host.property(&["source", "address"])?;
        addr::parse_socket_ip(std::str::from_utf8(&raw).ok()?)
    }

    /// The verified caller: meshward's identity when configured and present
    /// (in memory from an earlier stage of the suite, else filter state),
    /// else the `jwt_authn` payload.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity
            .get_or_init(|| {
                if self.src.meshward_identity {
                    let handed = self.host.handed_identity();
                    if let Some(id) = handed.or_else(|| Identity::read(self.host).map(Rc::new)) {
                        return Some(id);
                    }
                }
                let j = self.src.jwt_authn.as_ref()?;
                let md = self.host.property(&["metadata"])?;
                let claims = metadata::payload(&md, &j.filter, &j.payload_key)?;
                Some(Rc::new(Identity::from_claims("jwt_authn", claims)))
            })
            .as_deref()
    }
}

/// Reason code of the 400 sent for an ambiguous path.
pub const AMBIGUOUS_PATH: &str = "ambiguous_path";

/// Refuse a request whose path cannot be matched safely: one audit line
/// and a 400 problem+json reply (nothing is sent in `shadow` mode).
/// Returns whether the request was answered.
pub fn refuse_path<H: Host + ?Sized>(host: &H, filter: &str, e: PathError, shadow: bool) -> bool {
    refuse(host, filter, 400, AMBIGUOUS_PATH, e.detail(), shadow)
}

/// Reason code of the 500 sent when Envoy refused a header write.
pub const HEADER_WRITE_FAILED: &str = "header_write_failed";

/// Refuse a request whose headers could not be stripped or set (Envoy
/// answers `BadArgument` once it no longer holds them): a spoofed identity
/// or score header must not reach the upstream. One audit line and a 500
/// problem+json reply, none in `shadow` mode. Returns whether it answered.
pub fn refuse_header_write<H: Host + ?Sized>(
    host: &H,
    filter: &str,
    e: &crate::host::HostError,
    shadow: bool,
) -> bool {
    refuse(
        host,
        filter,
        500,
        HEADER_WRITE_FAILED,
        &e.to_string(),
        shadow,
    )
}

fn refuse<H: Host + ?Sized>(
    host: &H,
    filter: &str,
    status: u32,
    reason: &str,
    detail: &str,
    shadow: bool,
) -> bool {
    let decision = if shadow { "shadow_deny" } else { "deny" };
    AuditLine::new(filter, decision, reason)
        .request(host)
        .field("why", detail)
        .field("status", status)
        .emit(host);
    if shadow {
        return false;
    }
    let reply = LocalReply::problem(status, reason, detail);
    if let Err(err) = reply.send(host) {
        host.log(
            proxy_wasm::types::LogLevel::Error,
            &format!("meshward {filter}: could not send the {status} reply: {err}"),
        );
    }
    true
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
