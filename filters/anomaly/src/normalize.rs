//! Transforms applied to a field before detection, in the order servers and
//! browsers decode input. Every transform is a single left-to-right pass whose
//! output is never longer than its input, so the whole pipeline is linear in
//! the field size and cannot grow an attacker's value.

use std::borrow::Cow;

/// How the first URL-decoding treats `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// Form and query encoding: `+` is a space.
    Space,
    /// Paths and other fields: `+` stays `+`.
    Keep,
}

/// The full pipeline, in order:
/// 1. URL-decoding (`%XX`, IIS `%uXXXX`), `+` per `plus`;
/// 2. URL-decoding again (`%XX`, `%uXXXX`), for double-encoded input;
/// 3. HTML entities (`&lt;`, `&#60;`, `&#x3c;`, ...);
/// 4. JS escapes (`\uXXXX`, `\u{X..}`, `\xNN`), full-width ASCII and
///    overlong two-byte UTF-8 to ASCII;
/// 5. NUL removal;
/// 6. ASCII lowercase.
///
/// Path normalisation ([`normalize_path`]) is separate: the traversal detector
/// needs to see the `../` that normalising removes.
pub fn normalize(input: &[u8], plus: Plus) -> Vec<u8> {
    // Each step copies only when its input holds something it decodes.
    let mut cur: Cow<'_, [u8]> = Cow::Borrowed(input);
    if needs_url_decode(&cur, plus) {
        cur = Cow::Owned(url_decode(&cur, plus));
    }
    if needs_url_decode(&cur, Plus::Keep) {
        cur = Cow::Owned(url_decode(&cur, Plus::Keep));
    }
    if cur.contains(&b'&') {
        cur = Cow::Owned(html_entities(&cur));
    }
    if needs_js_escapes(&cur) {
        cur = Cow::Owned(js_escapes(&cur));
    }
    if cur.contains(&0) {
        cur = Cow::Owned(remove_nul(&cur));
    }
    let mut out = cur.into_owned();
    out.make_ascii_lowercase();
    out
}

fn needs_url_decode(input: &[u8], plus: Plus) -> bool {
    input
        .iter()
        .any(|&b| b == b'%' || (b == b'+' && plus == Plus::Space))
}

fn needs_js_escapes(input: &[u8]) -> bool {
    input
        .iter()
        .any(|&b| matches!(b, b'\\' | 0xC0 | 0xC1 | 0xEF))
}

fn hex(b: u8) -> Option<u32> {
    meshward_shared::facts::path::hex_digit(b).map(u32::from)
}

/// `n` hex digits at `s[at..]`, or None.
fn hex_n(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = s.get(at..at.checked_add(n)?)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &b| Some(acc << 4 | hex(b)?))
}

/// Push a code point as UTF-8; full-width ASCII (U+FF01..U+FF5E) becomes its
/// ASCII twin, as IIS's best-fit mapping does. Invalid code points become `?`.
fn push_char(out: &mut Vec<u8>, cp: u32) {
    let cp = if (0xFF01..=0xFF5E).contains(&cp) {
        cp - 0xFF01 + 0x21
    } else {
        cp
    };
    match char::from_u32(cp) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        None => out.push(b'?'),
    }
}

/// Percent-decoding. `%XX` gives the byte, `%uXXXX` the code point as UTF-8;
/// a `%` not followed by valid hex is kept as is (the protocol detector reports it).
pub fn url_decode(input: &[u8], plus: Plus) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let Some(v) = hex_n(input, i + 1, 2) {
                out.push(v as u8);
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                if let Some(cp) = hex_n(input, i + 2, 4) {
                    push_char(&mut out, cp);
                    i += 6;
                    continue;
                }
            }
        }
        out.push(if b == b'+' && plus == Plus::Space {
            b' '
        } else {
            b
        });
        i += 1;
    }
    out
}

const NAMED_ENTITIES: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"amp", b'&'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"sol", b'/'),
    (b"bsol", b'\\'),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"colon", b':'),
    (b"semi", b';'),
    (b"equals", b'='),
    (b"grave", b'`'),
    (b"tab", b'\t'),
    (b"newline", b'\n'),
    (b"nbsp", b' '),
];

/// HTML character references: the named ones above (case-insensitive, `;`
/// required), and numeric `&#NNN;` / `&#xHH;` with the `;` optional, as
/// browsers accept them. At most 7 digits are read, so each reference is O(1).
pub fn html_entities(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'&' {
            if let Some((cp, len)) = numeric_entity(input, i) {
                push_char(&mut out, cp);
                i += len;
                continue;
            }
            if let Some((c, len)) = named_entity(input, i) {
                out.push(c);
                i += len;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn numeric_entity(s: &[u8], at: usize) -> Option<(u32, usize)> {
    if s.get(at + 1) != Some(&b'#') {
        return None;
    }
    let (radix, start) = match s.get(at + 2) {
        Some(b'x' | b'X') => (16, at + 3),
        _ => (10, at + 2),
    };
    let mut end = start;
    let mut cp: u32 = 0;
    while let Some(&d) = s.get(end) {
        let v = match radix {
            16 => hex(d),
            _ => d.is_ascii_digit().then(|| u32::from(d - b'0')),
        };
        let Some(v) = v else { break };
        if end - start >= 7 {
            return None;
        }
        cp = cp * radix + v;
        end += 1;
    }
    if end == start {
        return None;
    }
    if s.get(end) == Some(&b';') {
        end += 1;
    }
    Some((cp, end - at))
}

fn named_entity(s: &[u8], at: usize) -> Option<(u8, usize)> {
    let rest = s.get(at + 1..)?;
    NAMED_ENTITIES.iter().find_map(|(name, c)| {
        let candidate = rest.get(..name.len())?;
        (candidate.eq_ignore_ascii_case(name) && rest.get(name.len()) == Some(&b';'))
            .then_some((*c, name.len() + 2))
    })
}

/// JavaScript escapes: `\uXXXX`, `\u{X..}` (up to 6 digits) and `\xNN`.
/// Other backslashes are kept (they matter to SQL and to the traversal check).
/// Also maps full-width ASCII written directly as UTF-8 to ASCII.
pub fn js_escapes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'\\' {
            match input.get(i + 1) {
                Some(b'u') => {
                    if let Some(cp) = hex_n(input, i + 2, 4) {
                        push_char(&mut out, cp);
                        i += 6;
                        continue;
                    }
                    if input.get(i + 2) == Some(&b'{') {
                        if let Some((cp, len)) = braced_hex(input, i + 3) {
                            push_char(&mut out, cp);
                            i += 3 + len;
                            continue;
                        }
                    }
                }
                Some(b'x') => {
                    if let Some(v) = hex_n(input, i + 2, 2) {
                        out.push(v as u8);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        // Overlong two-byte UTF-8 (C0/C1 + continuation) for an ASCII byte:
        // `%c0%af` is `/` to decoders that do not reject it (old IIS).
        if b == 0xC0 || b == 0xC1 {
            if let Some(&b1) = input.get(i + 1) {
                if b1 & 0xC0 == 0x80 {
                    out.push(((b & 1) << 6) | (b1 & 0x3F));
                    i += 2;
                    continue;
                }
            }
        }
        // Full-width ASCII: U+FF01..U+FF5E is EF BC 81..EF BD 9E in UTF-8.
        if b == 0xEF {
            if let (Some(&b1), Some(&b2)) = (input.get(i + 1), input.get(i + 2)) {
                let cp = (u32::from(b & 0x0F) << 12)
                    | (u32::from(b1 & 0x3F) << 6)
                    | u32::from(b2 & 0x3F);
                if b1 & 0xC0 == 0x80 && b2 & 0xC0 == 0x80 && (0xFF01..=0xFF5E).contains(&cp) {
                    out.push((cp - 0xFF01 + 0x21) as u8);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// `X..}` after `\u{`: the code point and the length including the `}`.
fn braced_hex(s: &[u8], at: usize) -> Option<(u32, usize)> {
    let mut cp = 0u32;
    for n in 0..7 {
        match s.get(at + n) {
            Some(b'}') if n > 0 => return Some((cp, n + 1)),
            Some(&d) if n < 6 => cp = cp << 4 | hex(d)?,
            _ => return None,
        }
    }
    None
}

/// Drop NUL bytes, which C-based backends treat as the end of a string.
pub fn remove_nul(input: &[u8]) -> Vec<u8> {
    input.iter().copied().filter(|&b| b != 0).collect()
}

/// A path with backslashes read as `/`, empty and `.` segments removed and
/// `..` resolved. Also says whether a `..` climbed above the root, which a
/// legitimate path never needs.
#[derive(Debug, PartialEq, Eq)]
pub struct NormalPath {
    pub path: Vec<u8>,
    pub escaped_root: bool,
}

pub fn normalize_path(input: &[u8]) -> NormalPath {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut escaped_root = false;
    let replaced: Vec<u8> = input
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    for seg in replaced.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    escaped_root = true;
                }
            }
            s => segments.push(s),
        }
    }
    let mut path = Vec::with_capacity(input.len());
    if replaced.first() == Some(&b'/') {
        path.push(b'/');
    }
    for (n, seg) in segments.iter().enumerate() {
        if n > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(seg);
    }
    if replaced.len() > 1 && replaced.last() == Some(&b'/') && !segments.is_empty() {
        path.push(b'/');
    }
    NormalPath { path, escaped_root }
}
