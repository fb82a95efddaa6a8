//! The filter's counters and the verify-time histogram, defined once per
//! configuration. Provider, reason and backend are labels (see
//! `meshward_shared::metrics` for the encoding); counter names follow Envoy's
//! `jwt_authn` where it has one (`jwks_fetch_success`, `jwt_cache_hit`).

use meshward_shared::host::Host;
use meshward_shared::metrics::{Counter, Histogram};

use crate::config::Config;
use crate::jose::VerifyStats;
use crate::reason::Reason;

const PREFIX: &str = "meshward.jwt_auth";

#[derive(Debug)]
pub struct ProviderMetrics {
    pub allowed: Counter,
    pub denied: Vec<Counter>,
    pub jwks_fetch_ok: Counter,
    pub jwks_fetch_failed: Counter,
    pub cache_hit: Counter,
    pub cache_miss: Counter,
    /// Microseconds to verify a token that was not in the cache (signature
    /// checks included); recorded only when a signature was checked.
    pub verify_time_us: Histogram,
}

#[derive(Debug)]
pub struct Metrics {
    pub allowed: Counter,
    /// Signature checks by backend (one per key tried).
    pub verify_host: Counter,
    pub verify_ring: Counter,
    /// Host calls that failed; ring decided those (also counted in `verify_ring`).
    pub verify_host_failed: Counter,
    denied: Vec<Counter>,
    shadow_denied: Vec<Counter>,
    pub providers: Vec<ProviderMetrics>,
}

fn by_reason<H: Host + ?Sized>(host: &H, tags: &[(&str, &str)], metric: &str) -> Vec<Counter> {
    Reason::ALL
        .iter()
        .map(|r| {
            let mut t = tags.to_vec();
            t.push(("reason", r.code()));
            Counter::tagged(host, PREFIX, &t, metric)
        })
        .collect()
}

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H, config: &Config) -> Metrics {
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let tags = [("provider", p.name.as_str())];
                let c = |m: &str| Counter::tagged(host, PREFIX, &tags, m);
                ProviderMetrics {
                    allowed: c("provider_allowed"),
                    denied: by_reason(host, &tags, "provider_denied"),
                    jwks_fetch_ok: c("jwks_fetch_success"),
                    jwks_fetch_failed: c("jwks_fetch_failed"),
                    cache_hit: c("jwt_cache_hit"),
                    cache_miss: c("jwt_cache_miss"),
                    verify_time_us: Histogram::tagged(host, PREFIX, &tags, "verify_time_us"),
                }
            })
            .collect();
        let backend = |b: &str| Counter::tagged(host, PREFIX, &[("backend", b)], "verify");
        Metrics {
            allowed: Counter::define(host, &format!("{PREFIX}.allowed")),
            verify_host: backend("host"),
            verify_ring: backend("ring"),
            verify_host_failed: Counter::define(host, &format!("{PREFIX}.verify_host_failed")),
            denied: by_reason(host, &[], "denied"),
            shadow_denied: by_reason(host, &[], "shadow_denied"),
            providers,
        }
    }

    pub fn denied(&self, reason: Reason) -> Counter {
        self.denied
            .get(reason as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn shadow_denied(&self, reason: Reason) -> Counter {
        self.shadow_denied
            .get(reason as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn verified<H: Host + ?Sized>(&self, host: &H, stats: VerifyStats) {
        self.verify_host.add(host, stats.host);
        self.verify_ring.add(host, stats.ring);
        self.verify_host_failed.add(host, stats.host_failed);
    }

    pub fn provider(&self, idx: usize) -> Option<&ProviderMetrics> {
        self.providers.get(idx)
    }
}

impl ProviderMetrics {
    pub fn denied(&self, reason: Reason) -> Counter {
        self.denied
            .get(reason as usize)
            .copied()
            .unwrap_or_default()
    }
}
