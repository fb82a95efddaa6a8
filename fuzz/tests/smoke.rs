//! The fuzz smoke (part of `make test`): every target over its committed
//! corpus, then a bounded number of deterministic mutants of it. Fails on a
//! panic, a failed property, or an input slower than `SLOW`.
//! `MESHWARD_FUZZ_ITERS` (mutants per target, default 2000) and
//! `MESHWARD_FUZZ_SEED` change the run; a failure prints the input as hex.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use meshward_fuzz::mutate::{mutate, Rng, MAX_LEN};
use meshward_fuzz::{json_dict, target, targets, TARGETS};

/// Slowest acceptable input in this (unoptimised) build.
const SLOW: Duration = Duration::from_secs(2);
const MAX_FILES: usize = 200;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(name);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_one(name: &str, run: fn(&[u8]), what: &str, data: &[u8]) {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| run(data)));
    let took = start.elapsed();
    if r.is_err() {
        panic!("{name}: {what} panicked; input hex: {}", hex(data));
    }
    assert!(
        took < SLOW,
        "{name}: {what} took {took:?}; input hex: {}",
        hex(data)
    );
}

fn smoke(name: &str) {
    let t = target(name).unwrap();
    let entries = corpus(name);
    assert!(!entries.is_empty(), "{name}: empty corpus");
    assert!(
        entries.len() < MAX_FILES,
        "{name}: corpus over {MAX_FILES} files"
    );
    for (file, data) in &entries {
        assert!(data.len() <= MAX_LEN, "{name}/{file}: over {MAX_LEN} bytes");
        run_one(name, t.run, file, data);
    }
    let seeds: Vec<Vec<u8>> = entries.into_iter().map(|(_, d)| d).collect();
    let iters = env_u64("MESHWARD_FUZZ_ITERS", 2000);
    let seed = env_u64("MESHWARD_FUZZ_SEED", 0x6d65_7368_7761_7264);
    let mut rng = Rng::new(seed ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 32);
    let mut current = seeds[0].clone();
    for i in 0..iters {
        // Mostly mutate a corpus entry; sometimes keep mutating the last mutant.
        if rng.below(4) != 0 {
            current = seeds[rng.below(seeds.len())].clone();
        }
        current = mutate(&mut rng, &current, &seeds, t.dict, json_dict());
        run_one(name, t.run, &format!("mutant {i}"), &current);
    }
}

#[test]
fn every_target_has_a_test() {
    let src = include_str!("smoke.rs");
    for t in TARGETS {
        assert!(
            src.contains(&format!("smoke_test!({});", t.name)),
            "no smoke test for {}",
            t.name
        );
    }
}

#[test]
fn fixtures_compile() {
    assert!(targets::jwt_fixture_ok());
    assert_eq!(targets::authz_fixtures(), targets::AUTHZ_POLICIES.len());
    assert_eq!(
        targets::ratelimit_fixtures(),
        targets::RATELIMIT_CONFIGS.len()
    );
}

macro_rules! smoke_test {
    ($name:ident) => {
        #[test]
        fn $name() {
            smoke(stringify!($name));
        }
    };
}

smoke_test!(jws);
smoke_test!(jwks);
smoke_test!(oidc_discovery);
smoke_test!(jwt_config);
smoke_test!(authz_config);
smoke_test!(ratelimit_config);
smoke_test!(authz_eval);
smoke_test!(ratelimit_keys);
smoke_test!(path_normalize);
smoke_test!(addr);
smoke_test!(claims);
smoke_test!(metadata);
smoke_test!(path_template);
