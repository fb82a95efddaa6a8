//! Per-worker leases (`"admission": "lease"`, local rules).
//!
//! A worker takes a lease of units from the key's shared slot with one CAS
//! (an admission of the lease's size against the shared limiter state) and
//! admits from it in its own memory: no shared-data access per request. Each
//! Envoy worker has its own VM, so the map here (one per `Runtime`) is per
//! worker. Unspent units go back to the slot when the lease expires (on tick,
//! or with the next renewal's CAS), as far as [`Limit::give_back`] allows.
//!
//! Sizing: a key this worker has not seen gets a lease of 1 (its own request:
//! nothing is held); a lease used up before it expires doubles the next one,
//! up to `lease.max`; one that expires with units left halves it. A lease
//! never takes more than 1/[`DIVISOR`] of what the slot has available, so
//! leases shrink to one request as the shared state nears empty.

use std::collections::HashMap;

use meshward_shared::host::Host;

use crate::limiter::{Algorithm, Limit, State, Verdict};
use crate::metrics::Metrics;
use crate::slots;

/// A lease takes at most `available / DIVISOR` units (at least one request's
/// cost): 2 × 4 workers, so four workers' fresh leases leave more than half.
pub const DIVISOR: u64 = 8;
/// Keys in one worker's lease map.
pub const MAP_CAP: usize = 1024;
/// A map entry holding no units is forgotten after this long unused.
pub const FORGET_MS: u64 = 1000;

/// Units a worker holds for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Unspent.
    pub units: u64,
    /// Size asked for at the next renewal.
    pub size: u64,
    pub taken_ms: u64,
    /// No admission from this lease at or after this time.
    pub expires_ms: u64,
    /// Fixed window: the window (index + 1) it belongs to; otherwise 0.
    pub window: u64,
    /// Where the units came from, to give them back without probing.
    pub slot: u32,
    pub fingerprint: u64,
    pub limit: Limit,
    /// Units left in the shared slot right after the take (for headers).
    pub shared_remaining: u64,
    pub last_used_ms: u64,
}

impl Lease {
    pub fn live(&self, now: u64) -> bool {
        now < self.expires_ms
    }

    /// The verdict for a request admitted from this lease. `remaining` is the
    /// slot's remainder at the take plus this lease's unspent units: other
    /// workers' admissions since the take are not seen.
    pub fn verdict(&self, now: u64) -> Verdict {
        let l = &self.limit;
        let remaining = self.shared_remaining.saturating_add(self.units);
        let reset_ms = match l.algorithm {
            Algorithm::FixedWindow => (l.window_index(now) + 1)
                .saturating_mul(l.period_ms)
                .saturating_sub(now),
            Algorithm::TokenBucket | Algorithm::Gcra => {
                let missing = l.burst.saturating_sub(remaining) as u128;
                let ms = (missing * l.period_ms as u128).div_ceil(l.requests.max(1) as u128);
                u64::try_from(ms).unwrap_or(u64::MAX)
            }
        };
        Verdict {
            allowed: true,
            remaining,
            reset_ms,
            ..Verdict::default()
        }
    }
}

/// When a lease taken at `now` stops admitting: after `lifetime`, and for a
/// fixed window at the window's end.
pub fn expiry(limit: &Limit, now: u64, lifetime_ms: u64) -> u64 {
    let end = now.saturating_add(lifetime_ms);
    match limit.algorithm {
        Algorithm::FixedWindow => {
            end.min((limit.window_index(now) + 1).saturating_mul(limit.period_ms))
        }
        Algorithm::TokenBucket | Algorithm::Gcra => end,
    }
}

/// The size to ask for, from this worker's history of the key.
pub fn next_size(prev: Option<&Lease>, cost: u64, now: u64, max: u64) -> u64 {
    let size = match prev {
        None => 1,
        // used up while still live: demand outruns the lease
        Some(l) if l.units < cost && l.live(now) => l.size.saturating_mul(2),
        // expired with units left: more than this worker needed
        Some(l) if l.units >= cost && !l.live(now) => l.size / 2,
        Some(l) => l.size,
    };
    size.clamp(1, max.max(1))
}

/// Unspent units to give back with the next CAS on the key's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Back {
    pub units: u64,
    pub taken_ms: u64,
    pub window: u64,
}

/// What one renewal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Renewal {
    /// The shared limiter's verdict (for the whole lease when `granted > 0`).
    pub verdict: Verdict,
    /// Units taken, this request's cost included; 0: admitted or denied per request.
    pub granted: u64,
    pub returned: u64,
}

/// One CAS worth of work on the key's state: give back `back`, then take a
/// lease of up to `want` units, or, when not even `cost` is available now,
/// admit this one request as per-request mode would (throttle or deny).
pub fn renew(
    limit: &Limit,
    state: State,
    now: u64,
    cost: u64,
    max_delay_ms: u64,
    back: Option<&Back>,
    want: u64,
) -> (Renewal, Option<State>) {
    let read = state;
    let mut state = state;
    let mut returned = 0;
    if let Some(b) = back {
        let (s, r) = limit.give_back(state, now, b.units, b.taken_ms, b.window);
        state = s;
        returned = r;
    }
    let avail = limit.available(state, now);
    if avail >= cost {
        let grant = want.min(avail / DIVISOR).max(cost).min(avail);
        let (v, next) = limit.admit(state, now, grant, 0);
        if let (true, Some(n)) = (v.allowed, next) {
            let r = Renewal {
                verdict: v,
                granted: grant,
                returned,
            };
            return (r, Some(n));
        }
    }
    let (v, next) = limit.admit(state, now, cost, max_delay_ms);
    let write = next.or((state != read).then_some(state));
    let r = Renewal {
        verdict: v,
        granted: 0,
        returned,
    };
    (r, write)
}

/// One worker's leases, by stored key.
#[derive(Debug, Default)]
pub struct Leases {
    pub map: HashMap<String, Lease>,
}

impl Leases {
    /// Admit from a live lease with enough units; `None`: renew first.
    pub fn spend(&mut self, key: &str, cost: u64, now: u64) -> Option<Verdict> {
        let l = self.map.get_mut(key)?;
        if l.units < cost || !l.live(now) {
            return None;
        }
        l.units -= cost;
        l.last_used_ms = now;
        Some(l.verdict(now))
    }

    pub fn get(&self, key: &str) -> Option<&Lease> {
        self.map.get(key)
    }

    /// Store `lease` for `key`. When a new key meets a full map, entries that
    /// hold nothing are dropped first; if every entry holds units, the least
    /// recently used is evicted and handed back to the caller to return.
    pub fn put(&mut self, key: String, lease: Lease) -> Option<(String, Lease)> {
        let mut evicted = None;
        if self.map.len() >= MAP_CAP && !self.map.contains_key(&key) {
            self.map.retain(|_, l| l.units > 0);
            if self.map.len() >= MAP_CAP {
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, l)| l.last_used_ms)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    evicted = self.map.remove(&k).map(|l| (k, l));
                }
            }
        }
        self.map.insert(key, lease);
        evicted
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// CAS the unspent units of `lease` back into its slot; returns how many
/// went back. Counts returned and expired (not returnable) units.
pub fn give_back<H: Host + ?Sized>(
    host: &H,
    metrics: &Metrics,
    key: &str,
    lease: &Lease,
    now: u64,
) -> u64 {
    if lease.units == 0 {
        return 0;
    }
    let mut returned = 0;
    let written = slots::update_at(host, lease.slot, lease.fingerprint, |s| {
        returned = 0;
        if s.key != key {
            return false;
        }
        let (next, r) =
            lease
                .limit
                .give_back(s.state, now, lease.units, lease.taken_ms, lease.window);
        if next == s.state {
            return false;
        }
        s.state = next;
        returned = r;
        true
    });
    if written.is_none() {
        returned = 0;
    }
    count(host, metrics, lease.units, returned);
    returned
}

/// Metrics for the `units` a lease held when it ended, `returned` of them given back.
pub fn count<H: Host + ?Sized>(host: &H, metrics: &Metrics, units: u64, returned: u64) {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    metrics.lease_units_returned.add(host, clamp(returned));
    metrics
        .lease_units_expired
        .add(host, clamp(units.saturating_sub(returned)));
}

/// On tick: give back what expired leases still hold, forget idle entries.
pub fn tick<H: Host + ?Sized>(leases: &mut Leases, host: &H, metrics: &Metrics, now: u64) {
    for (key, l) in leases.map.iter_mut() {
        if l.units > 0 && !l.live(now) {
            give_back(host, metrics, key, l, now);
            l.units = 0;
            l.size = (l.size / 2).max(1);
        }
    }
    leases
        .map
        .retain(|_, l| l.units > 0 || now.saturating_sub(l.last_used_ms) < FORGET_MS);
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
