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
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
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
