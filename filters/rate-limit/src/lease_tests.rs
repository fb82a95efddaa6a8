//! Leases against the fake host. Several runtimes configured on one fake stand
//! in for Envoy's workers: each has its own lease map (its own VM), all share
//! the fake's shared data and counters (one process).

use std::rc::Rc;
use std::time::Duration;

use meshward_shared::fake::FakeHost;
use serde_json::{json, Value};

use super::*;
use crate::engine::Runtime;
use crate::filter::{RateLimitFilter, Step};
use crate::root::{configure, tick};

/// On an hour boundary, so per-hour and per-minute windows start here.
const NOW: u64 = 1_800_000_000;

fn cfg(requests: u64, per: &str, algorithm: &str, lease: Value) -> Value {
    json!({
        "admission": "lease",
        "lease": lease,
        "rules": [{"name": "r", "key": [{"header": "x-k"}],
                   "limit": {"requests": requests, "per": per, "algorithm": algorithm}}]
    })
}

fn workers(host: &FakeHost, cfg: &Value, n: usize) -> Vec<Rc<Runtime>> {
    (0..n)
        .map(|_| Rc::new(configure(host, cfg.to_string().as_bytes()).expect("config")))
        .collect()
}

fn key(host: &FakeHost, k: &str) {
    host.set_headers(&[(":method", "GET"), (":path", "/"), ("x-k", k)]);
}

/// One request through `rt` (one worker); true when admitted.
fn ask(host: &FakeHost, rt: &Rc<Runtime>) -> bool {
    RateLimitFilter::new(1, Rc::clone(rt)).on_request(host) == Step::Continue
}

fn slot_reads(host: &FakeHost) -> usize {
    host.reads()
        .iter()
        .filter(|r| r.starts_with("shared mwrl:"))
        .count()
}

/// A filter-wide counter (`lease.taken`) or a rule's (`rule.r.allowed`:
/// `meshward_rate_limit_allowed{rule="r"}`).
fn counter(host: &FakeHost, name: &str) -> i64 {
    match name.strip_prefix("rule.").and_then(|n| n.split_once('.')) {
        Some((rule, event)) => {
            host.metric(&format!("meshward.rate_limit.{event}"), &[("rule", rule)])
        }
        None => host.counter(&format!("meshward.rate_limit.{name}")),
    }
}

/// The only lease `rt` holds.
fn only_lease(rt: &Runtime) -> Lease {
    let leases = rt.leases.borrow();
    assert_eq!(leases.len(), 1);
    *leases.map.values().next().expect("a lease")
}

/// Deterministic pseudo-random worker picks.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

// ---------------------------------------------------------------- guarantees

/// Four workers in a random interleaving, time moving and ticks running:
/// never more than N per window; with demand on every worker to the end,
/// exactly N (fixed window) and N plus what refilled (bucket, GCRA).
#[test]
fn interleaved_workers_never_exceed_n() {
    for alg in ["fixed_window", "token_bucket", "gcra"] {
        let host = FakeHost::at(NOW);
        let ws = workers(&host, &cfg(200, "hour", alg, json!({"max": 16})), 4);
        key(&host, "k");
        let mut rng = Lcg(7);
        let mut admitted = 0;
        for i in 0..3000 {
            if ask(&host, &ws[rng.next(4)]) {
                admitted += 1;
            }
            host.advance(Duration::from_millis(1));
            if i % 20 == 0 {
                for w in &ws {
                    tick(w, &host, 0);
                }
            }
            assert!(admitted <= 201, "{alg}: {admitted} after {i}");
        }
        // 3 s of a 200/hour bucket refill well under one unit
        assert_eq!(admitted, 200, "{alg}");
        assert_eq!(counter(&host, "rule.r.allowed"), 200, "{alg}");
        assert_eq!(counter(&host, "rule.r.limited"), 2800, "{alg}");
        assert!(
            counter(&host, "lease.taken") < 150,
            "{alg}: leases were used"
        );
    }
}

/// Uniform demand (round robin, no expiry): exactly N, with far fewer
/// shared-data accesses than requests.
#[test]
fn uniform_demand_admits_exactly_n_with_few_cas() {
    let host = FakeHost::at(NOW);
    let ws = workers(&host, &cfg(1000, "hour", "fixed_window", json!({})), 4);
    key(&host, "k");
    host.clear_reads();
    let admitted = (0..3000).filter(|i| ask(&host, &ws[i % 4])).count();
    assert_eq!(admitted, 1000);
    let slot_reads = slot_reads(&host);
    let taken = counter(&host, "lease.taken");
    assert!(taken < 120, "{taken} leases for 1000 units");
    // after the table is drained each request still reads once to learn so
    assert!(slot_reads < 120 + 2000, "{slot_reads}");
    assert_eq!(counter(&host, "lease.units_expired"), 0);
}

/// One hot worker, three idle ones holding leases: the hot one is denied
/// while the others hold units (at most 3 × max), gets them after the
/// others' leases expire and go back on tick, and the window ends at exactly N.
#[test]
fn skewed_demand_gets_the_idle_workers_units_after_their_lifetime() {
    let host = FakeHost::at(NOW);
    let ws = workers(
        &host,
        &cfg(
            400,
            "hour",
            "fixed_window",
            json!({"max": 16, "lifetime": "1s"}),
        ),
        4,
    );
    key(&host, "k");
    // the three idle-to-be workers see some demand: their leases grow
    let mut admitted = 0;
    for w in &ws[1..] {
        admitted += (0..20).filter(|_| ask(&host, w)).count();
    }
    let held: u64 = ws[1..].iter().map(|w| only_lease(w).units).sum();
    assert!(held > 0 && held <= 3 * 16, "{held}");
    // the hot worker drains everything it can get
    let hot = (0..1000).filter(|_| ask(&host, &ws[0])).count();
    assert_eq!(admitted + hot, 400 - held as usize);
    // the idle workers' leases expire and go back on tick
    host.advance(Duration::from_millis(1001));
    for w in &ws {
        tick(w, &host, 0);
    }
    assert_eq!(counter(&host, "lease.units_returned"), held as i64);
    let more = (0..100).filter(|_| ask(&host, &ws[0])).count();
    assert_eq!(more as u64, held);
    assert_eq!(counter(&host, "rule.r.allowed"), 400);
}

// ---------------------------------------------------------------- return and expiry

#[test]
fn unspent_units_go_back_on_tick() {
    let host = FakeHost::at(NOW);
    let ws = workers(&host, &cfg(100, "hour", "fixed_window", json!({})), 2);
    key(&host, "k");
    let a = (0..20).filter(|_| ask(&host, &ws[0])).count();
    assert_eq!(a, 20);
    let held = only_lease(&ws[0]).units;
    assert!(held > 0);
    // before the lifetime: nothing goes back
    host.advance(Duration::from_millis(50));
    tick(&ws[0], &host, 0);
    assert_eq!(only_lease(&ws[0]).units, held);
    host.advance(Duration::from_millis(60));
    tick(&ws[0], &host, 0);
    assert_eq!(only_lease(&ws[0]).units, 0);
    assert_eq!(counter(&host, "lease.units_returned"), held as i64);
    assert_eq!(counter(&host, "lease.units_expired"), 0);
    // the other worker gets every unit the first did not spend
    let b = (0..200).filter(|_| ask(&host, &ws[1])).count();
    assert_eq!(a + b, 100);
}

#[test]
fn leases_die_at_the_window_edge() {
    let host = FakeHost::at(NOW);
    // a lifetime longer than the window: the window still ends the lease
    let ws = workers(
        &host,
        &cfg(100, "minute", "fixed_window", json!({"lifetime": "60s"})),
        1,
    );
    host.advance(Duration::from_millis(59_000));
    key(&host, "k");
    assert_eq!((0..20).filter(|_| ask(&host, &ws[0])).count(), 20);
    let held = only_lease(&ws[0]).units;
    assert!(held > 0);
    host.advance(Duration::from_millis(1_000));
    tick(&ws[0], &host, 0);
    assert_eq!(counter(&host, "lease.units_returned"), 0);
    assert_eq!(counter(&host, "lease.units_expired"), held as i64);
    // the new window has all of N, none of the old lease
    assert_eq!((0..150).filter(|_| ask(&host, &ws[0])).count(), 100);
}

/// A renewal after expiry gives back and takes in one CAS.
#[test]
fn an_expired_lease_is_given_back_by_the_next_renewal() {
    let host = FakeHost::at(NOW);
    let ws = workers(&host, &cfg(100, "hour", "fixed_window", json!({})), 1);
    key(&host, "k");
    assert_eq!((0..4).filter(|_| ask(&host, &ws[0])).count(), 4);
    let held = only_lease(&ws[0]).units;
    assert!(held > 0);
    host.advance(Duration::from_millis(200));
    host.clear_reads();
    assert!(ask(&host, &ws[0]));
    assert_eq!(slot_reads(&host), 1, "one slot read: {:?}", host.reads());
    assert_eq!(counter(&host, "lease.units_returned"), held as i64);
}

// ---------------------------------------------------------------- sizing

#[test]
fn lease_size_grows_to_max_and_halves_after_expiry() {
    let host = FakeHost::at(NOW);
    let ws = workers(
        &host,
        &cfg(100_000, "hour", "fixed_window", json!({"max": 64})),
        1,
    );
    key(&host, "k");
    let mut sizes = vec![];
    for _ in 0..300 {
        let before = counter(&host, "lease.taken");
        assert!(ask(&host, &ws[0]));
        if counter(&host, "lease.taken") > before {
            let l = only_lease(&ws[0]);
            sizes.push(l.units + 1);
        }
    }
    assert_eq!(&sizes[..8], &[1, 2, 4, 8, 16, 32, 64, 64]);
    // expired with units left: the next lease is half the size
    let held = only_lease(&ws[0]).units;
    assert!(held > 0);
    host.advance(Duration::from_millis(150));
    tick(&ws[0], &host, 0);
    assert!(ask(&host, &ws[0]));
    assert_eq!(only_lease(&ws[0]).units + 1, 32);
}

#[test]
fn leases_shrink_to_one_as_the_slot_nears_empty() {
    let host = FakeHost::at(NOW);
    let ws = workers(&host, &cfg(100, "hour", "fixed_window", json!({})), 1);
    key(&host, "k");
    let mut admitted = 0u64;
    let mut taken = 0;
    loop {
        let before = counter(&host, "lease.taken");
        if !ask(&host, &ws[0]) {
            break;
        }
        if counter(&host, "lease.taken") > before {
            // available before this take: N minus what earlier leases took
            let available = 100 - taken;
            let l = only_lease(&ws[0]);
            let granted = l.units + 1;
            assert!(
                granted <= (available / DIVISOR).max(1),
                "{granted} of {available}"
            );
            taken += granted;
        }
        admitted += 1;
    }
    assert_eq!(admitted, 100);
    // the last leases were single requests
    assert_eq!(only_lease(&ws[0]).units, 0);
}

#[test]
fn next_size_rules() {
    let base = Lease {
        units: 0,
        size: 8,
        taken_ms: 0,
        expires_ms: 100,
        window: 0,
        slot: 0,
        fingerprint: 1,
        limit: Limit {
            requests: 10,
            period_ms: 1000,
            burst: 10,
            algorithm: Algorithm::TokenBucket,
        },
        shared_remaining: 0,
        last_used_ms: 0,
    };
    assert_eq!(next_size(None, 1, 50, 64), 1);
    assert_eq!(next_size(Some(&base), 1, 50, 64), 16, "used up while live");
    assert_eq!(next_size(Some(&base), 1, 50, 10), 10, "capped at max");
    let left = Lease { units: 3, ..base };
    assert_eq!(
        next_size(Some(&left), 1, 150, 64),
        4,
        "expired with units left"
    );
    assert_eq!(
        next_size(Some(&left), 5, 50, 64),
        16,
        "too few for the cost"
    );
    assert_eq!(
        next_size(Some(&base), 1, 150, 64),
        8,
        "used up, then expired"
    );
}

// ---------------------------------------------------------------- map bound

#[test]
fn the_lease_map_is_bounded() {
    let host = FakeHost::at(NOW);
    let c = json!({"admission": "lease", "max_keys": 10_000,
                   "rules": [{"name": "r", "key": [{"header": "x-k"}],
                              "limit": {"requests": 1000, "per": "hour", "algorithm": "fixed_window"}}]});
    let ws = workers(&host, &c, 1);
    // keys seen once hold nothing and are dropped first
    for i in 0..MAP_CAP + 300 {
        key(&host, &format!("once-{i}"));
        assert!(ask(&host, &ws[0]));
        assert!(ws[0].leases.borrow().len() <= MAP_CAP);
    }
    // keys seen twice hold one unit each: evicting one gives it back
    for i in 0..MAP_CAP + 10 {
        key(&host, &format!("twice-{i}"));
        assert!(ask(&host, &ws[0]) && ask(&host, &ws[0]));
        assert!(ws[0].leases.borrow().len() <= MAP_CAP);
    }
    assert_eq!(counter(&host, "lease.units_returned"), 10);
    // idle entries are forgotten on tick once they hold nothing
    host.advance(Duration::from_millis(FORGET_MS + 200));
    tick(&ws[0], &host, 0);
    assert!(ws[0].leases.borrow().is_empty());
}

// ---------------------------------------------------------------- per-request mode

#[test]
fn per_request_mode_reads_and_writes_on_every_request() {
    let host = FakeHost::at(NOW);
    let mut c = cfg(5, "hour", "fixed_window", json!({}));
    c["admission"] = json!("per_request");
    c.as_object_mut().map(|o| o.remove("lease"));
    let ws = workers(&host, &c, 2);
    key(&host, "k");
    host.clear_reads();
    let admitted = (0..10).filter(|i| ask(&host, &ws[i % 2])).count();
    assert_eq!(admitted, 5);
    assert_eq!(slot_reads(&host), 10);
    assert_eq!(counter(&host, "lease.taken"), 0);
    assert!(ws.iter().all(|w| w.leases.borrow().is_empty()));
    assert!(!ws[0].config.needs_tick);
}

// ---------------------------------------------------------------- token bucket / GCRA

/// Admission times shift by at most the lifetime: in any interval of length
/// T, at most burst + rate × (T + lifetime) requests pass.
#[test]
fn bucket_admissions_stay_within_burst_plus_rate_times_t_plus_lifetime() {
    for alg in ["token_bucket", "gcra"] {
        let host = FakeHost::at(NOW);
        let c = json!({"admission": "lease", "lease": {"max": 8, "lifetime": "0.1s"},
                       "rules": [{"name": "r", "key": [{"header": "x-k"}],
                                  "limit": {"requests": 50, "per": "second", "burst": 20,
                                            "algorithm": alg}}]});
        let ws = workers(&host, &c, 4);
        key(&host, "k");
        let mut rng = Lcg(11);
        let mut times = vec![];
        for ms in 0..5000u64 {
            // bursts of demand on random workers, idle stretches between
            let n = if (ms / 500) % 2 == 0 { 3 } else { rng.next(2) };
            for _ in 0..n {
                if ask(&host, &ws[rng.next(4)]) {
                    times.push(ms);
                }
            }
            if ms % 20 == 0 {
                for w in &ws {
                    tick(w, &host, 0);
                }
            }
            host.advance(Duration::from_millis(1));
        }
        for (i, a) in times.iter().enumerate() {
            for (j, b) in times.iter().enumerate().skip(i) {
                let count = (j - i + 1) as u64;
                let bound = 20 + (50 * (b - a + 100)).div_ceil(1000);
                assert!(count <= bound, "{alg}: {count} in [{a}, {b}] > {bound}");
            }
        }
        // and over the whole run no more than the bucket issued
        assert!(times.len() as u64 <= 20 + 50 * 5, "{alg}: {}", times.len());
        assert!(
            times.len() > 200,
            "{alg}: the bucket was used: {}",
            times.len()
        );
    }
}

#[test]
fn give_back_rules() {
    let t0 = NOW * 1000;
    let fixed = Limit {
        requests: 10,
        period_ms: 60_000,
        burst: 10,
        algorithm: Algorithm::FixedWindow,
    };
    let w = fixed.window_index(t0) + 1;
    let s = State { a: w, b: 6 };
    assert_eq!(
        fixed.give_back(s, t0 + 10, 4, t0, w),
        (State { a: w, b: 2 }, 4)
    );
    // another window: nothing goes back
    assert_eq!(fixed.give_back(s, t0 + 60_000, 4, t0, w).1, 0);
    for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
        let l = Limit {
            requests: 10,
            period_ms: 1000,
            burst: 10,
            algorithm: alg,
        };
        let (_, taken) = l.admit(State::default(), t0, 8, 0);
        let taken = taken.expect("admitted");
        assert_eq!(l.available(taken, t0), 2, "{alg:?}");
        // right away: all 5 unspent go back
        let (s, r) = l.give_back(taken, t0, 5, t0, 0);
        assert_eq!((r, l.available(s, t0)), (5, 7), "{alg:?}");
        // 200 ms later 2 units refilled: 5 - 2 go back
        let (s, r) = l.give_back(taken, t0 + 200, 5, t0, 0);
        assert_eq!((r, l.available(s, t0 + 200)), (3, 7), "{alg:?}");
        // 250 ms: 2.5 refilled, 2.5 go back (2 whole ones reported)
        let (s, r) = l.give_back(taken, t0 + 250, 5, t0, 0);
        assert_eq!(r, 2, "{alg:?}");
        assert_eq!(l.available(s, t0 + 250), 7, "{alg:?}");
        assert_eq!(l.available(s, t0 + 350), 8, "{alg:?}");
        // after a full refill nothing goes back
        let (s, r) = l.give_back(taken, t0 + 1000, 5, t0, 0);
        assert_eq!((s, r), (taken, 0), "{alg:?}");
        let (s, r) = l.give_back(State::default(), t0, 5, t0, 0);
        assert_eq!((s, r), (State::default(), 0), "{alg:?}");
    }
}

#[test]
fn a_slow_limit_loses_no_unit_to_a_give_back() {
    // 60 an hour: a unit refills in 60 s, so a lease handed back 50 ms after
    // its take owes 50 ms, not a whole unit (CI once admitted 59 of 60).
    let t0 = NOW * 1000;
    for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
        let l = Limit {
            requests: 60,
            period_ms: 3_600_000,
            burst: 60,
            algorithm: alg,
        };
        let (_, taken) = l.admit(State::default(), t0, 2, 0);
        let taken = taken.expect("admitted");
        let (s, r) = l.give_back(taken, t0 + 50, 1, t0, 0);
        assert_eq!(r, 0, "{alg:?}: less than a whole unit went back");
        assert_ne!(s, taken, "{alg:?}");
        // the 50 ms owed are refilled 50 ms later: 59 left, as if the spare unit was never taken
        assert_eq!(l.available(s, t0 + 100), 59, "{alg:?}");
        let mut state = s;
        let mut admitted = 1;
        while let (v, Some(next)) = l.admit(state, t0 + 100, 1, 0) {
            assert!(v.allowed);
            state = next;
            admitted += 1;
        }
        assert_eq!(admitted, 60, "{alg:?}");
    }
}

#[test]
fn throttled_rules_still_delay_when_the_bucket_is_short() {
    let host = FakeHost::at(NOW);
    let c = json!({"admission": "lease",
                   "rules": [{"name": "r", "key": [{"header": "x-k"}], "throttle": {"max_delay": "0.25s"},
                              "limit": {"requests": 10, "per": "second", "burst": 2, "algorithm": "gcra"}}]});
    let ws = workers(&host, &c, 1);
    key(&host, "k");
    let steps: Vec<Step> = (0..5)
        .map(|i| RateLimitFilter::new(10 + i, Rc::clone(&ws[0])).on_request(&host))
        .collect();
    assert_eq!(
        steps,
        [
            Step::Continue,
            Step::Continue,
            Step::Pause,
            Step::Pause,
            Step::Replied
        ]
    );
    assert_eq!(counter(&host, "rule.r.delayed"), 2);
}

#[test]
fn lease_headers_report_the_slot_plus_the_lease() {
    let host = FakeHost::at(NOW);
    let mut c = cfg(100, "hour", "fixed_window", json!({}));
    c["response_headers"] = json!("legacy");
    let ws = workers(&host, &c, 1);
    key(&host, "k");
    let mut remaining = vec![];
    for _ in 0..7 {
        let mut f = RateLimitFilter::new(1, Rc::clone(&ws[0]));
        assert_eq!(f.on_request(&host), Step::Continue);
        host.clear_response_headers();
        f.on_response_headers(&host);
        let h = host.response_headers();
        let r = h.iter().find(|(k, _)| k == "x-ratelimit-remaining");
        remaining.push(r.map(|(_, v)| v.clone()).unwrap_or_default());
    }
    // alone on the key, the approximation is exact
    assert_eq!(remaining, ["99", "98", "97", "96", "95", "94", "93"]);
}
