//! Behaviour detectors: each identity against its own history. Pure: the
//! clock is passed in (`now_ms`, Unix milliseconds), so it is tested natively
//! with a fake clock.
//!
//! State is per VM (a Rust value owned by the root context), so each Envoy
//! worker sees only the requests it serves; see docs/anomaly.md, "Behaviour
//! detectors", for what that means for the thresholds.
//!
//! The identity table is set-associative: a key's hash picks a set of
//! [`WAYS`] records, and a new identity takes an empty record of its set or
//! the least recently used one. Records are fixed size ([`RECORD_BYTES`]) and
//! sets are allocated on first use, so memory is at most
//! `max_identities * RECORD_BYTES` plus one pointer per set.

pub mod config;
mod hash;
pub mod path;

use std::net::{IpAddr, SocketAddr};

pub use config::BehaviourConfig;
use hash::Hasher64;

use crate::score::{Detector, Hit, Score, Severity};

/// Records per set.
pub const WAYS: usize = 8;
/// Bytes of one identity's record.
pub const RECORD_BYTES: usize = std::mem::size_of::<Record>();
// 100k identities in well under 16 MiB: at most 112 bytes each (10.7 MiB).
const _: () = assert!(RECORD_BYTES <= 112);

/// A template filter this full (75%) answers "seen" too often to be useful.
const BLOOM_SATURATED: u32 = 96;
const ADDRS: usize = 4;
const COUNTRIES: usize = 2;
/// Hour buckets: 24 hours of weekdays, then 24 of weekends (UTC).
const HOUR_BUCKETS: usize = 48;

/// What the glue knows about a request. Borrowed, so nothing is copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The verified caller (`iss/sub`, or the client_id); `None` when the
    /// request carries no identity, then the source address is the key.
    pub identity: Option<&'a str>,
    /// Client address, `ip` or `ip:port`.
    pub source: &'a str,
    /// The value of the configured country header.
    pub country: Option<&'a str>,
    pub method: &'a str,
    /// `:path`, with its query.
    pub path: &'a str,
}

/// The record a request was counted in, for its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentityKey(u64);

/// One behaviour finding with a plain explanation (numbers only, never the
/// identity, a token or an address).
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourFinding {
    /// e.g. `behaviour.rate-spike`.
    pub rule: &'static str,
    pub severity: Severity,
    /// e.g. `behaviour.rate`.
    pub field: &'static str,
    /// e.g. `rate 12.3/s vs baseline 1.1/s`.
    pub detail: String,
}

impl BehaviourFinding {
    /// Adds it to a request's score (detector `behaviour`).
    pub fn add_to(&self, score: &mut Score) {
        score.add_detailed(
            Detector::Behaviour,
            Hit {
                rule: self.rule,
                severity: self.severity,
                offset: 0,
            },
            self.field,
            &self.detail,
        );
    }
}

/// One identity. All-zero is an empty record.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    /// Hash of the identity key; 0: empty.
    key: u64,
    /// Deciseconds since the table's epoch.
    first: u32,
    last: u32,
    requests: u32,
    /// Requests per second, smoothed over `rate.fast_s`.
    fast: f32,
    /// The usual value of `fast` at this identity's requests.
    baseline: f32,
    /// Error responses and all responses, decayed over `errors.window_s`.
    errors: f32,
    responses: f32,
    /// Bloom filter of path template ids (3 bits per template).
    paths: [u32; 4],
    /// Distinct object ids: bitmaps of this window and the one before.
    ids_cur: u64,
    ids_prev: u64,
    ids_window: u16,
    /// Recent address prefixes (/24, /48) and countries, 16-bit hashes; 0: none.
    addrs: [u16; ADDRS],
    countries: [u16; COUNTRIES],
    /// 4-bit counts of active clock hours per bucket, halved when one would
    /// overflow (about two weeks of daily use).
    hours: [u8; HOUR_BUCKETS / 2],
    addr_next: u8,
    country_next: u8,
}

impl Record {
    fn hour(&self, b: usize) -> u8 {
        let byte = self.hours[b / 2];
        if b.is_multiple_of(2) {
            byte & 0x0f
        } else {
            byte >> 4
        }
    }

    fn bump_hour(&mut self, b: usize) {
        if self.hour(b) == 15 {
            for byte in &mut self.hours {
                *byte = (*byte >> 1) & 0x77;
            }
        }
        let add = if b.is_multiple_of(2) { 1 } else { 0x10 };
        self.hours[b / 2] += add;
    }

    fn bloom_bits(t: u64) -> [u32; 3] {
        [
            (t % 128) as u32,
            ((t >> 7) % 128) as u32,
            ((t >> 14) % 128) as u32,
        ]
    }

    fn bloom_has(&self, t: u64) -> bool {
        Self::bloom_bits(t)
            .iter()
            .all(|&b| self.paths[(b / 32) as usize] & (1 << (b % 32)) != 0)
    }

    fn bloom_add(&mut self, t: u64) {
        for b in Self::bloom_bits(t) {
            self.paths[(b / 32) as usize] |= 1 << (b % 32);
        }
    }

    fn bloom_fill(&self) -> u32 {
        self.paths.iter().map(|w| w.count_ones()).sum()
    }
}

/// Distinct count of a 64-bit bitmap by linear counting.
fn distinct(bits: u64) -> f32 {
    let zeros = bits.count_zeros();
    if zeros == 0 {
        // Saturated: more than the counter can tell (about 270).
        return 270.0;
    }
    -64.0 * (zeros as f32 / 64.0).ln()
}

/// Address prefix hash: /24 for IPv4, /48 for IPv6; never 0.
fn addr_hash(seed: u64, source: &str) -> u16 {
    let ip = source
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| source.parse::<IpAddr>());
    let h = match ip {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            Hasher64::once(seed, &[4, o[0], o[1], o[2]])
        }
        Ok(IpAddr::V6(v6)) => {
            let mut b = [6u8; 7];
            b[1..].copy_from_slice(&v6.octets()[..6]);
            Hasher64::once(seed, &b)
        }
        Err(_) => Hasher64::once(seed, source.as_bytes()),
    };
    (h as u16).max(1)
}

fn country_code(seed: u64, value: &str) -> u16 {
    let v = value.trim();
    let b = v.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
        u16::from_be_bytes([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
    } else {
        (Hasher64::once(seed, v.to_ascii_uppercase().as_bytes()) as u16).max(1)
    }
}

/// Weekday/weekend hour bucket of a Unix time (1970-01-01 was a Thursday).
fn hour_bucket(now_ms: u64) -> usize {
    let hours = now_ms / 3_600_000;
    let day = (hours / 24 + 4) % 7; // 0 = Sunday
    let weekend = day == 0 || day == 6;
    (hours % 24) as usize + if weekend { 24 } else { 0 }
}

fn neighbours(b: usize) -> [usize; 3] {
    let base = b - b % 24;
    let h = b % 24;
    [base + (h + 23) % 24, b, base + (h + 1) % 24]
}

/// The record of `key` in `sets`: found, or (with `create`) a free one or
/// the least recently used of its set.
fn slot<'a>(
    sets: &'a mut [Option<Box<[Record; WAYS]>>],
    tracked: &mut u32,
    evictions: &mut u64,
    limit: u32,
    key: u64,
    create: bool,
) -> Option<&'a mut Record> {
    let n = sets.len() as u64;
    let set = sets.get_mut((key % n.max(1)) as usize)?;
    if set.is_none() {
        if !create {
            return None;
        }
        *set = Some(Box::new([Record::default(); WAYS]));
    }
    let records = set.as_mut()?;
    if let Some(i) = records.iter().position(|r| r.key == key) {
        return records.get_mut(i);
    }
    if !create {
        return None;
    }
    let mut victim = 0;
    let mut oldest = u32::MAX;
    for (i, r) in records.iter().enumerate() {
        if r.key == 0 && *tracked < limit {
            victim = i;
            break;
        }
        if r.key != 0 && r.last < oldest {
            oldest = r.last;
            victim = i;
        }
    }
    let r = records.get_mut(victim)?;
    if r.key == 0 {
        *tracked += 1;
    } else {
        *evictions += 1;
    }
    *r = Record {
        key,
        ..Record::default()
    };
    Some(r)
}

pub struct Behaviour {
    config: BehaviourConfig,
    seed: u64,
    /// `None`: a set not used yet.
    sets: Vec<Option<Box<[Record; WAYS]>>>,
    /// Unix ms of the first request seen; times in records count from here.
    epoch_ms: Option<u64>,
    tracked: u32,
    evictions: u64,
}

impl Behaviour {
    /// `seed` keys the hashes; the glue picks it per VM (e.g. from the clock).
    pub fn new(config: &BehaviourConfig, seed: u64) -> Behaviour {
        let sets = (config.max_identities as usize).div_ceil(WAYS).max(1);
        let mut v = Vec::new();
        v.resize_with(sets, || None);
        Behaviour {
            config: config.clone(),
            seed,
            sets: v,
            epoch_ms: None,
            tracked: 0,
            evictions: 0,
        }
    }

    pub fn config(&self) -> &BehaviourConfig {
        &self.config
    }

    /// Identities held now.
    pub fn tracked(&self) -> u32 {
        self.tracked
    }

    /// Identities dropped to make room for new ones.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Bytes of identity records allocated so far.
    pub fn allocated_bytes(&self) -> usize {
        self.sets.iter().filter(|s| s.is_some()).count() * WAYS * RECORD_BYTES
            + self.sets.len() * std::mem::size_of::<Option<Box<[Record; WAYS]>>>()
    }

    fn key_of(&self, facts: &RequestFacts) -> u64 {
        let mut h = Hasher64::new(self.seed);
        match facts.identity {
            Some(id) => {
                h.write(b"t");
                h.write(id.as_bytes());
            }
            None => {
                h.write(b"a");
                let ip = facts
                    .source
                    .parse::<SocketAddr>()
                    .map(|s| s.ip())
                    .or_else(|_| facts.source.parse::<IpAddr>());
                // The address without its port: one client, many connections.
                match ip {
                    Ok(IpAddr::V4(v4)) => h.write(&v4.to_ipv6_mapped().octets()),
                    Ok(IpAddr::V6(v6)) => h.write(&v6.octets()),
                    Err(_) => h.write(facts.source.as_bytes()),
                }
            }
        }
        h.finish().max(1)
    }

    /// Counts a request and appends the findings for it to `out`. Returns
    /// the key to pass to [`Behaviour::on_response`].
    pub fn on_request(
        &mut self,
        facts: &RequestFacts,
        now_ms: u64,
        out: &mut Vec<BehaviourFinding>,
    ) -> IdentityKey {
        if !self.config.enabled {
            return IdentityKey(0);
        }
        let epoch = *self.epoch_ms.get_or_insert(now_ms);
        let now_ds = (now_ms.saturating_sub(epoch) / 100).min(u32::MAX as u64) as u32;
        let in_learning = now_ds / 10 < self.config.learning_period_s;
        let key = self.key_of(facts);
        let seed = self.seed;
        let params = self
            .config
            .enumeration
            .as_ref()
            .map_or(&[][..], |e| e.params.as_slice());
        let mut ids = [0u64; path::MAX_IDS];
        let (template, n_ids) = path::analyse(seed, facts.method, facts.path, params, &mut ids);
        let addr = if facts.identity.is_some() && self.config.addresses {
            Some(addr_hash(seed, facts.source))
        } else {
            None
        };
        let country = match (facts.country, self.config.countries) {
            (Some(c), true) if !c.trim().is_empty() => Some(country_code(seed, c)),
            _ => None,
        };
        let bucket = hour_bucket(now_ms);
        let Behaviour {
            config,
            sets,
            tracked,
            evictions,
            ..
        } = self;
        let Some(r) = slot(sets, tracked, evictions, config.max_identities, key, true) else {
            return IdentityKey(0);
        };
        let new = r.requests == 0;
        if new {
            r.first = now_ds;
            r.last = now_ds;
        }
        let dt = now_ds.saturating_sub(r.last) as f32 / 10.0;
        let age_s = now_ds.saturating_sub(r.first) / 10;
        // Judge against the history before this request, then learn it.
        let known = !new
            && r.requests >= config.identity_min_requests
            && age_s >= config.identity_min_age_s;
        let score = !in_learning;
        let push = |out: &mut Vec<BehaviourFinding>,
                    rule: &'static str,
                    severity: Severity,
                    field: &'static str,
                    detail: String| {
            out.push(BehaviourFinding {
                rule,
                severity,
                field,
                detail,
            })
        };

        if let Some(rate) = &config.rate {
            r.fast = r.fast * (-dt / rate.fast_s).exp() + 1.0 / rate.fast_s;
            let base = if known {
                r.baseline.max(rate.floor_per_s)
            } else {
                rate.floor_per_s
            };
            let spike = r.fast > rate.factor * base;
            if spike && score {
                push(
                    out,
                    "behaviour.rate-spike",
                    Severity::Warning,
                    "behaviour.rate",
                    format!("rate {:.1}/s vs baseline {:.1}/s", r.fast, base),
                );
            }
            // Weighted by active time, so a burst of many requests moves it
            // little and an idle night does not drag it to zero; a spike
            // moves it ten times slower still.
            let active = dt.min(rate.fast_s);
            let w = (1.0 - (-active / rate.baseline_s).exp()) * if spike { 0.1 } else { 1.0 };
            r.baseline += (r.fast - r.baseline) * w;
        }

        if let Some(e) = &config.errors {
            let decay = (-dt / e.window_s).exp();
            r.errors *= decay;
            r.responses *= decay;
            if score && r.errors >= e.min_errors && r.errors >= e.ratio * r.responses {
                push(
                    out,
                    "behaviour.error-burst",
                    Severity::Warning,
                    "behaviour.errors",
                    format!(
                        "{:.0} error responses of {:.0} in about {:.0}s",
                        r.errors, r.responses, e.window_s
                    ),
                );
            }
        }

        if config.paths {
            let seen = r.bloom_has(template);
            if !seen && known && score && r.bloom_fill() < BLOOM_SATURATED {
                push(
                    out,
                    "behaviour.new-path",
                    Severity::Notice,
                    "behaviour.path",
                    format!("path template not seen in {} requests", r.requests),
                );
            }
            r.bloom_add(template);
        }

        if let Some(a) = addr {
            if !r.addrs.contains(&a) {
                if known && score && r.addrs[0] != 0 {
                    push(
                        out,
                        "behaviour.new-address",
                        Severity::Notice,
                        "behaviour.source",
                        format!(
                            "address outside the identity's last {} networks",
                            r.addrs.iter().filter(|x| **x != 0).count()
                        ),
                    );
                }
                let i = r.addr_next as usize % ADDRS;
                r.addrs[i] = a;
                r.addr_next = ((i + 1) % ADDRS) as u8;
            }
        }
        if let Some(c) = country {
            if !r.countries.contains(&c) {
                if known && score && r.countries[0] != 0 {
                    push(
                        out,
                        "behaviour.new-country",
                        Severity::Warning,
                        "behaviour.country",
                        "country not among the identity's last 2".to_string(),
                    );
                }
                let i = r.country_next as usize % COUNTRIES;
                r.countries[i] = c;
                r.country_next = ((i + 1) % COUNTRIES) as u8;
            }
        }

        if let Some(h) = &config.hours {
            let usual: u32 = neighbours(bucket).iter().map(|&b| r.hour(b) as u32).sum();
            let history = r.requests >= h.min_requests && age_s >= h.min_age_s;
            let off = history && usual == 0;
            if off && score {
                push(
                    out,
                    "behaviour.off-hours",
                    Severity::Notice,
                    "behaviour.hour",
                    format!(
                        "{} UTC hour {:02} unused in {} requests",
                        if bucket >= 24 { "weekend" } else { "weekday" },
                        bucket % 24,
                        r.requests
                    ),
                );
            }
            // Counted once per clock hour, so the histogram holds days of
            // habits rather than the last busy hour; flagged once, then learnt.
            let last_hour = epoch.saturating_add(u64::from(r.last) * 100) / 3_600_000;
            if new || off || now_ms / 3_600_000 != last_hour {
                r.bump_hour(bucket);
            }
        }

        if let Some(e) = &config.enumeration {
            let window = ((now_ms / 1000) / e.window_s as u64) as u16;
            if window != r.ids_window || new {
                r.ids_prev = if window == r.ids_window.wrapping_add(1) && !new {
                    r.ids_cur
                } else {
                    0
                };
                r.ids_cur = 0;
                r.ids_window = window;
            }
            for id in &ids[..n_ids] {
                r.ids_cur |= 1 << (id % 64);
            }
            if n_ids > 0 {
                let n = distinct(r.ids_cur | r.ids_prev);
                if score && n >= e.max_distinct as f32 {
                    push(
                        out,
                        "behaviour.enumeration",
                        Severity::Error,
                        "behaviour.object-ids",
                        format!(
                            "about {:.0} distinct object ids in {}-{}s (limit {})",
                            n,
                            e.window_s,
                            2 * e.window_s,
                            e.max_distinct
                        ),
                    );
                }
            }
        }

        r.requests = r.requests.saturating_add(1);
        r.last = now_ds;
        IdentityKey(key)
    }

    /// Counts a response status for the identity the request was counted in.
    /// A burst shows on the identity's next requests.
    pub fn on_response(&mut self, key: IdentityKey, status: u16) {
        if key.0 == 0 || self.config.errors.is_none() {
            return;
        }
        let limit = self.config.max_identities;
        if let Some(r) = slot(
            &mut self.sets,
            &mut self.tracked,
            &mut self.evictions,
            limit,
            key.0,
            false,
        ) {
            r.responses += 1.0;
            if status >= 400 {
                r.errors += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod glue_tests;
#[cfg(test)]
mod tests;
