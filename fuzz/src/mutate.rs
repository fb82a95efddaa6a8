//! A small deterministic mutator for the smoke run (no coverage feedback;
//! `cargo fuzz` does the coverage-guided runs): bit flips, byte insertion
//! and deletion, chunk duplication, splicing of corpus entries and
//! dictionary tokens. Seeded, so a failing smoke input can be reproduced.

/// Largest generated input (the corpus is held to the same size).
pub const MAX_LEN: usize = 4096;

/// xorshift64*: fast, seedable, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// One to four mutations of `base`, drawing splices from `corpus` and tokens
/// from `dict` and `extra`.
pub fn mutate(
    rng: &mut Rng,
    base: &[u8],
    corpus: &[Vec<u8>],
    dict: &[&[u8]],
    extra: &[&[u8]],
) -> Vec<u8> {
    let mut out = base.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let pos = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(pos, rng.next_u64() as u8),
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below(out.len() - i).min(16);
                out.drain(i..(i + n).min(out.len()));
            }
            3 if !out.is_empty() => {
                // Duplicate a chunk (repetition finds quadratic paths).
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(64));
                let chunk: Vec<u8> = out[i..(i + n).min(out.len())].to_vec();
                let times = 1 + rng.below(8);
                for _ in 0..times {
                    out.splice(pos..pos, chunk.iter().copied());
                }
            }
            4 if !corpus.is_empty() => {
                // Splice: our head, another entry's tail.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(other.len() + 1);
                out.truncate(pos);
                out.extend_from_slice(&other[cut..]);
            }
            5 | 6 => {
                let pool = if rng.below(3) == 0 && !extra.is_empty() {
                    extra
                } else {
                    dict
                };
                if !pool.is_empty() {
                    let tok = pool[rng.below(pool.len())];
                    out.splice(pos..pos, tok.iter().copied());
                }
            }
            _ => {
                // Interesting bytes.
                const BYTES: &[u8] = &[0, 0x1f, 0x7f, 0x80, 0xff, b'%', b'/', b'.', b'"', b'\n'];
                out.insert(pos, BYTES[rng.below(BYTES.len())]);
            }
        }
    }
    out.truncate(MAX_LEN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let corpus = vec![b"hello".to_vec(), vec![b'x'; MAX_LEN]];
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for i in 0..2000 {
            let base = &corpus[i % 2];
            let x = mutate(&mut a, base, &corpus, &[b"{"], &[]);
            let y = mutate(&mut b, base, &corpus, &[b"{"], &[]);
            assert_eq!(x, y);
            assert!(x.len() <= MAX_LEN);
        }
    }
}
