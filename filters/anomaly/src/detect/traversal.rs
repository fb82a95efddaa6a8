//! Path traversal and local file inclusion: `..` segments (after backslashes
//! are read as `/`), names of files an API never serves, absolute paths into
//! system directories, and PHP-style stream wrappers that turn an include into
//! a read or an execution.
//!
//! The value is read the way a file API resolves it: `\` is `/`, runs of `/`
//! and `.` segments are dropped (`/etc//./passwd` is `/etc/passwd`), and the
//! encodings of `.`, `/` and `\` that lenient decoders accept are decoded once
//! more (a third URL-encoding layer, overlong UTF-8 such as `%e0%80%ae`, and
//! the Unicode slashes `∕` `∖` `⁄` that best-fit mappings turn into `/`).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use meshward_shared::facts::path::hex_digit;

use super::find;
use crate::score::{Hit, Severity};

/// System and secret files (lowercase; matched anywhere in the value, at a
/// word boundary so that `reboot.ini` or `paid_rsa` are not read as them).
const SENSITIVE: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/master.passwd",
    "etc/group",
    "etc/gshadow",
    "etc/hosts",
    "etc/issue",
    "etc/motd",
    "etc/sudoers",
    "etc/crontab",
    "etc/hostname",
    "etc/os-release",
    "etc/resolv.conf",
    "etc/fstab",
    "etc/mtab",
    "etc/profile",
    "etc/ssh/",
    "etc/mysql/",
    "etc/apache2/",
    "etc/httpd/",
    "etc/nginx/",
    "etc/php/",
    "etc/security/",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/mounts",
    "proc/net/",
    "/.ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    ".bash_history",
    ".zsh_history",
    ".mysql_history",
    ".bashrc",
    ".bash_profile",
    ".aws/credentials",
    ".docker/config.json",
    "/.docker/",
    ".kube/config",
    ".htaccess",
    ".htpasswd",
    "web-inf/",
    "meta-inf/",
    "web.config",
    "wp-config.php",
    "httpd.conf",
    "php.ini",
    "my.cnf",
    "win.ini",
    "boot.ini",
    "system.ini",
    "windows/system32",
    "winnt/system32",
    "windows/repair/",
    "windows/panther/",
    "system32/config/",
    "inetpub/",
    "/.git/",
    ".git/config",
    "/.svn/",
    "/.env",
    "var/log/",
    "var/mail/",
    "var/spool/cron",
    "dev/tcp/",
    "dev/udp/",
    "/dev/null",
];

/// Directories that an absolute path in a parameter has no business naming:
/// matched only where the value starts (after an optional `file://` and a
/// drive letter), so `/etc/anything` or `c:\windows\…` as the whole value is an
/// inclusion attempt while a mention in text is not.
const SYSTEM_ROOTS: &[&[u8]] = &[
    b"/etc/",
    b"/proc/",
    b"/var/log/",
    b"/var/mail/",
    b"/var/spool/",
    b"/usr/local/etc/",
    b"/usr/local/apache",
    b"/opt/lampp/",
    b"/windows/",
    b"/winnt/",
    b"/inetpub/",
    b"/xampp/",
    b"/wamp/",
    b"/boot.ini",
    b"/sys/class",
    b"/sys/kernel",
    b"/sys/devices",
    b"/sys/firmware",
    b"/sys/module",
    b"/sys/block",
    b"/sys/bus",
];

/// Stream wrappers that read files or run code when given to an include.
const WRAPPERS: &[&str] = &[
    "php://",
    "phar://",
    "zip://",
    "expect://",
    "glob://",
    "data://",
    "zlib://",
    "compress.zlib://",
    "compress.bzip2://",
    "ogg://",
    "rar://",
    "ssh2.",
];

pub struct Traversal {
    sensitive: AhoCorasick,
    wrappers: AhoCorasick,
}

impl Traversal {
    pub fn new() -> Result<Traversal, String> {
        let build = |words: &[&str]| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(words)
                .map_err(|e| format!("traversal keywords: {e}"))
        };
        Ok(Traversal {
            sensitive: build(SENSITIVE)?,
            wrappers: build(WRAPPERS)?,
        })
    }

    pub fn detect(&self, value: &[u8], hits: &mut Vec<Hit>) {
        // Every rule needs a `.`, a slash or something that decodes to one,
        // but for the `_` of `id_rsa` and `authorized_keys`.
        if !value
            .iter()
            .any(|&b| matches!(b, b'.' | b'/' | b'\\' | b'%' | b'_') || b >= 0x80)
        {
            return;
        }
        let view = view(value);
        let v: &[u8] = &view;
        let place = |at: usize| match &view {
            Cow::Borrowed(_) => at,
            Cow::Owned(_) => value_offset(value, at),
        };
        let climb = dotdot(v);
        if let Some((offset, escaped)) = climb {
            // One level above the start is how a relative link is written
            // (`../readme.md`); two or more reach outside any document tree.
            let severity = if escaped >= 2 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            hits.push(Hit {
                rule: "traversal.dotdot",
                severity,
                offset: place(offset),
            });
        }
        let root = path_start(v);
        let mut critical_file = false;
        if let Some((start, exact)) = self.sensitive_at(v) {
            // A value that is the path itself (`/etc/passwd`, `c:/windows/...`,
            // `file:///etc/passwd`) is an inclusion attempt, and so is a `..`
            // climbing to it (`files/../etc/passwd`); a mention inside text, a
            // file on another host's URL, or a name with an extension after it
            // (`id_rsa.pub`, `config/.env.example`) is less certain.
            critical_file = climb.is_some() || (exact && local_path_token(v, start));
            let severity = if critical_file {
                Severity::Critical
            } else {
                Severity::Error
            };
            hits.push(Hit {
                rule: "traversal.sensitive-file",
                severity,
                offset: place(start),
            });
        }
        if let Some(at) =
            root.filter(|&at| !critical_file && system_root(v.get(at..).unwrap_or_default()))
        {
            hits.push(Hit {
                rule: "traversal.system-path",
                severity: Severity::Critical,
                offset: place(at),
            });
        }
        if let Some(m) = self.wrappers.find(v) {
            hits.push(Hit {
                rule: "traversal.stream-wrapper",
                severity: Severity::Critical,
                offset: place(m.start()),
            });
        }
    }

    /// The first sensitive name that stands at word boundaries, and whether
    /// it is the file itself: a file name (`id_rsa`, `etc/passwd`) followed by
    /// `.` and more of a name is another file (`id_rsa.pub`), or the rest of a
    /// name once a NUL was dropped (`win.ini%00.png`).
    fn sensitive_at(&self, v: &[u8]) -> Option<(usize, bool)> {
        self.sensitive.find_iter(v).find_map(|m| {
            // Names that start with `/` or `.` carry their own boundary.
            let before = v.get(m.start()).is_some_and(u8::is_ascii_alphanumeric)
                && m.start()
                    .checked_sub(1)
                    .and_then(|p| v.get(p))
                    .is_some_and(u8::is_ascii_alphanumeric);
            let word_end = v.get(m.end().wrapping_sub(1)).is_some_and(|&b| b != b'/');
            let after = word_end && v.get(m.end()).is_some_and(u8::is_ascii_alphanumeric);
            let file = SENSITIVE
                .get(m.pattern().as_usize())
                .is_some_and(|name| !name.ends_with('/'));
            let extended = file
                && v.get(m.end()) == Some(&b'.')
                && v.get(m.end() + 1).is_some_and(u8::is_ascii_alphanumeric);
            (!before && !after).then_some((m.start(), !extended))
        })
    }
}

/// Does the path start in a system directory (a whole name: `/sys/class`
/// but not `/sys/classes`)?
fn system_root(path: &[u8]) -> bool {
    SYSTEM_ROOTS.iter().any(|r| {
        path.starts_with(r)
            && (r.ends_with(b"/") || path.get(r.len()).is_none_or(|b| !b.is_ascii_alphanumeric()))
    })
}

/// Where an absolute path begins if the whole value is one: after leading
/// blanks and quotes, an optional `file:` (its slashes are collapsed) and an
/// optional drive letter, the index of the first `/`.
fn path_start(v: &[u8]) -> Option<usize> {
    let mut i = v
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))?;
    if v.get(i..).is_some_and(|r| r.starts_with(b"file:")) {
        i += 5;
        while v.get(i..i + 2) == Some(b"//") {
            i += 1;
        }
        // `file:///c:/windows`
        if matches!(v.get(i..i + 3), Some([b'/', d, b':']) if d.is_ascii_alphabetic()) {
            i += 1;
        }
    }
    if matches!(v.get(i..i + 2), Some([d, b':']) if d.is_ascii_alphabetic()) {
        i += 2;
    }
    while v.get(i..i + 2) == Some(b"//") {
        i += 1;
    }
    (v.get(i) == Some(&b'/')).then_some(i)
}

/// Is the sensitive name at `at` part of a local path that makes up the whole
/// value (one token from the first non-blank byte, not an `http://` URL)?
fn local_path_token(v: &[u8], at: usize) -> bool {
    let first = v
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))
        .unwrap_or(0);
    let token = v.get(first..at).unwrap_or_default();
    if token.iter().any(|&b| is_blank(b)) {
        return false;
    }
    match find(token, b"://") {
        // `file:///etc/passwd` reads a local file, and so does `c://windows`;
        // `https://host/.env` names one on a web server.
        Some(p) => p == 1 || token.get(..p) == Some(b"file"),
        None => true,
    }
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'<' | b'>')
}

/// The first `..` segment and how many levels the climbs go above the start
/// of the value. A climb is `..`, `..;` (which Tomcat strips) or a longer run of dots
/// (`....//`, which becomes `../` once a filter strips `../` from it).
fn dotdot(v: &[u8]) -> Option<(usize, i32)> {
    // A segment needs a slash: `...` alone is punctuation.
    if !v.contains(&b'/') {
        return None;
    }
    let mut first = None;
    let mut depth: i32 = 0;
    let mut escaped: i32 = 0;
    let mut start = 0;
    for seg in v.split(|&b| b == b'/') {
        let dots = seg.iter().take_while(|&&b| b == b'.').count();
        let rest = &seg[dots..];
        if dots >= 2 && (rest.is_empty() || rest.first() == Some(&b';')) {
            first.get_or_insert(start);
            depth -= 1;
            escaped = escaped.max(-depth);
        } else if !(seg.is_empty() || seg == b".") {
            depth += 1;
        }
        start += seg.len() + 1;
    }
    first.map(|at| (at, escaped))
}

/// Does the value need a rewritten view (anything to decode, `\`, `//` or a
/// `.` segment)? Most values do not, and are read in place.
fn needs_view(value: &[u8]) -> bool {
    value
        .iter()
        .any(|&b| matches!(b, b'\\' | b'%' | 0xC0 | 0xC1 | 0xE0 | 0xE2))
        || value.windows(2).any(|w| w == b"//" || w == b"/.")
        || value.starts_with(b"./")
}

fn view(value: &[u8]) -> Cow<'_, [u8]> {
    if !needs_view(value) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    walk(value, |_, b| out.push(b));
    Cow::Owned(out)
}

/// The offset in `value` of byte `index` of its view.
fn value_offset(value: &[u8], index: usize) -> usize {
    super::offset_of(index, |f| walk(value, f))
}

/// Calls `f(offset in value, byte)` for each byte of the view.
fn walk(value: &[u8], mut f: impl FnMut(usize, u8)) {
    let mut i = 0;
    let mut after_slash = false;
    let mut after_colon = false;
    // A leading `./` is the same directory.
    while let (Some((b'.', 1)), Some((b'/', m))) = (unit(value, i), unit(value, i + 1)) {
        i += 1 + m;
    }
    while let Some((b, n)) = unit(value, i) {
        if b == b'/' {
            // `scheme://` keeps its slashes.
            if !after_slash || after_colon {
                f(i, b'/');
            }
            after_slash = true;
            i += n;
            // A `.` segment names the same directory.
            while let Some((b'.', m)) = unit(value, i) {
                match unit(value, i + m) {
                    Some((b'/', _)) | None => i += m,
                    Some(_) => break,
                }
            }
            continue;
        }
        after_slash = false;
        after_colon = b == b':';
        f(i, b);
        i += n;
    }
}

/// One byte of the view at `i` and the number of input bytes it reads.
fn unit(v: &[u8], i: usize) -> Option<(u8, usize)> {
    let (b, n) = raw_unit(v, i)?;
    let cont = |at: usize| raw_unit(v, at).filter(|(c, _)| c & 0xC0 == 0x80);
    let (b, n) = match b {
        // Overlong two-byte UTF-8 of an ASCII byte (`%c0%af` is `/`); lenient
        // decoders also take a second byte that is not a continuation
        // (`%c0%2e` is `.`). C0 and C1 never occur in valid UTF-8.
        0xC0 | 0xC1 => match raw_unit(v, i + n).filter(|&(c, _)| c < 0xC0) {
            Some((c, m)) => (((b & 1) << 6) | (c & 0x3F), n + m),
            None => (b, n),
        },
        // Overlong three-byte UTF-8 (`%e0%80%ae` is `.`).
        0xE0 => match cont(i + n) {
            Some((c1 @ 0x80..=0x81, m1)) => match cont(i + n + m1) {
                Some((c2, m2)) => (((c1 & 1) << 6) | (c2 & 0x3F), n + m1 + m2),
                None => (b, n),
            },
            _ => (b, n),
        },
        // Unicode slashes (U+2215, U+2216, U+2044) and the one-dot leader
        // (U+2024), which best-fit mappings turn into `/` and `.`.
        0xE2 => match cont(i + n) {
            Some((c1, m1)) => match (c1, cont(i + n + m1)) {
                (0x88, Some((0x95 | 0x96, m2))) | (0x81, Some((0x84, m2))) => (b'/', n + m1 + m2),
                (0x80, Some((0xA4, m2))) => (b'.', n + m1 + m2),
                _ => (b, n),
            },
            None => (b, n),
        },
        _ => (b, n),
    };
    Some((if b == b'\\' { b'/' } else { b }, n))
}

/// A byte, or a `%XX` left after the normaliser's two URL-decodings (a further
/// layer, which a back end that decodes once more reads as the byte). A `%25`
/// whose next two bytes are hex digits is one more layer of the same escape
/// (`%25252e` is `.`), read to the end.
fn raw_unit(v: &[u8], i: usize) -> Option<(u8, usize)> {
    let b = *v.get(i)?;
    if b != b'%' {
        return Some((b, 1));
    }
    let pair = |at: usize| Some(hex_digit(*v.get(at)?)? << 4 | hex_digit(*v.get(at + 1)?)?);
    let mut at = i + 1;
    let mut out = None;
    while let Some(c) = pair(at) {
        at += 2;
        out = Some(c);
        if c != b'%' {
            break;
        }
    }
    Some(match out {
        Some(c) => (c, at - i),
        None => (b'%', 1),
    })
}
