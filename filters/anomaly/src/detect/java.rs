//! Java attacks: Log4j lookups that reach JNDI (Log4Shell), with nested
//! lookups resolved first as Log4j resolves them (`${${lower:j}ndi:…}`,
//! `${${::-j}ndi:…}`); serialized Java objects (the deserialization entry
//! point); and the classes and expressions exploits name to run code (OGNL,
//! SpEL, Spring's class-loader binding, commons-collections gadgets).

use aho_corasick::{AhoCorasick, MatchKind};

use super::{find, hit};
use crate::score::{Hit, Severity};

pub const RULE_JNDI: &str = "java.jndi-lookup";
pub const RULE_LOOKUP: &str = "java.log4j-lookup";
pub const RULE_SERIALIZED: &str = "java.serialized-object";
pub const RULE_EXEC: &str = "java.code-execution";
pub const RULE_CLASS: &str = "java.class-name";
pub const RULE_NESTING: &str = "java.lookup-nesting";

/// Members and classes that only appear in a request to run code: static
/// calls and context tricks of OGNL (Struts) and SpEL, Spring's
/// `class.module.classLoader` binding, deserialization gadgets, and the
/// loaders that fetch a remote bean definition.
const EXEC: &[&str] = &[
    "getruntime().exec(",
    "_memberaccess",
    "ognlcontext",
    "ognlutil",
    "xwork.methodaccessor",
    "class.module.classloader",
    "class.classloader",
    "t(java.",
    "scriptenginemanager",
    "invokertransformer",
    "instantiatetransformer",
    "chainedtransformer",
    "templatesimpl",
    "jdbcrowsetimpl",
    "filesystemxmlapplicationcontext",
    "classpathxmlapplicationcontext",
];

/// Class and package names and calls exploits use, which also appear in
/// Java code people write about (`new ProcessBuilder(cmd)`, a JDBC driver's
/// `Class.forName(`): an error alone, so a mention is detected, not blocked,
/// unless it sits inside an expression-language block (`${…}`, `#{…}`,
/// `%{…}`), where it is evaluated.
const CLASSES: &[&str] = &[
    "processbuilder(",
    "class.forname(",
    "java.lang.runtime",
    "java.lang.processbuilder",
    "java.lang.system",
    "java.lang.reflect",
    "java.lang.classloader",
    "java.io.objectinputstream",
    "java.rmi.",
    "javax.naming.",
    "com.opensymphony.xwork2",
    "sun.misc.unsafe",
];

/// Log4j's lookup prefixes other than `jndi`: on their own they read the
/// server's environment into a log line, and inside a JNDI name they carry it
/// out; `lower`, `upper` and `date` are how `jndi` itself gets spelled.
const LOG4J_PREFIXES: &[&[u8]] = &[
    b"env",
    b"sys",
    b"ctx",
    b"main",
    b"java",
    b"jvmrunargs",
    b"bundle",
    b"k8s",
    b"docker",
    b"spring",
    b"log4j",
    b"web",
    b"sd",
    b"map",
    b"marker",
    b"event",
    b"base64",
    b"lower",
    b"upper",
    b"date",
];

/// Deeper nesting is read as text. Resolving copies a lookup's value over
/// the lookup, so the cap bounds the work at this many passes over the value.
const MAX_DEPTH: usize = 32;

/// The shortest base64 that can hold a class: the 4-byte stream header, then
/// an object's class descriptor with a name, more than 15 bytes in all.
const MIN_SERIALIZED_BASE64: usize = 20;
const MIN_SERIALIZED_HEX: usize = 30;

pub struct Java {
    /// `EXEC` then `CLASSES`, searched with overlaps in one pass.
    names: AhoCorasick,
}

impl Java {
    pub fn new() -> Result<Java, String> {
        // No prefilter: a leftmost search with one measured 1.4 µs on 16 KiB
        // of prose but 300 µs more on `&#x&#x…` (a rare byte that is not
        // rare there); the plain automaton is 25 µs on both, natively.
        let names = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(EXEC.iter().chain(CLASSES))
            .map_err(|e| format!("java keywords: {e}"))?;
        Ok(Java { names })
    }

    /// `value`: normalised (lowercase, URL- and entity-decoded).
    pub fn detect(&self, value: &[u8], hits: &mut Vec<Hit>) {
        if value.contains(&b'{') {
            lookups(value, hits);
        }
        if let Some(hit) = serialized(value) {
            hits.push(hit);
        }
        // Overlapping matches: `T(java.lang.Runtime)` holds an execution
        // shape and a class name, and the execution shape decides.
        let alnum = |i: usize| value.get(i).is_some_and(u8::is_ascii_alphanumeric);
        let mut class = None;
        for m in self.names.find_overlapping_iter(value) {
            // Names are matched as words, as the prefilter splits them.
            let glued_before = alnum(m.start()) && m.start() > 0 && alnum(m.start() - 1);
            let glued_after = alnum(m.end() - 1) && alnum(m.end());
            if glued_before || glued_after {
                continue;
            }
            if m.pattern().as_usize() < EXEC.len() {
                hits.push(hit(RULE_EXEC, Severity::Critical, m.start()));
                return;
            }
            class.get_or_insert(m.start());
        }
        if let Some(at) = class {
            if expression_before(value, at) {
                hits.push(hit(RULE_EXEC, Severity::Critical, at));
            } else {
                hits.push(hit(RULE_CLASS, Severity::Error, at));
            }
        }
    }
}

/// An expression-language block opens before `at`: `${`, `#{` or `%{`
/// (SpEL, JSF EL, OGNL), so a class named there is evaluated.
fn expression_before(v: &[u8], at: usize) -> bool {
    v[..at]
        .windows(2)
        .any(|w| matches!(w, [b'$' | b'#' | b'%', b'{']))
}

/// Resolves Log4j lookups innermost first, writing each resolved lookup's
/// value in its place: `${prefix:name:-default}` becomes its default (what
/// Log4j uses when the name is unset, the usual spelling trick), and
/// `${lower:x}`, `${upper:x}`, `${date:'x'}` become `x`. A lookup that
/// closes with the prefix `jndi` is Log4Shell. A `$` left by a resolved value
/// opens a lookup with the `{` after it (`${::-$}{jndi:…}`), which is
/// stricter than Log4j, whose scan moves past a replaced value.
fn lookups(value: &[u8], hits: &mut Vec<Hit>) {
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    // (start of `${` in `out`, offset of its `{` in `value`)
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut jndi: Option<usize> = None;
    let mut lookup: Option<usize> = None;
    let mut too_deep: Option<usize> = None;
    for (i, &b) in value.iter().enumerate() {
        if b == b'{' && out.last() == Some(&b'$') {
            if open.len() < MAX_DEPTH {
                open.push((out.len() - 1, i));
            } else {
                too_deep.get_or_insert(i);
            }
            out.push(b);
            continue;
        }
        let closing = if b == b'}' { open.pop() } else { None };
        let Some((start, at)) = closing else {
            out.push(b);
            continue;
        };
        let content = out.get(start + 2..).unwrap_or_default();
        let colon = content.iter().position(|&c| c == b':');
        let prefix = colon.map_or(content, |c| &content[..c]).trim_ascii();
        if prefix == b"jndi" {
            jndi.get_or_insert(at);
            out.push(b);
            continue;
        }
        let known = LOG4J_PREFIXES.contains(&prefix);
        if known || (prefix.is_empty() && colon.is_some()) {
            lookup.get_or_insert(at);
        }
        // The resolved value: where it starts in `content`, and whether
        // quotes go (a date pattern's literal text is quoted).
        // Log4j splits off a default before it looks at the prefix, so an
        // unknown prefix (`${x:-j}`) falls back to its default too.
        let resolved = match find(content, b":-") {
            Some(d) => Some((d + 2, false)),
            None => match (prefix, colon) {
                (b"lower" | b"upper", Some(c)) => Some((c + 1, false)),
                (b"date", Some(c)) => Some((c + 1, true)),
                _ => None,
            },
        };
        let Some((from, unquote)) = resolved else {
            out.push(b);
            continue;
        };
        let case = matches!(prefix, b"lower" | b"upper");
        let mut w = start;
        let mut r = start + 2 + from;
        while r < out.len() {
            // Java's case mapping takes `ı` (U+0131) to `I`, `ſ` (U+017F) to
            // `S` and the Kelvin sign to `k`: `${upper:ı}` is an `i` to Log4j.
            let (c, n) = match (case, &out[r..]) {
                (true, [0xc4, 0xb1, ..]) => (b'i', 2),
                (true, [0xc5, 0xbf, ..]) => (b's', 2),
                (true, [0xe2, 0x84, 0xaa, ..]) => (b'k', 3),
                (_, [c, ..]) => (*c, 1),
                (_, []) => break,
            };
            r += n;
            if !(unquote && c == b'\'') {
                out[w] = c;
                w += 1;
            }
        }
        out.truncate(w);
    }
    // A lookup left open (the value was cut) still names JNDI.
    for &(start, at) in &open {
        let content = out.get(start + 2..).unwrap_or_default().trim_ascii_start();
        if content.starts_with(b"jndi:") {
            jndi.get_or_insert(at);
        }
    }
    if let Some(at) = jndi {
        hits.push(hit(RULE_JNDI, Severity::Critical, at));
    }
    if let Some(at) = lookup {
        hits.push(hit(RULE_LOOKUP, Severity::Error, at));
    }
    // Log4j has no depth limit, so what lies past the cap is unread: no log
    // template nests that deep.
    if let Some(at) = too_deep {
        hits.push(hit(RULE_NESTING, Severity::Critical, at));
    }
}

/// A value that is a serialized Java object: base64 (`rO0AB…`), hex
/// (`aced0005…`) or raw (`AC ED 00 05`, the NUL gone after normalising),
/// long enough to hold a class descriptor.
fn serialized(value: &[u8]) -> Option<Hit> {
    let v = value.trim_ascii();
    // `+` may have become a space in form encoding, but the stream header
    // and the start of the class name encode to letters and digits.
    let base64 =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b' ');
    let first_chunk = v.split(|&b| b == b' ').next().unwrap_or_default();
    let found = (v.starts_with(b"ro0ab")
        && first_chunk.len() >= MIN_SERIALIZED_BASE64
        && v.iter().all(base64))
        || (v.starts_with(b"aced0005")
            && v.len() >= MIN_SERIALIZED_HEX
            && v.iter().all(u8::is_ascii_hexdigit))
        || v.starts_with(&[0xac, 0xed, 0x05])
        || v.starts_with(&[0xac, 0xed, 0x00, 0x05]);
    found.then(|| hit(RULE_SERIALIZED, Severity::Critical, 0))
}

/// For the prefilter, on the raw value: base64 and hex are made of bytes it
/// would otherwise dismiss.
pub fn serialized_prefix(raw: &[u8]) -> bool {
    let v = raw.trim_ascii_start();
    v.get(..5).is_some_and(|h| h.eq_ignore_ascii_case(b"ro0ab"))
        || v.get(..8)
            .is_some_and(|h| h.eq_ignore_ascii_case(b"aced0005"))
}

#[cfg(test)]
#[path = "java_tests.rs"]
mod tests;
