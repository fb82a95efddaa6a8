//! Who checks RS256/384/512 and ES256/384 signatures: Envoy's
//! `verify_signature` (BoringSSL, native) or `ring` inside the VM. Through
//! the host a fresh RS256 token costs about a tenth of ring's CPU under V8
//! (docs/jwt-auth.md, "Signature backend"). PS*, EdDSA and HS* stay with ring.

use meshward_shared::config::ConfigError;
use meshward_shared::foreign::{self, Hash, Probe};
use meshward_shared::host::Host;
use serde::Deserialize;

use crate::jose::HostVerifier;

/// The `signature_backend` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureBackend {
    /// The host when it has `verify_signature`, else ring.
    #[default]
    Auto,
    /// The host; a config is refused where it lacks `verify_signature`.
    Host,
    /// ring only.
    Ring,
}

/// What configure decided, with the reason worth logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub use_host: bool,
    pub note: String,
    /// The probe got an answer no host should give: log at warn.
    pub warn: bool,
}

/// Probe the host once (at configure time: the answer holds for the VM's
/// life) and pick the backend. `Err` refuses the config.
pub fn select<H: Host + ?Sized>(host: &H, want: SignatureBackend) -> Result<Selected, ConfigError> {
    if want == SignatureBackend::Ring {
        return Ok(Selected {
            use_host: false,
            note: "signatures: ring (signature_backend: ring)".into(),
            warn: false,
        });
    }
    match (foreign::probe_verify_signature(host), want) {
        (Probe::Present, _) => Ok(Selected {
            use_host: true,
            note: "signatures: host verify_signature for RS*/ES*, ring for the rest".into(),
            warn: false,
        }),
        (Probe::Absent, SignatureBackend::Auto) => Ok(Selected {
            use_host: false,
            note: "signatures: ring (the host has no verify_signature)".into(),
            warn: false,
        }),
        (Probe::Unexpected(why), SignatureBackend::Auto) => Ok(Selected {
            use_host: false,
            note: format!("signatures: ring (verify_signature probe: {why})"),
            warn: true,
        }),
        (Probe::Absent, _) => Err(ConfigError::new(
            "signature_backend",
            "`host` needs the host's verify_signature foreign function, and this host has none",
        )),
        (Probe::Unexpected(why), _) => Err(ConfigError::new(
            "signature_backend",
            format!("`host`: the verify_signature probe failed: {why}"),
        )),
    }
}

/// The host's `verify_signature` behind the JOSE core's seam.
pub struct HostCrypto<'a, H: Host + ?Sized>(pub &'a H);

impl<H: Host + ?Sized> HostVerifier for HostCrypto<'_, H> {
    fn verify(&self, hash: Hash, spki: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
        foreign::verify_signature(self.0, hash, spki, signature, text).ok()
    }
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
