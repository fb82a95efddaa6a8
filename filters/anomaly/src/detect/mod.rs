//! The signature detectors, one file per family. Each takes a normalised
//! value (protocol: the whole request view) and reports rule hits.

pub mod cmdi;
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
