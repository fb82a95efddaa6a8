//! Protocol anomalies: request shapes that a well-behaved client does not
//! send and that smuggling, desync and parser-confusion attacks need.
//! Unlike the other detectors it reads the request as a whole.

use crate::request::View;
use crate::score::{Hit, Severity};

/// Headers that must appear at most once (RFC 9110/9112); two copies are how
/// front and back ends are made to disagree.
const SINGLE: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "authorization",
    "content-type",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 8192,
            max_headers: 100,
        }
    }
}

/// Findings as (field, hit).
pub fn detect(view: &View, limits: Limits, out: &mut Vec<(String, Hit)>) {
    let mut push = |field: &str, rule: &'static str, severity: Severity, offset: usize| {
        out.push((
            field.to_string(),
            Hit {
                rule,
                severity,
                offset,
            },
        ))
    };
    if view.method.is_empty() || !view.method.iter().all(|&b| is_tchar(b)) {
        push("method", "protocol.bad-method", Severity::Error, 0);
    }
    if let Some(at) = view.raw_path.iter().position(|&b| is_ctl(b) || b == b' ') {
        push("path", "protocol.control-char", Severity::Error, at);
    }
    if let Some(at) = bad_percent(&view.raw_path) {
        push(
            "path",
            "protocol.bad-percent-encoding",
            Severity::Notice,
            at,
        );
    }
    if let Some(at) = overlong_utf8(&view.raw_path) {
        push("path", "protocol.overlong-utf8", Severity::Critical, at);
    }
    if let Some(at) = find_ci(&view.raw_path, b"%00") {
        push("path", "protocol.nul", Severity::Error, at);
    }
    if view.headers.len() > limits.max_headers {
        push("headers", "protocol.too-many-headers", Severity::Warning, 0);
    }
    let mut cl: Option<&[u8]> = None;
    let mut te = false;
    for (n, (name, value)) in view.headers.iter().enumerate() {
        // Named only for a finding: most requests have none.
        let field = || {
            format!(
                "header.{}",
                crate::request::display_name(name.as_bytes(), 64)
            )
        };
        if value.len() > limits.max_header_bytes {
            push(&field(), "protocol.oversized-header", Severity::Warning, 0);
        }
        if let Some(at) = value.iter().position(|&b| is_ctl(b)) {
            push(&field(), "protocol.control-char", Severity::Error, at);
        }
        if !name.starts_with(':') && !name.bytes().all(is_tchar) {
            push(&field(), "protocol.bad-header-name", Severity::Error, 0);
        }
        let single = SINGLE.contains(&name.as_str());
        if single && view.headers[..n].iter().any(|(m, _)| m == name) {
            push(&field(), "protocol.duplicate-header", Severity::Error, 0);
        }
        match name.as_str() {
            "content-length" => {
                if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                    push(&field(), "protocol.bad-content-length", Severity::Error, 0);
                }
                cl = Some(value);
            }
            "transfer-encoding" => {
                te = true;
                if !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    push(
                        &field(),
                        "protocol.bad-transfer-encoding",
                        Severity::Error,
                        0,
                    );
                }
            }
            _ => {}
        }
    }
    if te && cl.is_some() {
        push(
            "header.content-length",
            "protocol.content-length-with-transfer-encoding",
            Severity::Critical,
            0,
        );
    }
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Control characters other than horizontal tab.
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// A `%` not followed by two hex digits (or IIS `%uXXXX`).
pub fn bad_percent(s: &[u8]) -> Option<usize> {
    s.iter().enumerate().find_map(|(i, &b)| {
        if b != b'%' {
            return None;
        }
        let two = s
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        let iis = matches!(s.get(i + 1), Some(b'u' | b'U'))
            && s.get(i + 2..i + 6)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        (!two && !iis).then_some(i)
    })
}

/// Percent-encoded overlong UTF-8 (`%c0%af` is `/`), used to slip `/` and `.`
/// past decoders that check before decoding.
pub fn overlong_utf8(s: &[u8]) -> Option<usize> {
    ["%c0%", "%c1%", "%e0%80", "%e0%81", "%f0%80"]
        .iter()
        .filter_map(|p| find_ci(s, p.as_bytes()))
        .min()
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}
