#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Hostile input: random bytes and mutated attack strings through
//! `libinjectionrs` directly, through normalisation and through the whole
//! engine. A panic here would abort the wasm VM in Envoy, so any panic fails
//! the test (tests unwind). Seeded, so a failure replays; set
//! `MESHWARD_FUZZ_ITERS` for a longer run.

use std::time::{Duration, Instant};

use anomaly::config::Config;
use anomaly::engine::Engine;
use anomaly::normalize::{normalize, Plus};
use anomaly::request::Input;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "1' OR '1'='1'--",
    "1 union select 1,2,@@version/*",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\" onmouseover=\"alert(1)",
    "javascript:alert(1)",
    "../../etc/passwd%00",
    ";cat${IFS}/etc/passwd",
    "$(curl http://127.1/)",
    "http://[::ffff:169.254.169.254]/",
    "gopher://0x7f.1:6379/_",
    "%u003c&#x3c;\\u003c\\x3c",
    "/*!50000select*/",
    "<!--<svg/onload=alert(1)>-->",
    "'\"`;|&<>(){}[]\\/%#",
    "${${lower:j}${::-n}di:ldap://${env:x:-y}.e/a}",
    "${${::-${::-$}}{jndi:rmi://e/a}",
    "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA",
    "%{(#_memberAccess).(@java.lang.Runtime@getRuntime())}",
    "<?php (system)/**/(\"id\"); $$a($_GET['x']); ?>",
    "O:8:\"stdClass\":1:{s:1:\"a\";i:2;}",
];

/// Bytes that steer the tokenizers into their less common states.
const ALPHABET: &[u8] =
    b"'\"`;|&<>(){}[]\\/%#-*=!@$^~.,:?+ \t\r\n\x00\x7f\xff\xc0\xafaAsSeElLcCtTuUnNoOrR0159xXvV";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = if v.is_empty() {
            0
        } else {
            rng.below(v.len() + 1)
        };
        match rng.below(5) {
            0 => v.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            1 if !v.is_empty() => {
                v.remove(at.min(v.len() - 1));
            }
            2 => v.insert(at, rng.next() as u8),
            3 => {
                let other = SEEDS[rng.below(SEEDS.len())].as_bytes();
                let cut = rng.below(other.len() + 1);
                v.splice(at..at, other[..cut].iter().copied());
            }
            _ => {
                if !v.is_empty() {
                    let i = at.min(v.len() - 1);
                    v[i] = ALPHABET[rng.below(ALPHABET.len())];
                }
            }
        }
    }
    v
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(300);
    (0..len)
        .map(|_| {
            if rng.below(2) == 0 {
                ALPHABET[rng.below(ALPHABET.len())]
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

fn iterations() -> usize {
    std::env::var("MESHWARD_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            20_000
        } else {
            200_000
        })
}

#[test]
fn libinjection_and_normalisation_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let n = iterations();
    let start = Instant::now();
    let mut flagged = 0usize;
    for i in 0..n {
        let v = if i % 2 == 0 {
            random_bytes(&mut rng)
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
            mutate(&mut rng, seed)
        };
        let a = libinjectionrs::detect_sqli(&v).is_injection();
        let b = libinjectionrs::detect_xss(&v).is_injection();
        let norm = normalize(&v, Plus::Space);
        assert!(norm.len() <= v.len());
        let c = libinjectionrs::detect_sqli(&norm).is_injection();
        flagged += usize::from(a || b || c);
    }
    println!(
        "{n} inputs ({flagged} flagged) in {:.2?}: no panic",
        start.elapsed()
    );
}

#[test]
fn engine_never_panics_on_hostile_requests() {
    let engine = Engine::new(Config::default()).expect("engine");
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let n = iterations() / 10;
    let cts: [&[u8]; 6] = [
        b"application/json",
        b"application/x-www-form-urlencoded",
        b"text/xml",
        b"",
        b"application/problem+json; charset=utf-8",
        b"multipart/form-data; boundary=x",
    ];
    for _ in 0..n {
        let mut path = b"/".to_vec();
        let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
        path.extend(mutate(&mut rng, seed));
        if rng.below(2) == 0 {
            path.push(b'?');
            path.extend(random_bytes(&mut rng));
        }
        let body = match rng.below(5) {
            4 => {
                // A multipart body with hostile names, some parts cut short.
                let mut b = b"--x\r\nContent-Disposition: form-data; name=\"".to_vec();
                let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
                b.extend(mutate(&mut rng, seed));
                b.extend(b"\"; filename=\"");
                b.extend(random_bytes(&mut rng));
                b.extend(b"\"\r\n\r\n");
                b.extend(random_bytes(&mut rng));
                if rng.below(2) == 0 {
                    b.extend(b"\r\n--x--\r\n");
                }
                b
            }
            0 => {
                let mut b = b"{\"a\":[\"".to_vec();
                let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
                b.extend(mutate(&mut rng, seed));
                b.extend(b"\"]}");
                b
            }
            1 => {
                let mut b = b"<a x='".to_vec();
                b.extend(random_bytes(&mut rng));
                b
            }
            _ => random_bytes(&mut rng),
        };
        let hv = random_bytes(&mut rng);
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b"content-type", cts[rng.below(cts.len())]),
            (b"cookie", &hv),
            (&hv, b"x"),
            (b"transfer-encoding", &hv),
        ];
        let out = engine.evaluate(&Input {
            method: if rng.below(8) == 0 { &hv } else { b"POST" },
            path: &path,
            headers: &headers,
            body: Some(&body),
            body_truncated: rng.below(4) == 0,
        });
        assert!(out.score.findings.len() <= anomaly::score::MAX_FINDINGS);
    }
}

#[test]
fn big_values_stay_linear() {
    // 16 KiB values built from the prefixes that make naive scanners rescan.
    let engine = Engine::new(Config::default()).expect("engine");
    for unit in [
        "It's a fine day; select the best one (or two) from the list. ",
        "'or ",
        "<a ",
        "../",
        ";$(",
        "http://",
        "%25u",
        "&#x",
        "/*",
        "\" on",
    ] {
        let value = unit.repeat(16 * 1024 / unit.len());
        let body = format!("{{\"v\":{}}}", serde_json::to_string(&value).unwrap());
        let headers: [(&[u8], &[u8]); 1] = [(b"content-type", b"application/json")];
        let start = Instant::now();
        engine.evaluate(&Input {
            method: b"POST",
            path: b"/",
            headers: &headers,
            body: Some(body.as_bytes()),
            body_truncated: false,
        });
        let took = start.elapsed();
        let shown: String = unit.chars().take(12).collect();
        println!("16 KiB of {shown:?}...: {took:.2?}");
        assert!(took < Duration::from_secs(2), "{unit:?} took {took:?}");
    }
}

/// The SQL detector skips libinjection for a single plain token; check on
/// random and mutated tokens over that alphabet that libinjection would not
/// have flagged any of them.
#[test]
fn skipped_plain_tokens_are_never_sqli() {
    const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    const WORDS: &[&str] = &[
        "union",
        "select",
        "or",
        "and",
        "1",
        "0x41",
        "1e1",
        "admin",
        "sleep",
        "null",
        "true",
        "information_schema.tables",
        "/etc/passwd",
        "-1",
        "1.e",
        "char",
        "exec",
        "xp_cmdshell",
        "-",
        ".",
        "/",
        ":",
        "0",
        "9",
        "x",
        "nd",
        "ro",
        "1-",
        "-1-",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let n = iterations();
    let mut checked = 0usize;
    for i in 0..n {
        let v: Vec<u8> = if i % 2 == 0 {
            let len = 2 + rng.below(40);
            (0..len).map(|_| PLAIN[rng.below(PLAIN.len())]).collect()
        } else {
            (0..1 + rng.below(5))
                .flat_map(|_| WORDS[rng.below(WORDS.len())].bytes())
                .collect()
        };
        if !anomaly::detect::sqli::single_plain_token(&v) {
            continue;
        }
        checked += 1;
        assert!(
            !libinjectionrs::detect_sqli(&v).is_injection(),
            "libinjection flags a skipped value: {:?}",
            String::from_utf8_lossy(&v)
        );
    }
    assert!(
        checked > n / 10,
        "only {checked} of {n} values were plain tokens"
    );
    println!("{checked} plain tokens: none flagged by libinjection");
}

/// The gate in front of libinjection's SQL detector
/// (`sqli::libinjection_may_flag`) must never skip a value libinjection
/// flags. Values are built from the bytes and words the gate lets through
/// (and near misses: keywords glued to numbers, mixed case, comment halves),
/// plus mutated attack seeds; every one the gate skips goes to libinjection.
#[test]
fn libinjection_gate_never_hides_sqli() {
    const BYTES: &[u8] = b"aZ09_., -/:=<>!+*%^~;?[]\t\n\x00\xc3\xa9";
    const WORDS: &[&str] = &[
        "1",
        "0x1f",
        "1e5",
        "1.e",
        "-1",
        ".5",
        "0b1",
        "user",
        "id",
        "name",
        "x",
        "mug",
        "sku",
        "like",
        "div",
        "is",
        "not",
        "in",
        "between",
        "sounds",
        "regexp",
        "rlike",
        "mod",
        "left",
        "char",
        "count",
        "sleep",
        "benchmark",
        "version",
        "union",
        "select",
        "or",
        "and",
        "xor",
        "order",
        "by",
        "group",
        "having",
        "limit",
        "UnIoN",
        "SeLeCt",
        "oR",
        "1union",
        "0xunion",
        "1or",
        "1e1or",
        "1and",
        "exec",
        "drop",
        "table",
        "from",
        "where",
        "null",
        "true",
        "false",
        "as",
        "int",
        "char",
        "waitfor",
        "delay",
        "into",
        "outfile",
        "collate",
        "insert",
        "values",
        "-",
        "/",
        "*",
        "=",
        "<>",
        "!=",
        ":=",
        "1=1",
        "a=a",
        "--",
        "/*",
        "*/",
        ",",
        ";",
        " ",
        "  ",
        "?",
        "[union]",
        "a]",
        "?1",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let n = iterations();
    let (mut skipped, mut flagged) = (0usize, 0usize);
    for i in 0..n {
        let v: Vec<u8> = match i % 3 {
            0 => {
                let len = 1 + rng.below(40);
                (0..len).map(|_| BYTES[rng.below(BYTES.len())]).collect()
            }
            1 => {
                let mut v = Vec::new();
                for _ in 0..1 + rng.below(6) {
                    v.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
                    if rng.below(3) > 0 {
                        v.push(b' ');
                    }
                }
                v
            }
            _ => {
                let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
                mutate(&mut rng, seed)
            }
        };
        let may = anomaly::detect::sqli::libinjection_may_flag(&v);
        let is = libinjectionrs::detect_sqli(&v).is_injection();
        flagged += usize::from(is);
        if may {
            continue;
        }
        skipped += 1;
        assert!(
            !is,
            "libinjection flags a value the gate skips: {:?}",
            String::from_utf8_lossy(&v)
        );
    }
    assert!(
        skipped > n / 10,
        "only {skipped} of {n} values were skipped"
    );
    println!("{n} values, {skipped} skipped by the gate, {flagged} flagged by libinjection: none skipped");
}

/// The gate in front of libinjection's XSS detector
/// (`xss::libinjection_may_flag`: a `<` or `=`) must never skip a value it
/// flags: random and mutated values with every `<` and `=` replaced.
#[test]
fn xss_gate_never_hides_xss() {
    const PIECES: &[&str] = &[
        "javascript:",
        "vbscript:",
        "data:text/html,",
        "onload",
        " onerror",
        "style",
        "expression(",
        "\"",
        "'",
        "`",
        " ",
        "/",
        "alert(1)",
        "src",
        "href",
        ":",
        "&#",
        ";",
        "-->",
        "!",
        "x",
        "xmlns",
        "formaction",
        "\t",
        "\n",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0004);
    let n = iterations();
    let mut skipped = 0usize;
    for i in 0..n {
        let mut v: Vec<u8> = if i % 2 == 0 {
            (0..1 + rng.below(8))
                .flat_map(|_| PIECES[rng.below(PIECES.len())].bytes())
                .collect()
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
            mutate(&mut rng, seed)
        };
        for b in &mut v {
            if *b == b'<' || *b == b'=' {
                *b = ALPHABET[rng.below(ALPHABET.len())];
            }
        }
        if anomaly::detect::xss::libinjection_may_flag(&v) {
            continue;
        }
        skipped += 1;
        assert!(
            !libinjectionrs::detect_xss(&v).is_injection(),
            "libinjection flags a value the gate skips: {:?}",
            String::from_utf8_lossy(&v)
        );
    }
    assert!(skipped > n / 2, "only {skipped} of {n} values were skipped");
    println!("{skipped} values without < or =: none flagged by libinjection's XSS");
}

/// The field prefilter (`prefilter::inert`) must never dismiss a value any
/// detector would flag. Values are built from the bytes it lets through and
/// from words every detector reads (SQL keywords, shell commands, file and
/// host names, numbers), in mixed case; each dismissed one is decoded both
/// ways and given to every detector.
#[test]
fn prefilter_never_hides_a_finding() {
    use anomaly::detect::{cmdi, prefilter, sqli, ssrf, traversal::Traversal, xss};
    const WORDS: &[&str] = &[
        "1",
        "0",
        "42",
        "127",
        "169",
        "254",
        "2130706433",
        "0x7f000001",
        "0177",
        "1e5",
        "or",
        "and",
        "xor",
        "not",
        "div",
        "like",
        "union",
        "select",
        "from",
        "where",
        "order",
        "by",
        "group",
        "having",
        "limit",
        "true",
        "false",
        "null",
        "is",
        "in",
        "sleep",
        "benchmark",
        "waitfor",
        "delay",
        "drop",
        "table",
        "sysobjects",
        "information",
        "schema",
        "exec",
        "shutdown",
        "id",
        "cat",
        "ls",
        "la",
        "whoami",
        "wget",
        "curl",
        "bash",
        "sh",
        "nc",
        "ping",
        "echo",
        "hi",
        "powershell",
        "iex",
        "etc",
        "passwd",
        "shadow",
        "win",
        "ini",
        "rsa",
        "htaccess",
        "localhost",
        "metadata",
        "google",
        "internal",
        "instance",
        "data",
        "javascript",
        "alert",
        "script",
        "onerror",
        "svg",
        "php",
        "expect",
        "file",
        "gopher",
        "Blue",
        "mug",
        "SKU",
        "ml",
        "O",
        "Brien",
        "x",
        "UNION",
        "SeLeCt",
        "WhoAmI",
        "ifs",
        "IFS",
        "a",
        "b",
        "desc",
        "asc",
    ];
    const JOIN: &[&str] = &[" ", " ", ",", "-", ", ", "  ", ""];
    let traversal = Traversal::new().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0005);
    let n = iterations() / 4;
    let mut dismissed = 0usize;
    let mut hits = Vec::new();
    for _ in 0..n {
        let mut v = Vec::new();
        for k in 0..1 + rng.below(6) {
            if k > 0 || rng.below(4) == 0 {
                v.extend_from_slice(JOIN[rng.below(JOIN.len())].as_bytes());
            }
            v.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        }
        if !prefilter::inert(&v) {
            continue;
        }
        dismissed += 1;
        for plus in [Plus::Space, Plus::Keep] {
            let norm = normalize(&v, plus);
            hits.clear();
            sqli::detect(&norm, &mut hits);
            traversal.detect(&norm, &mut hits);
            ssrf::detect(&norm, &mut hits);
            hits.extend(xss::detect(&norm));
            hits.extend(cmdi::detect(&norm));
            assert!(
                hits.is_empty(),
                "the prefilter dismisses a flagged value: {:?} {:?}",
                String::from_utf8_lossy(&v),
                hits
            );
        }
    }
    assert!(
        dismissed > n / 10,
        "only {dismissed} of {n} values were dismissed"
    );
    println!("{n} values, {dismissed} dismissed by the prefilter: none flagged by the detectors");
}

/// The per-context gate (`sqli::context_clear`) must only skip contexts in
/// which libinjection flags nothing, and the per-context verdict
/// (`sqli::libinjection_flags`) must equal libinjection's own on every
/// value. Values are sentences of English words, every word of
/// libinjection's keyword table (phrases split, so they can re-form), the
/// names it turns into functions, numbers, quotes and SQL punctuation, and
/// mutated attack seeds behind two plain words.
#[test]
fn libinjection_prefix_gate_matches_libinjection() {
    use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
    use libinjectionrs::{SqliFlags, SqliState};
    // English and tricky words, drawn as often as the whole SQL vocabulary.
    const PLAIN: &[&str] = &[
        "the",
        "best",
        "gift",
        "wrap",
        "Ann",
        "O'Brien",
        "please",
        "leave",
        "door",
        "order",
        "natural",
        "full",
        "outer",
        "join",
        "at",
        "time",
        "zone",
        "user",
        "password",
        "user_id",
        "user_name",
        "database",
        "localtime",
        "current_user",
        "2-pack",
        "50%",
        "#4411",
        "x",
        "a.b",
        "b.c",
        "é",
        "Zoë",
        "mug",
        "blue",
        "delivery",
        "window",
        "thanks",
        "arrived",
        "damaged",
        "can",
        "you",
        "price",
        "tag",
        "box",
        "week",
        "cheaper",
        "match",
        "it",
        "Müller",
        "street",
        "call",
        "before",
        "note",
        "hello",
        "world",
        "dear",
        "team",
    ];
    let mut vocab: Vec<String> = Vec::new();
    for k in SQL_KEYWORDS.iter().filter(|k| k.token_type != b'F') {
        for w in k.word.split(' ') {
            vocab.push(w.to_ascii_lowercase());
        }
    }
    vocab.sort();
    vocab.dedup();
    const PUNCT: &[&str] = &[
        " ", " ", " ", ", ", "; ", ". ", "'", "\"", "`", "(", ")", " -- ", "#", "/*", "*/", "=",
        " 1 ", "0x1", "@", "$", "\\", "{", "}", ":", "-", "+", "||", "&&", "\n",
    ];
    let flag_sets = [
        SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_ANSI,
        SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_MYSQL,
        SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_ANSI,
        SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_MYSQL,
        SqliFlags::FLAG_QUOTE_DOUBLE | SqliFlags::FLAG_SQL_MYSQL,
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0007);
    let n = iterations();
    let (mut cleared, mut flagged) = (0usize, 0usize);
    for i in 0..n {
        let mut v: Vec<u8> = Vec::new();
        if i % 4 == 3 {
            // an attack behind two plain words
            v.extend_from_slice(PLAIN[rng.below(PLAIN.len())].as_bytes());
            v.push(b' ');
            v.extend_from_slice(PLAIN[rng.below(PLAIN.len())].as_bytes());
            let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
            v.extend(mutate(&mut rng, seed));
        } else {
            for _ in 0..2 + rng.below(10) {
                if rng.below(3) == 0 {
                    v.extend_from_slice(PUNCT[rng.below(PUNCT.len())].as_bytes());
                }
                let word = if rng.below(2) == 0 {
                    PLAIN[rng.below(PLAIN.len())]
                } else {
                    &vocab[rng.below(vocab.len())]
                };
                v.extend_from_slice(word.as_bytes());
                v.push(b' ');
            }
        }
        let ours = anomaly::detect::sqli::libinjection_flags(&v);
        let theirs = libinjectionrs::detect_sqli(&v).is_injection();
        flagged += usize::from(theirs);
        assert_eq!(ours, theirs, "verdicts differ on \"{}\"", v.escape_ascii());
        for &f in &flag_sets {
            if anomaly::detect::sqli::context_clear(&v, f) {
                cleared += 1;
                assert!(
                    !SqliState::new(&v, f).is_sqli(),
                    "a cleared context is flagged: {f:?} {:?}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
    }
    assert!(
        cleared > n / 10,
        "only {cleared} contexts of {n} values cleared"
    );
    assert!(
        flagged > n / 50,
        "only {flagged} of {n} values flagged: weak generator"
    );
    println!("{n} values, {flagged} flagged by libinjection, {cleared} contexts cleared: none hid a finding");
}
