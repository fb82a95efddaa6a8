//! Path traversal and local file inclusion: `..` segments (after backslashes
//! are read as `/`), names of files an API never serves, and PHP-style stream
//! wrappers that turn an include into a read or an execution.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::score::{Hit, Severity};

/// System and secret files (lowercase; matched anywhere in the value).
const SENSITIVE: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/sudoers",
    "etc/crontab",
    "etc/hostname",
    "etc/os-release",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "/.ssh/",
    "id_rsa",
    "id_ed25519",
    "authorized_keys",
    ".bash_history",
    ".htaccess",
    ".htpasswd",
    "web-inf/",
    "meta-inf/",
    "web.config",
    "wp-config.php",
    "win.ini",
    "boot.ini",
    "system.ini",
    "windows/system32",
    "winnt/system32",
    "/.git/",
    ".git/config",
    "/.env",
    "var/log/",
    "dev/tcp/",
    "dev/udp/",
    "/dev/null",
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
        let slashed: Vec<u8> = value
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .collect();
        let climb = dotdot(&slashed);
        if let Some(offset) = climb {
            let np = crate::normalize::normalize_path(&slashed);
            let severity = if np.escaped_root {
                Severity::Critical
            } else {
                Severity::Warning
            };
            hits.push(Hit {
                rule: "traversal.dotdot",
                severity,
                offset,
            });
        }
        if let Some(m) = self.sensitive.find(&slashed) {
            // A value that is the path itself (`/etc/passwd`, `c:/windows/...`)
            // is an inclusion attempt; a mention inside text is less certain.
            // So is a `..` climbing to it (`files/../etc/passwd`).
            let severity = if m.start() <= 3 || climb.is_some() {
                Severity::Critical
            } else {
                Severity::Error
            };
            hits.push(Hit {
                rule: "traversal.sensitive-file",
                severity,
                offset: m.start(),
            });
        }
        if let Some(m) = self.wrappers.find(&slashed) {
            hits.push(Hit {
                rule: "traversal.stream-wrapper",
                severity: Severity::Critical,
                offset: m.start(),
            });
        }
    }
}

/// The offset of the first `..` segment: `..` between slashes or the value's
/// ends, also `..;` (which Tomcat strips) and longer runs of dots.
fn dotdot(value: &[u8]) -> Option<usize> {
    let mut start = 0;
    for seg in value.split(|&b| b == b'/') {
        let dots = seg.iter().take_while(|&&b| b == b'.').count();
        let rest = &seg[dots..];
        if dots >= 2 && (rest.is_empty() || rest.first() == Some(&b';')) && seg.len() < value.len()
        {
            return Some(start);
        }
        start += seg.len() + 1;
    }
    None
}
