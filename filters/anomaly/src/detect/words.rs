//! A fixed set of ASCII words matched in any case, built at compile time.
//! The prefilter asks it about every word of every value, so a lookup is
//! one hash over the word and, nearly always, one probe: a binary search
//! over a few hundred words costs about nine `memcmp` calls, which V8 runs
//! as byte loops.

/// Open addressing with linear probing; `N` is a power of two at least
/// twice the number of words, so a miss ends at an empty slot quickly.
pub struct WordSet<const N: usize> {
    slots: [&'static [u8]; N],
}

impl<const N: usize> WordSet<N> {
    /// `words` must be lowercase and distinct (checked at compile time).
    pub const fn new(words: &[&'static [u8]]) -> WordSet<N> {
        assert!(N.is_power_of_two() && words.len() * 2 <= N);
        let mut slots: [&'static [u8]; N] = [b""; N];
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            assert!(!w.is_empty());
            let mut k = 0;
            while k < w.len() {
                assert!(!w[k].is_ascii_uppercase());
                k += 1;
            }
            let mut at = hash(w) as usize & (N - 1);
            while !slots[at].is_empty() {
                assert!(!same(slots[at], w), "duplicate word");
                at = (at + 1) & (N - 1);
            }
            slots[at] = w;
            i += 1;
        }
        WordSet { slots }
    }

    pub fn contains(&self, word: &[u8]) -> bool {
        if word.is_empty() {
            return false;
        }
        let mut at = hash(word) as usize & (N - 1);
        loop {
            let slot = self.slots[at];
            if slot.is_empty() {
                return false;
            }
            if slot.eq_ignore_ascii_case(word) {
                return true;
            }
            at = (at + 1) & (N - 1);
        }
    }
}

/// FNV-1a over the lowercased bytes.
const fn hash(w: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < w.len() {
        h ^= w[i].to_ascii_lowercase() as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &[&[u8]] = &[b"or", b"and", b"union", b"select", b"x"];
    static SET: WordSet<16> = WordSet::new(WORDS);

    #[test]
    fn finds_each_word_in_any_case_and_nothing_else() {
        for w in WORDS {
            assert!(SET.contains(w));
            assert!(SET.contains(&w.to_ascii_uppercase()));
        }
        for w in [
            &b""[..],
            b"o",
            b"ord",
            b"unio",
            b"unions",
            b"selecT1",
            b"y",
            b"xx",
        ] {
            assert!(!SET.contains(w), "{:?}", String::from_utf8_lossy(w));
        }
    }

    #[test]
    fn a_full_table_still_ends_every_miss() {
        // Eight words in sixteen slots: every probe of a miss must stop.
        let words: &[&[u8]] = &[b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"];
        let set: WordSet<16> = WordSet::new(words);
        for w in words {
            assert!(set.contains(w));
        }
        for c in b'i'..=b'z' {
            assert!(!set.contains(&[c]));
        }
    }
}
