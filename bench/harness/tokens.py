"""Signing keys, the JWKS both jwt filters trust, and the tokens the load uses.

Keys are generated fresh for every run (RSA 2048 for RS256, P-256 for ES256);
nothing secret is stored in the repository.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.bench.meshward"
AUDIENCE = "api"
SUBJECT = "bench-user"


@dataclass
class Tokens:
    jwks: str
    fixed: dict[str, str]
    rotating: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def _claims(sub: str, jti: str | None = None) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3 * 3600}
    if jti is not None:
        claims["jti"] = jti
    return claims


def mint(out_dir: Path, rotate_count: int) -> Tokens:
    """Generate keys, the JWKS and tokens; write rotating lists to out_dir."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk.update({"kid": "bench-rs", "alg": "RS256", "use": "sig"})
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    ec_jwk.update({"kid": "bench-es", "alg": "ES256", "use": "sig"})
    jwks = json.dumps({"keys": [rsa_jwk, ec_jwk]}, separators=(",", ":"))

    def rs(claims: dict) -> str:
        return jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "bench-rs"})

    def es(claims: dict) -> str:
        return jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "bench-es"})

    good = rs(_claims(SUBJECT))
    head, payload, sig = good.split(".")
    bad_sig = ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
    fixed = {
        "rs256": good,
        "es256": es(_claims(SUBJECT)),
        "bad_sig": bad_sig,
        "rs256_other_sub": rs(_claims("someone-else")),
    }
    tokens = Tokens(jwks=jwks, fixed=fixed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, signer in (("rs256", rs), ("es256", es)):
        lst = [signer(_claims(SUBJECT, jti=f"{name}-{i}")) for i in range(rotate_count)]
        path = out_dir / f"tokens-{name}.txt"
        path.write_text("\n".join(lst) + "\n")
        tokens.rotating[name] = lst
        tokens.files[name] = path
    return tokens
