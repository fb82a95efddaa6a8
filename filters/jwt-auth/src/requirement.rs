//! Envoy `JwtRequirement` semantics: which tokens a rule needs, evaluated
//! over per-provider check results that the caller computes lazily.

use std::rc::Rc;

use crate::reason::Reason;
use crate::verify::Verified;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Provider(usize),
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    /// Passes without a token; a present token must verify.
    AllowMissing,
    /// Always passes; verified tokens still produce identity and headers.
    AllowMissingOrFailed,
}

/// Result of checking one provider's token locations.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Missing,
    Verified(Rc<Verified>),
    Failed(Reason),
    /// Keys are not loaded yet, or a refetch for an unknown kid is under way.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    /// Reason, and the provider the failure came from when there is one.
    Deny(Reason, Option<usize>),
    Pending,
}

impl Requirement {
    /// `check(p)` must be memoized by the caller; it may be called more than
    /// once for the same provider.
    pub fn evaluate(&self, providers: usize, check: &mut dyn FnMut(usize) -> Check) -> Outcome {
        match self {
            Requirement::Provider(p) => match check(*p) {
                Check::Verified(_) => Outcome::Allow,
                Check::Missing => Outcome::Deny(Reason::TokenMissing, Some(*p)),
                Check::Failed(r) => Outcome::Deny(r, Some(*p)),
                Check::Pending => Outcome::Pending,
            },
            Requirement::Any(list) => {
                let outcomes: Vec<Outcome> =
                    list.iter().map(|r| r.evaluate(providers, check)).collect();
                if outcomes.contains(&Outcome::Allow) {
                    Outcome::Allow
                } else if outcomes.contains(&Outcome::Pending) {
                    Outcome::Pending
                } else {
                    most_specific_denial(&outcomes)
                }
            }
            Requirement::All(list) => {
                let mut pending = false;
                for r in list {
                    match r.evaluate(providers, check) {
                        Outcome::Allow => {}
                        Outcome::Pending => pending = true,
                        deny => return deny,
                    }
                }
                if pending {
                    Outcome::Pending
                } else {
                    Outcome::Allow
                }
            }
            Requirement::AllowMissing => {
                let checks: Vec<(usize, Check)> = (0..providers).map(|p| (p, check(p))).collect();
                if checks.iter().any(|(_, c)| matches!(c, Check::Pending)) {
                    return Outcome::Pending;
                }
                if checks.iter().any(|(_, c)| matches!(c, Check::Verified(_))) {
                    return Outcome::Allow;
                }
                // A token another provider's issuer owns is not this one's failure.
                let failures: Vec<Outcome> = checks
                    .iter()
                    .filter_map(|(p, c)| match c {
                        Check::Failed(r) => Some(Outcome::Deny(*r, Some(*p))),
                        _ => None,
                    })
                    .collect();
                if failures.is_empty() {
                    Outcome::Allow
                } else {
                    most_specific_denial(&failures)
                }
            }
            Requirement::AllowMissingOrFailed => {
                let pending = (0..providers).any(|p| matches!(check(p), Check::Pending));
                if pending {
                    Outcome::Pending
                } else {
                    Outcome::Allow
                }
            }
        }
    }

    /// Providers this requirement can ever consult.
    pub fn providers(&self, all: usize) -> Vec<usize> {
        let mut out = Vec::new();
        self.collect(all, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect(&self, all: usize, out: &mut Vec<usize>) {
        match self {
            Requirement::Provider(p) => out.push(*p),
            Requirement::Any(l) | Requirement::All(l) => l.iter().for_each(|r| r.collect(all, out)),
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => out.extend(0..all),
        }
    }
}

/// Prefer a real failure over "missing", and a failure other than issuer
/// mismatch (which only says the token belongs to another provider).
fn most_specific_denial(outcomes: &[Outcome]) -> Outcome {
    let rank = |o: &Outcome| match o {
        Outcome::Deny(Reason::TokenMissing, _) => 0,
        Outcome::Deny(Reason::IssuerMismatch, _) => 1,
        Outcome::Deny(..) => 2,
        _ => -1,
    };
    let mut best = Outcome::Deny(Reason::TokenMissing, None);
    let mut best_rank = -1;
    for o in outcomes {
        if rank(o) > best_rank {
            best = *o;
            best_rank = rank(o);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshward_shared::identity::Identity;

    fn ok() -> Check {
        Check::Verified(Rc::new(Verified {
            provider: 0,
            exp: None,
            identity: std::rc::Rc::new(Identity::default()),
            payload_segment: String::new(),
            identity_json: Vec::new(),
        }))
    }

    fn eval(req: &Requirement, checks: Vec<Check>) -> Outcome {
        let n = checks.len();
        req.evaluate(n, &mut |p| checks[p].clone())
    }

    use Requirement::*;

    #[test]
    fn provider() {
        assert_eq!(eval(&Provider(0), vec![ok()]), Outcome::Allow);
        assert_eq!(
            eval(&Provider(0), vec![Check::Missing]),
            Outcome::Deny(Reason::TokenMissing, Some(0))
        );
        assert_eq!(
            eval(
                &Provider(1),
                vec![ok(), Check::Failed(Reason::BadSignature)]
            ),
            Outcome::Deny(Reason::BadSignature, Some(1))
        );
        assert_eq!(eval(&Provider(0), vec![Check::Pending]), Outcome::Pending);
    }

    #[test]
    fn any_and_all() {
        let any = Any(vec![Provider(0), Provider(1)]);
        assert_eq!(eval(&any, vec![Check::Missing, ok()]), Outcome::Allow);
        assert_eq!(eval(&any, vec![Check::Pending, ok()]), Outcome::Allow);
        assert_eq!(
            eval(&any, vec![Check::Pending, Check::Missing]),
            Outcome::Pending
        );
        assert_eq!(
            eval(
                &any,
                vec![Check::Missing, Check::Failed(Reason::TokenExpired)]
            ),
            Outcome::Deny(Reason::TokenExpired, Some(1))
        );
        assert_eq!(
            eval(
                &any,
                vec![
                    Check::Failed(Reason::IssuerMismatch),
                    Check::Failed(Reason::TokenExpired)
                ]
            ),
            Outcome::Deny(Reason::TokenExpired, Some(1))
        );
        assert_eq!(
            eval(&any, vec![Check::Missing, Check::Missing]),
            Outcome::Deny(Reason::TokenMissing, Some(0))
        );
        let all = All(vec![Provider(0), Provider(1)]);
        assert_eq!(eval(&all, vec![ok(), ok()]), Outcome::Allow);
        assert_eq!(
            eval(&all, vec![ok(), Check::Missing]),
            Outcome::Deny(Reason::TokenMissing, Some(1))
        );
        assert_eq!(eval(&all, vec![Check::Pending, ok()]), Outcome::Pending);
        assert_eq!(
            eval(
                &all,
                vec![Check::Pending, Check::Failed(Reason::BadSignature)]
            ),
            Outcome::Deny(Reason::BadSignature, Some(1))
        );
    }

    #[test]
    fn nested() {
        let req = Any(vec![All(vec![Provider(0), Provider(1)]), Provider(2)]);
        assert_eq!(eval(&req, vec![ok(), Check::Missing, ok()]), Outcome::Allow);
        assert_eq!(
            eval(&req, vec![ok(), Check::Missing, Check::Missing]),
            Outcome::Deny(Reason::TokenMissing, Some(1))
        );
        assert_eq!(req.providers(3), vec![0, 1, 2]);
    }

    #[test]
    fn allow_missing_variants() {
        assert_eq!(
            eval(&AllowMissing, vec![Check::Missing, Check::Missing]),
            Outcome::Allow
        );
        assert_eq!(
            eval(&AllowMissing, vec![Check::Missing, ok()]),
            Outcome::Allow
        );
        assert_eq!(
            eval(
                &AllowMissing,
                vec![Check::Failed(Reason::TokenExpired), Check::Missing]
            ),
            Outcome::Deny(Reason::TokenExpired, Some(0))
        );
        // Token belongs to provider 1 (issuer mismatch for 0) and verifies there.
        assert_eq!(
            eval(
                &AllowMissing,
                vec![Check::Failed(Reason::IssuerMismatch), ok()]
            ),
            Outcome::Allow
        );
        assert_eq!(eval(&AllowMissing, vec![Check::Pending]), Outcome::Pending);
        assert_eq!(
            eval(
                &AllowMissingOrFailed,
                vec![Check::Failed(Reason::BadSignature)]
            ),
            Outcome::Allow
        );
        assert_eq!(
            eval(&AllowMissingOrFailed, vec![Check::Pending]),
            Outcome::Pending
        );
        assert_eq!(AllowMissing.providers(2), vec![0, 1]);
    }
}
