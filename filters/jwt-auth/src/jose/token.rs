//! Compact JWS parsing (RFC 7515 §7.1) with a strict JOSE header.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{Alg, JoseError, B64_STRICT};

/// The JOSE header members the filter uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// A syntactically valid token whose signature has NOT been checked.
#[derive(Clone)]
pub struct UntrustedToken {
    pub header: Header,
    pub payload: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes.
    signing_input: String,
    signature: Vec<u8>,
}

// Manual Debug: the raw token segments must not end up in logs.
impl fmt::Debug for UntrustedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntrustedToken")
            .field("header", &self.header)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl UntrustedToken {
    pub fn parse(token: &str) -> Result<UntrustedToken, JoseError> {
        let mut parts = token.split('.');
        let (h, p, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s), None) => (h, p, s),
            _ => {
                return Err(JoseError::Malformed(
                    "expected three dot-separated segments",
                ))
            }
        };
        if s.is_empty() {
            return Err(JoseError::Malformed("empty signature"));
        }

        let header_bytes = B64_STRICT
            .decode(h)
            .map_err(|_| JoseError::Malformed("header is not valid base64url"))?;
        let header = parse_header(&header_bytes)?;

        let payload_bytes = B64_STRICT
            .decode(p)
            .map_err(|_| JoseError::Malformed("payload is not valid base64url"))?;
        let payload: Map<String, Value> = serde_json::from_slice(&payload_bytes)
            .map_err(|_| JoseError::Malformed("payload is not a JSON object"))?;
        // The claims travel on in the identity (two levels deeper) that the
        // other filters parse with serde_json's 128-level limit; a token they
        // could not read would make their rules silently not apply.
        if depth_over(&payload, MAX_CLAIM_DEPTH) {
            return Err(JoseError::Malformed("claims nest deeper than 64 levels"));
        }

        let signature = B64_STRICT
            .decode(s)
            .map_err(|_| JoseError::Malformed("signature is not valid base64url"))?;

        // '.' is ASCII, so this offset is a char boundary; `get` keeps it panic-free.
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or(JoseError::Malformed("bad segment boundaries"))?
            .to_owned();

        Ok(UntrustedToken {
            header,
            payload,
            signing_input,
            signature,
        })
    }

    pub(crate) fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header, JoseError> {
    let raw: RawHeader = serde_json::from_slice(bytes)
        .map_err(|_| JoseError::Malformed("header is not a valid JSON object"))?;
    if raw.duplicate {
        return Err(JoseError::Malformed("duplicate header member"));
    }
    if let Some(member) = raw.forbidden {
        return Err(JoseError::HeaderForbidden(member));
    }
    if raw.crit {
        return Err(JoseError::CritUnsupported);
    }
    let alg = match raw.alg {
        None => return Err(JoseError::Malformed("header has no alg")),
        Some(AlgField::NoneAlg) => {
            return Err(JoseError::AlgNotAllowed("alg \"none\" is not allowed"))
        }
        Some(AlgField::Unknown) => return Err(JoseError::AlgNotAllowed("unsupported alg")),
        Some(AlgField::Known(a)) => a,
    };
    Ok(Header {
        alg,
        kid: raw.kid,
        typ: raw.typ,
    })
}

enum AlgField {
    Known(Alg),
    NoneAlg,
    Unknown,
}

/// Header as seen by one pass of the JSON parser: the semantic checks run
/// afterwards so the reported reason does not depend on member order.
#[derive(Default)]
struct RawHeader {
    alg: Option<AlgField>,
    kid: Option<String>,
    typ: Option<String>,
    forbidden: Option<&'static str>,
    crit: bool,
    duplicate: bool,
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut out = RawHeader::default();
                // Keys compare after unescaping, so "al\u0067" duplicates "alg".
                let mut seen: BTreeSet<Cow<'de, str>> = BTreeSet::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        "alg" => {
                            let Key(v) = map.next_value::<Key<'de>>()?;
                            out.alg = Some(if v.eq_ignore_ascii_case("none") {
                                AlgField::NoneAlg
                            } else {
                                Alg::from_name(&v).map_or(AlgField::Unknown, AlgField::Known)
                            });
                        }
                        "kid" => out.kid = Some(map.next_value::<String>()?),
                        "typ" => out.typ = Some(map.next_value::<String>()?),
                        "crit" => {
                            map.next_value::<IgnoredAny>()?;
                            out.crit = true;
                        }
                        "jwk" | "jku" | "x5u" | "x5c" => {
                            map.next_value::<IgnoredAny>()?;
                            if out.forbidden.is_none() {
                                out.forbidden = Some(forbidden_name(&key));
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    if !seen.insert(key) {
                        out.duplicate = true;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

fn forbidden_name(key: &str) -> &'static str {
    match key {
        "jwk" => "jwk",
        "jku" => "jku",
        "x5u" => "x5u",
        _ => "x5c",
    }
}

/// How deep claims may nest (the payload object is level 1).
pub const MAX_CLAIM_DEPTH: usize = 64;

/// Whether `payload` nests deeper than `max` levels, without recursion.
fn depth_over(payload: &Map<String, Value>, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = payload.values().map(|v| (v, 2)).collect();
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if d > max {
            return true;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    false
}
