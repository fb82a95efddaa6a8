//! Limit arithmetic: token bucket, GCRA and fixed window over a two-word
//! state, with the clock passed in (milliseconds since the Unix epoch).
//! No host calls here; `slots` stores the state, `filter` applies verdicts.

/// Which algorithm a limit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Continuous refill at `requests / period`, capacity `burst`.
    TokenBucket,
    /// Generic cell rate algorithm: the same shape as the token bucket,
    /// kept as one "theoretical arrival time".
    Gcra,
    /// Counter per window aligned to the epoch (what Redis-backed services use).
    FixedWindow,
}

/// A compiled limit: `requests` per `period_ms`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u64,
    pub period_ms: u64,
    pub burst: u64,
    pub algorithm: Algorithm,
}

/// Limiter state as stored in a slot. All zero means "never used".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    pub a: u64,
    pub b: u64,
}

/// The outcome of one admission attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// When allowed: how long the request must wait first (throttling).
    pub delay_ms: u64,
    /// Units left after this request.
    pub remaining: u64,
    /// Until the limiter is back to full (window end for fixed windows).
    pub reset_ms: u64,
    /// When denied: the earliest moment a retry can succeed.
    pub retry_after_ms: u64,
}

/// Token bucket scale: tokens are kept in millionths so refill is exact enough.
const SCALE: u128 = 1_000_000;

impl Limit {
    /// Microseconds per request (GCRA emission interval), at least 1.
    fn interval_us(&self) -> u128 {
        ((self.period_ms as u128 * 1000) / self.requests.max(1) as u128).max(1)
    }

    /// Try to admit `cost` units at `now_ms`. `max_delay_ms > 0` lets a
    /// request that does not conform yet reserve capacity and wait.
    /// Returns the verdict and the new state to write (`None`: unchanged).
    pub fn admit(
        &self,
        state: State,
        now_ms: u64,
        cost: u64,
        max_delay_ms: u64,
    ) -> (Verdict, Option<State>) {
        match self.algorithm {
            Algorithm::Gcra => self.gcra(state, now_ms, cost, max_delay_ms),
            Algorithm::TokenBucket => self.bucket(state, now_ms, cost, max_delay_ms),
            Algorithm::FixedWindow => self.window(state, now_ms, cost),
        }
    }

    /// True when the state is indistinguishable from a fresh one, so its slot
    /// can be given to another key without losing anything.
    pub fn idle(&self, state: State, now_ms: u64) -> bool {
        match self.algorithm {
            Algorithm::Gcra => state.a as u128 <= now_ms as u128 * 1000,
            Algorithm::TokenBucket => {
                state.b == 0 || self.tokens(state, now_ms) >= self.burst as u128 * SCALE
            }
            Algorithm::FixedWindow => state.a != self.window_index(now_ms) + 1,
        }
    }

    pub fn window_index(&self, now_ms: u64) -> u64 {
        now_ms / self.period_ms.max(1)
    }

    /// Units `admit` would grant at `now_ms` without any delay (0 while a
    /// throttle reservation is outstanding).
    pub fn available(&self, state: State, now_ms: u64) -> u64 {
        match self.algorithm {
            Algorithm::FixedWindow => {
                let w = self.window_index(now_ms);
                let count = if state.a == w + 1 { state.b } else { 0 };
                self.requests.saturating_sub(count)
            }
            Algorithm::TokenBucket => {
                let units = self.tokens(state, now_ms) / SCALE;
                u64::try_from(units).unwrap_or(u64::MAX).min(self.burst)
            }
            Algorithm::Gcra => {
                let t = self.interval_us();
                let now = now_ms as u128 * 1000;
                let tat = (state.a as u128).max(now);
                let room = (now + t * self.burst as u128).saturating_sub(tat);
                u64::try_from(room / t).unwrap_or(u64::MAX).min(self.burst)
            }
        }
    }

    /// Put back `units` a lease took at `taken_ms` and did not spend. Returns
    /// the new state (unchanged: nothing to write) and how many whole units
    /// went back.
    ///
    /// Fixed window: all of them, while the slot is still in the lease's
    /// `window` (index + 1) and that window is current. Token bucket and GCRA:
    /// all of them less what the bucket refilled since the take, in the
    /// limiter's own precision. That refill could have been lost to the burst
    /// ceiling had the lease never been taken, so handing it back could admit
    /// more than per-request admission would. Rounding it up to whole units
    /// would cost a slow limit (60 an hour) a unit per give-back.
    pub fn give_back(
        &self,
        state: State,
        now_ms: u64,
        units: u64,
        taken_ms: u64,
        window: u64,
    ) -> (State, u64) {
        let age_ms = now_ms.saturating_sub(taken_ms) as u128;
        match self.algorithm {
            Algorithm::FixedWindow => {
                if window != self.window_index(now_ms) + 1 || state.a != window {
                    return (state, 0);
                }
                let r = units.min(state.b);
                (
                    State {
                        a: state.a,
                        b: state.b - r,
                    },
                    r,
                )
            }
            Algorithm::TokenBucket => {
                if state.b == 0 {
                    return (state, 0); // a fresh bucket is full
                }
                let period = self.period_ms.max(1) as u128;
                let rate = self.requests as u128 * SCALE;
                let refilled = (age_ms * rate).div_ceil(period);
                let owed = (units as u128 * SCALE).saturating_sub(refilled);
                let cap = self.burst as u128 * SCALE;
                let elapsed = now_ms.saturating_sub(state.b) as u128;
                let stored = (state.a as u128 + elapsed * rate / period).min(2 * cap);
                let next = (stored + owed).min(2 * cap);
                if next == stored {
                    return (state, 0);
                }
                let Ok(a) = u64::try_from(next) else {
                    return (state, 0);
                };
                let whole = u64::try_from((next - stored) / SCALE).unwrap_or(0);
                (
                    State {
                        a,
                        b: now_ms.max(1),
                    },
                    whole,
                )
            }
            Algorithm::Gcra => {
                let t = self.interval_us();
                let now = now_ms as u128 * 1000;
                let tat = state.a as u128;
                if tat <= now {
                    return (state, 0); // full
                }
                let owed = (units as u128 * t).saturating_sub(age_ms * 1000);
                let back = owed.min(tat - now);
                let Ok(a) = u64::try_from(tat - back) else {
                    return (state, 0);
                };
                let whole = u64::try_from(back / t).unwrap_or(0);
                (State { a, b: state.b }, whole)
            }
        }
    }

    fn gcra(
        &self,
        state: State,
        now_ms: u64,
        cost: u64,
        max_delay_ms: u64,
    ) -> (Verdict, Option<State>) {
        let t = self.interval_us();
        let now = now_ms as u128 * 1000;
        let tolerance = t * self.burst as u128;
        let tat = (state.a as u128).max(now);
        let new_tat = tat + t * cost as u128;
        let allow_at = new_tat.saturating_sub(tolerance);
        let to_ms = |us: u128| u64::try_from(us.div_ceil(1000)).unwrap_or(u64::MAX);
        if cost > self.burst {
            let v = Verdict {
                retry_after_ms: self.period_ms,
                reset_ms: to_ms(tat - now),
                ..Verdict::default()
            };
            return (v, None);
        }
        if allow_at <= now + max_delay_ms as u128 * 1000 {
            let delay = allow_at.saturating_sub(now);
            let remaining = (now + delay + tolerance).saturating_sub(new_tat) / t;
            let v = Verdict {
                allowed: true,
                delay_ms: to_ms(delay),
                remaining: u64::try_from(remaining).unwrap_or(0),
                reset_ms: to_ms(new_tat - now),
                retry_after_ms: 0,
            };
            let next = State {
                a: u64::try_from(new_tat).unwrap_or(u64::MAX),
                b: 0,
            };
            return (v, Some(next));
        }
        let v = Verdict {
            retry_after_ms: to_ms(allow_at - now),
            reset_ms: to_ms(tat - now),
            ..Verdict::default()
        };
        (v, None)
    }

    /// Current tokens (scaled) after refill; a never-used bucket is full.
    /// Reserved (throttled) requests make the stored balance "negative":
    /// `a` holds tokens + the reservation offset `burst * SCALE`.
    fn tokens(&self, state: State, now_ms: u64) -> u128 {
        let cap = self.burst as u128 * SCALE;
        if state.b == 0 {
            return cap;
        }
        let elapsed = now_ms.saturating_sub(state.b) as u128;
        let refill = elapsed * self.requests as u128 * SCALE / self.period_ms.max(1) as u128;
        // stored = tokens + cap (so reservations below zero stay unsigned)
        (state.a as u128 + refill).min(2 * cap).saturating_sub(cap)
    }

    fn bucket(
        &self,
        state: State,
        now_ms: u64,
        cost: u64,
        max_delay_ms: u64,
    ) -> (Verdict, Option<State>) {
        let cap = self.burst as u128 * SCALE;
        let rate = self.requests as u128 * SCALE; // per period
        let period = self.period_ms.max(1) as u128;
        let stored = if state.b == 0 {
            2 * cap
        } else {
            let elapsed = now_ms.saturating_sub(state.b) as u128;
            (state.a as u128 + elapsed * rate / period).min(2 * cap)
        };
        let need = cost as u128 * SCALE;
        let ms_for =
            |units: u128| u64::try_from((units * period).div_ceil(rate.max(1))).unwrap_or(u64::MAX);
        if cost > self.burst {
            let v = Verdict {
                retry_after_ms: self.period_ms,
                reset_ms: ms_for((2 * cap).saturating_sub(stored)),
                ..Verdict::default()
            };
            return (v, None);
        }
        // Tokens may go below zero (down to -cap) only by reservation.
        let deficit = (need + cap).saturating_sub(stored);
        let wait = if deficit == 0 { 0 } else { ms_for(deficit) };
        if wait <= max_delay_ms && stored >= need {
            let left = stored - need;
            let v = Verdict {
                allowed: true,
                delay_ms: wait,
                remaining: u64::try_from(left.saturating_sub(cap) / SCALE).unwrap_or(0),
                reset_ms: ms_for((2 * cap).saturating_sub(left)),
                retry_after_ms: 0,
            };
            return (
                v,
                Some(State {
                    a: u64::try_from(left).unwrap_or(0),
                    b: now_ms.max(1),
                }),
            );
        }
        let v = Verdict {
            retry_after_ms: wait,
            reset_ms: ms_for((2 * cap).saturating_sub(stored)),
            ..Verdict::default()
        };
        (v, None)
    }

    fn window(&self, state: State, now_ms: u64, cost: u64) -> (Verdict, Option<State>) {
        let w = self.window_index(now_ms);
        let count = if state.a == w + 1 { state.b } else { 0 };
        let end = (w + 1).saturating_mul(self.period_ms);
        let reset_ms = end.saturating_sub(now_ms);
        if count + cost <= self.requests {
            let v = Verdict {
                allowed: true,
                delay_ms: 0,
                remaining: self.requests - count - cost,
                reset_ms,
                retry_after_ms: 0,
            };
            return (
                v,
                Some(State {
                    a: w + 1,
                    b: count + cost,
                }),
            );
        }
        let v = Verdict {
            remaining: self.requests.saturating_sub(count),
            reset_ms,
            retry_after_ms: reset_ms,
            ..Verdict::default()
        };
        (v, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn lim(alg: Algorithm, requests: u64, period_ms: u64, burst: u64) -> Limit {
        Limit {
            requests,
            period_ms,
            burst,
            algorithm: alg,
        }
    }

    /// Admit `n` requests at `now`, threading the state; count admitted.
    fn run(l: &Limit, s: &mut State, now: u64, n: u64) -> u64 {
        let mut ok = 0;
        for _ in 0..n {
            let (v, next) = l.admit(*s, now, 1, 0);
            if let Some(next) = next {
                *s = next;
            }
            ok += u64::from(v.allowed);
        }
        ok
    }

    #[test]
    fn bucket_and_gcra_admit_burst_then_rate() {
        for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
            let l = lim(alg, 10, 1000, 10);
            let mut s = State::default();
            assert_eq!(run(&l, &mut s, T0, 25), 10, "{alg:?}: burst");
            // 100 ms later exactly one more token
            assert_eq!(run(&l, &mut s, T0 + 100, 5), 1, "{alg:?}: refill");
            // a full period refills to burst, never beyond
            assert_eq!(run(&l, &mut s, T0 + 10_000, 50), 10, "{alg:?}: cap");
        }
    }

    #[test]
    fn burst_smaller_than_rate() {
        for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
            let l = lim(alg, 60, 60_000, 5);
            let mut s = State::default();
            assert_eq!(run(&l, &mut s, T0, 100), 5, "{alg:?}");
            let (v, _) = l.admit(s, T0, 1, 0);
            assert!(!v.allowed);
            assert_eq!(v.retry_after_ms, 1000, "{alg:?}");
            assert_eq!(run(&l, &mut s, T0 + 999, 1), 0, "{alg:?}");
            assert_eq!(run(&l, &mut s, T0 + 1000, 1), 1, "{alg:?}");
        }
    }

    #[test]
    fn remaining_and_reset() {
        for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
            let l = lim(alg, 10, 10_000, 10);
            let (v, s) = l.admit(State::default(), T0, 3, 0);
            assert!(v.allowed);
            assert_eq!(v.remaining, 7, "{alg:?}");
            assert_eq!(v.reset_ms, 3000, "{alg:?}");
            assert!(s.is_some());
        }
        let l = lim(Algorithm::FixedWindow, 10, 60_000, 10);
        let now = 60_000 * 1000 + 15_000;
        let (v, _) = l.admit(State::default(), now, 4, 0);
        assert_eq!((v.remaining, v.reset_ms), (6, 45_000));
    }

    #[test]
    fn costs_consume_more() {
        for alg in [
            Algorithm::TokenBucket,
            Algorithm::Gcra,
            Algorithm::FixedWindow,
        ] {
            let l = lim(alg, 10, 3_600_000, 10);
            let mut s = State::default();
            let mut admitted = 0;
            for _ in 0..10 {
                let (v, next) = l.admit(s, T0, 3, 0);
                if let Some(n) = next {
                    s = n;
                }
                admitted += u64::from(v.allowed);
            }
            assert_eq!(admitted, 3, "{alg:?}");
            // a cost above the burst can never pass
            let (v, next) = l.admit(State::default(), T0, 11, 0);
            assert!(!v.allowed && next.is_none(), "{alg:?}");
        }
    }

    #[test]
    fn fixed_window_is_exact_and_resets() {
        let l = lim(Algorithm::FixedWindow, 5, 1000, 5);
        let start = T0 - T0 % 1000;
        let mut s = State::default();
        assert_eq!(run(&l, &mut s, start, 9), 5);
        assert_eq!(run(&l, &mut s, start + 999, 9), 0);
        let (v, _) = l.admit(s, start + 999, 1, 0);
        assert_eq!(v.retry_after_ms, 1);
        assert_eq!(run(&l, &mut s, start + 1000, 9), 5);
    }

    #[test]
    fn throttle_reserves_then_rejects_past_max_delay() {
        for alg in [Algorithm::TokenBucket, Algorithm::Gcra] {
            // 10/s, burst 2: the 3rd waits 100 ms, the 4th 200 ms...
            let l = lim(alg, 10, 1000, 2);
            let mut s = State::default();
            let mut delays = vec![];
            for _ in 0..6 {
                let (v, next) = l.admit(s, T0, 1, 250);
                if let Some(n) = next {
                    s = n;
                }
                delays.push(v.allowed.then_some(v.delay_ms));
            }
            assert_eq!(
                delays,
                vec![Some(0), Some(0), Some(100), Some(200), None, None],
                "{alg:?}"
            );
            let (v, _) = l.admit(s, T0, 1, 250);
            assert_eq!(v.retry_after_ms, 300, "{alg:?}");
            // after the reserved ones drain, capacity returns
            assert_eq!(run(&l, &mut s, T0 + 400, 2), 2, "{alg:?}");
        }
    }

    #[test]
    fn idle_only_when_full() {
        for alg in [
            Algorithm::TokenBucket,
            Algorithm::Gcra,
            Algorithm::FixedWindow,
        ] {
            let l = lim(alg, 10, 1000, 10);
            assert!(l.idle(State::default(), T0), "{alg:?}");
            let (_, s) = l.admit(State::default(), T0, 1, 0);
            let s = s.unwrap_or_default();
            assert!(!l.idle(s, T0), "{alg:?}");
            assert!(l.idle(s, T0 + 1000), "{alg:?}");
        }
    }

    #[test]
    fn per_day_windows() {
        let l = lim(Algorithm::Gcra, 1000, 86_400_000, 1000);
        let mut s = State::default();
        assert_eq!(run(&l, &mut s, T0, 2000), 1000);
        assert_eq!(run(&l, &mut s, T0 + 86_400, 5), 1);
    }
}
