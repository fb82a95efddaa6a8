//! A small seeded 64-bit hash for identity keys and sketch indices. Not
//! cryptographic; the seed (chosen by the glue per VM) keeps an outsider
//! from aiming keys at one slot set.

const K: u64 = 0x9e37_79b9_7f4a_7c15;

pub struct Hasher64 {
    h: u64,
}

impl Hasher64 {
    pub fn new(seed: u64) -> Self {
        Hasher64 { h: seed ^ K }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length byte keeps "ab" + "c" apart from "a" + "bc".
        self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56) ^ 0x80);
    }

    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(29);
    }

    /// splitmix64's finaliser, so every output bit depends on every input bit.
    pub fn finish(&self) -> u64 {
        let mut z = self.h.wrapping_add(K);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn once(seed: u64, bytes: &[u8]) -> u64 {
        let mut h = Hasher64::new(seed);
        h.write(bytes);
        h.finish()
    }
}
