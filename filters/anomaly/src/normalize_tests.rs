use crate::normalize::*;

fn n(s: &str) -> String {
    String::from_utf8_lossy(&normalize(s.as_bytes(), Plus::Space)).into_owned()
}

#[test]
fn url_decoding_is_applied_twice() {
    assert_eq!(n("%3Cscript%3E"), "<script>");
    assert_eq!(n("%253Cscript%253E"), "<script>");
    // A third layer stays encoded: servers decode at most twice.
    assert_eq!(n("%25253C"), "%3c");
}

#[test]
fn plus_is_a_space_only_in_form_encoding() {
    assert_eq!(n("1+or+1=1"), "1 or 1=1");
    assert_eq!(normalize(b"/a+b", Plus::Keep), b"/a+b");
    // `%2B` is a literal plus even in forms.
    assert_eq!(n("a%2Bb"), "a+b");
}

#[test]
fn bad_percent_escapes_are_kept() {
    assert_eq!(n("100%"), "100%");
    assert_eq!(n("%zz%4"), "%zz%4");
}

#[test]
fn iis_unicode_escapes_and_fullwidth_ascii() {
    assert_eq!(n("%u003Cscript%u003E"), "<script>");
    // U+FF1C FULLWIDTH LESS-THAN SIGN maps to `<` (IIS best fit).
    assert_eq!(n("%uFF1Cscript%uFF1E"), "<script>");
    assert_eq!(n("\u{FF1C}svg\u{FF1E}"), "<svg>");
}

#[test]
fn html_entities_named_and_numeric() {
    assert_eq!(n("&lt;img&gt;"), "<img>");
    assert_eq!(n("&#60;&#x3C;&#X3c;"), "<<<");
    // Numeric references without `;`, as browsers accept.
    assert_eq!(n("&#106&#97&#118&#97"), "java");
    assert_eq!(n("java&Tab;script&colon;"), "java\tscript:");
    // A named entity needs its `;`; unknown names stay.
    assert_eq!(n("AT&T &ltd &foo;"), "at&t &ltd &foo;");
    // Out-of-range code points become `?`, never a panic.
    assert_eq!(n("&#x110000;&#9999999;"), "??");
}

#[test]
fn overlong_utf8_is_read_as_ascii() {
    assert_eq!(n("%c0%af%c0%ae%c1%9c"), "/.\\");
    // A lone C0 without a continuation byte stays.
    assert_eq!(normalize(b"\xc0a", Plus::Keep), b"\xc0a");
}

#[test]
fn js_escapes() {
    assert_eq!(n("\\u003cscript\\x3e"), "<script>");
    assert_eq!(n("\\u{3c}svg\\u{0003e}"), "<svg>");
    // Incomplete escapes and other backslashes stay.
    assert_eq!(n("\\u12 \\x4 \\n \\'"), "\\u12 \\x4 \\n \\'");
    assert_eq!(n("\\u{}\\u{1234567}"), "\\u{}\\u{1234567}");
}

#[test]
fn nul_removed_and_lowercased() {
    assert_eq!(n("SeL%00eCt"), "select");
    assert_eq!(normalize(b"A\0B", Plus::Keep), b"ab");
}

#[test]
fn output_never_grows() {
    for s in [
        "%u0041%41&#65;\\x41\\u0041\\u{41}&lt;",
        "%%%%",
        "&#",
        "&#x",
        "\\u{",
        "\u{FF01}\u{FF5E}",
    ] {
        assert!(normalize(s.as_bytes(), Plus::Space).len() <= s.len(), "{s}");
    }
}

#[test]
fn path_normalisation() {
    let p = |s: &str| {
        let r = normalize_path(s.as_bytes());
        (
            String::from_utf8_lossy(&r.path).into_owned(),
            r.escaped_root,
        )
    };
    assert_eq!(p("/a/./b//c/"), ("/a/b/c/".to_string(), false));
    assert_eq!(p("/a/b/../c"), ("/a/c".to_string(), false));
    assert_eq!(p("/a/../../etc/passwd"), ("/etc/passwd".to_string(), true));
    assert_eq!(
        p("..\\..\\windows\\win.ini"),
        ("windows/win.ini".to_string(), true)
    );
    assert_eq!(p("/"), ("/".to_string(), false));
    assert_eq!(p(""), (String::new(), false));
}

#[test]
fn linear_time_on_hostile_input() {
    // 1 MiB of escape prefixes that never complete: one pass each.
    let s = "%u%&#x\\u{".repeat(1 << 17);
    let start = std::time::Instant::now();
    let out = normalize(s.as_bytes(), Plus::Space);
    assert!(out.len() <= s.len());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
