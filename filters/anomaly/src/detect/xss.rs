//! Cross-site scripting, over the normalised value:
//! - `xss.libinjection`: libinjection's HTML5 tokenizer (crate
//!   `libinjectionrs`) parses the value in the data state and in each
//!   attribute context and flags tags, attributes and URLs that run script;
//! - `xss.script-uri`: a value that is a `javascript:`/`vbscript:` URL or an
//!   HTML `data:` URL, which runs when reflected into `href` or `src`;
//! - `xss.event-handler`: a quote that closes an attribute followed by an
//!   `on...=` handler (`" onmouseover=...`), which needs no `<`;
//! - `xss.template-expression`: a client-side template expression that
//!   reaches the `Function` constructor (`{{constructor.constructor('…')()}}`)
//!   or a JS template substitution that calls a script sink
//!   (`${alert(1)}`); a plain placeholder (`{{user.name}}`, `${id}`) is not
//!   flagged.

use crate::score::{Hit, Severity};

pub fn detect(value: &[u8]) -> Option<Hit> {
    if let Some(at) = template_expression(value) {
        return Some(hit("xss.template-expression", at));
    }
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

/// Script sinks a template expression calls to run code or leak data.
const SINKS: &[&[u8]] = &[
    b"alert(",
    b"prompt(",
    b"confirm(",
    b"eval(",
    b"print(",
    b"fetch(",
    b"atob(",
    b"settimeout(",
    b"setinterval(",
    b"function(",
    b"import(",
    b"document.",
    b"window.",
    b"constructor",
];

/// `{{ … }}` (AngularJS, Vue) or `${ … }` (template literals) holding a
/// sink: the offset of the opening brace.
fn template_expression(value: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = value.get(from..)?.iter().position(|&b| b == b'{') {
        let open = from + rel;
        from = open + 1;
        let opener = match (
            open.checked_sub(1).and_then(|p| value.get(p)),
            value.get(open + 1),
        ) {
            (_, Some(b'{')) => b"}}".as_slice(),
            (Some(b'$'), _) => b"}".as_slice(),
            _ => continue,
        };
        let body_start = open + if opener.len() == 2 { 2 } else { 1 };
        let body = value.get(body_start..).unwrap_or_default();
        let end = body
            .windows(opener.len())
            .position(|w| w == opener)
            .unwrap_or(body.len());
        let body = &body[..end];
        // Calls only: `{{price}}` and `${id}` are placeholders.
        if (body.contains(&b'(') || body.contains(&b'`'))
            && SINKS.iter().any(|s| body.windows(s.len()).any(|w| w == *s))
        {
            let at = if opener.len() == 1 { open - 1 } else { open };
            return Some(at);
        }
        from = body_start + end;
    }
    None
}
