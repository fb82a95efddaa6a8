//! Findings, their points and the request's score, in the manner of CRS
//! anomaly scoring. A finding names where it matched, never the value.

use serde::Serialize;

/// CRS severities and their points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Notice,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn points(self) -> u32 {
        match self {
            Severity::Critical => 5,
            Severity::Error => 4,
            Severity::Warning => 3,
            Severity::Notice => 2,
        }
    }
}

/// The signature detector families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    Ssrf,
    /// Log4j lookups, serialized objects, code-execution classes.
    Java,
    /// PHP code, serialized PHP objects.
    Php,
    Protocol,
    /// Per-identity behaviour (`behaviour.*` rules); see `crate::behaviour`.
    Behaviour,
}

impl Detector {
    pub const ALL: [Detector; 9] = [
        Detector::Sqli,
        Detector::Xss,
        Detector::Traversal,
        Detector::Cmdi,
        Detector::Ssrf,
        Detector::Java,
        Detector::Php,
        Detector::Protocol,
        Detector::Behaviour,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Sqli => "sqli",
            Detector::Xss => "xss",
            Detector::Traversal => "traversal",
            Detector::Cmdi => "cmdi",
            Detector::Ssrf => "ssrf",
            Detector::Java => "java",
            Detector::Php => "php",
            Detector::Protocol => "protocol",
            Detector::Behaviour => "behaviour",
        }
    }

    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// One match of one rule of a detector, before it is placed in a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// A stable rule code, e.g. `sqli.libinjection`, `ssrf.metadata-host`.
    pub rule: &'static str,
    pub severity: Severity,
    /// Byte offset in the normalised value (0 when the rule judges the whole value).
    pub offset: usize,
}

/// One explained contribution to the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub detector: Detector,
    pub rule: &'static str,
    pub severity: Severity,
    pub points: u32,
    /// e.g. `query.id`, `body.$.user.name`, `header.user-agent`.
    pub field: String,
    pub offset: usize,
    /// Behaviour findings: the measured figures, e.g. `rate 12.3/s vs baseline 1.1/s`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The explanation is capped; the score still counts every finding.
pub const MAX_FINDINGS: usize = 32;

/// What the score means against the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Below the detection threshold.
    Pass,
    /// At or above the detection threshold, below the blocking threshold.
    Detect,
    /// At or above the blocking threshold.
    Block,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Score {
    pub total: u32,
    pub findings: Vec<Finding>,
    /// Findings counted in `total` but left out of `findings`.
    pub omitted: u32,
}

impl Score {
    pub fn add(&mut self, detector: Detector, hit: Hit, field: &str) {
        self.add_detailed(detector, hit, field, "");
    }

    pub fn add_detailed(&mut self, detector: Detector, hit: Hit, field: &str, detail: &str) {
        let points = hit.severity.points();
        self.total = self.total.saturating_add(points);
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding {
                detector,
                rule: hit.rule,
                severity: hit.severity,
                points,
                field: field.to_string(),
                offset: hit.offset,
                detail: detail.to_string(),
            });
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    pub fn verdict(&self, thresholds: Thresholds) -> Verdict {
        if self.total >= thresholds.blocking {
            Verdict::Block
        } else if self.total >= thresholds.detection {
            Verdict::Detect
        } else {
            Verdict::Pass
        }
    }

    pub fn detected_by(&self, detector: Detector) -> bool {
        self.findings.iter().any(|f| f.detector == detector)
    }
}

/// Detection and blocking are separate, so a stricter level can be observed
/// without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub detection: u32,
    pub blocking: u32,
}
