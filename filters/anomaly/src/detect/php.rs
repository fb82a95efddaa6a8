//! PHP injection: code sent for an `eval`, an `include` or an upload to run.
//! A PHP open tag, a call of a function that runs commands or code or
//! decodes a payload (also through PHP's variable-function spellings,
//! `(system)('id')`, `"system"('id')`), a serialized PHP object (the input
//! of an object-injection gadget), and superglobals or variable functions.

use super::hit;
use super::words::WordSet;
use crate::score::{Hit, Severity};

pub const RULE_OPEN_TAG: &str = "php.open-tag";
pub const RULE_CALL: &str = "php.function-call";
pub const RULE_SERIALIZED: &str = "php.serialized-object";
pub const RULE_SUPERGLOBAL: &str = "php.superglobal";
pub const RULE_VARIABLE_CALL: &str = "php.variable-function";

/// Functions with no use outside PHP code: any call counts.
static PHP_ONLY: WordSet<128> = WordSet::new(&[
    b"shell_exec",
    b"passthru",
    b"proc_open",
    b"pcntl_exec",
    b"phpinfo",
    b"php_uname",
    b"base64_decode",
    b"str_rot13",
    b"gzinflate",
    b"gzuncompress",
    b"gzdecode",
    b"create_function",
    b"call_user_func",
    b"call_user_func_array",
    b"file_put_contents",
    b"file_get_contents",
    b"fsockopen",
    b"move_uploaded_file",
    b"unserialize",
    b"highlight_file",
    b"show_source",
    b"ini_set",
    b"include_once",
    b"require_once",
    b"array_map",
    b"array_filter",
    b"preg_replace",
    b"parse_str",
    b"posix_kill",
]);

/// Also English words or other languages' functions: only a call whose
/// argument opens like PHP's (a quote, a variable, a backtick or a nested
/// call) counts, so "system(s)" and "include(s)" stay prose.
static SHARED: WordSet<32> = WordSet::new(&[
    b"system",
    b"exec",
    b"eval",
    b"assert",
    b"include",
    b"require",
    b"readfile",
    b"chr",
    b"popen",
    b"symlink",
    b"extract",
    b"usort",
]);

const SUPERGLOBALS: &[&[u8]] = &[
    b"$_get",
    b"$_post",
    b"$_request",
    b"$_server",
    b"$_cookie",
    b"$_files",
    b"$_env",
    b"$_session",
    b"$globals",
];

/// `value`: normalised (lowercase, URL- and entity-decoded).
pub fn detect(value: &[u8], hits: &mut Vec<Hit>) {
    // Each rule needs a byte most values lack; `contains` on bytes is a
    // memchr, far cheaper than the rule's own scan.
    if let Some(at) = value.contains(&b'<').then(|| open_tag(value)).flatten() {
        hits.push(hit(RULE_OPEN_TAG, at.1, at.0));
    }
    let paren = value.contains(&b'(');
    let call = if paren { dangerous_call(value) } else { None };
    let call = call.or_else(|| {
        (value.contains(&b'\'') || value.contains(&b'"') || value.contains(&b'$'))
            .then(|| include_statement(value))
            .flatten()
    });
    if let Some(at) = call {
        hits.push(hit(RULE_CALL, Severity::Critical, at));
    }
    if paren {
        if let Some(at) = variable_call(value) {
            hits.push(hit(RULE_VARIABLE_CALL, Severity::Error, at));
        }
    }
    if value.contains(&b'{') {
        if let Some(at) = serialized_object(value) {
            hits.push(hit(RULE_SERIALIZED, Severity::Critical, at));
        }
    }
    if value.contains(&b'$') {
        if let Some(at) = superglobal(value) {
            hits.push(hit(RULE_SUPERGLOBAL, Severity::Error, at));
        }
    }
}

fn ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `<?php` (which PHP reads only before a blank) and `<?=` run code; a short
/// tag `<? ` only where `short_open_tag` is on, so it is an error, and only
/// before a statement (`<? exec(`, `<? echo $x`), not in prose.
fn open_tag(v: &[u8]) -> Option<(usize, Severity)> {
    let mut from = 0;
    let mut short = None;
    while let Some(rel) = v.get(from..)?.iter().position(|&b| b == b'<') {
        let at = from + rel;
        if v.get(at + 1) != Some(&b'?') {
            from = at + 1;
            continue;
        }
        let rest = v.get(at + 2..).unwrap_or_default();
        if rest.starts_with(b"=")
            || (rest.starts_with(b"php") && rest.get(3).is_some_and(u8::is_ascii_whitespace))
        {
            return Some((at, Severity::Critical));
        }
        if short.is_none() && rest.first().is_some_and(u8::is_ascii_whitespace) {
            let word = skip_blanks(v, at + 2);
            let end = (word..v.len()).find(|&k| !ident(v[k])).unwrap_or(v.len());
            let next = v.get(skip_blanks(v, end));
            if end > word && matches!(next, Some(b'(' | b'$' | b'\'' | b'"' | b'`')) {
                short = Some((at, Severity::Error));
            }
        }
        from = at + 2;
    }
    short
}

/// Blanks and comments skipped between two tokens, at most this many bytes:
/// the comments that split a call are short, and the bound keeps every
/// value linear (a chain of comments would otherwise be rescanned from each
/// `(`, `<?` or `$` inside it).
const MAX_BLANKS: usize = 128;
/// Longer class names in a serialized object are not looked at.
const MAX_CLASS_NAME: usize = 256;

/// Blanks and comments (`/*…*/`, `#…` and `//…` to the end of the line)
/// after `i`; where the next token starts, or where the bound stopped.
fn skip_blanks(v: &[u8], start: usize) -> usize {
    let limit = (start + MAX_BLANKS).min(v.len());
    let mut i = start;
    while i < limit {
        let rest = &v[i..limit];
        let skip = if rest[0].is_ascii_whitespace() {
            Some(1)
        } else if rest.starts_with(b"/*") {
            rest.windows(2)
                .skip(2)
                .position(|w| w == b"*/")
                .map(|e| e + 4)
        } else if rest.starts_with(b"#") || rest.starts_with(b"//") {
            rest.iter().position(|&b| b == b'\n').map(|e| e + 1)
        } else {
            return i;
        };
        match skip {
            Some(n) => i += n,
            None => return i,
        }
    }
    i
}

/// Blanks and comments that end at `i` (as [`skip_blanks`], read backwards:
/// a line comment is found from the newline after it); where they start.
fn skip_blanks_back(v: &[u8], end: usize) -> usize {
    let limit = end.saturating_sub(MAX_BLANKS);
    let mut i = end;
    while i > limit {
        let b = v[i - 1];
        if b == b'\n' {
            i -= 1;
            // `name#x` or `name//x` before the newline: go back over it.
            let line = &v[limit..i];
            let from = line.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
            let line = &line[from..];
            let comment = line
                .iter()
                .position(|&c| c == b'#')
                .into_iter()
                .chain(line.windows(2).position(|w| w == b"//"))
                .min();
            if let Some(c) = comment {
                i = limit + from + c;
            }
        } else if b.is_ascii_whitespace() {
            i -= 1;
        } else if i >= limit + 2 && &v[i - 2..i] == b"*/" {
            match v[limit..i - 2].windows(2).rposition(|w| w == b"/*") {
                Some(open) => i = limit + open,
                None => return i,
            }
        } else {
            return i;
        }
    }
    i
}

/// The first call of a listed function, found from the word before each
/// `(` (`system('id')`, `shell_exec ($c)`, `\system('id')`, `(system)('id')`,
/// `"system"('id')`), but not a method (`$db->exec(`, `cursor.exec(`).
/// Reading back from each `(` keeps prose with few parentheses cheap.
fn dangerous_call(v: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = v.get(from..)?.iter().position(|&b| b == b'(') {
        let paren = from + rel;
        from = paren + 1;
        let mut end = skip_blanks_back(v, paren);
        // `(system)(…)` and `"system"(…)`: the name closed, then the call.
        let closer = end.checked_sub(1).map(|k| v[k]);
        if matches!(closer, Some(b')' | b'\'' | b'"')) {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && ident(v[start - 1]) {
            start -= 1;
        }
        if start == end {
            continue;
        }
        let before = start.checked_sub(1).map(|k| v[k]);
        match (closer, before) {
            (Some(b')'), Some(b'(')) => {}
            (Some(q @ (b'\'' | b'"')), Some(o)) if o == q => {}
            (Some(b')' | b'\'' | b'"'), _) => continue,
            _ => {}
        }
        let name = &v[start..end];
        let php_only = PHP_ONLY.contains(name);
        if !php_only && !SHARED.contains(name) {
            continue;
        }
        // A method or a property (`$db->exec(`, `cursor.exec(`, `a::eval(`)
        // of another language; PHP's own functions count after anything. A
        // `.` after a string or a blank is PHP's concatenation (`'a'.system(`).
        let member = match before {
            Some(b'.') => {
                start >= 2 && (matches!(v[start - 2], b')' | b']') || ident(v[start - 2]))
            }
            Some(b'>' | b':' | b'$' | b'-') => true,
            _ => false,
        };
        if !php_only && member {
            continue;
        }
        let arg = skip_blanks(v, paren + 1);
        let called = if is_include(name) {
            include_target(v, arg)
        } else {
            php_only || php_argument(v, arg)
        };
        if called {
            return Some(start);
        }
    }
    None
}

/// `include` and `require` (and their `_once` forms) are statements: what
/// they load needs no parentheses (`include 'http://…/x.txt';`). Found by
/// reading back from each quote or `$`, which prose has far fewer of than
/// the letters the words start with.
fn include_statement(v: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = v
        .get(from..)?
        .iter()
        .position(|&b| matches!(b, b'\'' | b'"' | b'$'))
    {
        let target = from + rel;
        from = target + 1;
        let end = skip_blanks_back(v, target);
        if end == target {
            continue;
        }
        let mut start = end;
        while start > 0 && ident(v[start - 1]) {
            start -= 1;
        }
        let glued = start > 0 && ident(v[start - 1]);
        if !glued && is_include(&v[start..end]) && include_target(v, target) {
            return Some(start);
        }
    }
    None
}

/// An argument that opens as PHP code: a string, a variable, a backtick
/// command, PHP's `@`, `~` or an extra parenthesis, or a nested call of a
/// listed function (`base64_decode(`, `chr(`; not `isinstance(`).
fn php_argument(v: &[u8], at: usize) -> bool {
    match v.get(at) {
        Some(b'\'' | b'"' | b'$' | b'`' | b'@' | b'~' | b'(') => true,
        Some(&b) if ident(b) => {
            let end = (at..v.len()).find(|&k| !ident(v[k])).unwrap_or(v.len());
            let name = &v[at..end];
            (PHP_ONLY.contains(name) || SHARED.contains(name))
                && v.get(skip_blanks(v, end)) == Some(&b'(')
        }
        _ => false,
    }
}

/// What `include` and `require` (and their `_once` forms) load: a variable,
/// or a string naming a URL or a PHP file. Node's `require('express')` is not
/// one.
fn include_target(v: &[u8], at: usize) -> bool {
    match v.get(at) {
        Some(b'$') => v
            .get(at + 1)
            .is_some_and(|&b| ident(b) && !b.is_ascii_digit()),
        Some(&q @ (b'\'' | b'"')) => {
            let rest = v.get(at + 1..).unwrap_or_default();
            let Some(len) = rest.iter().take(MAX_CLASS_NAME).position(|&b| b == q) else {
                return false;
            };
            let path = &rest[..len];
            super::contains(path, b"://")
                || [&b".php"[..], b".phtml", b".inc", b".txt"]
                    .iter()
                    .any(|ext| path.ends_with(ext))
        }
        _ => false,
    }
}

fn is_include(name: &[u8]) -> bool {
    matches!(
        name,
        b"include" | b"require" | b"include_once" | b"require_once"
    )
}

/// `$name(` or `$$name(`: PHP calls the function named by the variable.
fn variable_call(v: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = v.get(from..)?.iter().position(|&b| b == b'$') {
        let at = from + rel;
        let mut i = at + 1;
        while v.get(i) == Some(&b'$') {
            i += 1;
        }
        let name_start = i;
        while v.get(i).is_some_and(|&b| ident(b)) {
            i += 1;
        }
        let named = i > name_start && !v[name_start].is_ascii_digit();
        if named && v.get(skip_blanks(v, i)) == Some(&b'(') {
            return Some(at);
        }
        from = i.max(at + 1);
    }
    None
}

/// `O:8:"stdClass":1:{` (or `C:` for a class with its own format), with the
/// class name as long as its declared length.
fn serialized_object(v: &[u8]) -> Option<usize> {
    let digits = |mut i: usize| {
        let s = i;
        while v.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > s && i - s <= 6).then_some((s, i))
    };
    for at in 0..v.len().saturating_sub(4) {
        if !matches!(v[at], b'o' | b'c') || v.get(at + 1) != Some(&b':') {
            continue;
        }
        if at > 0 && ident(v[at - 1]) {
            continue;
        }
        // PHP 5 reads a sign before the length (`O:+8:`).
        let first = at + 2 + usize::from(v.get(at + 2) == Some(&b'+'));
        let Some((s, e)) = digits(first) else {
            continue;
        };
        let Ok(len) = std::str::from_utf8(&v[s..e])
            .unwrap_or("x")
            .parse::<usize>()
        else {
            continue;
        };
        if v.get(e..e + 2) != Some(b":\"") || len == 0 || len > MAX_CLASS_NAME {
            continue;
        }
        let Some(name) = v.get(e + 2..e + 2 + len) else {
            continue;
        };
        if !name.iter().all(|&b| ident(b) || b == b'\\') {
            continue;
        }
        let after = e + 2 + len;
        if v.get(after..after + 2) != Some(b"\":") {
            continue;
        }
        if let Some((_, e2)) = digits(after + 2) {
            if v.get(e2..e2 + 2) == Some(b":{") {
                return Some(at);
            }
        }
    }
    None
}

/// A superglobal read: `$_GET[`, `$_SERVER['…']`, `$GLOBALS[`.
fn superglobal(v: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = v.get(from..)?.iter().position(|&b| b == b'$') {
        let at = from + rel;
        let rest = &v[at..];
        for g in SUPERGLOBALS {
            if rest.starts_with(g) && v.get(skip_blanks(v, at + g.len())) == Some(&b'[') {
                return Some(at);
            }
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
#[path = "php_tests.rs"]
mod tests;
