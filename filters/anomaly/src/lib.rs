//! meshward anomaly filter: the signature core. Normalisation, detectors,
//! the request view and CRS-style scoring, all pure Rust with no host calls.
//! The proxy-wasm glue, behaviour detectors and actions come later (issue 11).

pub mod config;
pub mod detect;
pub mod engine;
pub mod normalize;
pub mod request;
pub mod score;

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod detect_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod normalize_tests;
