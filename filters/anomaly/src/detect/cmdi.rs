//! OS command injection: a shell command word right after a shell separator
//! (`;`, `|`, `&`, newline, backtick, `$(`), read the way a shell reads it
//! (quotes and backslashes inside words dropped, `$IFS` as a space, a path
//! before the command ignored). Words that are also common English need an
//! argument that looks like a shell one, so prose such as "P&ID" or
//! "dogs; cats" stays clean.

use super::{contains, hit};
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
    "hostnamectl",
    "lsb_release",
    "traceroute",
    "tracert",
    "lsof",
    "findstr",
    "netsh",
    "schtasks",
    "icacls",
    "cacls",
    "nltest",
    "dsquery",
    "vssadmin",
    "wevtutil",
    "bcdedit",
    "cmdkey",
    "msiexec",
    "forfiles",
    "qwinsta",
    "quser",
    "net1",
    "openssl",
    "tftp",
    "whois",
    "killall",
    "pkill",
    "pgrep",
    "lsblk",
    "systemctl",
    "journalctl",
    "usermod",
    "userdel",
    "adduser",
    "visudo",
    "chattr",
    "getfacl",
    "setfacl",
    "msfvenom",
    "sshpass",
    "base32",
    "rsync",
];

/// Commands that are also words; they need a shell-like argument.
const WEAK: &[&str] = &[
    "id",
    "ls",
    "ps",
    "rm",
    "cp",
    "mv",
    "wc",
    "nc",
    "sh",
    "cat",
    "env",
    "cmd",
    "dir",
    "echo",
    "sleep",
    "ping",
    "kill",
    "find",
    "sort",
    "head",
    "tail",
    "more",
    "less",
    "touch",
    "set",
    "type",
    "timeout",
    "expr",
    "eval",
    "exec",
    "export",
    "net",
    "su",
    "ftp",
    "ssh",
    "scp",
    "java",
    "node",
    "lua",
    "dash",
    "awk",
    "sed",
    "grep",
    "pwd",
    "del",
    "copy",
    "start",
    "tar",
    "zip",
    "unzip",
    "hostname",
    "host",
    "dig",
    "base64",
    "printf",
    "who",
    "uptime",
    "ip",
    "arp",
    "route",
    "ver",
    "tee",
    "dd",
    "od",
    "strings",
    "file",
    "stat",
    "df",
    "du",
    "mount",
    "last",
    "history",
    "which",
    "whereis",
    "locate",
    "source",
    "reg",
    "sc",
    "attrib",
    "cut",
    "tac",
    "uniq",
    "mkdir",
    "ln",
    "shutdown",
    "reboot",
    "service",
    "gawk",
    "vi",
    "vim",
    "nano",
    "sha256sum",
    "md5sum",
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
    super::offset_of(index, |f| walk(value, f))
}

/// Calls `f(offset in value, byte)` for each byte of the shell view.
fn walk(value: &[u8], mut f: impl FnMut(usize, u8)) {
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        // A `%XX` left after the normaliser's two URL-decodings, for a byte
        // the shell reads as syntax (`%0a` sent encoded three times), also
        // behind a chain of `%25` (`%25250a`, encoded four times and more).
        if b == b'%' {
            let d = |c: u8| (c as char).to_digit(16);
            let pair_at = |j: usize| {
                let h = value.get(j..j + 2)?;
                Some((d(h[0])? << 4 | d(h[1])?) as u8)
            };
            let mut j = i + 1;
            while value.get(j..j + 2) == Some(b"25") && pair_at(j + 2).is_some() {
                j += 2;
            }
            if let Some(c @ (b'\n' | b'\r' | b'\t' | b';' | b'|' | b'&' | b'`' | b'$' | b'(')) =
                pair_at(j)
            {
                f(i, if c == b'\t' { b' ' } else { c });
                i = j + 2;
                continue;
            }
        }
        // `%24` left after two decodings is a `$` to the shell's reader too.
        let dollar = match b {
            b'$' => 1,
            b'%' if value.get(i + 1..i + 3) == Some(b"24") => 3,
            _ => 0,
        };
        if dollar > 0 {
            let rest = value.get(i + dollar..).unwrap_or_default();
            let ifs = [&b"{ifs}"[..], b"%7bifs%7d", b"ifs"]
                .into_iter()
                .find(|form| rest.starts_with(form));
            if let Some(form) = ifs {
                f(i, b' ');
                i += dollar + form.len();
                continue;
            }
        }
        if b == b'$' {
            let rest = value.get(i + 1..).unwrap_or_default();
            // `$@` and `$*` are empty outside a function: `w$@hoami` is `whoami`.
            if matches!(rest.first(), Some(b'@' | b'*')) {
                i += 2;
                continue;
            }
            // An empty substitution: `who$()ami`.
            if rest.starts_with(b"()") {
                i += 3;
                continue;
            }
        }
        // An empty backtick substitution: `who``ami`.
        if b == b'`' && value.get(i + 1) == Some(&b'`') {
            i += 2;
            continue;
        }
        match b {
            // `^` escapes the next character in cmd.exe: `who^ami`.
            b'\'' | b'"' | b'\\' | b'^' => {}
            b'\t' => f(i, b' '),
            _ => f(i, b),
        }
        i += 1;
    }
}

/// `$IFS` with its `$` (and braces) still encoded after the two decodings.
fn ifs_encoded(value: &[u8]) -> bool {
    [&b"%24{ifs}"[..], b"%24%7bifs%7d", b"%24ifs"]
        .into_iter()
        .any(|form| contains(value, form))
}

/// Before the separator that ends at `at`: nothing, or one token without
/// blanks that holds a non-letter.
fn injection_prefix(v: &[u8], at: usize) -> bool {
    let before = prefix(v, at);
    before.is_empty()
        || (!before.iter().any(u8::is_ascii_whitespace)
            && before.iter().any(|b| !b.is_ascii_alphabetic()))
}

/// Stricter than [`injection_prefix`]: the token before is shaped as the
/// data a command receives (a number, a host, an address, a file name, a
/// path: `42`, `127.0.0.1`, `file.txt`), not a model number ("A4|copy paper").
fn data_prefix(v: &[u8], at: usize) -> bool {
    let before = prefix(v, at);
    let number = before.strip_prefix(b"-").unwrap_or(before);
    before.is_empty()
        || (!number.is_empty() && number.iter().all(u8::is_ascii_digit))
        || (!before.iter().any(u8::is_ascii_whitespace)
            && before
                .iter()
                .any(|b| matches!(b, b'.' | b':' | b'/' | b'@' | b'=')))
}

/// The value before the separator run that ends at `at`, trimmed.
fn prefix(v: &[u8], at: usize) -> &[u8] {
    v[..at]
        .iter()
        .rposition(|&b| !is_sep(b) && b != b'$' && b != b'(')
        .map_or(&v[..0], |p| &v[..=p])
        .trim_ascii()
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
        .any(|&b| is_sep(b) || matches!(b, b'$' | b'{' | b'-' | b'/' | b'<' | b'>' | b'~' | b'%'))
    {
        return None;
    }
    if (value.contains(&b'$') && (contains(value, b"${ifs}") || contains(value, b"$ifs")))
        || (contains(value, b"%24") && ifs_encoded(value))
    {
        return Some(hit(RULE_SEPARATOR, Severity::Critical, 0));
    }
    let v = shell_view(value);
    let place = |i: usize| value_offset(value, i);
    let mut weak: Option<Hit> = None;
    let mut skips = Skips::default();
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
        let after = i;
        let mut found = command_at(&v, i, sep, &mut skips);
        // Every separator in a run of this one and blanks (`;;;;`, `; ; ;`)
        // leads to the same word: the first has the shortest prefix before it
        // and the last the fewest blanks after it, so those two decide, and
        // checking each would make a long run quadratic.
        if sep != b'(' {
            let mut last = None;
            while let Some(&c) = v.get(i) {
                if c == sep {
                    last = Some(i + 1);
                } else if c != b' ' {
                    break;
                }
                i += 1;
            }
            if let (None | Some(Found::Unknown(_)), Some(at)) = (&found, last) {
                found = command_at(&v, at, sep, &mut skips).or(found);
            }
        }
        match found {
            Some(Found::Command(offset) | Found::Glob(offset)) => {
                if sep == b'`' && code_span(&v, after) {
                    weak = weak.or(Some(hit(RULE_CODE_SPAN, Severity::Warning, place(offset))));
                    continue;
                }
                return Some(hit(RULE_SEPARATOR, Severity::Critical, place(offset)));
            }
            Some(Found::Unknown(offset)) if weak.is_none() => {
                weak = Some(hit(RULE_UNKNOWN, Severity::Warning, place(offset)))
            }
            _ => {}
        }
    }
    if weak.is_none() {
        match command_at(&v, 0, 0, &mut Skips::default()) {
            Some(Found::Command(offset)) => {
                weak = Some(hit(RULE_LINE, Severity::Warning, place(offset)));
            }
            Some(Found::Glob(offset)) => {
                return Some(hit(RULE_GLOB, Severity::Critical, place(offset)))
            }
            _ => {}
        }
    }
    weak
}

const RULE_SEPARATOR: &str = "cmdi.command-after-separator";
const RULE_UNKNOWN: &str = "cmdi.option-after-separator";
const RULE_LINE: &str = "cmdi.command-line";
const RULE_GLOB: &str = "cmdi.wildcard-command";
const RULE_CODE_SPAN: &str = "cmdi.command-in-code-span";

/// Is the backtick before `at` the opening of a Markdown code span in prose
/// ("Run `ls -la` to see")? It follows a blank after text that is not shaped
/// as an injection, and a closing backtick follows.
fn code_span(v: &[u8], at: usize) -> bool {
    at >= 2
        && v.get(at - 2) == Some(&b' ')
        && !injection_prefix(v, at - 1)
        && v.get(at..).is_some_and(|rest| rest.contains(&b'`'))
}

enum Found {
    /// A known command.
    Command(usize),
    /// Some other word given an option (`;perf --version`).
    Unknown(usize),
    /// A wildcard path to a known command (`/???/??t`).
    Glob(usize),
}

/// Shell pattern matching of `?` (one byte) and `*` (any run).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|k| glob(rest, &name[k..])),
        Some((&p, rest)) => match name.split_first() {
            Some((&c, tail)) => (p == b'?' || p == c) && glob(rest, tail),
            None => false,
        },
    }
}

/// Where the blanks, grouping and repeats of a separator after it end,
/// remembered per separator: separators are visited left to right, so a
/// long run (`;(;(;(`) is walked once rather than once per separator in it.
#[derive(Default)]
struct Skips([(usize, usize); 9]);

impl Skips {
    fn skip(&mut self, v: &[u8], at: usize, sep: u8) -> usize {
        let slot = match sep {
            b';' => 0,
            b'|' => 1,
            b'&' => 2,
            b'`' => 3,
            b'\n' => 4,
            b'\r' => 5,
            b'{' => 6,
            b'(' => 7,
            _ => 8,
        };
        let (from, to) = self.0[slot];
        if from <= at && at < to {
            return to;
        }
        let mut i = at;
        while let Some(&b) = v.get(i) {
            if b == b' ' || b == b'(' || b == b'{' || b == sep {
                i += 1;
            } else {
                break;
            }
        }
        self.0[slot] = (at, i);
        i
    }
}

/// Is there a command word starting at (or after blanks from) `at`? `sep` is
/// the separator before it, 0 at the start of the value (where only a command
/// with a shell-like argument counts), `{` for brace expansion (`{cat,/etc}`).
fn command_at(v: &[u8], at: usize, sep: u8, skips: &mut Skips) -> Option<Found> {
    // `&&`, `||`, `;;` and blanks or grouping before the command.
    let i = skips.skip(v, at, sep);
    // `&&` and `||` are shell operators; prose has a lone `&` ("Tom & Jerry").
    let run = v[at..].iter().take_while(|&&b| b == sep).count();
    // The run may also lie behind `at`: the last separator of a run is
    // checked on its own (`Tom & &&id`).
    let doubled = sep != 0 && (run > 0 || (at >= 2 && v[at - 2] == sep));
    let spaced = i > at && v.get(at + run) == Some(&b' ');
    let start = i;
    // A word, possibly a path: `/usr/bin/id` is the command `id`.
    let mut end = i;
    while let Some(&b) = v.get(end) {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'+' | b'?' | b'*')
        {
            end += 1;
        } else {
            break;
        }
    }
    // A variable run as a command (`;$x`, `&&${cmd}`).
    if start == end
        && sep != 0
        && sep != b'{'
        && v.get(start) == Some(&b'$')
        && v.get(start + 1)
            .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'{')
        && (sep != b'&' || doubled || !spaced)
    {
        return Some(Found::Command(start));
    }
    let word = v.get(start..end)?;
    // A path with wildcards that the shell expands to a command's path:
    // `/???/??t` is `/bin/cat`, `/usr/bin/wh?ami` is `whoami`.
    if word.contains(&b'/') && word.iter().any(|&b| b == b'?' || b == b'*') {
        let last = word.rsplit(|&b| b == b'/').next().unwrap_or(word);
        // Only an absolute path names a command (`docs/*/id` does not); `+`
        // is a space where form encoding applies (`cat+/et*/*wd`).
        let path = word.rsplit(|&b| b == b'+').next().unwrap_or(word);
        if path.first() != Some(&b'/') {
            return None;
        }
        // Bounds the backtracking of `*`.
        if last.len() > 24 || last.iter().filter(|&&b| b == b'*').count() > 3 {
            return None;
        }
        let literal = last.iter().any(u8::is_ascii_alphanumeric);
        let known = STRONG.iter().chain(WEAK).any(|c| glob(last, c.as_bytes()));
        return (literal && known).then_some(Found::Glob(start));
    }
    if word.iter().any(|&b| b == b'?' || b == b'*') {
        return None;
    }
    // A command named by its path in a directory of executables
    // (`/bin/id`, `/usr/sbin/ip`) is a command whatever the word.
    let in_bin = {
        let mut dirs = word.rsplit(|&b| b == b'/').skip(1);
        word.first() == Some(&b'/') && matches!(dirs.next(), Some(b"bin" | b"sbin"))
    };
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
    if (strong || (weak && in_bin)) && sep != 0 {
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
    // `$(word ...)` is shell syntax with no use in prose.
    if sep == b'(' {
        return Some(Found::Command(start));
    }
    if j > end {
        let drive = matches!(v.get(j..j + 2), Some([d, b':']) if d.is_ascii_alphabetic());
        // A `/` or `-` standing alone is the prose slash or dash ("cat / dog").
        let lone = matches!(v.get(j), Some(b'/' | b'-')) && v.get(j + 1).is_none_or(|&b| b == b' ');
        // A word then another separator (`; id | x`) is a pipeline, unless
        // spaced separators follow prose ("Q&A; more | info").
        let lone = lone
            || (matches!(v.get(j), Some(b'|' | b';' | b'&' | b'`'))
                && spaced
                && !injection_prefix(v, at));
        // After a spaced separator in prose, a number is an argument only
        // when it is the whole argument list (`; sleep 5`, not "Run 5k;
        // sleep 8h; eat well" or "Size 10; set 4 per box").
        let lone = lone
            || (v.get(j).is_some_and(u8::is_ascii_digit)
                && spaced
                && !injection_prefix(v, at)
                && {
                    let digits = v[j..].iter().take_while(|b| b.is_ascii_digit()).count();
                    let mut k = j + digits;
                    while v.get(k) == Some(&b' ') {
                        k += 1;
                    }
                    !v.get(k)
                        .is_none_or(|&b| is_sep(b) || b == b')' || b == b'#')
                });
        if (v.get(j).is_some_and(|&b| shellish_arg(b)) && !lone)
            || drive
            || subcommand(word, &v[j..])
        {
            return Some(Found::Command(start));
        }
    }
    // ... or the command alone, ending the value or the substitution: glued
    // to `;` (`;id`), or after a pipe or substitution (`| id`, `$(id)`).
    // `&` is left out ("P&ID"), and so is `; ` with a space ("dogs; cat").
    // A ` #` comment ends the command too (`;id #`).
    let ends = match v.get(j) {
        None => true,
        Some(&b) => is_sep(b) || b == b')' || (b == b'#' && j > end),
    };
    let glued = match sep {
        b'&' => doubled && !spaced,
        b';' | b'\n' | b'\r' => !spaced,
        _ => true,
    };
    // A value that opens with the separator, or whose only text before it is
    // one token with a digit or symbol (`127.0.0.1; id`, `x.txt && id`), is
    // shaped as an injection rather than prose ("dogs; cat"), so the command
    // may stand alone there even after `& ` or `; `. After a token shaped as
    // data, it may take any argument when glued to the separator
    // (`127.0.0.1|echo pwned`; not "v2; find more" nor "A4|copy paper").
    let injected = injection_prefix(v, at);
    if ends && (glued || injected) {
        return Some(Found::Command(start));
    }
    if !spaced && j > end && data_prefix(v, at) {
        return Some(Found::Command(start));
    }
    // A value that opens with the separator (`;echo hi`, `| cat notes`) is not
    // prose, so the command may take any argument there.
    let opens = v[..at]
        .iter()
        .all(|&b| is_sep(b) || b == b' ' || b == b'$' || b == b'(');
    if opens && j > end {
        return Some(Found::Command(start));
    }
    // Shell syntax later in the command's arguments (`| echo pwned > /tmp/x`,
    // `; echo $HOME`) after any separator but a lone `&` and a space
    // ("Tom & Jerry").
    ((sep != b'&' || doubled || !spaced) && shell_syntax(&v[j..])).then_some(Found::Command(start))
}

/// Shell syntax in the arguments of one command (up to the next separator):
/// a redirection, a variable, or an absolute path argument.
fn shell_syntax(args: &[u8]) -> bool {
    let mut prev = b' ';
    for (i, &b) in args.iter().enumerate() {
        if is_sep(b) || b == b')' {
            break;
        }
        let next = args.get(i + 1).copied().unwrap_or(b' ');
        match b {
            b'>' | b'<' => return true,
            // `$HOME`, `${x}`, `$(...)`; not a price (`$5`).
            b'$' if next.is_ascii_alphabetic() || matches!(next, b'{' | b'(') => return true,
            // `/tmp/x`, not the prose slash of "food / drink".
            b'/' if prev == b' ' && (next.is_ascii_alphanumeric() || next == b'.') => return true,
            _ => {}
        }
        prev = b;
    }
    false
}

/// Commands whose first argument is a keyword of their own: `net user`,
/// `reg query`, `sc query`.
fn subcommand(word: &[u8], args: &[u8]) -> bool {
    let sub: &[&str] = match word {
        b"net" => &[
            "user",
            "users",
            "localgroup",
            "group",
            "view",
            "share",
            "use",
            "session",
            "accounts",
            "config",
            "start",
            "stop",
        ],
        b"reg" => &["query", "add", "delete", "save", "export"],
        b"sc" => &["query", "qc", "create", "config", "start", "stop"],
        _ => return false,
    };
    let next = args
        .split(|&b| !b.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    sub.iter().any(|s| s.as_bytes() == next)
}
