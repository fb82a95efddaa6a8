//! The path every rule matches on. By default it is the RFC 3986 normal
//! form, so `/public/../admin`, `//admin` and `/%61dmin` all match as
//! `/admin` whatever the HTTP connection manager was told to do; paths whose
//! meaning depends on the upstream (an encoded `/` or `\`, `..` above the
//! root, NUL) are refused instead of guessed.

use std::borrow::Cow;

use serde::Deserialize;

/// How the matched path is derived from `:path`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathNormalization {
    /// Normalise here (RFC 3986 section 6.2.2) and refuse ambiguous paths.
    #[default]
    Rfc3986,
    /// Trust Envoy's own normalisation (`normalize_path`, `merge_slashes`,
    /// `path_with_escaped_slashes_action`) and match `:path` as it arrives.
    Envoy,
}

/// Why a path is refused (answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form: it does not start with `/`.
    NotOrigin,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2F` or `%5C`: one upstream reads a separator, another does not.
    EncodedSeparator,
    /// A literal `\`, which some servers treat as `/`.
    Backslash,
    /// NUL, literal or `%00`.
    Nul,
    /// Another control character, or a byte outside ASCII.
    BadByte,
    /// `..` would climb above `/`.
    AboveRoot,
    /// `..` right after an empty segment (`/a//../b`): RFC 3986 resolves it to
    /// `/a/b`, a server that merges slashes first to `/b`.
    DotsAfterEmptySegment,
}

impl PathError {
    pub fn detail(self) -> &'static str {
        match self {
            PathError::NotOrigin => "the path does not start with `/`",
            PathError::BadEscape => "the path has a malformed percent-encoding",
            PathError::EncodedSeparator => "the path has an encoded `/` or `\\`",
            PathError::Backslash => "the path has a `\\`",
            PathError::Nul => "the path has a NUL byte",
            PathError::BadByte => "the path has a control or non-ASCII byte",
            PathError::AboveRoot => "the path climbs above `/` with `..`",
            PathError::DotsAfterEmptySegment => {
                "the path has `..` after an empty segment (`//..`), which servers resolve differently"
            }
        }
    }
}

/// `:path` split into the path and the query; a fragment is dropped.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// The first value of query parameter `name`, as written (not decoded);
/// `k` alone reads as `k=`.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// The path as the rules see it under `mode`.
pub fn derive(path: &str, mode: PathNormalization) -> Result<Cow<'_, str>, PathError> {
    match mode {
        PathNormalization::Envoy => Ok(Cow::Borrowed(path)),
        PathNormalization::Rfc3986 => normalize(path),
    }
}

/// RFC 3986 normal form: unreserved percent-encodings decoded, the others
/// upper-cased, empty segments merged, dot segments removed.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOrigin);
    }
    if is_normal(bytes)? {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(bytes)?;
    Ok(Cow::Owned(remove_dots(&decoded)?))
}

/// Already normal (the common case, checked without allocating): no `%`,
/// no empty segment, no dot segment. Errors on bytes never allowed.
fn is_normal(bytes: &[u8]) -> Result<bool, PathError> {
    let mut normal = true;
    for (i, &b) in bytes.iter().enumerate() {
        check_byte(b)?;
        if b == b'%' {
            normal = false;
        }
        if b == b'/' && i > 0 {
            normal &= bytes[i - 1] != b'/';
        }
        if b == b'.' && bytes[i - 1] == b'/' {
            let rest = &bytes[i + 1..];
            let dot_seg = rest.is_empty()
                || rest[0] == b'/'
                || (rest[0] == b'.' && (rest.len() == 1 || rest[1] == b'/'));
            normal &= !dot_seg;
        }
    }
    Ok(normal)
}

fn check_byte(b: u8) -> Result<(), PathError> {
    match b {
        0 => Err(PathError::Nul),
        b'\\' => Err(PathError::Backslash),
        b if !(0x20..0x7f).contains(&b) => Err(PathError::BadByte),
        _ => Ok(()),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of an ASCII hex digit.
pub fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            bytes.get(i + 1).copied().and_then(hex_digit),
            bytes.get(i + 2).copied().and_then(hex_digit),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = h * 16 + l;
        match v {
            0 => return Err(PathError::Nul),
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            v if is_unreserved(v) => out.push(char::from(v)),
            v => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(v >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(v & 15)]));
            }
        }
        i += 3;
    }
    Ok(out)
}

/// RFC 3986 section 5.2.4 over the segments as written, then empty segments
/// merged. A `..` that would remove an empty segment is refused: only there
/// does merging before or after resolving give different paths.
fn remove_dots(path: &str) -> Result<String, PathError> {
    let mut segs: Vec<&str> = Vec::new();
    let mut trailing = false;
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let n = parts.len();
    for (i, seg) in parts.into_iter().enumerate() {
        trailing = matches!(seg, "" | "." | "..");
        match seg {
            "." => {}
            // A trailing empty segment is the trailing slash, not a segment.
            "" if i + 1 == n => {}
            ".." => match segs.pop() {
                None => return Err(PathError::AboveRoot),
                Some("") => return Err(PathError::DotsAfterEmptySegment),
                Some(_) => {}
            },
            s => segs.push(s),
        }
    }
    segs.retain(|s| !s.is_empty());
    let mut out = String::with_capacity(path.len());
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segs.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "/x"] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn walks_are_resolved() {
        assert_eq!(n("/public/../admin").unwrap(), "/admin");
        assert_eq!(n("//admin").unwrap(), "/admin");
        assert_eq!(n("/a//b///c").unwrap(), "/a/b/c");
        assert_eq!(
            n("/users/alice/orders/../../bob/orders/1").unwrap(),
            "/users/bob/orders/1"
        );
        assert_eq!(n("/a/./b/.").unwrap(), "/a/b/");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
        assert_eq!(n("/%2e%2E/x"), Err(PathError::AboveRoot));
        assert_eq!(n("/a/%2e%2e/b").unwrap(), "/b");
        assert_eq!(n("/a%3fb").unwrap(), "/a%3Fb");
        assert_eq!(n("/a%20b").unwrap(), "/a%20b");
        assert_eq!(n("/a/").unwrap(), "/a/");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        assert_eq!(n("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::Backslash));
        assert_eq!(n("/.."), Err(PathError::AboveRoot));
        assert_eq!(n("/a/../../b"), Err(PathError::AboveRoot));
        assert_eq!(n("/a%00"), Err(PathError::Nul));
        assert_eq!(n("/a\0"), Err(PathError::Nul));
        assert_eq!(n("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(
            n("/public//../admin"),
            Err(PathError::DotsAfterEmptySegment)
        );
        assert_eq!(n("//.."), Err(PathError::DotsAfterEmptySegment));
        assert_eq!(n("/a%4"), Err(PathError::BadEscape));
        assert_eq!(n("/é"), Err(PathError::BadByte));
        assert_eq!(n("/a\tb"), Err(PathError::BadByte));
        assert_eq!(n("a/b"), Err(PathError::NotOrigin));
        assert_eq!(n(""), Err(PathError::NotOrigin));
        assert_eq!(n("*"), Err(PathError::NotOrigin));
    }

    #[test]
    fn normal_form_is_a_fixed_point() {
        for p in ["/a/../b//c/./d/", "/%41%2e/x", "/x/%7e%7E", "/a%2a"] {
            let once = n(p).unwrap();
            assert_eq!(n(&once).unwrap(), once, "{p}");
        }
    }

    #[test]
    fn target_split_drops_the_fragment() {
        assert_eq!(split_target("/a?b=1#f"), ("/a", Some("b=1")));
        assert_eq!(split_target("/a#f?x"), ("/a", None));
        assert_eq!(split_target("/a"), ("/a", None));
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("a=1&b=2&a=3", "a"), Some("1"));
        assert_eq!(query_param("flag&b=", "flag"), Some(""));
        assert_eq!(query_param("b=", "b"), Some(""));
        assert_eq!(query_param("x=1", "y"), None);
    }

    #[test]
    fn envoy_mode_trusts_the_path() {
        assert_eq!(
            derive("/a/../b", PathNormalization::Envoy).unwrap(),
            "/a/../b"
        );
    }
}
