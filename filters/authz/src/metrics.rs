//! Counters, defined once at configure time, one set per policy plus one for
//! decisions no policy made: `meshward_authz_{allowed,denied,shadow_denied,
//! audited}{policy="..."}` (see `meshward_shared::metrics` for the encoding).

use meshward_shared::host::Host;
use meshward_shared::metrics::Counter;

use crate::policy::Policy;

pub const PREFIX: &str = "meshward.authz";

/// The `policy` label of decisions that no policy made (default allow,
/// `no_allow_match`, default deny); config refuses a policy of that name.
pub const DEFAULT_POLICY: &str = "_default";

#[derive(Debug, Clone, Copy, Default)]
pub struct Outcomes {
    pub allowed: Counter,
    pub denied: Counter,
    pub shadow_denied: Counter,
}

impl Outcomes {
    fn define<H: Host + ?Sized>(host: &H, policy: &str) -> Outcomes {
        let c = |m: &str| Counter::tagged(host, PREFIX, &[("policy", policy)], m);
        Outcomes {
            allowed: c("allowed"),
            denied: c("denied"),
            shadow_denied: c("shadow_denied"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Decisions no policy made (default allow / no ALLOW match / default deny).
    pub default: Outcomes,
    pub policies: Vec<Outcomes>,
    pub audited: Vec<Counter>,
}

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H, policies: &[Policy]) -> Metrics {
        Metrics {
            default: Outcomes::define(host, DEFAULT_POLICY),
            policies: policies
                .iter()
                .map(|p| Outcomes::define(host, &p.name))
                .collect(),
            audited: policies
                .iter()
                .map(|p| Counter::tagged(host, PREFIX, &[("policy", &p.name)], "audited"))
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
