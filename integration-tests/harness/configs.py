"""Reusable jwt-auth filter configs (JSON dicts, as the filter reads them)."""

from __future__ import annotations

import json

from . import tokens as tk

LOCAL_ISS = "https://issuer.meshward.test"
LOCAL_AUD = "meshward-api"


def local_provider(keys, **kw) -> dict:
    """Provider `local`: inline JWKS with the trusted RSA, EC and Ed25519 keys of `keys`."""
    p = {
        "issuer": LOCAL_ISS,
        "audiences": [LOCAL_AUD],
        "local_jwks": {"inline_string": json.dumps(tk.jwks(keys.rsa, keys.ec, keys.ed))},
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [
            {"header_name": "x-jwt-sub", "claim_name": "sub"},
            {"header_name": "x-jwt-org", "claim_name": "org.id"},
            {"header_name": "x-jwt-groups", "claim_name": "groups"},
        ],
        "max_lifetime": "86400s",
    }
    p.update(kw)
    return p


def local_jwt_config(keys, provider: dict | None = None, **top) -> dict:
    """The standard local-JWKS config used by the local and attack tests."""
    cfg = {
        "providers": {"local": provider or local_provider(keys)},
        "rules": [
            {"match": {"prefix": "/open"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/admin"}, "requires": {"provider_name": "local"},
             "required_scopes": ["admin"]},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "local"}},
        ],
    }
    cfg.update(top)
    return cfg
