//! Counters and histograms defined once in `on_configure` via `define_metric`,
//! so they show in Envoy's `/stats` and `/stats/prometheus`. A metric whose
//! definition failed is inert rather than a reason to fail the request.
//!
//! Dimensions (policy, provider, reason, rule) travel inside the stat name in
//! Istio's tag encoding, `<tag>=.=<value>;.;`, placed before the metric's last
//! segment: `meshward.authz.policy=.=own_orders;.;denied`. A `stats_tags` regex
//! `(policy=\.=(.*?);\.;)` (what Istio's `extraStatTags` generates) cuts it out
//! of the name and makes it a label: `meshward_authz_denied{policy="own_orders"}`.
//! The name is built once; a labelled counter costs what a plain one does.

use std::cell::RefCell;

use crate::host::Host;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define<H: Host + ?Sized>(host: &H, name: &str) -> Counter {
        Counter(host.define_counter(&sanitize(name)).ok())
    }

    /// `prefix.<tags>metric`, see [`tagged`].
    pub fn tagged<H: Host + ?Sized>(
        host: &H,
        prefix: &str,
        tags: &[(&str, &str)],
        metric: &str,
    ) -> Counter {
        Counter(host.define_counter(&tagged(prefix, tags, metric)).ok())
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

/// A histogram of unitless values (the name carries the unit, e.g. `_us`).
/// Envoy buckets them (default bounds 0.5 .. 3.6e6) and exports
/// `_bucket`, `_sum` and `_count` in `/stats/prometheus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram(Option<u32>);

impl Histogram {
    pub fn tagged<H: Host + ?Sized>(
        host: &H,
        prefix: &str,
        tags: &[(&str, &str)],
        metric: &str,
    ) -> Histogram {
        Histogram(host.define_histogram(&tagged(prefix, tags, metric)).ok())
    }

    pub fn record<H: Host + ?Sized>(&self, host: &H, value: u64) {
        if let Some(id) = self.0 {
            host.record_histogram(id, value);
        }
    }
}

/// The stat name `prefix.<tag>=.=<value>;.;...metric`. Values are reduced to
/// `[A-Za-z0-9_-]` so no value can close a tag early or contain a `.`-separated
/// piece that another tag regex (Istio's `cache.`, `component.`) would take.
pub fn tagged(prefix: &str, tags: &[(&str, &str)], metric: &str) -> String {
    let mut name = sanitize(prefix);
    name.push('.');
    for (tag, value) in tags {
        name.push_str(&segment(tag));
        name.push_str("=.=");
        name.push_str(&segment(value));
        name.push_str(";.;");
    }
    name.push_str(&sanitize(metric));
    name
}

/// The inverse of [`tagged`]: the name without its tags, and the tags. What
/// Envoy's tag extraction does with the `stats_tags` we ship.
pub fn untagged(name: &str) -> (String, Vec<(String, String)>) {
    let mut base = String::with_capacity(name.len());
    let mut tags = Vec::new();
    let mut rest = name;
    while let Some(eq) = rest.find("=.=") {
        let Some(end) = rest[eq..].find(";.;").map(|e| eq + e) else {
            break;
        };
        let start = rest[..eq].rfind('.').map_or(0, |d| d + 1);
        base.push_str(&rest[..start]);
        tags.push((rest[start..eq].to_string(), rest[eq + 3..end].to_string()));
        rest = &rest[end + 3..];
    }
    base.push_str(rest);
    (base, tags)
}

/// Increments held in VM memory and handed to Envoy on the tick: each
/// `increment_metric` is a host call, and a request through the suite makes
/// about six of them (measured: 1.5 µs of Envoy CPU per request).
#[derive(Debug, Default)]
pub struct CounterBatch {
    pending: RefCell<Vec<(u32, i64)>>,
}

impl CounterBatch {
    pub fn add(&self, id: u32, by: i64) {
        let mut pending = self.pending.borrow_mut();
        match pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n += by,
            None => pending.push((id, by)),
        }
    }

    /// Hand every held increment to the host, one call per counter.
    pub fn flush<H: Host + ?Sized>(&self, host: &H) {
        let mut pending = self.pending.borrow_mut();
        for (id, n) in pending.iter_mut().filter(|(_, n)| *n != 0) {
            host.increment_counter(*id, *n);
            *n = 0;
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
    fn a_batch_reaches_the_host_on_flush_only() {
        let host = FakeHost::default();
        let a = host.define_counter("a").unwrap();
        let b = host.define_counter("b").unwrap();
        let batch = CounterBatch::default();
        batch.add(a, 1);
        batch.add(b, 2);
        batch.add(a, 1);
        assert_eq!(host.counter("a"), 0);
        batch.flush(&host);
        assert_eq!((host.counter("a"), host.counter("b")), (2, 2));
        batch.flush(&host);
        assert_eq!(
            (host.counter("a"), host.counter("b")),
            (2, 2),
            "flushed once"
        );
        batch.add(b, 1);
        batch.flush(&host);
        assert_eq!(host.counter("b"), 3);
    }

    #[test]
    fn tags_use_istio_encoding_with_safe_values() {
        assert_eq!(
            tagged("meshward.authz", &[("policy", "own-orders")], "denied"),
            "meshward.authz.policy=.=own-orders;.;denied"
        );
        assert_eq!(
            tagged(
                "meshward.jwt_auth",
                &[("provider", "a.b"), ("reason", "x;.;y=.=z")],
                "provider_denied"
            ),
            "meshward.jwt_auth.provider=.=a_b;.;reason=.=x___y___z;.;provider_denied"
        );
        assert_eq!(tagged("m.x", &[], "total"), "m.x.total");
        let name = tagged("m.x", &[("a", "1"), ("b", "2")], "c");
        assert_eq!(
            untagged(&name),
            (
                "m.x.c".to_string(),
                vec![("a".into(), "1".into()), ("b".into(), "2".into())]
            )
        );
    }

    #[test]
    fn histograms_record_only_when_defined() {
        let host = FakeHost::default();
        let h = Histogram::tagged(&host, "m", &[("provider", "p")], "verify_time_us");
        h.record(&host, 42);
        Histogram::default().record(&host, 7);
        assert_eq!(host.histogram("m.provider=.=p;.;verify_time_us"), vec![42]);
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("a b/c.d"), "a_b_c.d");
        assert_eq!(segment("my.policy"), "my_policy");
    }
}
