//! Finding a token in the configured locations, and removing it again.

use crate::config::TokenLocation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    /// Index into the provider's `locations`.
    pub location: usize,
}

/// First location that holds a token. `header` reads one request header.
pub fn find_token(
    locations: &[TokenLocation],
    header: &mut dyn FnMut(&str) -> Option<String>,
    query: Option<&str>,
) -> Option<Found> {
    for (i, loc) in locations.iter().enumerate() {
        let token = match loc {
            TokenLocation::Header { name, prefix } => {
                header(name).and_then(|v| strip_prefix(&v, prefix))
            }
            TokenLocation::Param(name) => query.and_then(|q| query_param(q, name)),
        };
        if let Some(token) = token {
            return Some(Found { token, location: i });
        }
    }
    None
}

/// Auth schemes are case-insensitive (RFC 9110 §11.1), so is the prefix.
fn strip_prefix(value: &str, prefix: &str) -> Option<String> {
    if !has_prefix(value, prefix) {
        return None;
    }
    let token = value.get(prefix.len()..)?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn query_param(query: &str, name: &str) -> Option<String> {
    meshward_shared::facts::path::query_param(query, name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Whether a header value starts with the location's scheme prefix.
pub fn has_prefix(value: &str, prefix: &str) -> bool {
    value
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// A query parameter name as an upstream framework reads it (percent-decoded).
fn decoded_name(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `:path` without every occurrence of the `name` query parameter, however
/// its name is percent-encoded (`access%5Ftoken` is `access_token` upstream);
/// `None` when it has no such parameter (the common case, answered without
/// copying the path).
pub fn removed_param(path: &str, name: &str) -> Option<String> {
    let (base, query) = meshward_shared::facts::path::split_target(path);
    let query = query?;
    if !query
        .split('&')
        .any(|pair| decoded_name(pair.split('=').next().unwrap_or("")) == name)
    {
        return None;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| decoded_name(pair.split('=').next().unwrap_or("")) != name)
        .collect();
    Some(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer() -> Vec<TokenLocation> {
        vec![
            TokenLocation::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            TokenLocation::Param("access_token".into()),
        ]
    }

    #[test]
    fn header_prefix_case_insensitive() {
        let mut h = |_: &str| Some("bearer abc.def.ghi".to_string());
        assert_eq!(
            find_token(&bearer(), &mut h, None).unwrap().token,
            "abc.def.ghi"
        );
        let mut h = |_: &str| Some("Basic Zm9v".to_string());
        assert_eq!(find_token(&bearer(), &mut h, None), None);
        let mut h = |_: &str| Some("Bearer ".to_string());
        assert_eq!(find_token(&bearer(), &mut h, None), None);
        let mut h = |_: &str| Some("B".to_string());
        assert_eq!(find_token(&bearer(), &mut h, None), None);
    }

    #[test]
    fn param_location() {
        let mut none = |_: &str| None;
        let f = find_token(&bearer(), &mut none, Some("a=1&access_token=x.y.z")).unwrap();
        assert_eq!((f.token.as_str(), f.location), ("x.y.z", 1));
        assert_eq!(
            find_token(&bearer(), &mut none, Some("access_token=")),
            None
        );
    }

    /// The path as it goes upstream.
    fn remove_param(path: &str, name: &str) -> String {
        removed_param(path, name).unwrap_or_else(|| path.to_string())
    }

    #[test]
    fn removes_param() {
        assert_eq!(
            remove_param("/a?access_token=t&b=2", "access_token"),
            "/a?b=2"
        );
        assert_eq!(remove_param("/a?access_token=t", "access_token"), "/a");
        assert_eq!(remove_param("/a", "access_token"), "/a");
        assert_eq!(
            remove_param(
                "/a?access%5Ftoken=x&access_token=y&%61ccess_token=z&k=1",
                "access_token"
            ),
            "/a?k=1",
            "every spelling an upstream decodes to the name"
        );
    }

    #[test]
    fn a_path_without_the_parameter_is_not_copied() {
        assert_eq!(removed_param("/a", "access_token"), None);
        assert_eq!(removed_param("/a?b=1&c=2", "access_token"), None);
        assert_eq!(
            removed_param("/a?b=1&access%5Ftoken=t", "access_token").as_deref(),
            Some("/a?b=1")
        );
    }
}
