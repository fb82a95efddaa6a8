//! The per-process counter table in proxy-wasm shared data.
//!
//! Shared data (ABI 0.2.1) has no delete and no TTL, so the key space is a
//! fixed table of `max_keys` slots named `mwrl:<index>`, written once at
//! configure time. A key hashes to a home slot and probes up to [`PROBES`]
//! slots. Each slot stores the owning key itself, so two keys never share
//! a counter. A slot may be taken over by another key only when its limiter
//! state is idle (a full bucket or an expired window), which is the same as
//! a fresh one: no active client is ever evicted. When all probed slots are
//! held by active keys, the caller gets [`SlotError::Full`] and applies
//! `on_key_space_full` (deny by default), counted in a metric.
//!
//! Every update is a read + compare-and-swap write; a lost race re-reads and
//! retries, so concurrent workers never lose an update. After [`MAX_RETRIES`]
//! lost races, or a failed write, the caller gets an error and nothing is
//! counted; the engine then denies the request (fail closed).

use meshward_shared::host::{CasOutcome, Host};

use crate::limiter::State;

/// Slots probed per key (linear probing from the home slot).
pub const PROBES: u32 = 8;
/// CAS attempts before giving up (counted as contention).
pub const MAX_RETRIES: u32 = 32;
/// Keys longer than this are stored by their fingerprint.
pub const MAX_KEY_BYTES: usize = 256;

const HEADER: usize = 8 + 2 + 1 + 5 * 8;

/// One slot's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub fingerprint: u64,
    /// Index of the rule that owns the key (to judge idleness).
    pub rule: u16,
    /// Hybrid: the slot is queued for the next sync.
    pub dirty: bool,
    pub state: State,
    /// Hybrid bookkeeping: unsynced, known global usage, in flight.
    pub unsynced: u64,
    pub known: u64,
    pub inflight: u64,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// Every probed slot belongs to an active key.
    Full,
    /// CAS lost [`MAX_RETRIES`] times in a row.
    Contention,
    /// `set_shared_data` failed.
    WriteFailed,
}

/// FNV-1a 64; never 0 (0 marks an empty slot).
pub fn fingerprint(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// The key as stored: itself, or for very long keys `rule SEP key_hash=<SHA-256>`
/// (plus `SEP tier=<tier>`, which decides the key's limit). SHA-256, not the
/// FNV fingerprint: a client who controls the key must not be able to make
/// it share another key's counter.
pub fn stored_key(rule: &str, key: &str) -> String {
    use std::fmt::Write;
    if key.len() <= MAX_KEY_BYTES {
        return key.to_string();
    }
    let sep = crate::keys::SEP;
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = String::with_capacity(rule.len() + 80);
    out.push_str(rule);
    out.push(sep);
    out.push_str("key_hash=");
    for b in digest.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    let tier = crate::keys::entries(key)
        .1
        .into_iter()
        .rfind(|(k, _)| *k == "tier");
    if let Some((_, t)) = tier {
        out.push(sep);
        out.push_str("tier=");
        out.push_str(t);
    }
    out
}

pub fn slot_name(index: u32) -> String {
    format!("mwrl:{index}")
}

impl Slot {
    pub fn is_empty(&self) -> bool {
        self.fingerprint == 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.key.len());
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.extend_from_slice(&self.rule.to_le_bytes());
        out.push(u8::from(self.dirty));
        for v in [
            self.state.a,
            self.state.b,
            self.unsynced,
            self.known,
            self.inflight,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(self.key.as_bytes());
        out
    }

    /// Anything shorter than a header (e.g. the configure-time placeholder) is empty.
    pub fn decode(bytes: &[u8]) -> Slot {
        if bytes.len() < HEADER {
            return Slot::default();
        }
        let u64_at = |i: usize| {
            bytes
                .get(i..i + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let rule = bytes
            .get(8..10)
            .and_then(|s| <[u8; 2]>::try_from(s).ok())
            .map_or(0, u16::from_le_bytes);
        Slot {
            fingerprint: u64_at(0),
            rule,
            dirty: bytes.get(10) == Some(&1),
            state: State {
                a: u64_at(11),
                b: u64_at(19),
            },
            unsynced: u64_at(27),
            known: u64_at(35),
            inflight: u64_at(43),
            key: String::from_utf8_lossy(bytes.get(HEADER..).unwrap_or_default()).into_owned(),
        }
    }
}

/// Write the placeholder for every slot that does not exist yet, so later
/// writes always carry a CAS token (a first write without one could race).
/// Runs in every worker's `on_configure`; existing slots are left alone. The
/// first worker to finish leaves a marker, so the others (and reloads with
/// the same table size) pay one read instead of one per slot: at
/// `max_keys: 1000000` the walk costs seconds.
pub fn init<H: Host + ?Sized>(host: &H, cap: u32) -> Result<(), String> {
    let marker = format!("mwrl:ready:{cap}");
    if host.shared_data(&marker).0.is_some() {
        return Ok(());
    }
    for i in 0..cap {
        let name = slot_name(i);
        if host.shared_data(&name).0.is_none() {
            host.set_shared_data(&name, &[0], None)
                .map_err(|e| e.to_string())?;
        }
    }
    // Only after every slot exists: a worker that sees the marker serves at once.
    host.set_shared_data(&marker, &[1], None)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Run `f` on the slot that holds `key` (or a fresh slot claimed for it) and
/// store the result with CAS. `f` returns its answer and whether to write.
/// `idle(slot)` says whether another key's slot may be taken over.
pub fn update<H, T>(
    host: &H,
    cap: u32,
    key: &str,
    rule: u16,
    idle: &dyn Fn(&Slot) -> bool,
    mut f: impl FnMut(&mut Slot) -> (T, bool),
) -> Result<(T, u32), SlotError>
where
    H: Host + ?Sized,
{
    let fp = fingerprint(key);
    let cap = cap.max(1);
    let home = (fp % u64::from(cap)) as u32;
    for _ in 0..MAX_RETRIES {
        let mut found = None;
        let mut free = None;
        for p in 0..PROBES.min(cap) {
            let idx = (home + p) % cap;
            let (bytes, cas) = host.shared_data(&slot_name(idx));
            let slot = Slot::decode(bytes.as_deref().unwrap_or_default());
            if slot.fingerprint == fp && slot.key == key {
                found = Some((idx, slot, cas));
                break;
            }
            let empty = slot.is_empty();
            if free.is_none() && (empty || idle(&slot)) {
                free = Some((idx, cas));
            }
            if empty {
                // Keys are placed at the first free slot and slots never
                // become empty again, so the key cannot be further on.
                break;
            }
        }
        let (idx, mut slot, cas) = match (found, free) {
            (Some(f), _) => f,
            (None, Some((idx, cas))) => {
                let fresh = Slot {
                    fingerprint: fp,
                    rule,
                    key: key.to_string(),
                    ..Slot::default()
                };
                (idx, fresh, cas)
            }
            (None, None) => return Err(SlotError::Full),
        };
        slot.rule = rule;
        let (answer, write) = f(&mut slot);
        if !write {
            return Ok((answer, idx));
        }
        match host.set_shared_data(&slot_name(idx), &slot.encode(), cas) {
            Ok(CasOutcome::Written) => return Ok((answer, idx)),
            Ok(CasOutcome::Conflict) => continue,
            Err(_) => return Err(SlotError::WriteFailed),
        }
    }
    Err(SlotError::Contention)
}

/// CAS-update the slot at `index` if it still holds `key`.
pub fn update_at<H: Host + ?Sized>(
    host: &H,
    index: u32,
    key_fp: u64,
    mut f: impl FnMut(&mut Slot) -> bool,
) -> Option<Slot> {
    let name = slot_name(index);
    for _ in 0..MAX_RETRIES {
        let (bytes, cas) = host.shared_data(&name);
        let mut slot = Slot::decode(bytes.as_deref().unwrap_or_default());
        if slot.fingerprint != key_fp {
            return None;
        }
        if !f(&mut slot) {
            return Some(slot);
        }
        match host.set_shared_data(&name, &slot.encode(), cas) {
            Ok(CasOutcome::Written) => return Some(slot),
            Ok(CasOutcome::Conflict) => continue,
            Err(_) => return None,
        }
    }
    None
}

const DIRTY: &str = "mwrl:dirty";
const LEASE: &str = "mwrl:lease";

/// Queue a slot for the next hybrid sync (the slot's `dirty` flag dedupes).
pub fn push_dirty<H: Host + ?Sized>(host: &H, index: u32) {
    for _ in 0..MAX_RETRIES {
        let (bytes, cas) = host.shared_data(DIRTY);
        let mut list = bytes.unwrap_or_default();
        list.extend_from_slice(&index.to_le_bytes());
        if let Ok(CasOutcome::Written) = host.set_shared_data(DIRTY, &list, cas) {
            return;
        }
    }
}

/// Take (and clear) the queue of slots with unsynced usage.
pub fn take_dirty<H: Host + ?Sized>(host: &H) -> Vec<u32> {
    for _ in 0..MAX_RETRIES {
        let (bytes, cas) = host.shared_data(DIRTY);
        let list = bytes.unwrap_or_default();
        if list.is_empty() {
            return Vec::new();
        }
        if let Ok(CasOutcome::Written) = host.set_shared_data(DIRTY, &[], cas) {
            return list
                .chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                .map(u32::from_le_bytes)
                .collect();
        }
    }
    Vec::new()
}

/// One worker per interval wins the sync lease (CAS on the due time).
pub fn try_lease<H: Host + ?Sized>(host: &H, now_ms: u64, interval_ms: u64) -> bool {
    let (bytes, cas) = host.shared_data(LEASE);
    let due = bytes
        .as_deref()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    if now_ms < due {
        return false;
    }
    let next = (now_ms + interval_ms).to_le_bytes();
    matches!(
        host.set_shared_data(LEASE, &next, cas),
        Ok(CasOutcome::Written)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshward_shared::fake::FakeHost;

    fn bump(host: &FakeHost, cap: u32, key: &str) -> Result<(u64, u32), SlotError> {
        update(host, cap, key, 0, &|s: &Slot| s.state.a == 0, |s| {
            s.state.a += 1;
            (s.state.a, true)
        })
    }

    #[test]
    fn slots_round_trip() {
        let s = Slot {
            fingerprint: 9,
            rule: 3,
            dirty: true,
            state: State { a: 1, b: 2 },
            unsynced: 4,
            known: 5,
            inflight: 6,
            key: "k\u{1f}sub=a".into(),
        };
        assert_eq!(Slot::decode(&s.encode()), s);
        assert!(Slot::decode(&[0]).is_empty());
    }

    #[test]
    fn keys_get_their_own_counters() {
        let host = FakeHost::default();
        init(&host, 16).unwrap();
        assert_eq!(bump(&host, 16, "a").unwrap().0, 1);
        assert_eq!(bump(&host, 16, "a").unwrap().0, 2);
        assert_eq!(bump(&host, 16, "b").unwrap().0, 1);
        assert_eq!(bump(&host, 16, "a").unwrap().0, 3);
    }

    #[test]
    fn full_table_refuses_instead_of_evicting() {
        let host = FakeHost::default();
        init(&host, 4).unwrap();
        for k in ["a", "b", "c", "d"] {
            bump(&host, 4, k).unwrap();
        }
        // every slot is active (a != 0): a new key is refused, old ones keep counting
        assert_eq!(bump(&host, 4, "e"), Err(SlotError::Full));
        assert_eq!(bump(&host, 4, "a").unwrap().0, 2);
    }

    #[test]
    fn idle_slots_are_reused() {
        let host = FakeHost::default();
        init(&host, 2).unwrap();
        bump(&host, 2, "a").unwrap();
        bump(&host, 2, "b").unwrap();
        // everything idle now
        let r = update(&host, 2, "c", 0, &|_| true, |s| (s.key.clone(), true)).unwrap();
        assert_eq!(r.0, "c");
    }

    #[test]
    fn dirty_queue_and_lease() {
        let host = FakeHost::default();
        push_dirty(&host, 3);
        push_dirty(&host, 7);
        assert_eq!(take_dirty(&host), vec![3, 7]);
        assert!(take_dirty(&host).is_empty());
        assert!(try_lease(&host, 1000, 200));
        assert!(!try_lease(&host, 1100, 200));
        assert!(try_lease(&host, 1200, 200));
    }

    #[test]
    fn long_keys_are_stored_by_sha256() {
        let long = "x".repeat(1000);
        let k = stored_key("r", &long);
        // SHA-256("x" * 1000)
        assert_eq!(
            k,
            "r\u{1f}key_hash=44f8354494a5ba03ba1792a8d3e9c534c47a9181980fde7a3f44b06ef2ae7c7f"
        );
        assert_eq!(stored_key("r", "short"), "short");
        // the tier survives hashing: it picks the limit at sync and idle time
        let tiered = format!("r\u{1f}sub={}\u{1f}tier=gold", "u".repeat(300));
        let k = stored_key("r", &tiered);
        assert!(k.ends_with("\u{1f}tier=gold") && k.len() < 100, "{k}");
        assert_ne!(
            stored_key("r", &tiered),
            stored_key("r", &tiered.replace("gold", "free"))
        );
    }

    /// The stored key of a long key is its SHA-256, not the FNV fingerprints
    /// (which a client can collide on purpose to share another key's counter).
    #[test]
    fn long_keys_are_not_identified_by_fnv() {
        let a = format!("r\u{1f}h={}a", "p".repeat(300));
        let b = format!("r\u{1f}h={}b", "p".repeat(300));
        assert_ne!(stored_key("r", &a), stored_key("r", &b));
        assert!(!stored_key("r", &a).contains(&format!("{:016x}", fingerprint(&a))));
    }

    #[test]
    fn lost_races_and_write_errors_are_errors_not_writes() {
        let host = FakeHost::default();
        init(&host, 4).unwrap();
        *host.cas_conflicts.borrow_mut() = MAX_RETRIES;
        assert_eq!(bump(&host, 4, "a"), Err(SlotError::Contention));
        // one lost race fewer than the budget still counts
        *host.cas_conflicts.borrow_mut() = MAX_RETRIES - 1;
        assert_eq!(bump(&host, 4, "a").unwrap().0, 1);
        *host.fail_shared_writes.borrow_mut() = true;
        assert_eq!(bump(&host, 4, "a"), Err(SlotError::WriteFailed));
        *host.fail_shared_writes.borrow_mut() = false;
        assert_eq!(bump(&host, 4, "a").unwrap().0, 2);
    }
}
