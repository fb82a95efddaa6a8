//! The filter's counters, defined once per configuration.

use meshward_shared::host::Host;
use meshward_shared::metrics::{segment, Counter};

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

fn by_reason<H: Host + ?Sized>(host: &H, prefix: &str) -> Vec<Counter> {
    Reason::ALL
        .iter()
        .map(|r| Counter::define(host, &format!("{prefix}.{}", r.code())))
        .collect()
}

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H, config: &Config) -> Metrics {
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let base = format!("{PREFIX}.provider.{}", segment(&p.name));
                ProviderMetrics {
                    allowed: Counter::define(host, &format!("{base}.allowed")),
                    denied: by_reason(host, &format!("{base}.denied")),
                    jwks_fetch_ok: Counter::define(host, &format!("{base}.jwks_fetch_ok")),
                    jwks_fetch_failed: Counter::define(host, &format!("{base}.jwks_fetch_failed")),
                    cache_hit: Counter::define(host, &format!("{base}.cache_hit")),
                    cache_miss: Counter::define(host, &format!("{base}.cache_miss")),
                }
            })
            .collect();
        Metrics {
            allowed: Counter::define(host, &format!("{PREFIX}.allowed")),
            verify_host: Counter::define(host, &format!("{PREFIX}.verify.host")),
            verify_ring: Counter::define(host, &format!("{PREFIX}.verify.ring")),
            verify_host_failed: Counter::define(host, &format!("{PREFIX}.verify.host_failed")),
            denied: by_reason(host, &format!("{PREFIX}.denied")),
            shadow_denied: by_reason(host, &format!("{PREFIX}.shadow_denied")),
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
