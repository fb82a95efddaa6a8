use super::*;

fn set(v: &[&str]) -> StringSet {
    StringSet::compile(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false).unwrap()
}

#[test]
fn string_set_exact_prefix_suffix_presence() {
    let s = set(&["GET", "/api/*", "*.json"]);
    assert!(s.matches("GET"));
    assert!(!s.matches("get"));
    assert!(s.matches("/api/x") && s.matches("/api/"));
    assert!(s.matches("a.json"));
    assert!(!s.matches("/apix"));
    let any = set(&["*"]);
    assert!(any.matches("x") && !any.matches(""));
    let folded = StringSet::compile(&["Example.COM".into(), "*.Corp".into()], true).unwrap();
    assert!(
        folded.matches("example.com") && folded.matches("EXAMPLE.com") && folded.matches("a.CORP")
    );
    assert!(set(&[]).is_empty());
    for bad in ["a*b", "**x*", "*a*"] {
        assert!(
            StringSet::compile(&[bad.to_string()], false).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        StringSet::compile(&["ok".into(), "a*b".into()], false)
            .unwrap_err()
            .path,
        "[1]"
    );
    assert!(set(&["a", "b"]).exact_only().is_some());
    assert!(set(&["a*"]).exact_only().is_none());
}

#[test]
fn header_star_is_presence() {
    let star = set(&["*"]);
    assert!(!star.matches(""), "istiod: `*` is `.+` for most fields");
    let hdr = set(&["*"]).star_matches_empty(true);
    assert!(
        hdr.matches("") && hdr.matches("x"),
        "headers: present_match"
    );
}

#[test]
fn request_principals_split_at_the_last_slash() {
    let p =
        |v: &[&str]| PrincipalSet::compile(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let m = |s: &PrincipalSet, iss: &str, sub: &str| s.matches(Some(iss), Some(sub));
    let s = p(&["https://idp.test/*"]);
    assert!(m(&s, "https://idp.test", "alice"));
    assert!(
        !m(&s, "https://idp.test/realms/acme", "alice"),
        "the issuer is exact"
    );
    assert!(!m(&s, "https://idp.test", ""), "`*` is `.+`");
    let s = p(&["https://idp.test/realms/acme/al*"]);
    assert!(m(&s, "https://idp.test/realms/acme", "alice"));
    assert!(!m(&s, "https://idp.test/realms/acme", "bob"));
    let s = p(&["*/alice"]);
    assert!(m(&s, "anything", "alice") && !m(&s, "anything", "bob"));
    let s = p(&["*.test/alice"]);
    assert!(m(&s, "https://idp.test", "alice") && !m(&s, "https://idp.org", "alice"));
    let s = p(&["*"]);
    assert!(m(&s, "i", "s") && !m(&s, "", "s"));
    assert!(!s.matches(None, Some("s")), "both claims must be strings");
    let s = p(&["*lice"]);
    assert!(m(&s, "x", "alice"));
    let s = p(&["https:*"]);
    assert!(m(&s, "https:x", "y"), "no `/`: a prefix on iss, any sub");
    let s = p(&["issuer*"]);
    assert!(m(&s, "issuer-2", "x"));
    let s = p(&["https://i/a/b"]);
    assert!(m(&s, "https://i/a", "b") && !m(&s, "https://i", "a/b"));
}

#[test]
fn templates_single_multi_and_named() {
    let mut names = CaptureNames::new();
    let t = Template::parse("/users/{user}/orders/{**}", &mut names).unwrap();
    assert_eq!(names, vec!["user"]);
    assert!(t.matches("/users/alice/orders/1"));
    assert!(t.matches("/users/alice/orders/1/items/2"));
    assert!(
        !t.matches("/users/alice/orders"),
        "Envoy's uri_template: `/{{**}}` needs the `/`"
    );
    assert!(t.matches("/users/alice/orders/"));
    assert!(
        !t.matches("/users//orders/1"),
        "empty segment is not a value"
    );
    assert!(!t.matches("/users/alice/order/1"));
    assert!(!t.matches("users/alice/orders"));
    assert_eq!(t.capture("/users/alice/orders/9", 0), Some("alice"));
    assert_eq!(t.capture("/users/bob/orders/", 0), Some("bob"));
    assert_eq!(t.capture("/users/bob/orders", 0), None);
    let t = Template::parse("/a/{*}/c", &mut names).unwrap();
    assert!(
        t.matches("/a/b/c") && !t.matches("/a/b/c/d") && !t.matches("/a/c") && !t.matches("/a/b")
    );
    let t = Template::parse("/t/{tenant=*}/{rest=**}", &mut names).unwrap();
    assert_eq!(names, vec!["user", "tenant", "rest"]);
    assert_eq!(t.capture("/t/acme/x/y", 2), Some("x/y"));
    assert_eq!(t.capture("/t/acme/x/y", 1), Some("acme"));
    assert_eq!(t.capture("/t/acme/x/y", 0), None);
    let t = Template::parse("/{**}", &mut names).unwrap();
    assert!(t.matches("/") && t.matches("/a/b"));
}

#[test]
fn bad_templates_refused() {
    let mut n = CaptureNames::new();
    for bad in [
        "users/{id}",
        "/a/{**}/{*}",
        "/a/{id}/{id}",
        "/a/x{id}",
        "/a/{}",
        "/a/{id=***}",
        "/a/{bad-name}",
        "/a/{id",
        "/a/*/b",
    ] {
        assert!(Template::parse(bad, &mut n).is_err(), "{bad}");
    }
}

#[test]
fn path_sets_mix_globs_and_templates() {
    let mut n = CaptureNames::new();
    let p = PathSet::compile(
        &[
            "/exact".into(),
            "/pre/*".into(),
            "*.css".into(),
            "/u/{id}".into(),
        ],
        &mut n,
    )
    .unwrap();
    assert!(p.matches("/exact") && p.matches("/pre/x") && p.matches("/a.css") && p.matches("/u/7"));
    assert!(!p.matches("/u/7/8") && !p.matches("/exact/"));
    assert_eq!(p.capture("/u/7", 0), Some("7"));
    assert!(
        p.first_segments().is_none(),
        "`*.css` can match any first segment"
    );
    let p = PathSet::compile(
        &["/a/b".into(), "/pre/*".into(), "/u/{id}".into(), "/".into()],
        &mut n,
    )
    .unwrap();
    assert_eq!(
        p.first_segments().unwrap(),
        vec!["".into(), "a".into(), "pre".into(), "u".into()]
    );
    let p = PathSet::compile(&["/pre*".into()], &mut n).unwrap();
    assert!(
        p.first_segments().is_none(),
        "`/pre*` also matches `/prefix`"
    );
    let p = PathSet::compile(&["/{x}/a".into()], &mut n).unwrap();
    assert!(p.first_segments().is_none());
    let e = PathSet::compile(&["/a".into(), "/b/{x".into()], &mut n).unwrap_err();
    assert_eq!(e.path, "[1]");
    assert!(PathSet::compile(&["".into()], &mut n).is_err());
}
