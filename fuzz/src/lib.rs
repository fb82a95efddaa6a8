//! Fuzz targets for meshward: each is a `fn(&[u8])` that must never panic
//! and must return in bounded time, whatever the bytes. A target asserts the
//! properties its code promises (an `assert!` failing is a finding, like a
//! panic inside the code under test).
//!
//! The same functions run under three drivers:
//! - `cargo fuzz run <target>` (libFuzzer, coverage-guided; `fuzz_targets/`);
//! - the smoke in `tests/smoke.rs` (`cargo test -p meshward-fuzz`): every
//!   committed corpus entry plus a bounded number of deterministic mutants;
//! - the regression tests in `tests/regressions.rs`.

pub mod mutate;
pub mod request;
pub mod targets;

/// One fuzz target: its name (also its corpus folder and libFuzzer binary),
/// the function, and dictionary tokens for the smoke's mutator.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub dict: &'static [&'static [u8]],
}

const JSON_DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
];

const PATH_DICT: &[&[u8]] = &[
    b"/", b"//", b".", b"..", b"/./", b"/../", b"%2F", b"%2f", b"%5C", b"%2E", b"%2e", b"%00",
    b"%41", b"%", b"?", b"#", b"\\", b";", b"{", b"}", b"{*}", b"{**}", b"{a=**}", b"=",
];

const ADDR_DICT: &[&[u8]] = &[
    b",",
    b":",
    b"[",
    b"]",
    b"::",
    b"::ffff:",
    b"1.2.3.4",
    b"2001:db8::1",
    b" ",
    b"\t",
    b"%eth0",
];

pub const TARGETS: &[Target] = &[
    Target {
        name: "jws",
        run: targets::jws,
        dict: &[
            b".",
            b"eyJ",
            b"\"alg\"",
            b"\"kid\"",
            b"\"crit\"",
            b"\"none\"",
            b"\"RS256\"",
            b"\"ES256\"",
            b"\"HS256\"",
            b"\"EdDSA\"",
            b"=",
            b"+",
            b"/",
            b"-",
            b"_",
        ],
    },
    Target {
        name: "jwks",
        run: targets::jwks,
        dict: &[
            b"\"keys\"",
            b"\"kty\"",
            b"\"RSA\"",
            b"\"EC\"",
            b"\"OKP\"",
            b"\"oct\"",
            b"\"crv\"",
            b"\"P-256\"",
            b"\"P-384\"",
            b"\"Ed25519\"",
            b"\"n\"",
            b"\"e\"",
            b"\"x\"",
            b"\"y\"",
            b"\"k\"",
            b"\"use\"",
            b"\"key_ops\"",
            b"\"alg\"",
            b"\"AQAB\"",
            b"{",
            b"}",
        ],
    },
    Target {
        name: "oidc_discovery",
        run: targets::oidc_discovery,
        dict: &[
            b"\"issuer\"",
            b"\"jwks_uri\"",
            b"https://",
            b"http://",
            b"@",
            b"#",
            b"/",
            b" ",
            b"https://idp.example",
            b"{",
            b"}",
        ],
    },
    Target {
        name: "jwt_config",
        run: targets::jwt_config,
        dict: &[
            b"\"providers\"",
            b"\"issuer\"",
            b"\"rules\"",
            b"\"local_jwks\"",
            b"\"remote_jwks\"",
            b"\"oidc_discovery\"",
            b"\"requires\"",
            b"\"requires_any\"",
            b"\"requires_all\"",
            b"\"provider_name\"",
            b"\"safe_regex\"",
            b"\"prefix\"",
            b"\"from_headers\"",
            b"\"timeout\"",
            b"\"0s\"",
            b"\"99999999999s\"",
            b"{",
            b"}",
        ],
    },
    Target {
        name: "authz_config",
        run: targets::authz_config,
        dict: &[
            b"\"policies\"",
            b"\"action\"",
            b"\"ALLOW\"",
            b"\"DENY\"",
            b"\"AUDIT\"",
            b"\"rules\"",
            b"\"from\"",
            b"\"to\"",
            b"\"when\"",
            b"\"paths\"",
            b"\"notPaths\"",
            b"\"ipBlocks\"",
            b"\"0.0.0.0/0\"",
            b"\"request.auth.claims[sub]\"",
            b"\"{**}\"",
            b"\"objects\"",
            b"{",
            b"}",
        ],
    },
    Target {
        name: "ratelimit_config",
        run: targets::ratelimit_config,
        dict: &[
            b"\"rules\"",
            b"\"name\"",
            b"\"key\"",
            b"\"limit\"",
            b"\"requests\"",
            b"\"per\"",
            b"\"burst\"",
            b"\"gcra\"",
            b"\"tiers\"",
            b"\"mode\"",
            b"\"global\"",
            b"\"hybrid\"",
            b"\"max_keys\"",
            b"\"throttle\"",
            b"0",
            b"4294967295",
            b"1e308",
            b"{",
            b"}",
        ],
    },
    Target {
        name: "authz_eval",
        run: targets::authz_eval,
        dict: &[
            b"\n",
            b"GET",
            b"POST",
            b"/users/alice/orders",
            b"%2F",
            b"/../",
            b"x-tenant: ",
            b"x-forwarded-for: ",
            b"10.0.0.1:5555",
            b"{\"sub\":\"alice\"}",
            b"spiffe://",
        ],
    },
    Target {
        name: "ratelimit_keys",
        run: targets::ratelimit_keys,
        dict: &[
            b"\n",
            b"\x1f",
            b"=",
            b"x-api-key: ",
            b"?api_key=",
            b"&",
            b"x-forwarded-for: ",
            b"{\"sub\":\"alice\",\"plan\":\"gold\"}",
            b"2001:db8::1",
            b"/users/7",
        ],
    },
    Target {
        name: "path_normalize",
        run: targets::path_normalize,
        dict: PATH_DICT,
    },
    Target {
        name: "addr",
        run: targets::addr,
        dict: ADDR_DICT,
    },
    Target {
        name: "claims",
        run: targets::claims,
        dict: &[
            b"\n",
            b".",
            b"{\"a\":{\"b\":1}}",
            b"\"a.b\"",
            b"https://example.com/roles",
        ],
    },
    Target {
        name: "metadata",
        run: targets::metadata,
        dict: &[
            b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32", b"\x08", b"\x11", b"\xff",
        ],
    },
    Target {
        name: "path_template",
        run: targets::path_template,
        dict: PATH_DICT,
    },
];

/// Dictionary tokens shared by every JSON-shaped target.
pub fn json_dict() -> &'static [&'static [u8]] {
    JSON_DICT
}

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
