//! Counters, defined once per configuration: per rule (the `rule` label, see
//! `meshward_shared::metrics`), plus a few for the whole filter, and the RLS
//! call time.

use meshward_shared::host::Host;
use meshward_shared::metrics::{Counter, Histogram};

use crate::config::Config;

const PREFIX: &str = "meshward.rate_limit";

#[derive(Debug, Default, Clone, Copy)]
pub struct RuleMetrics {
    pub allowed: Counter,
    pub limited: Counter,
    pub shadow_limited: Counter,
    pub delayed: Counter,
    pub rls_error: Counter,
    pub rls_timeout: Counter,
    /// Microseconds from dispatching a ShouldRateLimit call to its answer.
    pub rls_time_us: Histogram,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub rules: Vec<RuleMetrics>,
    pub key_space_full: Counter,
    /// A counter update lost its CAS race `slots::MAX_RETRIES` times: denied.
    pub cas_contention: Counter,
    /// `set_shared_data` failed: denied.
    pub shared_data_error: Counter,
    pub hybrid_sync_ok: Counter,
    pub hybrid_sync_failed: Counter,
    /// Lease mode: leases taken (one CAS each).
    pub lease_taken: Counter,
    /// Unspent lease units given back to the shared slot.
    pub lease_units_returned: Counter,
    /// Unspent lease units that could not be given back (never admitted).
    pub lease_units_expired: Counter,
}

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H, config: &Config) -> Metrics {
        let rules = config
            .rules
            .iter()
            .map(|r| {
                let tags = [("rule", r.name.as_str())];
                let c = |n: &str| Counter::tagged(host, PREFIX, &tags, n);
                RuleMetrics {
                    allowed: c("allowed"),
                    limited: c("limited"),
                    shadow_limited: c("shadow_limited"),
                    delayed: c("delayed"),
                    rls_error: c("rls_error"),
                    rls_timeout: c("rls_timeout"),
                    rls_time_us: Histogram::tagged(host, PREFIX, &tags, "rls_time_us"),
                }
            })
            .collect();
        let c = |n: &str| Counter::define(host, &format!("{PREFIX}.{n}"));
        Metrics {
            rules,
            key_space_full: c("key_space_full"),
            cas_contention: c("cas_contention"),
            shared_data_error: c("shared_data_error"),
            hybrid_sync_ok: c("hybrid_sync_ok"),
            hybrid_sync_failed: c("hybrid_sync_failed"),
            lease_taken: c("lease.taken"),
            lease_units_returned: c("lease.units_returned"),
            lease_units_expired: c("lease.units_expired"),
        }
    }

    pub fn rule(&self, i: usize) -> RuleMetrics {
        self.rules.get(i).copied().unwrap_or_default()
    }
}
