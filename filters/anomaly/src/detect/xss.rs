//! Cross-site scripting, over the normalised value:
//! - `xss.libinjection`: libinjection's HTML5 tokenizer (crate
//!   `libinjectionrs`) parses the value in the data state and in each
//!   attribute context and flags tags, attributes and URLs that run script;
//! - `xss.script-uri`: a value that is a `javascript:`/`vbscript:` URL or an
//!   HTML `data:` URL, which runs when reflected into `href` or `src`;
//! - `xss.event-handler`: a quote that closes an attribute followed by an
//!   `on...=` handler (`" onmouseover=...`), which needs no `<`.

use crate::score::{Hit, Severity};

pub fn detect(value: &[u8]) -> Option<Hit> {
    // Every context these rules flag needs one of these.
    if !value
        .iter()
        .any(|&b| matches!(b, b'<' | b'>' | b'"' | b'\'' | b'`' | b'=' | b':'))
    {
        return None;
    }
    if libinjection_may_flag(value) && libinjectionrs::detect_xss(value).is_injection() {
        return Some(hit("xss.libinjection", 0));
    }
    if let Some(at) = script_uri(value) {
        return Some(hit("xss.script-uri", at));
    }
    event_handler(value).map(|at| hit("xss.event-handler", at))
}

/// libinjection's XSS flags a tag (needs `<`) or an attribute with a value
/// (needs `=`); a scheme alone (`javascript:` with no `=`) is not flagged by
/// it in any context (that is `xss.script-uri`'s job), nor are quotes alone.
/// `tests/robustness.rs` checks this against libinjection itself.
pub fn libinjection_may_flag(value: &[u8]) -> bool {
    value.iter().any(|&b| b == b'<' || b == b'=')
}

fn hit(rule: &'static str, offset: usize) -> Hit {
    Hit {
        rule,
        severity: Severity::Critical,
        offset,
    }
}

/// Browsers drop whitespace and control characters inside the scheme
/// (`java\tscript:`), so they are skipped when matching it.
fn script_uri(value: &[u8]) -> Option<usize> {
    let start = value
        .iter()
        .position(|&b| b > b' ' && b != b'"' && b != b'\'')?;
    let squeezed: Vec<u8> = value[start..]
        .iter()
        .copied()
        .filter(|&b| b > b' ')
        .take(32)
        .collect();
    [
        "javascript:",
        "vbscript:",
        "livescript:",
        "data:text/html",
        "data:image/svg+xml",
    ]
    .iter()
    .any(|p| squeezed.starts_with(p.as_bytes()))
    .then_some(start)
}

/// `"` or `'` then blanks or `/`, then `on` + letters + `=`.
fn event_handler(value: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < value.len() {
        if matches!(value[i], b'"' | b'\'') {
            let mut j = i + 1;
            let mut gap = false;
            while value
                .get(j)
                .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
            {
                j += 1;
                gap = true;
            }
            if gap && value.get(j..j + 2) == Some(b"on") {
                let mut k = j + 2;
                while value.get(k).is_some_and(u8::is_ascii_lowercase) {
                    k += 1;
                }
                while value.get(k).is_some_and(u8::is_ascii_whitespace) {
                    k += 1;
                }
                if k >= j + 5 && value.get(k) == Some(&b'=') {
                    return Some(j);
                }
            }
        }
        i += 1;
    }
    None
}
