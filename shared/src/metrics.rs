//! Counters defined once in `on_configure` via `define_metric`, so they show
//! in Envoy's `/stats` and `/stats/prometheus`. A counter whose definition
//! failed is inert rather than a reason to fail the request.

use std::cell::RefCell;

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
    fn names_are_sanitized() {
        assert_eq!(sanitize("a b/c.d"), "a_b_c.d");
        assert_eq!(segment("my.policy"), "my_policy");
    }
}
