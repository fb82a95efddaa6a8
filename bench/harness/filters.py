"""Builders: one function per HTTP filter a configuration can list.

Each builder takes a context (paths, JWKS) plus the keyword arguments given in
`configs.py` and returns the Envoy `http_filters` entry as a dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import tokens as tok

PROVIDER = "bench"


@dataclass(frozen=True)
class Ctx:
    dist: Path
    jwks: str
    # A configuration that sends bodies routes to this port (an upstream Envoy) instead of a
    # direct_response: a direct response answers at the request headers, before any filter
    # that lets the headers go on to read the body has seen it.
    upstream_port: int | None = None


def _file(ctx: Ctx, default: str, wasm: str | None) -> Path:
    """dist/<default>, or `wasm` (a path relative to the repository root) for a design variant."""
    return (ctx.dist.parent / wasm) if wasm else (ctx.dist / default)


def _wasm(name: str, root_id: str, wasm_file: Path, configuration: str, vm_id: str | None = None) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": root_id,
                "vm_config": {
                    "vm_id": vm_id or name.replace(".", "_"),
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm_file)}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
            },
        },
    }


def noop_wasm(ctx: Ctx, probe: list | None = None) -> dict:
    """The no-op filter; with `probe`, it makes those host calls on every request (bench/noop-filter)."""
    return _wasm("meshward.noop", "noop", ctx.dist / "noop.wasm", json.dumps({"probe": probe or []}))


def jwt_auth_wasm(ctx: Ctx, cache_size: int, wasm: str | None = None, vm_id: str | None = None,
                  signature_backend: str | None = None) -> dict:
    cfg = _jwt_auth_cfg(ctx, cache_size, signature_backend)
    return _wasm("meshward.jwt_auth", "jwt_auth", _file(ctx, "jwt-auth.wasm", wasm), json.dumps(cfg), vm_id)


def _jwt_auth_cfg(ctx: Ctx, cache_size: int, signature_backend: str | None = None) -> dict:
    cfg = {
        "providers": {
            PROVIDER: {
                "issuer": tok.ISSUER,
                "audiences": [tok.AUDIENCE],
                "local_jwks": {"inline_string": ctx.jwks},
                "jwt_cache_config": {"jwt_cache_size": cache_size},
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}}],
    }
    if signature_backend:
        cfg["signature_backend"] = signature_backend
    return cfg


def jwt_authn(ctx: Ctx, cache_size: int) -> dict:
    provider = {
        "issuer": tok.ISSUER,
        "audiences": [tok.AUDIENCE],
        "local_jwks": {"inline_string": ctx.jwks},
        "payload_in_metadata": "jwt_payload",
    }
    if cache_size > 0:
        provider["jwt_cache_config"] = {"jwt_cache_size": cache_size}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {PROVIDER: provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}}],
        },
    }


def rbac(ctx: Ctx, subject: str) -> dict:
    """Allow only the given JWT subject (read from jwt_authn's metadata)."""
    principal = {
        "metadata": {
            "filter": "envoy.filters.http.jwt_authn",
            "path": [{"key": "jwt_payload"}, {"key": "sub"}],
            "value": {"string_match": {"exact": subject}},
        }
    }
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "ALLOW",
                "policies": {"bench-subject": {"permissions": [{"any": True}], "principals": [principal]}},
            },
        },
    }


def local_ratelimit(ctx: Ctx) -> dict:
    """Enabled and enforced, with a bucket far larger than any bench can drain."""
    big = 1_000_000_000
    pct = {"numerator": 100, "denominator": "HUNDRED"}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "bench_rl",
            "token_bucket": {"max_tokens": big, "tokens_per_fill": big, "fill_interval": "1s"},
            "filter_enabled": {"runtime_key": "bench_rl_enabled", "default_value": pct},
            "filter_enforced": {"runtime_key": "bench_rl_enforced", "default_value": pct},
        },
    }


def authz_wasm(ctx: Ctx, subject: str, identity: str = "meshward", wasm: str | None = None,
               vm_id: str | None = None, decision_state: bool | None = None) -> dict:
    """meshward authz with the policy of `rbac` above: allow one JWT subject, deny the rest (403).

    identity "meshward": the subject comes from jwt-auth's filter state (the meshward chain);
    identity "jwt_authn": from Envoy jwt_authn's dynamic metadata, exactly where `rbac` reads it
    (envoy-configs/authz.yaml and native-rbac.yaml are the same pair)."""
    cfg = _authz_cfg(subject, identity, decision_state)
    return _wasm("meshward.authz", "authz", _file(ctx, "authz.wasm", wasm), json.dumps(cfg), vm_id)


def _authz_cfg(subject: str, identity: str = "meshward", decision_state: bool | None = None) -> dict:
    cfg: dict = {
        "policies": [{
            "name": "bench-subject", "action": "ALLOW",
            "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": [subject]}]}],
        }],
    }
    if decision_state is not None:
        cfg["decision_state"] = decision_state
    if identity == "jwt_authn":
        cfg["identity"] = {"meshward": False, "jwt_authn": {"payload_in_metadata": "jwt_payload"}}
    elif identity != "meshward":
        raise ValueError(f"identity {identity!r}")
    return cfg


def rate_limit_wasm(ctx: Ctx, wasm: str | None = None, vm_id: str | None = None,
                    admission: str | None = None) -> dict:
    """meshward rate-limit, local mode, the equivalent of `local_ratelimit` above: one bucket for
    all requests (a constant key, Envoy's generic_key), far larger than any bench can drain, and
    no rate-limit response headers (local_ratelimit adds none by default). `admission`:
    "per_request" or "lease" (absent: the filter's default)."""
    cfg = _rate_limit_cfg(admission)
    return _wasm("meshward.rate_limit", "rate_limit", _file(ctx, "rate-limit.wasm", wasm), json.dumps(cfg), vm_id)


def _rate_limit_cfg(admission: str | None = None) -> dict:
    cfg: dict = {
        "mode": "local",
        "response_headers": "none",
        "rules": [{
            "name": "bench-global", "key": [{"literal": "all"}],
            "limit": {"requests": 1_000_000_000, "per": "second", "algorithm": "token_bucket"},
        }],
    }
    if admission:
        cfg["admission"] = admission
    return cfg


def suite_wasm(ctx: Ctx, stages: tuple[str, ...] = ("jwt_auth", "authz", "rate_limit"), cache_size: int = 1000,
               subject: str = "bench-user", outputs: bool = False, wasm: str | None = None,
               jwt_options: dict | None = None, anomaly: dict | None = None) -> dict:
    """The suite module (dist/meshward.wasm) with the given stages, each section the config the
    standalone builder above gives its module, with C1's policy: `bypass_cors_preflight` false, as
    in jwt_authn (its default; meshward's default, true, reads `:method` on every request).
    `outputs`: also write the identity and decision filter state, as the standalone modules do by
    default. `anomaly`: the anomaly section (its stage runs between authz and rate-limit)."""
    sections: dict = {}
    if "jwt_auth" in stages:
        sections["jwt_auth"] = _jwt_auth_cfg(ctx, cache_size) | {"bypass_cors_preflight": False} | (jwt_options or {})
        if outputs:
            sections["jwt_auth"]["identity_state"] = True
    if "authz" in stages:
        sections["authz"] = _authz_cfg(subject, decision_state=True if outputs else None)
    if "rate_limit" in stages:
        sections["rate_limit"] = _rate_limit_cfg()
    if anomaly is not None:
        sections["anomaly"] = anomaly
    return _wasm("meshward", "meshward", _file(ctx, "meshward.wasm", wasm), json.dumps(sections))


BUILDERS: dict[str, Callable[..., dict]] = {
    "noop_wasm": noop_wasm,
    "jwt_auth_wasm": jwt_auth_wasm,
    "jwt_authn": jwt_authn,
    "rbac": rbac,
    "local_ratelimit": local_ratelimit,
    "authz_wasm": authz_wasm,
    "rate_limit_wasm": rate_limit_wasm,
    "suite_wasm": suite_wasm,
}
