//! The `jwt_authn` payload from Envoy's dynamic metadata, with JSON types
//! intact. Reading the `metadata` property whole returns the
//! `envoy.config.core.v3.Metadata` message as protobuf (measured on Envoy
//! 1.40); deeper paths come back in the proxy-wasm pairs encoding, which
//! cannot tell a list from an object or an 8-byte string from a number.
//! Field numbers are those of `base.proto` and `google/protobuf/struct.proto`.

use std::collections::HashMap;

use serde_json::{Map, Number, Value as Json};

#[derive(Clone, PartialEq, prost::Message)]
struct Metadata {
    #[prost(map = "string, message", tag = "1")]
    filter_metadata: HashMap<String, Struct>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Struct {
    #[prost(map = "string, message", tag = "1")]
    fields: HashMap<String, Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5, 6")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(int32, tag = "1")]
    Null(i32),
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    String(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
    #[prost(message, tag = "5")]
    Struct(Struct),
    #[prost(message, tag = "6")]
    List(ListValue),
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<Value>,
}

/// The object stored under `filter_metadata[filter][key]`; `None` when the
/// bytes are not a Metadata message or the entry is absent or not an object.
pub fn payload(metadata: &[u8], filter: &str, key: &str) -> Option<Map<String, Json>> {
    let md = <Metadata as prost::Message>::decode(metadata).ok()?;
    let mut st = md.filter_metadata.get(filter)?.fields.get(key)?.clone();
    match st.kind.take()? {
        Kind::Struct(s) => Some(object(s)),
        _ => None,
    }
}

fn object(s: Struct) -> Map<String, Json> {
    s.fields.into_iter().map(|(k, v)| (k, json(v))).collect()
}

fn json(v: Value) -> Json {
    match v.kind {
        None | Some(Kind::Null(_)) => Json::Null,
        // JSON integers arrive as doubles; give them back as integers.
        Some(Kind::Number(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                Json::Number(Number::from(n as i64))
            } else {
                Number::from_f64(n).map_or(Json::Null, Json::Number)
            }
        }
        Some(Kind::String(s)) => Json::String(s),
        Some(Kind::Bool(b)) => Json::Bool(b),
        Some(Kind::Struct(s)) => Json::Object(object(s)),
        Some(Kind::List(l)) => Json::Array(l.values.into_iter().map(json).collect()),
    }
}

/// Encode a payload as Envoy returns it (for tests of the filters).
#[cfg(any(test, feature = "fake-host"))]
pub fn encode_payload(filter: &str, key: &str, claims: &Map<String, Json>) -> Vec<u8> {
    fn value(j: &Json) -> Value {
        let kind = match j {
            Json::Null => Kind::Null(0),
            Json::Bool(b) => Kind::Bool(*b),
            Json::Number(n) => Kind::Number(n.as_f64().unwrap_or(0.0)),
            Json::String(s) => Kind::String(s.clone()),
            Json::Array(a) => Kind::List(ListValue {
                values: a.iter().map(value).collect(),
            }),
            Json::Object(o) => Kind::Struct(strukt(o)),
        };
        Value { kind: Some(kind) }
    }
    fn strukt(o: &Map<String, Json>) -> Struct {
        Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
        }
    }
    let mut outer = Struct::default();
    outer.fields.insert(
        key.to_string(),
        Value {
            kind: Some(Kind::Struct(strukt(claims))),
        },
    );
    let mut md = Metadata::default();
    md.filter_metadata.insert(filter.to_string(), outer);
    prost::Message::encode_to_vec(&md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_what_envoy_140_returned() {
        // get_property(["metadata"]) after jwt_authn (payload_in_metadata:
        // payload) for {"iss":"https://iss","sub":"alice","aud":"api","num":5,
        // "flag":true,"s8":"abcdefgh","obj":{"a":"","b":""},"lst":["x","y"],
        // "mixed":["x",1], iat, exp}.
        let b = hex("0a8a020a1c656e766f792e66696c746572732e687474702e6a77745f617574686e12e9010ae6010a077061796c6f616412da012ad7010a100a036961741209110000007817c4da410a0c0a0361756412051a036170690a100a036e756d12091100000000000014400a140a03697373120d1a0b68747470733a2f2f6973730a100a03657870120911000000fc1ac4da410a0a0a04666c6167120220010a100a027338120a1a0861626364656667680a1b0a036f626a12142a120a070a016212021a000a070a016112021a000a1b0a056d69786564121232100a031a01780a0911000000000000f03f0a0e0a0373756212071a05616c6963650a130a036c7374120c320a0a031a01780a031a0179");
        let p = payload(&b, "envoy.filters.http.jwt_authn", "payload").unwrap();
        assert_eq!(p["sub"], json!("alice"));
        assert_eq!(p["num"], json!(5));
        assert_eq!(p["flag"], json!(true));
        assert_eq!(p["s8"], json!("abcdefgh"));
        assert_eq!(p["obj"], json!({"a": "", "b": ""}));
        assert_eq!(p["lst"], json!(["x", "y"]));
        assert_eq!(p["mixed"], json!(["x", 1]));
        assert!(payload(&b, "envoy.filters.http.jwt_authn", "other").is_none());
        assert!(payload(&b, "other", "payload").is_none());
    }

    #[test]
    fn garbage_is_none() {
        assert!(payload(&[0xff, 0xff, 0xff], "f", "k").is_none());
        assert!(payload(&[], "f", "k").is_none());
    }
}
