//! Bounded per-worker cache of verified tokens, keyed by the whole token
//! string (so there is no hash-collision risk). Entries are never served at
//! or past the token's `exp`, nor after the provider's key set changed (a
//! key dropped from the JWKS must stop its tokens at once); when full,
//! expired entries go first, then the oldest insertion.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::verify::Verified;

/// Hashes a token by its length and last 16 bytes, the end of its signature.
/// SipHash over a whole RS256 token (about 700 bytes) on every request is
/// wasted work under V8. Lookups still compare whole tokens, and only verified
/// tokens are stored, so crafted collisions cannot fill a bucket.
#[derive(Debug, Default)]
pub struct TailHasher(u64);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(16)..];
        let mut h = self.0 ^ (bytes.len() as u64);
        for chunk in tail.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        // fold the high bits down: hashbrown takes its control bits from the top
        self.0 ^ (self.0 >> 29)
    }
}

#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    /// The verification and the key-set generation that made it.
    entries: HashMap<Rc<str>, (Rc<Verified>, u64), BuildHasherDefault<TailHasher>>,
    order: VecDeque<Rc<str>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: HashMap::with_capacity_and_hasher(capacity.min(1024), Default::default()),
            order: VecDeque::with_capacity(capacity.min(1024)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `generation`: the provider's current key set ([`crate::keys::KeyState::generation`]).
    pub fn get(&mut self, token: &str, now: u64, generation: u64) -> Option<Rc<Verified>> {
        let (hit, made_by) = self.entries.get(token)?;
        if !hit.usable_at(now) {
            self.entries.remove(token);
            return None;
        }
        // Another key set verified it: the caller verifies again and the
        // insert overwrites this entry in place (one queue slot per token).
        (*made_by == generation).then(|| hit.clone())
    }

    pub fn insert(&mut self, token: &str, verified: Rc<Verified>, now: u64, generation: u64) {
        if self.capacity == 0 || !verified.usable_at(now) {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let key: Rc<str> = Rc::from(token);
        if self
            .entries
            .insert(key.clone(), (verified, generation))
            .is_none()
        {
            self.order.push_back(key);
            // Entries dropped on lookup leave their slot; a cache that never
            // fills would otherwise never drop those slots.
            if self.order.len() > 2 * self.capacity {
                let entries = &self.entries;
                self.order.retain(|k| entries.contains_key(k));
            }
        }
    }

    fn make_room(&mut self, now: u64) {
        self.entries.retain(|_, (v, _)| v.usable_at(now));
        // Drop queue slots whose entries are gone, then the oldest live ones.
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshward_shared::identity::Identity;

    fn verified(exp: Option<u64>) -> Rc<Verified> {
        Rc::new(Verified {
            provider: 0,
            exp,
            identity: std::rc::Rc::new(Identity::default()),
            payload_segment: String::new(),
            identity_json: Vec::new(),
        })
    }

    #[test]
    fn tokens_that_share_a_tail_are_still_told_apart() {
        let tail = "x".repeat(40);
        let (a, b) = (format!("aaa.{tail}"), format!("bbb.{tail}"));
        let hash = |t: &str| {
            let mut h = TailHasher::default();
            std::hash::Hash::hash(t, &mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b), "same length and tail: same hash");
        assert_ne!(hash(&a), hash(&format!("aaa.{}y", "x".repeat(39))));
        assert_ne!(hash(&a), hash(&format!("aa.{tail}")), "length counts");
        let mut c = TokenCache::new(10);
        let mut only_a = (*verified(Some(100))).clone();
        only_a.provider = 7;
        c.insert(&a, Rc::new(only_a), 50, 0);
        assert_eq!(c.get(&a, 60, 0).map(|v| v.provider), Some(7));
        assert!(c.get(&b, 60, 0).is_none(), "equality compares whole tokens");
    }

    #[test]
    fn never_served_at_or_past_exp() {
        let mut c = TokenCache::new(10);
        c.insert("a", verified(Some(100)), 50, 0);
        assert!(c.get("a", 99, 0).is_some());
        assert!(c.get("a", 100, 0).is_none());
        assert!(c.is_empty(), "expired entry is dropped on lookup");
        c.insert("b", verified(Some(10)), 50, 0);
        assert!(c.is_empty(), "already-expired entries are not inserted");
    }

    #[test]
    fn bounded_with_fifo_eviction() {
        let mut c = TokenCache::new(3);
        for (i, t) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            c.insert(t, verified(Some(1000 + i as u64)), 0, 0);
            assert!(c.len() <= 3);
        }
        assert!(c.get("a", 0, 0).is_none());
        assert!(c.get("b", 0, 0).is_none());
        assert!(c.get("e", 0, 0).is_some());
        assert!(c.order.len() <= 3);
    }

    #[test]
    fn expired_entries_evicted_before_live_ones() {
        let mut c = TokenCache::new(2);
        c.insert("old-live", verified(Some(1000)), 0, 0);
        c.insert("soon", verified(Some(10)), 0, 0);
        c.insert("new", verified(Some(1000)), 20, 0);
        assert!(
            c.get("old-live", 20, 0).is_some(),
            "live entry kept, expired one evicted"
        );
        assert!(c.get("new", 20, 0).is_some());
    }

    #[test]
    fn a_new_key_set_reverifies_in_place() {
        let mut c = TokenCache::new(4);
        c.insert("a", verified(Some(1000)), 0, 1);
        assert!(c.get("a", 1, 2).is_none(), "verified by another key set");
        c.insert("a", verified(Some(1000)), 1, 2);
        assert!(c.get("a", 1, 2).is_some());
        assert_eq!((c.len(), c.order.len()), (1, 1), "one slot per token");
    }

    #[test]
    fn slots_of_entries_dropped_on_lookup_do_not_pile_up() {
        let mut c = TokenCache::new(4);
        for i in 0..100u64 {
            let t = format!("t{i}");
            c.insert(&t, verified(Some(10 + i)), i, 0);
            assert!(c.get(&t, 10 + i, 0).is_none(), "expired");
            assert!(c.order.len() <= 2 * 4 + 1, "{}", c.order.len());
        }
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = TokenCache::new(0);
        c.insert("a", verified(None), 0, 0);
        assert!(c.get("a", 0, 0).is_none());
    }

    #[test]
    fn tokens_without_exp_are_cached() {
        let mut c = TokenCache::new(1);
        c.insert("a", verified(None), 0, 0);
        assert!(c.get("a", u64::MAX - 1, 0).is_some());
    }
}
