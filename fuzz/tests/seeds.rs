//! Writes the seed corpus and `data/jwks.json` (run by hand when the seeds
//! change: `cargo test -p meshward-fuzz --test seeds -- --ignored`). Seeds
//! are valid examples from the docs, the jwt-auth test fixtures and RFCs,
//! plus near-misses; they are named `seed-*` so the ones libFuzzer adds
//! (named by content hash) stay apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use jwt_auth::jose::testing;
use jwt_auth::jose::Alg;
use meshward_fuzz::request::NOW_SECS;
use meshward_fuzz::targets;
use serde_json::json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

fn s(name: &'static str, text: &str) -> (&'static str, Vec<u8>) {
    (name, text.as_bytes().to_vec())
}

fn named(v: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
    v.iter().map(|(n, d)| (n.as_str(), d.clone())).collect()
}

fn json_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(start) = rest.find("```json\n") {
        rest = &rest[start + 8..];
        let end = rest.find("```").unwrap();
        out.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    out
}

#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seeds() {
    std::fs::write(root().join("data/jwks.json"), testing::jwks_json() + "\n").unwrap();

    // jws: one valid token per algorithm, plus RFC 7515 and near-misses.
    let claims = testing::claims(NOW_SECS);
    let mut jws: Vec<(String, Vec<u8>)> = Alg::ALL
        .iter()
        .map(|a| {
            (
                a.name().to_lowercase(),
                testing::token(*a, &claims).into_bytes(),
            )
        })
        .collect();
    let crit = json!({"alg": "ES256", "kid": testing::KID_P256, "crit": ["exp"], "exp": 1});
    jws.push((
        "crit".into(),
        testing::token_with_header(Alg::Es256, &crit, &claims).into_bytes(),
    ));
    let expired = json!({"iss": targets::FIXTURE_ISSUER, "sub": "a", "aud": "api", "exp": 1});
    jws.push((
        "expired".into(),
        testing::token(Alg::Hs256, &expired).into_bytes(),
    ));
    jws.push((
        "dup-member".into(),
        testing::sign_raw(
            Alg::Hs256,
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"{"iss":"x"}"#,
        )
        .into_bytes(),
    ));
    // RFC 7515 appendix A.1 (HS256; another key, so it fails verification).
    jws.push(("rfc7515-a1".into(), b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_vec()));
    jws.push((
        "alg-none".into(),
        b"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.".to_vec(),
    ));
    let jws: Vec<(&str, Vec<u8>)> = jws.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    write("jws", &jws);

    // jwks: the fixture set, each key alone, a 1024-bit RSA key, RFC 7517 shapes.
    let mut jwks = vec![("fixtures".to_string(), testing::jwks_json().into_bytes())];
    for kid in [
        testing::KID_RSA,
        testing::KID_P256,
        testing::KID_P384,
        testing::KID_ED25519,
        testing::KID_HMAC,
    ] {
        jwks.push((kid.to_string(), testing::jwks_of(&[kid]).into_bytes()));
    }
    jwks.push((
        "rsa1024".into(),
        format!("{{\"keys\":[{}]}}", testing::RSA_1024_JWK.trim()).into_bytes(),
    ));
    jwks.push(("empty".into(), b"{\"keys\":[]}".to_vec()));
    jwks.push((
        "ops".into(),
        br#"{"keys":[{"kty":"EC","crv":"P-256","use":"enc","key_ops":["verify"],"alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"1"}]}"#.to_vec(),
    ));
    let jwks: Vec<(&str, Vec<u8>)> = jwks.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    write("jwks", &jwks);

    write(
        "oidc_discovery",
        &[
            s(
                "minimal",
                r#"{"issuer":"https://idp.example","jwks_uri":"https://idp.example/jwks"}"#,
            ),
            s(
                "keycloak",
                r#"{"issuer":"https://idp.example","authorization_endpoint":"https://idp.example/auth","token_endpoint":"https://idp.example/token","jwks_uri":"https://idp.example/realms/prod/protocol/openid-connect/certs","response_types_supported":["code"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256","ES256"]}"#,
            ),
            s(
                "wrong-issuer",
                r#"{"issuer":"https://evil.example","jwks_uri":"https://idp.example/jwks"}"#,
            ),
            s(
                "no-scheme",
                r#"{"issuer":"https://idp.example","jwks_uri":"idp.example/jwks"}"#,
            ),
            s(
                "userinfo",
                r#"{"issuer":"https://idp.example","jwks_uri":"https://user@idp.example/jwks"}"#,
            ),
            s("jwks-body", &testing::jwks_of(&[testing::KID_P256])),
        ],
    );

    let docs = root().join("../docs");
    let examples = |dir: &str| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(docs.join("examples").join(dir))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_stem().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };

    let mut jwt = examples("jwt-auth");
    for (i, b) in json_blocks(&std::fs::read_to_string(docs.join("jwt-auth.md")).unwrap())
        .into_iter()
        .enumerate()
    {
        if b.len() < 4096 {
            jwt.push((format!("doc-{i}"), b.into_bytes()));
        }
    }
    write("jwt_config", &named(&jwt));

    let mut az = examples("authz");
    for (i, b) in json_blocks(&std::fs::read_to_string(docs.join("authz.md")).unwrap())
        .into_iter()
        .enumerate()
    {
        if b.len() < 4096 {
            az.push((format!("doc-{i}"), b.into_bytes()));
        }
    }
    write("authz_config", &named(&az));

    let mut rl: Vec<(String, Vec<u8>)> = targets::RATELIMIT_CONFIGS
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("fixture-{i}"), c.as_bytes().to_vec()))
        .collect();
    for (i, b) in json_blocks(&std::fs::read_to_string(docs.join("rate-limit.md")).unwrap())
        .into_iter()
        .enumerate()
    {
        rl.push((format!("doc-{i}"), b.into_bytes()));
    }
    write("ratelimit_config", &named(&rl));

    let alice = r#"{"iss":"https://idp.example","sub":"alice","scope":"read write","plan":"gold","tenant":"acme","org":{"id":7},"roles":["admin"]}"#;
    let req = |m: &str, p: &str, peer: &str, claims: &str, san: &str, headers: &str| {
        format!("{m}\n{p}\napi.example.com\n{peer}\n{claims}\n{san}\n{headers}").into_bytes()
    };
    write(
        "authz_eval",
        &[
            (
                "own-orders",
                req(
                    "GET",
                    "/users/alice/orders/1",
                    "10.0.0.1:5555",
                    alice,
                    "",
                    "x-tenant: acme",
                ),
            ),
            (
                "other-orders",
                req("GET", "/users/bob/orders", "10.0.0.1:5555", alice, "", ""),
            ),
            (
                "dot-trick",
                req(
                    "GET",
                    "/public/../users/bob/orders",
                    "10.0.0.1:5555",
                    alice,
                    "",
                    "",
                ),
            ),
            (
                "encoded-slash",
                req("GET", "/users%2Fbob", "[2001:db8::1]:80", "", "", ""),
            ),
            (
                "mtls",
                req(
                    "POST",
                    "/admin",
                    "192.0.2.7:1",
                    "",
                    "spiffe://cluster.local/ns/default/sa/frontend",
                    "x-forwarded-for: 203.0.113.9, 10.0.0.2",
                ),
            ),
            (
                "no-identity",
                req(
                    "DELETE",
                    "/",
                    "",
                    "",
                    "",
                    "x-country: DE\nx-tenant: a\nx-tenant: b",
                ),
            ),
        ],
    );

    write(
        "ratelimit_keys",
        &[
            (
                "user",
                req(
                    "GET",
                    "/users/7/orders/1?api_key=k1&x=2",
                    "10.0.0.1:5555",
                    alice,
                    "",
                    "x-api-key: k1\nx-forwarded-for: 198.51.100.7, 10.1.1.1",
                ),
            ),
            (
                "anon-v6",
                req(
                    "POST",
                    "/login",
                    "[2001:db8::1]:443",
                    "",
                    "",
                    "x-forwarded-for: 2001:db8::7",
                ),
            ),
            (
                "free-tier",
                req(
                    "GET",
                    "/users/9",
                    "10.0.0.9:1",
                    r#"{"sub":"bob","plan":"free","tenant":"t\u001fx"}"#,
                    "",
                    "x-api-key: a\u{1f}b=c",
                ),
            ),
            (
                "compose",
                b"rule\nsub\talice\nmethod\tGET\npath\t/a=b".to_vec(),
            ),
        ],
    );

    let paths = [
        ("root", "/"),
        ("plain", "/users/42/orders"),
        ("dots", "/a/./b/../c"),
        ("above-root", "/../etc/passwd"),
        ("slashes", "//admin//x/"),
        ("escapes", "/%61dmin/%7euser/%2e%2E/x%41"),
        ("encoded-slash", "/a%2Fb"),
        ("backslash", "/a\\b"),
        ("nul", "/a%00b"),
        ("dots-after-empty", "/a//../b"),
        ("query", "/p?api_key=k&x=%2F#frag"),
        ("trailing-dot", "/a/b/."),
        ("trailing-dotdot", "/a/b/.."),
    ];
    let paths: Vec<(&str, Vec<u8>)> = paths
        .iter()
        .map(|(n, p)| (*n, p.as_bytes().to_vec()))
        .collect();
    write("path_normalize", &paths);

    write(
        "addr",
        &[
            s("xff", "203.0.113.9, 10.0.0.1 ,10.0.0.2"),
            s("v6", "2001:db8::1"),
            s("socket-v4", "10.0.0.1:5555"),
            s("socket-v6", "[2001:db8::1]:80"),
            s("mapped", "::ffff:1.2.3.4"),
            s("garbage", "pipe:/tmp/x,1.2.3.4:80,"),
        ],
    );

    write(
        "claims",
        &[
            s(
                "nested",
                "realm_access.roles\n{\"realm_access\":{\"roles\":[\"admin\",\"user\"]}}",
            ),
            s(
                "namespaced",
                "https://example.com/roles\n{\"https://example.com/roles\":[\"a\"]}",
            ),
            s("mixed", "a.b.c\n{\"a\":{\"b.c\":1},\"a.b\":{\"c\":2}}"),
            s(
                "scalar",
                "org.id\n{\"org\":{\"id\":7},\"n\":1.5,\"t\":true}",
            ),
        ],
    );

    let enc = |v: serde_json::Value| {
        meshward_shared::facts::metadata::encode_payload(
            "envoy.filters.http.jwt_authn",
            "payload",
            v.as_object().unwrap(),
        )
    };
    write(
        "metadata",
        &[
            (
                "typed",
                enc(
                    json!({"sub": "alice", "n": 7, "f": 1.5, "b": true, "z": null, "l": ["a", 1], "o": {"x": {"y": []}}}),
                ),
            ),
            ("empty", enc(json!({}))),
            (
                "big-number",
                enc(json!({"exp": 9_007_199_254_740_993u64, "neg": -3})),
            ),
        ],
    );

    write(
        "path_template",
        &[
            s("users", "/users/{user}/orders/{**}\n/users/7/orders/1/items\n/users/7/orders/\n/users//orders/1"),
            s("rest-tail", "/foo/{**}/bar\n/foo/a/b/bar\n/foo/bar\n/foo//bar"),
            s("named-rest", "/x/{path=**}\n/x/\n/x\n/x/a/b"),
            s("root", "/\n/\n//"),
            s("bad", "/a/{**}/{*}\n/a/b/c"),
        ],
    );
}
