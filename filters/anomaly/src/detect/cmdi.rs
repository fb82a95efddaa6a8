//! OS command injection: a shell command word right after a shell separator
//! (`;`, `|`, `&`, newline, backtick, `$(`), read the way a shell reads it
//! (quotes and backslashes inside words dropped, `$IFS` as a space, a path
//! before the command ignored). Words that are also common English need an
//! argument that looks like a shell one, so prose such as "P&ID" or
//! "dogs; cats" stays clean.

use crate::score::{Hit, Severity};

/// Commands that have no meaning in prose.
const STRONG: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "nslookup",
    "wget",
    "curl",
    "ncat",
    "netcat",
    "telnet",
    "bash",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "powershell",
    "pwsh",
    "chmod",
    "chown",
    "passwd",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "php",
    "busybox",
    "xxd",
    "socat",
    "nmap",
    "systeminfo",
    "tasklist",
    "taskkill",
    "certutil",
    "bitsadmin",
    "mshta",
    "rundll32",
    "regsvr32",
    "wmic",
    "cscript",
    "wscript",
    "crontab",
    "sudo",
    "useradd",
    "mkfifo",
    "mknod",
    "printenv",
    "nohup",
    "xargs",
    "gcc",
    "getent",
    "iwr",
    "iex",
    "irm",
    "invoke-webrequest",
    "invoke-expression",
    "start-process",
    "downloadstring",
    "lwp-download",
];

/// Commands that are also words; they need a shell-like argument.
const WEAK: &[&str] = &[
    "id", "ls", "ps", "rm", "cp", "mv", "wc", "nc", "sh", "cat", "env", "cmd", "dir", "echo",
    "sleep", "ping", "kill", "find", "sort", "head", "tail", "more", "less", "touch", "set",
    "type", "timeout", "expr", "eval", "exec", "export", "net", "su", "ftp", "ssh", "scp", "java",
    "node", "lua", "dash", "awk", "sed", "grep", "pwd", "del", "copy", "start", "tar", "zip",
    "unzip", "hostname", "host", "dig", "base64",
];

fn is_sep(b: u8) -> bool {
    matches!(b, b';' | b'|' | b'&' | b'`' | b'\n' | b'\r')
}

/// The value as a shell reads words: quotes and backslashes removed, `$IFS`
/// forms and tabs read as a space. Never longer than the input.
fn shell_view(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    walk(value, |_, b| out.push(b));
    out
}

/// The offset in `value` of byte `index` of its shell view.
fn value_offset(value: &[u8], index: usize) -> usize {
    let mut n = 0;
    let mut found = 0;
    walk(value, |at, _| {
        if n == index {
            found = at;
        }
        n += 1;
    });
    found
}

/// Calls `f(offset in value, byte)` for each byte of the shell view.
fn walk(value: &[u8], mut f: impl FnMut(usize, u8)) {
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'$' {
            let rest = value.get(i + 1..).unwrap_or_default();
            let skip = if rest.starts_with(b"{ifs}") {
                6
            } else if rest.starts_with(b"ifs") {
                4
            } else {
                0
            };
            if skip > 0 {
                f(i, b' ');
                i += skip;
                continue;
            }
            // `$@` and `$*` are empty outside a function: `w$@hoami` is `whoami`.
            if matches!(rest.first(), Some(b'@' | b'*')) {
                i += 2;
                continue;
            }
        }
        match b {
            b'\'' | b'"' | b'\\' => {}
            b'\t' => f(i, b' '),
            _ => f(i, b),
        }
        i += 1;
    }
}

/// Before the separator that ends at `at`: nothing, or one token without
/// blanks that holds a non-letter.
fn injection_prefix(v: &[u8], at: usize) -> bool {
    let before = v[..at]
        .iter()
        .rposition(|&b| !is_sep(b) && b != b'$' && b != b'(')
        .map_or(&v[..0], |p| &v[..=p]);
    let before = before.trim_ascii();
    before.is_empty()
        || (!before.iter().any(u8::is_ascii_whitespace)
            && before.iter().any(|b| !b.is_ascii_alphabetic()))
}

fn shellish_arg(b: u8) -> bool {
    // (A drive letter, `dir c:`, is checked by the caller.)
    matches!(
        b,
        b'-' | b'/' | b'$' | b'.' | b'~' | b'>' | b'<' | b'|' | b';' | b'&' | b'`' | b'%' | b'*'
    ) || b.is_ascii_digit()
}

pub fn detect(value: &[u8]) -> Option<Hit> {
    // Every rule needs a separator, or an option, path, variable or
    // redirection after a command at the start.
    if !value
        .iter()
        .any(|&b| is_sep(b) || matches!(b, b'$' | b'{' | b'-' | b'/' | b'<' | b'>' | b'~'))
    {
        return None;
    }
    if value.contains(&b'$') && (contains(value, b"${ifs}") || contains(value, b"$ifs")) {
        return Some(hit(RULE_SEPARATOR, Severity::Critical, 0));
    }
    let v = shell_view(value);
    let place = |i: usize| value_offset(value, i);
    let mut weak: Option<Hit> = None;
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        let sep = if b == b'$' && v.get(i + 1) == Some(&b'(') {
            i += 2;
            Some(b'(')
        } else if is_sep(b) || (b == b'{' && i + 1 < v.len()) {
            i += 1;
            Some(b)
        } else {
            i += 1;
            None
        };
        let Some(sep) = sep else { continue };
        match command_at(&v, i, sep) {
            Some(Found::Command(offset)) => {
                return Some(hit(RULE_SEPARATOR, Severity::Critical, place(offset)))
            }
            Some(Found::Unknown(offset)) if weak.is_none() => {
                weak = Some(hit(RULE_UNKNOWN, Severity::Warning, place(offset)))
            }
            _ => {}
        }
    }
    if weak.is_none() {
        if let Some(Found::Command(offset)) = command_at(&v, 0, 0) {
            weak = Some(hit(RULE_LINE, Severity::Warning, place(offset)));
        }
    }
    weak
}

const RULE_SEPARATOR: &str = "cmdi.command-after-separator";
const RULE_UNKNOWN: &str = "cmdi.option-after-separator";
const RULE_LINE: &str = "cmdi.command-line";

enum Found {
    /// A known command.
    Command(usize),
    /// Some other word given an option (`;perf --version`).
    Unknown(usize),
}

fn hit(rule: &'static str, severity: Severity, offset: usize) -> Hit {
    Hit {
        rule,
        severity,
        offset,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Is there a command word starting at (or after blanks from) `at`? `sep` is
/// the separator before it, 0 at the start of the value (where only a command
/// with a shell-like argument counts), `{` for brace expansion (`{cat,/etc}`).
fn command_at(v: &[u8], at: usize, sep: u8) -> Option<Found> {
    let mut i = at;
    // `&&`, `||`, `;;` and blanks or grouping before the command.
    while let Some(&b) = v.get(i) {
        if b == b' ' || b == b'(' || b == b'{' || b == sep {
            i += 1;
        } else {
            break;
        }
    }
    let spaced = i > at && v.get(at) == Some(&b' ');
    let start = i;
    // A word, possibly a path: `/usr/bin/id` is the command `id`.
    let mut end = i;
    while let Some(&b) = v.get(end) {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'+') {
            end += 1;
        } else {
            break;
        }
    }
    let word = v.get(start..end)?;
    let word = word.rsplit(|&b| b == b'/').next().unwrap_or(word);
    let word = word.strip_suffix(b".exe").unwrap_or(word);
    if word.is_empty() {
        return None;
    }
    // Commands are short: a longer word needs no lookup.
    let is = |list: &[&str]| word.len() <= 17 && list.iter().any(|c| c.as_bytes() == word);
    let (strong, weak) = (is(STRONG), is(WEAK));
    let next = v.get(end).copied();
    if sep == b'{' {
        return (next == Some(b',') && (strong || weak)).then_some(Found::Command(start));
    }
    // Redirection glued to the word: `cat</etc/passwd`, `id>x`.
    let redirect = matches!(next, Some(b'<' | b'>'));
    if strong && sep != 0 {
        return Some(Found::Command(start));
    }
    if !strong && !weak {
        // An unknown word with an option after a hard separator.
        let hard = !matches!(sep, b'&' | 0);
        // ` -x` or ` --word`; not the prose dash ` -- `.
        let option = match v.get(end..) {
            Some([b' ', b'-', b'-', c, ..]) | Some([b' ', b'-', c, ..]) => c.is_ascii_alphabetic(),
            _ => false,
        };
        return (hard && option).then_some(Found::Unknown(start));
    }
    if redirect {
        return Some(Found::Command(start));
    }
    // After the word: blanks, then a shell-like argument ...
    let mut j = end;
    while v.get(j) == Some(&b' ') {
        j += 1;
    }
    if sep == 0 {
        // A whole value that is a command line: stricter, since titles like
        // "Cat & Dog" or "Echo 5" start with a command word too.
        let arg = match v.get(j..) {
            Some([b'-', c, ..]) => c.is_ascii_alphabetic(),
            Some([b'/' | b'$' | b'<' | b'>', ..]) | Some([b'~', b'/', ..]) => true,
            _ => false,
        };
        return (j > end && arg).then_some(Found::Command(start));
    }
    if j > end {
        let drive = matches!(v.get(j..j + 2), Some([d, b':']) if d.is_ascii_alphabetic());
        if v.get(j).is_some_and(|&b| shellish_arg(b)) || drive {
            return Some(Found::Command(start));
        }
    }
    // ... or the command alone, ending the value or the substitution: glued
    // to `;` (`;id`), or after a pipe or substitution (`| id`, `$(id)`).
    // `&` is left out ("P&ID"), and so is `; ` with a space ("dogs; cat").
    let ends = match v.get(end) {
        None => true,
        Some(&b) => is_sep(b) || b == b')',
    };
    let glued = match sep {
        b'&' => false,
        b';' | b'\n' | b'\r' => !spaced,
        _ => true,
    };
    // A value that opens with the separator, or whose only text before it is
    // one token with a digit or symbol (`127.0.0.1; id`, `x.txt && id`), is
    // shaped as an injection rather than prose ("dogs; cat"), so the command
    // may stand alone there even after `& ` or `; `.
    if ends && (glued || injection_prefix(v, at)) {
        return Some(Found::Command(start));
    }
    // A value that opens with the separator (`;echo hi`, `| cat notes`) is not
    // prose, so the command may take any argument there.
    let opens = v[..at]
        .iter()
        .all(|&b| is_sep(b) || b == b' ' || b == b'$' || b == b'(');
    (opens && j > end).then_some(Found::Command(start))
}
