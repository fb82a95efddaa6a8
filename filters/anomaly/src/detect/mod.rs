//! The signature detectors, one file per family. Each takes a normalised
//! value (protocol: the whole request view) and reports rule hits.

pub mod cmdi;
pub mod prefilter;
pub mod protocol;
pub mod sqli;
pub mod ssrf;
pub mod traversal;
pub mod xss;
