"""Hostile and broken tokens: each must get 401 with the contract's reason and must never
reach the upstream (the echo upstream records every request it receives)."""

from __future__ import annotations

import base64
import time

import pytest

from harness import tokens as tk
from harness.checks import assert_denied

# name -> (builder(stack) -> token, acceptable reason codes)
ATTACKS: dict = {}


def attack(name: str, *reasons: str):
    def deco(fn):
        ATTACKS[name] = (fn, set(reasons))
        return fn
    return deco


def _claims(s, **kw):
    c = tk.claims(s.iss, s.aud)
    c.update(kw)
    return c


def _sig_input(header: dict, payload: dict) -> bytes:
    return f"{tk.b64url_json(header)}.{tk.b64url_json(payload)}".encode()


# --- alg none -----------------------------------------------------------------
for _alg in ("none", "None", "NONE"):
    for _with_sig in (False, True):
        def _mk(s, alg=_alg, with_sig=_with_sig):
            h = {"alg": alg, "typ": "JWT"}
            p = _claims(s)
            sig = s.keys.rsa.sign(_sig_input(h, p)) if with_sig else b""
            return tk.raw(h, p, signature=sig)
        # an empty signature segment may be reported as malformed before the alg is read
        _reasons = ("alg_not_allowed",) if _with_sig else ("alg_not_allowed", "token_malformed")
        attack(f"alg-{_alg}-{'sig' if _with_sig else 'nosig'}", *_reasons)(_mk)


@attack("alg-none-with-trusted-kid", "alg_not_allowed", "token_malformed")
def _(s):
    return tk.raw({"alg": "none", "kid": "rsa-1"}, _claims(s), signature="")


@attack("stripped-signature", "bad_signature", "token_malformed")
def _(s):
    t = tk.mint(s.keys.rsa, _claims(s))
    return t.rsplit(".", 1)[0] + "."


@attack("stripped-signature-no-dot", "token_malformed")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s)).rsplit(".", 1)[0]


# --- RS -> HS key confusion ------------------------------------------------------
@attack("rs-hs-confusion-pem", "alg_not_allowed", "key_mismatch", "bad_signature")
def _(s):
    return tk.hs_sign(s.keys.rsa.public_pem(), {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, _claims(s))


@attack("rs-hs-confusion-der", "alg_not_allowed", "key_mismatch", "bad_signature")
def _(s):
    return tk.hs_sign(s.keys.rsa.public_der(), {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, _claims(s))


@attack("rs-hs-confusion-no-kid", "alg_not_allowed", "key_mismatch", "bad_signature", "kid_not_found")
def _(s):
    return tk.hs_sign(s.keys.rsa.public_pem(), {"alg": "HS256", "typ": "JWT"}, _claims(s))


@attack("alg-swap-rs-kid-signed-es", "key_mismatch", "alg_not_allowed", "bad_signature")
def _(s):
    # ES256 signature presented under the RSA key's kid
    return tk.mint(s.keys.ec, _claims(s), headers={"kid": "rsa-1"})


# --- key-carrying headers ----------------------------------------------------------
@attack("embedded-jwk", "header_forbidden")
def _(s):
    k = s.keys.attacker_rsa
    return tk.mint(k, _claims(s), headers={"kid": "rsa-1", "jwk": k.jwk_public()})


@attack("embedded-jwk-no-kid", "header_forbidden")
def _(s):
    k = s.keys.attacker_rsa
    h = {"alg": "RS256", "typ": "JWT", "jwk": k.jwk_public()}
    return tk.raw(h, _claims(s), key=k)


@attack("jku", "header_forbidden")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "rsa-1", "jku": "http://127.0.0.1:1/jwks"})


@attack("x5u", "header_forbidden")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "rsa-1", "x5u": "http://127.0.0.1:1/cert.pem"})


@attack("x5c", "header_forbidden")
def _(s):
    der = base64.b64encode(s.keys.attacker_rsa.public_der()).decode()
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "rsa-1", "x5c": [der]})


@attack("trusted-key-with-jku", "header_forbidden")
def _(s):
    # even correctly signed by a trusted key, a jku header is refused
    return tk.mint(s.keys.rsa, _claims(s), headers={"jku": "http://127.0.0.1:1/jwks"})


# --- kid injection --------------------------------------------------------------------
@attack("kid-path-traversal", "kid_not_found")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "../../dev/null"})


@attack("kid-path-traversal-hs-empty-secret", "kid_not_found", "alg_not_allowed")
def _(s):
    return tk.hs_sign(b"", {"alg": "HS256", "typ": "JWT", "kid": "../../dev/null"}, _claims(s))


@attack("kid-sql-injection", "kid_not_found")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "' OR 1=1--"})


@attack("kid-10kib", "kid_not_found", "token_malformed")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": "k" * 10240})


@attack("kid-not-string", "token_malformed", "kid_not_found")
def _(s):
    return tk.mint(s.keys.attacker_rsa, _claims(s), headers={"kid": {"$ne": None}})


# --- ECDSA signature forms ---------------------------------------------------------------
@attack("es256-zero-signature", "bad_signature")
def _(s):
    return tk.raw({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}, _claims(s), signature=b"\x00" * 64)


@attack("es256-der-signature", "bad_signature", "token_malformed")
def _(s):
    h = {"alg": "ES256", "typ": "JWT", "kid": "ec-1"}
    p = _claims(s)
    return tk.raw(h, p, signature=s.keys.ec.sign_der(_sig_input(h, p)))


# --- signatures that do not verify ---------------------------------------------------------
@attack("tampered-payload", "bad_signature")
def _(s):
    h, p, sig = tk.mint(s.keys.rsa, _claims(s, sub="alice")).split(".")
    return f"{h}.{tk.b64url_json(_claims(s, sub='admin'))}.{sig}"


@attack("impostor-key-same-kid", "bad_signature")
def _(s):
    return tk.mint(s.keys.impostor_rsa, _claims(s))


@attack("unknown-kid", "kid_not_found")
def _(s):
    return tk.mint(s.keys.attacker_ec, _claims(s))


# --- crit ----------------------------------------------------------------------------------
@attack("crit-exp", "crit_unsupported")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s), headers={"crit": ["exp"]})


@attack("crit-foo", "crit_unsupported")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s), headers={"crit": ["foo"], "foo": "bar"})


# --- claims --------------------------------------------------------------------------------
@attack("expired", "token_expired")
def _(s):
    now = int(time.time())
    return tk.mint(s.keys.rsa, _claims(s, iat=now - 7200, exp=now - 3600))


@attack("nbf-in-future", "token_not_yet_valid")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s, nbf=int(time.time()) + 3600))


@attack("wrong-iss", "issuer_mismatch")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s, iss="https://evil.example"))


@attack("wrong-aud", "audience_mismatch")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s, aud=["someone-else"]))


@attack("iat-in-future", "iat_in_future")
def _(s):
    now = int(time.time())
    return tk.mint(s.keys.rsa, _claims(s, iat=now + 3600, exp=now + 7200))


@attack("lifetime-exceeded", "lifetime_exceeded")
def _(s):
    now = int(time.time())  # max_lifetime is 86400s in the local config
    return tk.mint(s.keys.rsa, _claims(s, iat=now, exp=now + 3 * 86400))


@attack("no-exp", "exp_missing")
def _(s):
    c = _claims(s)
    del c["exp"]
    return tk.mint(s.keys.rsa, c)


# --- malformed -----------------------------------------------------------------------------
@attack("two-segments", "token_malformed")
def _(s):
    return f"{tk.b64url_json({'alg': 'RS256', 'kid': 'rsa-1'})}.{tk.b64url_json(_claims(s))}"


@attack("four-segments", "token_malformed")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s)) + ".AAAA"


@attack("base64-padding", "token_malformed")
def _(s):
    h, p, sig = tk.mint(s.keys.rsa, _claims(s)).split(".")
    return f"{h}==.{p}.{sig}"


@attack("base64-plus", "token_malformed", "bad_signature")
def _(s):
    h = {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}
    hs = base64.b64encode(tk.b64url_decode(tk.b64url_json(h)) + b"  \xfb").decode().rstrip("=")
    if "+" not in hs:
        hs = hs[:-1] + "+"
    return f"{hs}.{tk.b64url_json(_claims(s))}.{tk.b64url(b'x' * 256)}"


@attack("non-json-header", "token_malformed")
def _(s):
    return f"{tk.b64url('not json')}.{tk.b64url_json(_claims(s))}.{tk.b64url(b'x' * 32)}"


@attack("non-json-payload", "token_malformed")
def _(s):
    h = {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}
    return tk.raw(h, tk.b64url("not json"), key=s.keys.rsa)


@attack("empty-segments", "token_malformed")
def _(s):
    return ".."


@attack("64kib-token", "token_malformed")
def _(s):
    return tk.mint(s.keys.rsa, _claims(s, pad="p" * 65536))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_token_refused(local_stack, name):
    s = local_stack
    build, reasons = ATTACKS[name]
    tok = build(s)
    s.tokens.append(tok)
    path = f"/api/attack/{name}"
    r = s.envoy.request(path, tok)
    assert_denied(r, 401, reasons)
    assert not [x for x in s.echo.snapshot() if x["path"].startswith(path)], "attack reached upstream"


def test_empty_bearer_refused(local_stack):
    s = local_stack
    r = s.envoy.request("/api/attack/empty-bearer", headers={"authorization": "Bearer "})
    assert_denied(r, 401, {"token_missing", "token_malformed"})


def test_no_attack_reached_upstream(local_stack):
    leaked = [x["path"] for x in local_stack.echo.snapshot() if x["path"].startswith("/api/attack/")]
    assert leaked == []


def test_zz_envoy_healthy_after_attacks(local_stack):
    # the stack still serves a valid token after all of the above
    r = local_stack.envoy.request("/api/after-attacks", local_stack.token())
    assert r.status_code == 200, r.text
    assert local_stack.envoy.health_problems() == []
