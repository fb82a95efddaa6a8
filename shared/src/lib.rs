//! Pieces every meshward filter uses: the host seam, config errors,
//! standard deny responses, the identity contract, metrics and audit lines.

pub mod abi;
pub mod audit;
pub mod callbacks;
pub mod config;
pub mod duration;
pub mod facts;
pub mod foreign;
pub mod host;
pub mod identity;
pub mod memo;
pub mod metrics;
pub mod path_template;
pub mod response;

#[cfg(any(test, feature = "fake-host"))]
pub mod fake;
