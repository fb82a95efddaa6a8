//! Where a provider's keys come from, and the per-worker fetch state machine
//! for remote JWKS and OIDC discovery. Pure: time is passed in (ms since the
//! epoch) and the glue performs the callouts this module plans.

use std::rc::Rc;
use std::time::Duration;

use meshward_shared::config::ConfigError;

use crate::jose::Jwks;

/// Own deadline slack on top of the callout timeout: Envoy can queue a
/// callout to a cluster with no healthy host past the callout's timeout.
const DEADLINE_SLACK_MS: u64 = 1000;
const BACKOFF_START_MS: u64 = 1000;
/// Before any JWKS has loaded, retry more eagerly: requests are waiting.
const BACKOFF_MAX_COLD_MS: u64 = 10_000;
const BACKOFF_MAX_MS: u64 = 60_000;
/// At most one refetch per this interval for an unknown `kid`.
pub const KID_REFETCH_INTERVAL_MS: u64 = 30_000;
/// Largest JWKS or discovery document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTarget {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout: Duration,
}

impl RemoteTarget {
    /// Split an `http(s)://authority/path` URI; the cluster does the routing.
    pub fn from_uri(
        uri: &str,
        cluster: &str,
        timeout: Duration,
    ) -> Result<RemoteTarget, ConfigError> {
        if cluster.is_empty() {
            return Err(ConfigError::new("cluster", "missing"));
        }
        let rest = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .ok_or_else(|| {
                ConfigError::new(
                    "uri",
                    format!("`{uri}` must start with http:// or https://"),
                )
            })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let bad = |b: u8| b <= b' ' || b == 0x7f || b == b'@' || b == b'#';
        if authority.is_empty()
            || authority.bytes().any(bad)
            || path.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return Err(ConfigError::new(
                "uri",
                format!("`{uri}` is not a valid absolute URI"),
            ));
        }
        Ok(RemoteTarget {
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            path: path.to_string(),
            timeout,
        })
    }
}

#[derive(Debug)]
pub enum KeySource {
    Local(Rc<Jwks>),
    Remote(RemoteSpec),
}

#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// The JWKS URI, or the discovery document when `discovery_issuer` is set.
    pub target: RemoteTarget,
    pub discovery_issuer: Option<String>,
    pub cache_duration: Duration,
}

impl KeySource {
    pub fn local(jwks: Jwks) -> KeySource {
        KeySource::Local(Rc::new(jwks))
    }
    pub fn remote(
        target: RemoteTarget,
        discovery_issuer: Option<String>,
        cache_duration: Duration,
    ) -> KeySource {
        KeySource::Remote(RemoteSpec {
            target,
            discovery_issuer,
            cache_duration,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Discovery,
    Jwks,
}

/// A callout the glue should make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    pub target: RemoteTarget,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// New keys installed; `skipped` describes keys left out.
    Loaded {
        keys: usize,
        skipped: Vec<String>,
    },
    /// Discovery gave a JWKS URI; the JWKS fetch follows on the next poll.
    Discovered,
    Failed(String),
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: u32,
    deadline_ms: u64,
    stage: Stage,
}

/// Runtime key state of one provider on one worker.
#[derive(Debug)]
pub struct KeyState {
    spec: Option<RemoteSpec>,
    jwks: Option<Rc<Jwks>>,
    discovered: Option<RemoteTarget>,
    in_flight: Option<InFlight>,
    planned: Option<Stage>,
    next_attempt_ms: u64,
    backoff_ms: u64,
    last_kid_refetch_ms: Option<u64>,
    pending_jwks_after_discovery: bool,
    /// Counts the key sets installed that differ from the one before: a
    /// verified-token cache entry is only good for the set that verified it.
    generation: u64,
    /// SHA-256 of the installed document (a JWKS can be up to 1 MiB).
    last_jwks_digest: [u8; 32],
}

impl KeyState {
    pub fn new(source: &KeySource) -> KeyState {
        let (spec, jwks) = match source {
            KeySource::Local(j) => (None, Some(j.clone())),
            KeySource::Remote(s) => (Some(s.clone()), None),
        };
        KeyState {
            spec,
            jwks,
            discovered: None,
            in_flight: None,
            planned: None,
            next_attempt_ms: 0,
            backoff_ms: BACKOFF_START_MS,
            last_kid_refetch_ms: None,
            pending_jwks_after_discovery: false,
            generation: 0,
            last_jwks_digest: [0; 32],
        }
    }

    pub fn keys(&self) -> Option<&Rc<Jwks>> {
        self.jwks.as_ref()
    }

    /// Changes when a refresh installs a key set that differs from the
    /// current one (a refresh that returns the same document keeps it).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_remote(&self) -> bool {
        self.spec.is_some()
    }

    pub fn fetching(&self) -> bool {
        self.in_flight.is_some() || self.planned.is_some()
    }

    /// Called on every tick: expires a stuck callout and returns the next
    /// callout to make, if one is due.
    pub fn poll(&mut self, now_ms: u64) -> (Option<FetchOutcome>, Option<FetchPlan>) {
        if self.spec.is_none() {
            return (None, None);
        }
        let mut expired = None;
        if let Some(f) = self.in_flight {
            if now_ms < f.deadline_ms {
                return (None, None);
            }
            expired = Some(self.fail(now_ms, "timed out".into()));
        }
        if now_ms < self.next_attempt_ms || self.planned.is_some() {
            return (expired, None);
        }
        let Some(spec) = &self.spec else {
            return (expired, None);
        };
        let (target, stage) = match (&spec.discovery_issuer, &self.discovered) {
            (Some(_), Some(jwks_target)) if self.pending_jwks_after_discovery => {
                (jwks_target.clone(), Stage::Jwks)
            }
            (Some(_), _) => (spec.target.clone(), Stage::Discovery),
            (None, _) => (spec.target.clone(), Stage::Jwks),
        };
        self.planned = Some(stage);
        (expired, Some(FetchPlan { target, stage }))
    }

    pub fn started(&mut self, token: u32, now_ms: u64, plan: &FetchPlan) {
        self.planned = None;
        self.in_flight = Some(InFlight {
            token,
            deadline_ms: now_ms + plan.target.timeout.as_millis() as u64 + DEADLINE_SLACK_MS,
            stage: plan.stage,
        });
    }

    pub fn dispatch_failed(&mut self, now_ms: u64, why: &str) -> FetchOutcome {
        self.planned = None;
        self.fail(now_ms, format!("dispatch failed: {why}"))
    }

    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|f| f.token == token)
    }

    /// Handle a callout response. `status` is the `:status` header.
    pub fn on_response(
        &mut self,
        now_ms: u64,
        status: Option<u32>,
        body: Option<&[u8]>,
    ) -> FetchOutcome {
        let Some(flight) = self.in_flight.take() else {
            return FetchOutcome::Failed("unexpected response".into());
        };
        if status != Some(200) {
            let s = status.map_or("none".to_string(), |s| s.to_string());
            return self.fail(now_ms, format!("HTTP status {s}"));
        }
        let body = match body {
            Some(b) if b.len() <= MAX_DOCUMENT_BYTES => b,
            Some(_) => return self.fail(now_ms, "document larger than 1 MiB".into()),
            None => return self.fail(now_ms, "empty body".into()),
        };
        match flight.stage {
            Stage::Discovery => self.on_discovery(now_ms, body),
            Stage::Jwks => self.on_jwks(now_ms, body),
        }
    }

    fn on_discovery(&mut self, now_ms: u64, body: &[u8]) -> FetchOutcome {
        let Some(spec) = &self.spec else {
            return FetchOutcome::Failed("not remote".into());
        };
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let doc: Discovery = match serde_json::from_slice(body) {
            Ok(d) => d,
            Err(e) => return self.fail(now_ms, format!("discovery document invalid: {e}")),
        };
        // OpenID Connect Discovery 1.0 §4.3: the issuer must match exactly.
        if spec.discovery_issuer.as_deref() != Some(doc.issuer.as_str()) {
            return self.fail(
                now_ms,
                "discovery document issuer does not match the configured issuer".into(),
            );
        }
        let target = match RemoteTarget::from_uri(
            &doc.jwks_uri,
            &spec.target.cluster,
            spec.target.timeout,
        ) {
            Ok(t) => t,
            Err(e) => return self.fail(now_ms, format!("discovery jwks_uri: {}", e.message)),
        };
        self.discovered = Some(target);
        self.pending_jwks_after_discovery = true;
        self.next_attempt_ms = now_ms;
        FetchOutcome::Discovered
    }

    fn on_jwks(&mut self, now_ms: u64, body: &[u8]) -> FetchOutcome {
        let text = match std::str::from_utf8(body) {
            Ok(t) => t,
            Err(_) => return self.fail(now_ms, "JWKS is not UTF-8".into()),
        };
        match Jwks::parse_lenient(text) {
            Ok((jwks, _)) if jwks.is_empty() => self.fail(now_ms, "JWKS has no usable keys".into()),
            Ok((jwks, skipped)) => {
                let keys = jwks.len();
                self.jwks = Some(Rc::new(jwks));
                let digest = ring::digest::digest(&ring::digest::SHA256, body);
                if digest.as_ref() != self.last_jwks_digest.as_slice() {
                    self.generation += 1;
                    self.last_jwks_digest.copy_from_slice(digest.as_ref());
                }
                self.pending_jwks_after_discovery = false;
                self.backoff_ms = BACKOFF_START_MS;
                let cache_ms = self
                    .spec
                    .as_ref()
                    .map_or(600_000, |s| s.cache_duration.as_millis() as u64);
                // Refresh before expiry so requests never see stale-then-missing keys.
                self.next_attempt_ms = now_ms + cache_ms - cache_ms / 10;
                FetchOutcome::Loaded {
                    keys,
                    skipped: skipped.iter().map(ToString::to_string).collect(),
                }
            }
            Err(e) => self.fail(now_ms, format!("JWKS invalid: {e}")),
        }
    }

    /// Keep the last good keys; retry with exponential backoff.
    fn fail(&mut self, now_ms: u64, why: String) -> FetchOutcome {
        self.in_flight = None;
        self.pending_jwks_after_discovery = false;
        self.next_attempt_ms = now_ms + self.backoff_ms;
        let cap = if self.jwks.is_some() {
            BACKOFF_MAX_MS
        } else {
            BACKOFF_MAX_COLD_MS
        };
        self.backoff_ms = (self.backoff_ms * 2).min(cap);
        FetchOutcome::Failed(why)
    }

    /// A token names a kid we don't have. Returns true when the caller
    /// should wait: a fetch is under way or one was just scheduled.
    pub fn want_kid(&mut self, now_ms: u64) -> bool {
        if self.spec.is_none() {
            return false;
        }
        if self.fetching() {
            return true;
        }
        let allowed = self
            .last_kid_refetch_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= KID_REFETCH_INTERVAL_MS);
        if !allowed {
            return false;
        }
        self.last_kid_refetch_ms = Some(now_ms);
        self.next_attempt_ms = now_ms;
        self.backoff_ms = BACKOFF_START_MS;
        true
    }
}
