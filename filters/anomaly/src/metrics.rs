//! Metrics, defined once at configure time (see `meshward_shared::metrics`
//! for the tag encoding): `meshward_anomaly_score` (histogram of every
//! scored request), `meshward_anomaly_detections{detector}`,
//! `meshward_anomaly_actions{action}`, `meshward_anomaly_{allowed,blocked}`.

use meshward_shared::host::Host;
use meshward_shared::metrics::{Counter, Histogram};

use crate::score::Detector;

pub const PREFIX: &str = "meshward.anomaly";

/// What the filter did with a detected request (the `action` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Monitor,
    Tag,
    Throttle,
    Block,
    ShadowThrottle,
    ShadowBlock,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Monitor,
        Action::Tag,
        Action::Throttle,
        Action::Block,
        Action::ShadowThrottle,
        Action::ShadowBlock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Monitor => "monitor",
            Action::Tag => "tag",
            Action::Throttle => "throttle",
            Action::Block => "block",
            Action::ShadowThrottle => "shadow_throttle",
            Action::ShadowBlock => "shadow_block",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub score: Histogram,
    /// By `Detector as usize`.
    pub detections: Vec<Counter>,
    /// By the position in [`Action::ALL`].
    pub actions: Vec<Counter>,
    pub allowed: Counter,
    pub blocked: Counter,
}

impl Metrics {
    pub fn define<H: Host + ?Sized>(host: &H) -> Metrics {
        Metrics {
            score: Histogram::tagged(host, PREFIX, &[], "score"),
            detections: Detector::ALL
                .iter()
                .map(|d| Counter::tagged(host, PREFIX, &[("detector", d.name())], "detections"))
                .collect(),
            actions: Action::ALL
                .iter()
                .map(|a| Counter::tagged(host, PREFIX, &[("action", a.name())], "actions"))
                .collect(),
            allowed: Counter::tagged(host, PREFIX, &[], "allowed"),
            blocked: Counter::tagged(host, PREFIX, &[], "blocked"),
        }
    }

    pub fn detection(&self, d: Detector) -> Counter {
        self.detections.get(d as usize).copied().unwrap_or_default()
    }

    pub fn action(&self, a: Action) -> Counter {
        Action::ALL
            .iter()
            .position(|x| *x == a)
            .and_then(|i| self.actions.get(i).copied())
            .unwrap_or_default()
    }
}
