//! The signature detectors, one file per family. Each takes a normalised
//! value (protocol: the whole request view) and reports rule hits.

pub mod cmdi;
pub mod java;
pub mod php;
pub mod prefilter;
pub mod protocol;
pub mod sqli;
pub mod ssrf;
pub mod traversal;
mod words;
pub mod xss;

/// Where byte `index` of a decoded view came from: `walk` calls its
/// argument with (offset in the value, byte) for each byte of the view.
fn offset_of(index: usize, walk: impl FnOnce(&mut dyn FnMut(usize, u8))) -> usize {
    let mut n = 0;
    let mut found = 0;
    walk(&mut |at, _| {
        if n == index {
            found = at;
        }
        n += 1;
    });
    found
}

/// The first place `needle` starts in `hay`. An empty needle is at 0
/// (`windows(0)` would panic, which aborts the VM).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    // A byte scan for the first byte, then a compare: a compare at every
    // position (`windows`) measured about 1 ns a byte natively.
    let mut from = 0;
    while let Some(p) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + p;
        if hay.get(at + 1..)?.starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
#[test]
fn find_agrees_with_a_compare_at_every_position() {
    let hay = b"aab abab ba a";
    for needle in [
        &b""[..],
        b"a",
        b"ab",
        b"aba",
        b"ba a",
        b"a ",
        b"x",
        b"aab abab ba ax",
    ] {
        let slow = if needle.is_empty() {
            Some(0)
        } else {
            hay.windows(needle.len()).position(|w| w == needle)
        };
        assert_eq!(find(hay, needle), slow, "{needle:?}");
    }
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

pub(crate) fn hit(
    rule: &'static str,
    severity: crate::score::Severity,
    offset: usize,
) -> crate::score::Hit {
    crate::score::Hit {
        rule,
        severity,
        offset,
    }
}
