//! One scan per field that dismisses values no detector can flag, before
//! normalisation: most API values (`Blue mug, 350 ml`, `SKU-123`, `desc`,
//! `2026`) are made only of bytes that carry no injection syntax.

use crate::detect::words::WordSet;
use crate::detect::{java, sqli};

/// Letters, digits, space and `,`: none of them is syntax for SQL strings,
/// comments or statements, HTML, URLs, paths, file names or shells, and no
/// encoding the normaliser decodes (`%`, `&`, `\`, `+`, non-ASCII) starts
/// with one. `-` is allowed inside a word only (a shell option or SQL
/// comment starts a word). `.`, `_` and `/` are left out: file names
/// (`win.ini`, `id_rsa`), dotted hosts and catalogue names use them.
const fn inert_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b' ' || c == b',';
        b += 1;
    }
    t
}
static INERT: [bool; 256] = inert_bytes();

/// True when no detector can flag the value, decoded or not: only
/// [`INERT`] bytes and in-word `-`, and no word that SQL gives a meaning
/// (the trigger words of libinjection's gate, which cover every keyword the
/// `sqli.syntax` rules need: `or`, `and`, `union`, `select`, `order`, ...).
/// `tests/robustness.rs` checks on generated values that the full detectors
/// flag none that this dismisses.
pub fn inert(raw: &[u8]) -> bool {
    let mut prev = b' ';
    for &b in raw {
        if !(INERT[usize::from(b)] || (b == b'-' && prev.is_ascii_alphanumeric())) {
            return false;
        }
        prev = b;
    }
    !sqli::libinjection_may_flag(raw)
        && !java::serialized_prefix(raw)
        && !raw
            .split(|&b| !b.is_ascii_alphanumeric())
            .any(|w| EXTRA.contains(w))
}

/// Words the detectors read that are not among libinjection's trigger words:
/// operators and functions of `sqli.syntax`, and the one-word class names of
/// `java.code-execution`.
static EXTRA: WordSet<64> = WordSet::new(&[
    b"div",
    b"like",
    b"glob",
    b"regexp",
    b"rlike",
    b"between",
    b"sounds",
    b"escape",
    b"sleep",
    b"benchmark",
    b"extractvalue",
    b"updatexml",
    b"truncate",
    b"procedure",
    b"exists",
    b"any",
    b"isnull",
    b"notnull",
    b"ognlcontext",
    b"ognlutil",
    b"scriptenginemanager",
    b"invokertransformer",
    b"instantiatetransformer",
    b"chainedtransformer",
    b"templatesimpl",
    b"jdbcrowsetimpl",
    b"filesystemxmlapplicationcontext",
    b"classpathxmlapplicationcontext",
]);
