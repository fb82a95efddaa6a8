//! Claim lookup with JSON types kept. Istio matches a claim when it is a
//! string, or a list with a string element that matches; numbers, booleans
//! and objects never match a string pattern.

use serde_json::{Map, Value};

/// The claim at a nested path (`["realm_access", "roles"]`).
pub fn lookup<'a, S: AsRef<str>>(claims: &'a Map<String, Value>, path: &[S]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first.as_ref())?;
    for seg in rest {
        cur = cur.as_object()?.get(seg.as_ref())?;
    }
    Some(cur)
}

/// The claim at a dotted path (`org.team.name`, as `jwt-auth` and
/// `rate-limit` configs write it). When a segment is not found, joined
/// segments are tried as one key, longest first, so namespaced claims such
/// as `https://example.com/roles` (split at its dots) still resolve.
pub fn dotted<'a, S: AsRef<str>>(claims: &'a Map<String, Value>, path: &[S]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    if let Some(v) = claims.get(first.as_ref()) {
        let found = match (rest.is_empty(), v) {
            (true, _) => Some(v),
            (false, Value::Object(inner)) => dotted(inner, rest),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    for take in (2..=path.len()).rev() {
        let (head, tail) = path.split_at_checked(take)?;
        let key = head
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .join(".");
        match (claims.get(&key), tail.is_empty()) {
            (Some(v), true) => return Some(v),
            (Some(Value::Object(inner)), false) => {
                if let Some(found) = dotted(inner, tail) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

/// The strings a pattern is matched against: the claim itself when it is a
/// string, or its string elements when it is a list.
pub fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match value {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// A scalar claim as text, for keys and headers: strings as they are,
/// numbers and booleans in their JSON form; lists and objects give nothing.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_are_exact() {
        let c = json!({
            "s": "abcdefgh", "n": 5, "b": true, "l": ["x", 1, "y", {"z": 1}],
            "o": {"a": "", "b": ""}, "nested": {"roles": ["r1"]}, "nul": null
        });
        let c = c.as_object().unwrap();
        let got = |p: &[&str]| strings(lookup(c, p)).collect::<Vec<_>>();
        assert_eq!(got(&["s"]), ["abcdefgh"]);
        assert!(got(&["n"]).is_empty());
        assert!(got(&["b"]).is_empty());
        assert_eq!(got(&["l"]), ["x", "y"]);
        assert!(
            got(&["o"]).is_empty(),
            "an object is not the list of its keys"
        );
        assert_eq!(got(&["nested", "roles"]), ["r1"]);
        assert!(got(&["nul"]).is_empty());
        assert!(got(&["missing"]).is_empty());
        assert!(got(&["s", "x"]).is_empty());
        assert_eq!(text(&json!(5)).as_deref(), Some("5"));
        assert_eq!(text(&json!(false)).as_deref(), Some("false"));
        assert_eq!(text(&json!(["a"])), None);
    }

    #[test]
    fn dotted_paths_and_dotted_keys() {
        let c = json!({
            "org": {"id": "o1", "team": {"name": "red"}},
            "https://ex.com/roles": ["admin"],
            "a.b": {"c": 1},
            "flat": 1
        });
        let c = c.as_object().unwrap();
        let at = |p: &str| dotted(c, &p.split('.').collect::<Vec<_>>()).cloned();
        assert_eq!(at("org.team.name"), Some(json!("red")));
        assert_eq!(at("https://ex.com/roles"), Some(json!(["admin"])));
        assert_eq!(at("a.b.c"), Some(json!(1)));
        assert_eq!(at("org.missing"), None);
        assert_eq!(at("flat.x"), None);
        assert_eq!(dotted::<&str>(c, &[]), None);
    }
}
