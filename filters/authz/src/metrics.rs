//! Counters, defined once at configure time: totals, the default decision,
//! and per policy (allowed, denied, shadow_denied, audited).

use meshward_shared::host::Host;
use meshward_shared::metrics::{segment, Counter};

use crate::policy::Policy;

#[derive(Debug, Clone, Copy, Default)]
pub struct Outcomes {
    pub allowed: Counter,
    pub denied: Counter,
    pub shadow_denied: Counter,
}

impl Outcomes {
    fn define<H: Host + ?Sized>(host: &H, prefix: &str) -> Outcomes {
        Outcomes {
            allowed: Counter::define(host, &format!("{prefix}.allowed")),
            denied: Counter::define(host, &format!("{prefix}.denied")),
            shadow_denied: Counter::define(host, &format!("{prefix}.shadow_denied")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub total: Outcomes,
    /// Decisions no policy made (default allow / no ALLOW match / default deny).
    pub default: Outcomes,
    pub policies: Vec<Outcomes>,
    pub audited: Vec<Counter>,
}

pub const PREFIX: &str = "meshward.authz";

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H, policies: &[Policy]) -> Metrics {
        Metrics {
            total: Outcomes::define(host, PREFIX),
            default: Outcomes::define(host, &format!("{PREFIX}.default")),
            policies: policies
                .iter()
                .map(|p| Outcomes::define(host, &format!("{PREFIX}.policy.{}", segment(&p.name))))
                .collect(),
            audited: policies
                .iter()
                .map(|p| {
                    Counter::define(
                        host,
                        &format!("{PREFIX}.policy.{}.audited", segment(&p.name)),
                    )
                })
                .collect(),
        }
    }

    /// The counters of the deciding policy, or the default ones.
    pub fn of(&self, policy: Option<usize>) -> Outcomes {
        policy
            .and_then(|p| self.policies.get(p).copied())
            .unwrap_or(self.default)
    }
}
