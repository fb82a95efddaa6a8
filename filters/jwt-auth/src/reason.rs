//! Stable reason codes: they appear in problem+json bodies, audit lines and
//! metric names, so renaming one is a breaking change.

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

impl Reason {
    /// Map a core error code (jose/claims) to a reason; unknown codes are
    /// treated as malformed rather than trusted.
    pub fn from_core(code: &str) -> Reason {
        Reason::from_code(code).unwrap_or(Reason::TokenMalformed)
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
        assert_eq!(Reason::from_core("nope"), Reason::TokenMalformed);
    }
}
