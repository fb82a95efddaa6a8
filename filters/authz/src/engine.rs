//! Evaluation: DENY policies, then ALLOW policies, then the default
//! (deny when ALLOW policies exist or `default_action` is DENY). AUDIT
//! policies never change the decision; they mark the request for auditing.
//!
//! Rules whose path patterns all pin the first path segment (exact paths,
//! `/seg/...*` prefixes, templates starting with a literal) are indexed by
//! that segment, so a request checks the rules for its own first segment
//! plus the rules that cannot be indexed, not every rule.

use std::collections::HashMap;

use crate::policy::{Action, Miss, Policy};
use crate::request::Request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An ALLOW policy matched.
    AllowedByPolicy,
    /// No ALLOW policy exists and the default is ALLOW.
    AllowedByDefault,
    /// A DENY policy matched.
    DeniedByPolicy,
    /// ALLOW policies exist and none matched.
    NoAllowMatch,
    /// No policy matched and `default_action` is DENY.
    DefaultDeny,
    /// The policies read `source.ip` but the TCP peer is unknown
    /// (`peer_address` is not provided by the Envoy config).
    PeerUnknown,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::AllowedByPolicy => "allowed_by_policy",
            Reason::AllowedByDefault => "allowed_by_default",
            Reason::DeniedByPolicy => "denied_by_policy",
            Reason::NoAllowMatch => "no_allow_match",
            Reason::DefaultDeny => "default_deny",
            Reason::PeerUnknown => "peer_unknown",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Reason::AllowedByPolicy => "an ALLOW policy matched the request",
            Reason::AllowedByDefault => {
                "no ALLOW policy is configured and the default action is ALLOW"
            }
            Reason::DeniedByPolicy => "a DENY authorization policy matched the request",
            Reason::NoAllowMatch => "no ALLOW authorization policy matched the request",
            Reason::DefaultDeny => "no authorization policy matched and the default action is DENY",
            Reason::PeerUnknown => {
                "the policies need the connection's peer address and it is not available"
            }
        }
    }

    pub fn allows(self) -> bool {
        matches!(self, Reason::AllowedByPolicy | Reason::AllowedByDefault)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    /// The deciding policy and rule (indices), when a policy decided.
    pub policy: Option<usize>,
    pub rule: Option<usize>,
}

impl Outcome {
    pub fn allowed(&self) -> bool {
        self.reason.allows()
    }
}

#[derive(Debug, Default)]
struct Index {
    /// (policy, rule) in config order.
    rules: Vec<(u32, u32)>,
    /// First path segment -> positions in `rules`, ascending.
    by_segment: HashMap<Box<str>, Vec<u32>>,
    /// Positions of rules that must always be checked, ascending.
    always: Vec<u32>,
}

impl Index {
    fn build(policies: &[Policy], action: Action) -> Index {
        let mut ix = Index::default();
        for (p, policy) in policies.iter().enumerate() {
            if policy.action != action {
                continue;
            }
            for (r, rule) in policy.rules.iter().enumerate() {
                let pos = ix.rules.len() as u32;
                ix.rules.push((p as u32, r as u32));
                // Indexable: every operation's paths pin the first segment,
                // so the rule cannot match a path with another one.
                let keys: Option<Vec<Box<str>>> = if rule.to.is_empty() {
                    None
                } else {
                    rule.to
                        .iter()
                        .map(|op| op.paths.pos.as_ref().and_then(|ps| ps.first_segments()))
                        .try_fold(Vec::new(), |mut acc, e| {
                            acc.extend(e?);
                            Some(acc)
                        })
                };
                match keys {
                    Some(keys) if !keys.is_empty() => {
                        for k in keys {
                            let list = ix.by_segment.entry(k).or_default();
                            if list.last() != Some(&pos) {
                                list.push(pos);
                            }
                        }
                    }
                    _ => ix.always.push(pos),
                }
            }
        }
        ix
    }

    /// Candidate rules for `path`, in config order.
    fn candidates<'a>(&'a self, path: &str) -> impl Iterator<Item = (usize, usize)> + 'a {
        let seg = crate::matchers::first_segment(path).unwrap_or("");
        let hits: &[u32] = self.by_segment.get(seg).map_or(&[], Vec::as_slice);
        Merge {
            a: hits,
            b: &self.always,
        }
        .filter_map(move |pos| self.rules.get(pos as usize))
        .map(|(p, r)| (*p as usize, *r as usize))
    }
}

/// Merge two ascending lists.
struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) if x <= y => {
                self.a = &self.a[1..];
                Some(*x)
            }
            (_, Some(y)) => {
                self.b = &self.b[1..];
                Some(*y)
            }
            (Some(x), None) => {
                self.a = &self.a[1..];
                Some(*x)
            }
            (None, None) => None,
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    pub policies: Vec<Policy>,
    deny: Index,
    allow: Index,
    audit: Index,
    /// Enforced (non-dry-run) ALLOW policies exist.
    allow_enforced: bool,
    /// Any ALLOW policy exists, dry-run included.
    allow_any: bool,
    pub default_deny: bool,
    pub has_dry_run: bool,
    pub has_audit: bool,
}

impl Engine {
    pub fn new(policies: Vec<Policy>, default_deny: bool) -> Engine {
        let allows = |dry: bool| {
            policies
                .iter()
                .any(|p| p.action == Action::Allow && (dry || !p.dry_run))
        };
        Engine {
            deny: Index::build(&policies, Action::Deny),
            allow: Index::build(&policies, Action::Allow),
            audit: Index::build(&policies, Action::Audit),
            allow_enforced: allows(false),
            allow_any: allows(true),
            default_deny,
            has_dry_run: policies
                .iter()
                .any(|p| p.dry_run && p.action != Action::Audit),
            has_audit: policies.iter().any(|p| p.action == Action::Audit),
            policies,
        }
    }

    fn first_match(&self, ix: &Index, r: &Request, with_dry_run: bool) -> Option<(usize, usize)> {
        ix.candidates(&r.path).find(|(p, ri)| {
            let Some(policy) = self.policies.get(*p) else {
                return false;
            };
            if policy.dry_run && !with_dry_run {
                return false;
            }
            policy
                .rules
                .get(*ri)
                .is_some_and(|rule| rule.matches(r).is_ok())
        })
    }

    /// The decision. `with_dry_run` also applies dry-run policies, which
    /// answers "what if they were enforced".
    pub fn decide(&self, r: &Request, with_dry_run: bool) -> Outcome {
        if let Some((p, ri)) = self.first_match(&self.deny, r, with_dry_run) {
            return Outcome {
                reason: Reason::DeniedByPolicy,
                policy: Some(p),
                rule: Some(ri),
            };
        }
        if let Some((p, ri)) = self.first_match(&self.allow, r, with_dry_run) {
            return Outcome {
                reason: Reason::AllowedByPolicy,
                policy: Some(p),
                rule: Some(ri),
            };
        }
        let has_allow = if with_dry_run {
            self.allow_any
        } else {
            self.allow_enforced
        };
        let reason = if has_allow {
            Reason::NoAllowMatch
        } else if self.default_deny {
            Reason::DefaultDeny
        } else {
            Reason::AllowedByDefault
        };
        Outcome {
            reason,
            policy: None,
            rule: None,
        }
    }

    /// AUDIT policies with a matching rule: (policy, rule).
    pub fn audits(&self, r: &Request) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (p, ri) in self.audit.candidates(&r.path) {
            if out.last().is_some_and(|(lp, _)| *lp == p) {
                continue;
            }
            let hit = self
                .policies
                .get(p)
                .and_then(|pol| pol.rules.get(ri))
                .is_some_and(|rule| rule.matches(r).is_ok());
            if hit {
                out.push((p, ri));
            }
        }
        out
    }

    /// Why no ALLOW policy matched: (policy, rule, the part that failed),
    /// for at most `limit` rules. Only computed on the deny path.
    pub fn allow_misses(
        &self,
        r: &Request,
        with_dry_run: bool,
        limit: usize,
    ) -> Vec<(usize, usize, Miss)> {
        let mut out = Vec::new();
        for (p, policy) in self.policies.iter().enumerate() {
            if policy.action != Action::Allow || (policy.dry_run && !with_dry_run) {
                continue;
            }
            if policy.rules.is_empty() {
                out.push((p, 0, "rules (the policy has none, so it matches nothing)"));
            }
            for (ri, rule) in policy.rules.iter().enumerate() {
                if let Err(m) = rule.matches(r) {
                    out.push((p, ri, m));
                }
                if out.len() >= limit {
                    return out;
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
