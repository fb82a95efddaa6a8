//! Regression tests for what the fuzz runs found, and checks that the
//! targets reach the deep paths they are meant to (a target that never gets
//! past its first parse would fuzz nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use jwt_auth::jose::{Jwks, UntrustedToken};

use meshward_fuzz::targets;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
        .join(format!("seed-{name}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn jws_seeds_verify_against_the_fixture_keys() {
    let jwks = Jwks::parse_strict(targets::FIXTURE_JWKS).unwrap();
    for alg in ["rs256", "ps512", "es256", "es384", "eddsa", "hs256"] {
        let token = String::from_utf8(seed("jws", alg)).unwrap();
        let t = UntrustedToken::parse(&token).unwrap();
        assert_eq!(jwt_auth::jose::verify(&t, &jwks), Ok(()), "{alg}");
        targets::jws(token.as_bytes());
    }
}

#[test]
fn jws_seeds_reach_the_host_signature_path() {
    // The `jws` target compares ring with the host path; that comparison only means
    // something if RS*/ES* seeds really go through the host verifier and pass there.
    use jwt_auth::jose::{testing::RingAsHost, verify_with, VerifyStats};
    let jwks = Jwks::parse_strict(targets::FIXTURE_JWKS).unwrap();
    for alg in ["rs256", "es256", "es384"] {
        let token = String::from_utf8(seed("jws", alg)).unwrap();
        let t = UntrustedToken::parse(&token).unwrap();
        let mut stats = VerifyStats::default();
        assert_eq!(
            verify_with(&t, &jwks, Some(&RingAsHost), &mut stats),
            Ok(()),
            "{alg}"
        );
        assert!(stats.host >= 1 && stats.ring == 0, "{alg}: {stats:?}");
    }
}

#[test]
fn discovery_seed_reaches_the_jwks_fetch() {
    // The target asserts the JWKS fetch and load after `Discovered`.
    targets::oidc_discovery(&seed("oidc_discovery", "minimal"));
    targets::oidc_discovery(&seed("oidc_discovery", "keycloak"));
}

#[test]
fn path_normal_forms() {
    for p in ["/", "/a/b", "/a/b/", "/%7Bx%7D", "/a%20b"] {
        targets::check_normal_form(p);
        targets::path_normalize(p.as_bytes());
    }
}

/// Found by `path_normalize` (60 s run): the target's own property said a
/// normal form holds no space, but `normalize` passes a literal space
/// through (Envoy's codecs refuse one before any filter runs). The property
/// was wrong, not the code; this input keeps it honest.
/// Input hex: 2f612f2e2f2e2f202e65742e2f6263
#[test]
fn path_with_a_literal_space() {
    let input = b"/a/././ .et./bc";
    assert_eq!(
        meshward_shared::facts::path::normalize("/a/././ .et./bc").as_deref(),
        Ok("/a/ .et./bc")
    );
    targets::path_normalize(input);
}

/// Found by `ratelimit_config`: `configure` with `max_keys` at the accepted
/// ceiling (1,000,000) touches every slot of the table, two host calls per
/// slot (about 4 s and 300 MB on the fake host, natively). Reported, not
/// fixed here (filters/rate-limit/src/slots.rs, `init`). This test pins the
/// cost to linear in `max_keys` at a size the smoke can afford, and checks
/// that the fuzz target leaves out larger tables.
#[test]
fn ratelimit_configure_touches_every_slot() {
    let cfg = |keys: u32| {
        format!(
            r#"{{"max_keys": {keys}, "rules": [{{"name": "r", "key": [{{"header": "x"}}],
                "limit": {{"requests": 1, "per": "second"}}}}]}}"#
        )
    };
    for keys in [1_000u32, 5_000] {
        let host = meshward_shared::fake::FakeHost::default();
        assert!(rate_limit::root::configure(&host, cfg(keys).as_bytes()).is_some());
        let slot_reads = |host: &meshward_shared::fake::FakeHost| {
            host.reads()
                .iter()
                .filter(|r| r.starts_with("shared mwrl:"))
                .count()
        };
        assert_eq!(
            slot_reads(&host),
            keys as usize + 1,
            "the marker, then one read per slot"
        );
        // Every later worker (same process, same table) reads the marker only.
        host.clear_reads();
        assert!(rate_limit::root::configure(&host, cfg(keys).as_bytes()).is_some());
        assert_eq!(slot_reads(&host), 1);
    }
    let big = cfg(1_000_000);
    assert_eq!(
        meshward_fuzz::targets::max_keys_of(big.as_bytes()),
        Some(1_000_000)
    );
    let start = std::time::Instant::now();
    targets::ratelimit_config(big.as_bytes());
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
}
