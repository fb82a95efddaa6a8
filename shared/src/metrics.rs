//! Counters defined once in `on_configure` via `define_metric`, so they show
//! in Envoy's `/stats` and `/stats/prometheus`. A counter whose definition
//! failed is inert rather than a reason to fail the request.

use crate::host::Host;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define<H: Host + ?Sized>(host: &H, name: &str) -> Counter {
        Counter(host.define_counter(&sanitize(name)).ok())
    }

    pub fn inc<H: Host + ?Sized>(&self, host: &H) {
        self.add(host, 1);
    }

    pub fn add<H: Host + ?Sized>(&self, host: &H, by: u32) {
        if let (Some(id), true) = (self.0, by > 0) {
            host.increment_counter(id, i64::from(by));
        }
    }
}

/// Stat names: keep `[A-Za-z0-9_.-]`, map everything else to `_` so a
/// provider or policy name cannot break the stat's hierarchy.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Sanitize one segment: dots are separators, so they are replaced too.
pub fn segment(name: &str) -> String {
    sanitize(name).replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn counters_increment_by_name() {
        let host = FakeHost::default();
        let c = Counter::define(&host, "meshward.jwt_auth.corp.allowed");
        c.inc(&host);
        c.inc(&host);
        assert_eq!(host.counter("meshward.jwt_auth.corp.allowed"), 2);
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("a b/c.d"), "a_b_c.d");
        assert_eq!(segment("my.policy"), "my_policy");
    }
}
