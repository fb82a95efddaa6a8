//! Stable reason codes: they appear in problem+json bodies, audit lines and
//! metric names, so renaming one is a breaking change.

use crate::claims::ClaimError;
use crate::jose::JoseError;

macro_rules! reasons {
    ($($variant:ident => $code:literal, $detail:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $($variant),* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            pub fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code),* }
            }

            /// Short human text for `error_description`; never includes token data.
            pub fn detail(self) -> &'static str {
                match self { $(Reason::$variant => $detail),* }
            }

            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    TokenMissing => "token_missing", "Jwt is missing";
    TokenMalformed => "token_malformed", "Jwt is not a well-formed JWS compact token";
    AlgNotAllowed => "alg_not_allowed", "Jwt algorithm is not allowed";
    HeaderForbidden => "header_forbidden", "Jwt header carries a key reference that is never trusted";
    CritUnsupported => "crit_unsupported", "Jwt header lists a critical extension that is not supported";
    KidNotFound => "kid_not_found", "Jwks has no key with the Jwt kid";
    KeyMismatch => "key_mismatch", "Jwks has no key usable with the Jwt algorithm";
    BadSignature => "bad_signature", "Jwt verification fails";
    ExpMissing => "exp_missing", "Jwt has no exp claim";
    TokenExpired => "token_expired", "Jwt is expired";
    TokenNotYetValid => "token_not_yet_valid", "Jwt not yet valid";
    IatInFuture => "iat_in_future", "Jwt issued in the future";
    LifetimeExceeded => "lifetime_exceeded", "Jwt lifetime exceeds the allowed maximum";
    IssuerMismatch => "issuer_mismatch", "Jwt issuer is not configured";
    AudienceMismatch => "audience_mismatch", "Audiences in Jwt are not allowed";
    ClaimMismatch => "claim_mismatch", "Jwt claim does not match the required value";
    ClaimInvalid => "claim_invalid", "Jwt claim has an invalid type";
    InsufficientScope => "insufficient_scope", "Jwt lacks a required scope";
    JwksUnavailable => "jwks_unavailable", "Jwks could not be fetched";
}

// Typed conversions from the pure cores' errors. The matches are exhaustive on
// purpose: a new error variant does not compile until it is given its reason.

impl From<JoseError> for Reason {
    fn from(e: JoseError) -> Reason {
        match e {
            JoseError::Malformed(_) => Reason::TokenMalformed,
            JoseError::AlgNotAllowed(_) => Reason::AlgNotAllowed,
            JoseError::HeaderForbidden(_) => Reason::HeaderForbidden,
            JoseError::CritUnsupported => Reason::CritUnsupported,
            JoseError::KidNotFound => Reason::KidNotFound,
            JoseError::KeyMismatch => Reason::KeyMismatch,
            JoseError::BadSignature => Reason::BadSignature,
        }
    }
}

impl From<&ClaimError> for Reason {
    fn from(e: &ClaimError) -> Reason {
        match e {
            ClaimError::ExpMissing => Reason::ExpMissing,
            ClaimError::Expired => Reason::TokenExpired,
            ClaimError::NotYetValid => Reason::TokenNotYetValid,
            ClaimError::IatInFuture => Reason::IatInFuture,
            ClaimError::LifetimeExceeded => Reason::LifetimeExceeded,
            ClaimError::IssuerMismatch => Reason::IssuerMismatch,
            ClaimError::AudienceMismatch => Reason::AudienceMismatch,
            ClaimError::ClaimMismatch(_) => Reason::ClaimMismatch,
            ClaimError::ClaimInvalid(_) => Reason::ClaimInvalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            assert!(seen.insert(r.code()));
            assert!(!r.detail().contains('"'));
        }
    }

    /// Regression: errors used to reach `Reason` as strings, with an unknown
    /// string silently becoming `TokenMalformed`. Every error now maps by type.
    #[test]
    fn every_core_error_has_its_own_reason() {
        let jose = [
            (JoseError::Malformed("x"), Reason::TokenMalformed),
            (JoseError::AlgNotAllowed("x"), Reason::AlgNotAllowed),
            (JoseError::HeaderForbidden("jku"), Reason::HeaderForbidden),
            (JoseError::CritUnsupported, Reason::CritUnsupported),
            (JoseError::KidNotFound, Reason::KidNotFound),
            (JoseError::KeyMismatch, Reason::KeyMismatch),
            (JoseError::BadSignature, Reason::BadSignature),
        ];
        for (e, r) in jose {
            assert_eq!(Reason::from(e), r);
            assert_eq!(e.reason(), r.code());
        }
        let claims = [
            (ClaimError::ExpMissing, Reason::ExpMissing),
            (ClaimError::Expired, Reason::TokenExpired),
            (ClaimError::NotYetValid, Reason::TokenNotYetValid),
            (ClaimError::IatInFuture, Reason::IatInFuture),
            (ClaimError::LifetimeExceeded, Reason::LifetimeExceeded),
            (ClaimError::IssuerMismatch, Reason::IssuerMismatch),
            (ClaimError::AudienceMismatch, Reason::AudienceMismatch),
            (ClaimError::ClaimMismatch("x".into()), Reason::ClaimMismatch),
            (ClaimError::ClaimInvalid("exp"), Reason::ClaimInvalid),
        ];
        for (e, r) in &claims {
            assert_eq!(Reason::from(e), *r);
            assert_eq!(e.reason(), r.code());
        }
        // one reason per error, and only the filter's own reasons are left
        let mut mapped: Vec<Reason> = jose.iter().map(|(_, r)| *r).collect();
        mapped.extend(claims.iter().map(|(_, r)| *r));
        let rest: Vec<Reason> = Reason::ALL
            .iter()
            .copied()
            .filter(|r| !mapped.contains(r))
            .collect();
        assert_eq!(
            rest,
            [
                Reason::TokenMissing,
                Reason::InsufficientScope,
                Reason::JwksUnavailable
            ]
        );
        assert_eq!(mapped.len() + rest.len(), Reason::ALL.len());
    }
}
