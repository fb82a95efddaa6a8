//! Cross-site scripting: libinjection's HTML5 tokenizer (crate
//! `libinjectionrs`) parses the value in the data state and in each attribute
//! context and flags tags, attributes and URLs that run script.

use crate::score::{Hit, Severity};

pub fn detect(value: &[u8]) -> Option<Hit> {
    // Every HTML or script context libinjection flags needs one of these.
    if !value
        .iter()
        .any(|&b| matches!(b, b'<' | b'>' | b'"' | b'\'' | b'`' | b'=' | b':'))
    {
        return None;
    }
    libinjectionrs::detect_xss(value)
        .is_injection()
        .then_some(Hit {
            rule: "xss.libinjection",
            severity: Severity::Critical,
            offset: 0,
        })
}
