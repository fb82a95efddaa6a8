//! The per-worker authenticator: compiled config plus mutable key state,
//! token caches and paused requests. `decide` turns a rule and the tokens
//! found on a request into an outcome.

use std::cell::RefCell;
use std::rc::Rc;

use meshward_shared::host::Host;

use crate::cache::TokenCache;
use crate::config::{Config, Rule};
use crate::extract::Found;
use crate::jose::{HostVerifier, VerifyStats};
use crate::keys::KeyState;
use crate::metrics::Metrics;
use crate::reason::Reason;
use crate::requirement::{Check, Outcome};
use crate::signature::HostCrypto;
use crate::verify::{verify_token_with, Verified, VerifyError};

/// A request paused until keys arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub context_id: u32,
    pub deadline_ms: u64,
}

#[derive(Debug)]
pub struct Runtime {
    pub config: Rc<Config>,
    pub keys: RefCell<Vec<KeyState>>,
    caches: RefCell<Vec<TokenCache>>,
    pub metrics: Metrics,
    pub waiters: RefCell<Vec<Waiter>>,
    /// RS*/ES* signatures go to the host's `verify_signature` (decided once, at configure).
    pub host_verify: bool,
}

/// What `decide` concluded, with every token that verified.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    /// (provider, where the token was found, verified token)
    pub verified: Vec<(usize, usize, Rc<Verified>)>,
}

impl Runtime {
    pub fn new<H: Host + ?Sized>(host: &H, config: Config, host_verify: bool) -> Runtime {
        let metrics = Metrics::define(host, &config);
        let keys = config
            .providers
            .iter()
            .map(|p| KeyState::new(&p.keys))
            .collect();
        let caches = config
            .providers
            .iter()
            .map(|p| TokenCache::new(p.cache_size))
            .collect();
        Runtime {
            config: Rc::new(config),
            keys: RefCell::new(keys),
            caches: RefCell::new(caches),
            metrics,
            waiters: RefCell::new(Vec::new()),
            host_verify,
        }
    }

    /// `tokens[p]` is what provider `p`'s locations hold. On the final
    /// attempt (pending deadline passed) waiting is no longer an option.
    pub fn decide<H: Host + ?Sized>(
        &self,
        host: &H,
        rule: &Rule,
        tokens: &[Option<Found>],
        now_ms: u64,
        final_attempt: bool,
    ) -> Decision {
        let Some(requires) = &rule.requires else {
            return Decision {
                outcome: Outcome::Allow,
                verified: Vec::new(),
            };
        };
        let n = self.config.providers.len();
        let mut memo: Vec<Option<Check>> = vec![None; n];
        let mut check = |p: usize| -> Check {
            if let Some(Some(c)) = memo.get(p) {
                return c.clone();
            }
            let c = self.check(
                host,
                p,
                tokens.get(p).and_then(Option::as_ref),
                now_ms,
                final_attempt,
            );
            if let Some(slot) = memo.get_mut(p) {
                *slot = Some(c.clone());
            }
            c
        };
        let mut outcome = requires.evaluate(n, &mut check);
        let verified: Vec<(usize, usize, Rc<Verified>)> = memo
            .iter()
            .enumerate()
            .filter_map(|(p, c)| match (c, tokens.get(p).and_then(Option::as_ref)) {
                (Some(Check::Verified(v)), Some(found)) => Some((p, found.location, v.clone())),
                _ => None,
            })
            .collect();
        if outcome == Outcome::Allow && !rule.required_scopes.is_empty() {
            outcome = scope_outcome(&rule.required_scopes, &verified);
        }
        Decision { outcome, verified }
    }

    fn check<H: Host + ?Sized>(
        &self,
        host: &H,
        p: usize,
        found: Option<&Found>,
        now_ms: u64,
        final_attempt: bool,
    ) -> Check {
        let (Some(provider), Some(metrics)) =
            (self.config.providers.get(p), self.metrics.provider(p))
        else {
            return Check::Missing;
        };
        let Some(found) = found else {
            return Check::Missing;
        };
        if found.token.len() > self.config.max_token_bytes {
            return Check::Failed(Reason::TokenMalformed);
        }
        let now = now_ms / 1000;
        let generation = self.keys.borrow().get(p).map_or(0, KeyState::generation);
        let mut caches = self.caches.borrow_mut();
        if let Some(hit) = caches
            .get_mut(p)
            .and_then(|c| c.get(&found.token, now, generation))
        {
            metrics.cache_hit.inc(host);
            return Check::Verified(hit);
        }
        metrics.cache_miss.inc(host);
        let mut keys = self.keys.borrow_mut();
        let Some(state) = keys.get_mut(p) else {
            return Check::Missing;
        };
        let Some(jwks) = state.keys().cloned() else {
            return if final_attempt {
                Check::Failed(Reason::JwksUnavailable)
            } else {
                Check::Pending
            };
        };
        let crypto = HostCrypto(host);
        let via_host: Option<&dyn HostVerifier> = if self.host_verify {
            Some(&crypto)
        } else {
            None
        };
        let mut stats = VerifyStats::default();
        // Two clock reads (scalar host calls), on cache misses only.
        let started = host.now();
        let result = verify_token_with(p, provider, &found.token, &jwks, now, via_host, &mut stats);
        if stats.host + stats.ring > 0 {
            let took = host.now().duration_since(started).unwrap_or_default();
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            metrics.verify_time_us.record(host, us);
        }
        self.metrics.verified(host, stats);
        match result {
            Ok(v) => {
                let v = Rc::new(v);
                if let Some(c) = caches.get_mut(p) {
                    c.insert(&found.token, v.clone(), now, state.generation());
                }
                Check::Verified(v)
            }
            Err(VerifyError::UnknownKid) if !final_attempt && state.want_kid(now_ms) => {
                Check::Pending
            }
            Err(VerifyError::UnknownKid) => Check::Failed(Reason::KidNotFound),
            Err(VerifyError::Denied(r)) => Check::Failed(r),
        }
    }

    pub fn add_waiter(&self, context_id: u32, now_ms: u64) {
        let mut w = self.waiters.borrow_mut();
        if !w.iter().any(|x| x.context_id == context_id) {
            let deadline_ms = now_ms + self.config.jwks_pending_timeout.as_millis() as u64;
            w.push(Waiter {
                context_id,
                deadline_ms,
            });
        }
    }

    pub fn remove_waiter(&self, context_id: u32) {
        self.waiters
            .borrow_mut()
            .retain(|w| w.context_id != context_id);
    }

    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters
            .borrow()
            .iter()
            .any(|w| w.context_id == context_id)
    }
}

fn scope_outcome(required: &[String], verified: &[(usize, usize, Rc<Verified>)]) -> Outcome {
    if verified.is_empty() {
        return Outcome::Deny(Reason::TokenMissing, None);
    }
    let has = |s: &String| {
        verified
            .iter()
            .any(|(_, _, v)| v.identity.scopes.contains(s))
    };
    if required.iter().all(has) {
        Outcome::Allow
    } else {
        Outcome::Deny(
            Reason::InsufficientScope,
            verified.first().map(|(p, _, _)| *p),
        )
    }
}
