"""Keys, JWKS and JWTs for tests: real signatures via PyJWT/cryptography, plus raw builders
for deliberately broken or hostile tokens."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def b64url(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@dataclass
class Key:
    kid: str
    alg: str
    private: Any
    extra: dict = field(default_factory=dict)

    @property
    def public(self):
        return self.private.public_key()

    def _algo(self):
        kty = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}[self.alg[:2]]
        return {"RSA": jwt.algorithms.RSAAlgorithm, "EC": jwt.algorithms.ECAlgorithm,
                "OKP": jwt.algorithms.OKPAlgorithm}[kty]

    def jwk_public(self) -> dict:
        j = json.loads(self._algo().to_jwk(self.public))
        j.update({"kid": self.kid, "alg": self.alg, "use": "sig"}, **self.extra)
        return j

    def jwk_private(self) -> dict:
        j = json.loads(self._algo().to_jwk(self.private))
        # PyJWT marks private JWKs key_ops=["sign"]; oidc-provider would republish that on the
        # public key, which then (correctly) is not usable to verify.
        j.pop("key_ops", None)
        j.update({"kid": self.kid, "alg": self.alg, "use": "sig"}, **self.extra)
        return j

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_der(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, signing_input: bytes) -> bytes:
        """Sign JOSE-style (ECDSA signatures as raw r||s)."""
        a = self.alg
        if a.startswith("RS"):
            return self.private.sign(signing_input, padding.PKCS1v15(), _hash(a))
        if a.startswith("PS"):
            h = _hash(a)
            return self.private.sign(signing_input, padding.PSS(padding.MGF1(h), h.digest_size), h)
        if a.startswith("ES"):
            from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

            der = self.sign_der(signing_input)
            r, s = decode_dss_signature(der)
            n = (self.private.curve.key_size + 7) // 8
            return r.to_bytes(n, "big") + s.to_bytes(n, "big")
        if a == "EdDSA":
            return self.private.sign(signing_input)
        raise ValueError(a)

    def sign_der(self, signing_input: bytes) -> bytes:
        """ECDSA signature in ASN.1 DER (wrong for JOSE; used by attack tests)."""
        return self.private.sign(signing_input, ec.ECDSA(_hash(self.alg)))


def _hash(alg: str):
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]


def rsa_key(kid: str, alg: str = "RS256", bits: int = 2048) -> Key:
    return Key(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str, alg: str = "ES256") -> Key:
    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
    return Key(kid, alg, ec.generate_private_key(curve))


def ed_key(kid: str) -> Key:
    return Key(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def jwks(*keys: Key, private: bool = False) -> dict:
    return {"keys": [k.jwk_private() if private else k.jwk_public() for k in keys]}


def claims(iss: str, aud: str | list | None, sub: str = "alice", ttl: int = 300, **extra) -> dict:
    now = int(time.time())
    c: dict[str, Any] = {"iss": iss, "sub": sub, "iat": now, "exp": now + ttl}
    if aud is not None:
        c["aud"] = aud
    c.update(extra)
    return c


def mint(key: Key, payload: dict, headers: dict | None = None, alg: str | None = None) -> str:
    """A correctly signed JWS compact token (header fields in `headers` are added verbatim)."""
    h = {"alg": alg or key.alg, "typ": "JWT", "kid": key.kid}
    h.update(headers or {})
    return raw(h, payload, key=key)


def raw(header: dict | str, payload: dict | str, signature: bytes | str | None = None,
        key: Key | None = None) -> str:
    """Assemble a compact token. Header/payload may be dicts (JSON-encoded) or pre-encoded
    segment strings. With `key`, signs the signing input; else uses `signature` as given
    (bytes are base64url-encoded, a str is used verbatim)."""
    hs = header if isinstance(header, str) else b64url_json(header)
    ps = payload if isinstance(payload, str) else b64url_json(payload)
    signing_input = f"{hs}.{ps}".encode()
    if key is not None:
        sig = b64url(key.sign(signing_input))
    elif isinstance(signature, bytes):
        sig = b64url(signature)
    else:
        sig = signature or ""
    return f"{hs}.{ps}.{sig}"


def hs_sign(secret: bytes, header: dict, payload: dict) -> str:
    """HMAC-signed token with an arbitrary secret (the RS->HS key-confusion attack)."""
    import hmac

    hs, ps = b64url_json(header), b64url_json(payload)
    digest = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[header["alg"]]
    mac = hmac.new(secret, f"{hs}.{ps}".encode(), digest).digest()
    return f"{hs}.{ps}.{b64url(mac)}"


def decode_unverified(token: str) -> tuple[dict, dict]:
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))
