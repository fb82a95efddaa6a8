//! Unit tests: every alg, every rejection reason, key-import rules.

use serde_json::{json, Value};

use super::testing::{self, *};
use super::*;

fn jwks() -> Jwks {
    Jwks::parse_strict(&testing::jwks_json()).unwrap()
}

fn payload() -> Value {
    json!({"iss": "https://idp.example", "sub": "alice", "exp": 2_000_000_000u64})
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    B64_STRICT.decode(s).unwrap()
}

fn reason_of(token: &str, jwks: &Jwks) -> &'static str {
    match UntrustedToken::parse(token).and_then(|t| verify(&t, jwks)) {
        Ok(()) => "ok",
        Err(e) => e.reason(),
    }
}

fn parse_err(token: &str) -> JoseError {
    UntrustedToken::parse(token).unwrap_err()
}

/// Swap one segment of a compact token.
fn with_segment(token: &str, idx: usize, new: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[idx] = new;
    parts.join(".")
}

fn flip_last_char(seg: &str) -> String {
    // Change a char in the middle so the result stays canonical base64url.
    let mut bytes = seg.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

// ---------- names ----------

#[test]
fn alg_names_round_trip() {
    for alg in Alg::ALL {
        assert_eq!(Alg::from_name(alg.name()), Some(alg));
    }
    assert_eq!(Alg::from_name("rs256"), None);
    assert_eq!(Alg::from_name("none"), None);
    assert_eq!(Alg::EdDsa.name(), "EdDSA");
}

// ---------- every alg ----------

#[test]
fn every_alg_verifies_and_tamper_fails() {
    let jwks = jwks();
    for alg in Alg::ALL {
        let tok = testing::token(alg, &payload());
        let parsed = UntrustedToken::parse(&tok).unwrap();
        assert_eq!(parsed.header.alg, alg);
        assert_eq!(parsed.header.kid.as_deref(), Some(kid_for(alg)));
        assert_eq!(parsed.header.typ.as_deref(), Some("JWT"));
        assert_eq!(parsed.payload["sub"], "alice");
        assert_eq!(verify(&parsed, &jwks), Ok(()), "{alg}");

        // Tampered payload: other claims, same signature.
        let evil = testing::b64(
            json!({"sub": "mallory", "exp": 2_000_000_000u64})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(
            reason_of(&with_segment(&tok, 1, &evil), &jwks),
            "bad_signature",
            "{alg}"
        );

        // Tampered signature.
        let sig = tok.rsplit('.').next().unwrap();
        assert_eq!(
            reason_of(&with_segment(&tok, 2, &flip_last_char(sig)), &jwks),
            "bad_signature",
            "{alg}"
        );
    }
}

#[test]
fn no_kid_tries_every_key() {
    let jwks = jwks();
    for alg in Alg::ALL {
        let tok = token_with_header(alg, &json!({"alg": alg.name()}), &payload());
        assert_eq!(reason_of(&tok, &jwks), "ok", "{alg}");
    }
}

#[test]
fn second_key_with_same_kid_is_tried() {
    // Rotation: two RSA keys share a kid; the second one signed.
    let mut a = testing::jwk(KID_RSA);
    let mut b = testing::jwk(KID_RSA_B);
    a["kid"] = json!("k");
    b["kid"] = json!("k");
    let jwks = Jwks::parse_strict(&json!({"keys": [a, b]}).to_string()).unwrap();
    let header = json!({"alg": "RS256", "kid": "k"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload().to_string().as_bytes())
    );
    let sig = sign_bytes_with(Alg::Rs256, KID_RSA_B, input.as_bytes());
    let tok = format!("{input}.{}", b64(&sig));
    assert_eq!(reason_of(&tok, &jwks), "ok");
}

// ---------- segment structure and base64url ----------

#[test]
fn segment_count() {
    let tok = testing::token(Alg::Hs256, &payload());
    assert_eq!(parse_err("a.b").reason(), "token_malformed");
    assert_eq!(parse_err(&format!("{tok}.x")).reason(), "token_malformed");
    assert_eq!(parse_err("").reason(), "token_malformed");
    // JWE-like five segments.
    assert_eq!(parse_err("a.b.c.d.e").reason(), "token_malformed");
}

#[test]
fn empty_signature_segment() {
    let tok = testing::token(Alg::Hs256, &payload());
    assert_eq!(
        parse_err(&with_segment(&tok, 2, "")),
        JoseError::Malformed("empty signature")
    );
}

#[test]
fn strict_base64url() {
    let tok = testing::token(Alg::Hs256, &payload());
    let parts: Vec<&str> = tok.split('.').collect();
    // Standard alphabet chars are refused.
    let std_sig = parts[2].replace('-', "+").replace('_', "/");
    if std_sig != parts[2] {
        assert_eq!(
            reason_of(&with_segment(&tok, 2, &std_sig), &jwks()),
            "token_malformed"
        );
    }
    assert_eq!(
        parse_err(&with_segment(&tok, 2, "ab+c")).reason(),
        "token_malformed"
    );
    assert_eq!(
        parse_err(&with_segment(&tok, 2, "ab/c")).reason(),
        "token_malformed"
    );
    // Padding refused: HS256 sig is 32 bytes => 43 chars, one '=' of padding.
    assert_eq!(parts[2].len(), 43);
    assert_eq!(
        parse_err(&with_segment(&tok, 2, &format!("{}=", parts[2]))),
        JoseError::Malformed("signature is not valid base64url")
    );
    // Whitespace refused anywhere.
    assert_eq!(
        parse_err(&with_segment(&tok, 1, &format!(" {}", parts[1]))),
        JoseError::Malformed("payload is not valid base64url")
    );
    assert_eq!(
        parse_err(&with_segment(&tok, 0, &format!("{}\n", parts[0]))),
        JoseError::Malformed("header is not valid base64url")
    );
}

#[test]
fn non_canonical_trailing_bits_refused() {
    let tok = testing::token(Alg::Hs256, &payload());
    let sig = tok.rsplit('.').next().unwrap();
    // 43 chars encode 32 bytes; the last char carries 2 spare bits that must be 0.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.find(last).unwrap();
    assert_eq!(pos & 0b11, 0, "canonical encoding");
    let odd = alphabet.as_bytes()[pos | 1] as char;
    let bad = format!("{}{}", &sig[..sig.len() - 1], odd);
    assert_eq!(
        parse_err(&with_segment(&tok, 2, &bad)),
        JoseError::Malformed("signature is not valid base64url")
    );
}

// ---------- JSON shape ----------

#[test]
fn header_and_payload_must_be_objects() {
    let t = |h: &str, p: &str| sign_raw(Alg::Hs256, h, p);
    assert_eq!(
        parse_err(&t("[\"HS256\"]", "{}")),
        JoseError::Malformed("header is not a valid JSON object")
    );
    assert_eq!(
        parse_err(&t(r#"{"alg":"HS256"}"#, "[1,2]")),
        JoseError::Malformed("payload is not a JSON object")
    );
    assert_eq!(
        parse_err(&t(r#"{"alg":"HS256"}"#, "\"str\"")),
        JoseError::Malformed("payload is not a JSON object")
    );
    assert_eq!(
        parse_err(&t(r#"{"alg":"HS256"}"#, "{\"a\":")).reason(),
        "token_malformed"
    );
    assert_eq!(
        parse_err(&t(r#"{"alg":"HS256"} x"#, "{}")).reason(),
        "token_malformed"
    );
    assert_eq!(
        parse_err(&t(r#"{"alg":"HS256","kid":5}"#, "{}")).reason(),
        "token_malformed"
    );
    // Invalid UTF-8 in the header.
    let bad = format!("{}.{}.AAAA", b64(b"{\"alg\":\"HS256\xff\"}"), b64(b"{}"));
    assert_eq!(parse_err(&bad).reason(), "token_malformed");
}

#[test]
fn large_payload_parses() {
    let big: Vec<String> = (0..2000).map(|i| format!("group-{i}")).collect();
    let tok = testing::token(Alg::Hs256, &json!({"groups": big, "exp": 1}));
    let parsed = UntrustedToken::parse(&tok).unwrap();
    assert_eq!(parsed.payload["groups"].as_array().unwrap().len(), 2000);
    assert_eq!(verify(&parsed, &jwks()), Ok(()));
}

// ---------- alg ----------

#[test]
fn alg_required() {
    let tok = sign_raw(Alg::Hs256, r#"{"typ":"JWT"}"#, "{}");
    assert_eq!(parse_err(&tok), JoseError::Malformed("header has no alg"));
    let tok = sign_raw(Alg::Hs256, r#"{"alg":null}"#, "{}");
    assert_eq!(parse_err(&tok).reason(), "token_malformed");
}

#[test]
fn alg_none_any_case_refused() {
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": none}).to_string();
        let tok = format!("{}.{}.", b64(h.as_bytes()), b64(b"{}"));
        // Even with a (bogus) signature segment present.
        let tok2 = format!("{}.{}.AAAA", b64(h.as_bytes()), b64(b"{}"));
        assert_eq!(parse_err(&tok).reason(), "token_malformed"); // empty sig first
        assert_eq!(parse_err(&tok2).reason(), "alg_not_allowed", "{none}");
    }
}

#[test]
fn unknown_alg_refused() {
    for alg in ["RS1", "ES512", "rs256", "HS256 ", "PS256K", ""] {
        let h = json!({"alg": alg}).to_string();
        let tok = format!("{}.{}.AAAA", b64(h.as_bytes()), b64(b"{}"));
        assert_eq!(parse_err(&tok).reason(), "alg_not_allowed", "{alg:?}");
    }
}

// ---------- forbidden header members, crit, duplicates ----------

#[test]
fn key_bearing_header_members_refused() {
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let mut h = json!({"alg": "HS256", "kid": KID_HMAC});
        h[member] = json!("x");
        let tok = token_with_header(Alg::Hs256, &h, &payload());
        assert_eq!(
            parse_err(&tok),
            JoseError::HeaderForbidden(member),
            "{member}"
        );
        assert_eq!(parse_err(&tok).reason(), "header_forbidden");
    }
    // An embedded jwk object is refused too (the classic key-injection attack).
    let h = json!({"alg": "ES256", "jwk": testing::jwk(KID_P256)});
    let tok = token_with_header(Alg::Es256, &h, &payload());
    assert_eq!(parse_err(&tok).reason(), "header_forbidden");
}

#[test]
fn crit_always_refused() {
    for crit in [
        json!(["exp"]),
        json!([]),
        json!("b64"),
        json!(null),
        json!({"a": 1}),
    ] {
        let h = json!({"alg": "HS256", "crit": crit, "exp": 1});
        let tok = token_with_header(Alg::Hs256, &h, &payload());
        assert_eq!(parse_err(&tok), JoseError::CritUnsupported, "{crit}");
    }
}

#[test]
fn duplicate_header_members_refused() {
    let tok = sign_raw(Alg::Hs256, r#"{"alg":"HS256","alg":"HS256"}"#, "{}");
    assert_eq!(
        parse_err(&tok),
        JoseError::Malformed("duplicate header member")
    );
    let tok = sign_raw(Alg::Hs256, r#"{"alg":"HS256","kid":"a","kid":"b"}"#, "{}");
    assert_eq!(
        parse_err(&tok),
        JoseError::Malformed("duplicate header member")
    );
    let tok = sign_raw(Alg::Hs256, r#"{"alg":"HS256","x":1,"x":{"y":2}}"#, "{}");
    assert_eq!(
        parse_err(&tok),
        JoseError::Malformed("duplicate header member")
    );
    // Escaped spelling of the same name is the same member.
    let tok = sign_raw(Alg::Hs256, r#"{"alg":"HS256","al\u0067":"none"}"#, "{}");
    assert_eq!(
        parse_err(&tok),
        JoseError::Malformed("duplicate header member")
    );
    // Escaped but unique names are fine.
    let tok = sign_raw(Alg::Hs256, r#"{"al\u0067":"HS256","kid":"hmac-64"}"#, "{}");
    assert_eq!(reason_of(&tok, &jwks()), "ok");
}

// ---------- key selection ----------

#[test]
fn unknown_kid() {
    let tok = token_with_header(
        Alg::Hs256,
        &json!({"alg": "HS256", "kid": "nope"}),
        &payload(),
    );
    assert_eq!(reason_of(&tok, &jwks()), "kid_not_found");
}

#[test]
fn empty_jwks_is_kid_not_found() {
    let (empty, errs) = Jwks::parse_lenient(r#"{"keys":[]}"#).unwrap();
    assert!(empty.is_empty() && errs.is_empty());
    let tok = token_with_header(Alg::Hs256, &json!({"alg": "HS256"}), &payload());
    assert_eq!(reason_of(&tok, &empty), "kid_not_found");
}

#[test]
fn kid_with_wrong_family_is_key_mismatch() {
    // Token claims kid of the RSA key but alg HS256: RS->HS confusion.
    let jwks = jwks();
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": KID_RSA})
            .to_string()
            .as_bytes()),
        b64(payload().to_string().as_bytes())
    );
    // Sign with the RSA public key bytes as an HMAC secret (the attack).
    let rsa_pub = testing::jwk(KID_RSA)["n"].as_str().unwrap().to_owned();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, rsa_pub.as_bytes());
    let sig = ring::hmac::sign(&key, input.as_bytes());
    let tok = format!("{input}.{}", b64(sig.as_ref()));
    assert_eq!(reason_of(&tok, &jwks), "key_mismatch");
    // Same attack without kid: only the real HMAC key is tried => bad sig.
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256"}"#),
        b64(payload().to_string().as_bytes())
    );
    let sig = ring::hmac::sign(&key, input.as_bytes());
    let tok = format!("{input}.{}", b64(sig.as_ref()));
    assert_eq!(reason_of(&tok, &jwks), "bad_signature");
}

#[test]
fn ec_curve_must_match_alg() {
    // ES384 token pointed at the P-256 key.
    let mut h = json!({"alg": "ES384", "kid": KID_P256});
    let tok = token_with_header(Alg::Es384, &h, &payload());
    assert_eq!(reason_of(&tok, &jwks()), "key_mismatch");
    h["kid"] = json!(KID_P384);
    let tok = token_with_header(Alg::Es384, &h, &payload());
    assert_eq!(reason_of(&tok, &jwks()), "ok");
}

fn single_key_jwks(mut key: Value, extra: Value) -> Jwks {
    for (k, v) in extra.as_object().unwrap() {
        key[k] = v.clone();
    }
    Jwks::parse_strict(&json!({ "keys": [key] }).to_string()).unwrap()
}

#[test]
fn key_alg_must_equal_token_alg() {
    let rs = testing::token(Alg::Rs256, &payload());
    let ps = testing::token(Alg::Ps256, &payload());
    let k = single_key_jwks(testing::jwk(KID_RSA), json!({"alg": "RS256"}));
    assert_eq!(reason_of(&rs, &k), "ok");
    assert_eq!(reason_of(&ps, &k), "key_mismatch");
    // A foreign alg (encryption) makes the key unusable.
    let k = single_key_jwks(testing::jwk(KID_RSA), json!({"alg": "RSA-OAEP"}));
    assert_eq!(reason_of(&rs, &k), "key_mismatch");
}

#[test]
fn key_use_must_be_sig() {
    let tok = testing::token(Alg::EdDsa, &payload());
    let k = single_key_jwks(testing::jwk(KID_ED25519), json!({"use": "enc"}));
    assert_eq!(reason_of(&tok, &k), "key_mismatch");
    let k = single_key_jwks(testing::jwk(KID_ED25519), json!({"use": "sig"}));
    assert_eq!(reason_of(&tok, &k), "ok");
}

#[test]
fn key_ops_must_contain_verify() {
    let tok = testing::token(Alg::Es256, &payload());
    let k = single_key_jwks(
        testing::jwk(KID_P256),
        json!({"key_ops": ["sign", "encrypt"]}),
    );
    assert_eq!(reason_of(&tok, &k), "key_mismatch");
    let k = single_key_jwks(testing::jwk(KID_P256), json!({"key_ops": []}));
    assert_eq!(reason_of(&tok, &k), "key_mismatch");
    let k = single_key_jwks(testing::jwk(KID_P256), json!({"key_ops": ["verify"]}));
    assert_eq!(reason_of(&tok, &k), "ok");
}

#[test]
fn hmac_key_too_short_for_alg_is_key_mismatch() {
    // 32-byte secret: fine for HS256, too short for HS384/HS512.
    let k = Jwks::parse_strict(
        &json!({"keys": [{"kty": "oct", "kid": "s", "k": b64(&[7u8; 32])}]}).to_string(),
    )
    .unwrap();
    for (alg, want) in [
        (ring::hmac::HMAC_SHA256, "ok"),
        (ring::hmac::HMAC_SHA384, "key_mismatch"),
        (ring::hmac::HMAC_SHA512, "key_mismatch"),
    ] {
        let name = if alg == ring::hmac::HMAC_SHA256 {
            "HS256"
        } else if alg == ring::hmac::HMAC_SHA384 {
            "HS384"
        } else {
            "HS512"
        };
        let input = format!(
            "{}.{}",
            b64(json!({"alg": name, "kid": "s"}).to_string().as_bytes()),
            b64(b"{}")
        );
        let sig = ring::hmac::sign(&ring::hmac::Key::new(alg, &[7u8; 32]), input.as_bytes());
        let tok = format!("{input}.{}", b64(sig.as_ref()));
        assert_eq!(reason_of(&tok, &k), want, "{name}");
    }
}

#[test]
fn hmac_wrong_length_tag_fails() {
    let tok = testing::token(Alg::Hs256, &payload());
    let sig = tok.rsplit('.').next().unwrap();
    let short = b64(&unb64(sig)[..31]);
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &short), &jwks()),
        "bad_signature"
    );
}

// ---------- ECDSA signature form ----------

#[test]
fn es256_der_signature_refused() {
    let tok = testing::token(Alg::Es256, &payload());
    let sig = unb64(tok.rsplit('.').next().unwrap());
    assert_eq!(sig.len(), 64);
    // Re-encode r||s as DER SEQUENCE { INTEGER r, INTEGER s }.
    let int = |b: &[u8]| {
        let mut v: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if v.first().is_some_and(|x| x & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let mut body = int(&sig[..32]);
    body.extend(int(&sig[32..]));
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&der)), &jwks()),
        "bad_signature"
    );
}

#[test]
fn ecdsa_wrong_lengths_and_zero_signature_fail() {
    let jwks = jwks();
    let tok = testing::token(Alg::Es256, &payload());
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[0u8; 64])), &jwks),
        "bad_signature"
    );
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[1u8; 63])), &jwks),
        "bad_signature"
    );
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[1u8; 65])), &jwks),
        "bad_signature"
    );
    let tok = testing::token(Alg::Es384, &payload());
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[0u8; 96])), &jwks),
        "bad_signature"
    );
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[1u8; 64])), &jwks),
        "bad_signature"
    );
    let tok = testing::token(Alg::EdDsa, &payload());
    assert_eq!(
        reason_of(&with_segment(&tok, 2, &b64(&[0u8; 64])), &jwks),
        "bad_signature"
    );
}

// ---------- JWKS import ----------

fn strict_err(keys: Value) -> String {
    Jwks::parse_strict(&json!({ "keys": keys }).to_string())
        .unwrap_err()
        .to_string()
}

#[test]
fn jwks_document_errors() {
    assert!(Jwks::parse_strict("not json").is_err());
    assert!(Jwks::parse_lenient("not json").is_err());
    assert_eq!(
        Jwks::parse_lenient("[]").unwrap_err().to_string(),
        "JWKS must be a JSON object"
    );
    assert_eq!(
        Jwks::parse_lenient("{}").unwrap_err().to_string(),
        "keys: missing"
    );
    assert_eq!(
        Jwks::parse_lenient(r#"{"keys":{}}"#)
            .unwrap_err()
            .to_string(),
        "keys: must be an array"
    );
    assert_eq!(
        Jwks::parse_strict(r#"{"keys":[]}"#)
            .unwrap_err()
            .to_string(),
        "keys: must contain at least one key"
    );
}

#[test]
fn rsa_1024_refused() {
    let small: Value = serde_json::from_str(RSA_1024_JWK).unwrap();
    let err = strict_err(json!([testing::jwk(KID_RSA), small.clone()]));
    assert_eq!(
        err,
        "keys[1].n: RSA modulus is 1024 bits; at least 2048 are required"
    );
    let (jwks, skipped) =
        Jwks::parse_lenient(&json!({"keys": [testing::jwk(KID_RSA), small]}).to_string()).unwrap();
    assert_eq!(jwks.len(), 1);
    assert!(jwks.has_kid(KID_RSA) && !jwks.has_kid("rsa-1024"));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].path, "keys[1].n");
}

#[test]
fn rsa_leading_zero_in_modulus_is_tolerated() {
    let mut k = testing::jwk(KID_RSA);
    let n = unb64(k["n"].as_str().unwrap());
    let mut padded = vec![0u8];
    padded.extend(n);
    k["n"] = json!(b64(&padded));
    let jwks = Jwks::parse_strict(&json!({ "keys": [k] }).to_string()).unwrap();
    assert_eq!(
        reason_of(&testing::token(Alg::Rs256, &payload()), &jwks),
        "ok"
    );
}

#[test]
fn rsa_bad_exponent_refused() {
    let mut k = testing::jwk(KID_RSA);
    k["e"] = json!(b64(&[2]));
    assert!(strict_err(json!([k.clone()])).starts_with("keys[0].e:"));
    k["e"] = json!(b64(&[1, 0, 0, 0, 0, 1]));
    assert!(strict_err(json!([k])).starts_with("keys[0].e:"));
}

#[test]
fn private_members_refused() {
    for (kid, member) in [
        (KID_RSA, "d"),
        (KID_RSA, "p"),
        (KID_RSA, "qi"),
        (KID_P256, "d"),
        (KID_ED25519, "d"),
    ] {
        let mut k = testing::jwk(kid);
        k[member] = json!("AAAA");
        let err = strict_err(json!([k.clone()]));
        assert_eq!(
            err,
            format!("keys[0].{member}: private key material must not be configured")
        );
        let (jwks, skipped) =
            Jwks::parse_lenient(&json!({ "keys": [k, testing::jwk(KID_HMAC)] }).to_string())
                .unwrap();
        assert_eq!((jwks.len(), skipped.len()), (1, 1));
    }
}

#[test]
fn unknown_kty_and_crv_refused() {
    assert_eq!(
        strict_err(json!([{"kty": "XYZ", "kid": "a"}])),
        "keys[0].kty: unsupported key type"
    );
    let mut ec = testing::jwk(KID_P256);
    ec["crv"] = json!("secp256k1");
    assert!(strict_err(json!([ec.clone()])).starts_with("keys[0].crv:"));
    let mut okp = testing::jwk(KID_ED25519);
    okp["crv"] = json!("X25519");
    assert!(strict_err(json!([okp.clone()])).starts_with("keys[0].crv:"));
    let (jwks, skipped) = Jwks::parse_lenient(
        &json!({ "keys": [ec, okp, {"kty": "XYZ"}, testing::jwk(KID_P384)] }).to_string(),
    )
    .unwrap();
    assert_eq!((jwks.len(), skipped.len()), (1, 3));
    assert_eq!(skipped[2].to_string(), "keys[2].kty: unsupported key type");
}

#[test]
fn ec_coordinate_lengths_checked() {
    let mut k = testing::jwk(KID_P256);
    k["x"] = json!(b64(&[1u8; 31]));
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].x: must be 32 bytes for P-256"
    );
    let mut k = testing::jwk(KID_P384);
    k["y"] = json!(b64(&[1u8; 32]));
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].y: must be 48 bytes for P-384"
    );
}

#[test]
fn ec_point_off_curve_never_verifies() {
    let mut k = testing::jwk(KID_P256);
    k["y"] = json!(b64(&[1u8; 32]));
    let jwks = Jwks::parse_strict(&json!({ "keys": [k] }).to_string()).unwrap();
    assert_eq!(
        reason_of(&testing::token(Alg::Es256, &payload()), &jwks),
        "bad_signature"
    );
}

#[test]
fn oct_key_length_rules() {
    assert_eq!(
        strict_err(json!([{"kty": "oct", "k": b64(&[1u8; 31])}])),
        "keys[0].k: HMAC key is 31 bytes; at least 32 are required"
    );
    assert_eq!(
        strict_err(json!([{"kty": "oct", "alg": "HS512", "k": b64(&[1u8; 48])}])),
        "keys[0].k: HMAC key is 48 bytes; at least 64 are required"
    );
    assert!(Jwks::parse_strict(
        &json!({"keys": [{"kty": "oct", "alg": "HS384", "k": b64(&[1u8; 48])}]}).to_string()
    )
    .is_ok());
    let (jwks, skipped) =
        Jwks::parse_lenient(&json!({"keys": [{"kty": "oct", "k": b64(&[1u8; 16])}]}).to_string())
            .unwrap();
    assert_eq!((jwks.len(), skipped.len()), (0, 1));
}

#[test]
fn key_alg_must_fit_kty() {
    let mut k = testing::jwk(KID_RSA);
    k["alg"] = json!("HS256");
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].alg: HS256 does not fit a RSA key"
    );
    let mut k = testing::jwk(KID_P256);
    k["alg"] = json!("ES384");
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].alg: ES384 does not fit a EC/P-256 key"
    );
    let mut k = testing::jwk(KID_HMAC);
    k["alg"] = json!("RS256");
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].alg: RS256 does not fit a oct key"
    );
}

#[test]
fn member_type_errors_name_the_member() {
    assert_eq!(
        strict_err(json!([{"kty": 1}])),
        "keys[0].kty: must be a string"
    );
    assert_eq!(strict_err(json!(["x"])), "keys[0]: must be a JSON object");
    let mut k = testing::jwk(KID_RSA);
    k["kid"] = json!(5);
    assert_eq!(strict_err(json!([k])), "keys[0].kid: must be a string");
    let mut k = testing::jwk(KID_RSA);
    k["key_ops"] = json!("verify");
    assert_eq!(
        strict_err(json!([k])),
        "keys[0].key_ops: must be an array of strings"
    );
    let mut k = testing::jwk(KID_RSA);
    k["n"] = json!("a+b");
    assert_eq!(strict_err(json!([k])), "keys[0].n: not valid base64url");
    let mut k = testing::jwk(KID_RSA);
    k.as_object_mut().unwrap().remove("e");
    assert_eq!(strict_err(json!([k])), "keys[0].e: missing");
}

#[test]
fn has_kid_and_len() {
    let j = jwks();
    assert_eq!(j.len(), 6);
    assert!(!j.is_empty());
    assert!(j.has_kid(KID_P384));
    assert!(!j.has_kid("other"));
}

// ---------- errors never echo token content ----------

#[test]
fn error_display_has_no_token_content() {
    let h = json!({"alg": "SECRET-ALG", "kid": "SECRET-KID"}).to_string();
    let tok = format!("{}.{}.AAAA", b64(h.as_bytes()), b64(b"{}"));
    let e = parse_err(&tok);
    assert!(!e.to_string().contains("SECRET"));
    let tok = token_with_header(
        Alg::Hs256,
        &json!({"alg": "HS256", "kid": "SECRET-KID"}),
        &payload(),
    );
    let e = UntrustedToken::parse(&tok)
        .and_then(|t| verify(&t, &jwks()))
        .unwrap_err();
    assert!(!e.to_string().contains("SECRET"));
    assert!(!format!("{:?}", UntrustedToken::parse(&tok).unwrap())
        .contains(tok.rsplit('.').next().unwrap()));
}

#[test]
fn garbage_never_panics() {
    let jwks = jwks();
    let samples = [
        "",
        ".",
        "..",
        "...",
        "a..b",
        ".b.c",
        "\u{0}.\u{0}.\u{0}",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJ.eyJ.eyJ",
    ];
    for s in samples {
        let _ = UntrustedToken::parse(s).and_then(|t| verify(&t, &jwks));
    }
    // Deep nesting: ignored header members are skipped without recursion;
    // the payload hits serde_json's recursion limit. Neither overflows the stack.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let h = format!("{{\"alg\":\"HS256\",\"x\":{deep}}}");
    let tok = format!("{}.{}.AAAA", b64(h.as_bytes()), b64(b"{}"));
    assert_eq!(UntrustedToken::parse(&tok).unwrap().header.alg, Alg::Hs256);
    let p = format!("{{\"x\":{deep}}}");
    let tok = format!("{}.{}.AAAA", b64(br#"{"alg":"HS256"}"#), b64(p.as_bytes()));
    assert_eq!(parse_err(&tok).reason(), "token_malformed");
}

#[test]
fn claims_nest_at_most_64_levels() {
    // `[` x n: the payload object is level 1, the outer array level 2.
    let nested = |n: usize| format!(r#"{{"sub":"a","deep":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    let tok = |body: String| {
        format!(
            "{}.{}.AAAA",
            b64(br#"{"alg":"HS256"}"#),
            b64(body.as_bytes())
        )
    };
    assert!(UntrustedToken::parse(&tok(nested(63))).is_ok());
    assert_eq!(
        parse_err(&tok(nested(64))),
        JoseError::Malformed("claims nest deeper than 64 levels")
    );
    assert!(matches!(
        parse_err(&tok(nested(10_000))),
        JoseError::Malformed(_)
    ));
    let objects = format!(r#"{{"o":{}1{}}}"#, r#"{"a":"#.repeat(70), "}".repeat(70));
    assert!(matches!(parse_err(&tok(objects)), JoseError::Malformed(_)));
}
