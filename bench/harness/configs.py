"""The benchmark configurations, as data.

Each configuration is an ordered list of HTTP filters (names from
`filters.BUILDERS`, with keyword arguments) placed in front of the router of a
`direct_response` route, plus how requests carry a token and which statuses a
correct deployment must answer.

To add a configuration (for example the authz/rbac or rate-limit/local_ratelimit
pairs, or the full meshward chain C2) write a `Config(...)` entry below, and a
builder in `filters.py` if it needs a new filter. `pair` names the native
configuration a Wasm one is compared with; `module` names the meshward module
whose added RSS the "≤ 10 MiB per module" target checks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One request sent before measuring; the response status must match."""

    token: str | None  # key into tokens.Tokens.fixed, or None for no token
    status: int
    why: str


@dataclass(frozen=True)
class Config:
    id: str
    title: str
    filters: tuple[tuple[str, dict], ...]
    token: str | None = None  # fixed token name sent by wrk/oha, or None
    rotate: str | None = None  # name of a pre-minted list wrk cycles through
    checks: tuple[Check, ...] = (Check(None, 200, "plain request"),)
    pair: str | None = None  # native counterpart id (for wasm/native ratios)
    module: str | None = None  # meshward module measured (RSS target)
    needs: tuple[str, ...] = ()  # dist/*.wasm files this config loads
    cache: str | None = None  # "hit" / "miss": JWT cache behaviour the run must show in /stats
    pending: str | None = None  # set => not run, listed as pending with this reason
    notes: str = ""


AUTH_CHECKS = (
    Check("rs256", 200, "valid RS256 token"),
    Check(None, 401, "no token"),
    Check("bad_sig", 401, "tampered signature"),
)
ES_CHECKS = (
    Check("es256", 200, "valid ES256 token"),
    Check(None, 401, "no token"),
)

JWT_NATIVE_CACHED = ("jwt_authn", {"cache_size": 1000})
JWT_NATIVE_NOCACHE = ("jwt_authn", {"cache_size": 0})
JWT_WASM_CACHED = ("jwt_auth_wasm", {"cache_size": 1000})
JWT_WASM_NOCACHE = ("jwt_auth_wasm", {"cache_size": 0})

CONFIGS: tuple[Config, ...] = (
    Config("C0", "bare Envoy (direct_response)", ()),
    Config(
        "C3",
        "no-op Wasm filter (ABI fixed cost)",
        (("noop_wasm", {}),),
        needs=("noop.wasm",),
    ),
    Config(
        "N-jwt",
        "native jwt_authn, RS256, cached token",
        (JWT_NATIVE_CACHED,),
        token="rs256",
        checks=AUTH_CHECKS,
        cache="hit",
    ),
    Config(
        "W-jwt",
        "meshward jwt-auth, RS256, cached token",
        (JWT_WASM_CACHED,),
        token="rs256",
        checks=AUTH_CHECKS,
        pair="N-jwt",
        module="jwt-auth",
        cache="hit",
        needs=("jwt-auth.wasm",),
    ),
    Config(
        "N-jwt-miss-rs",
        "native jwt_authn, RS256, fresh token per request (no cache)",
        (JWT_NATIVE_NOCACHE,),
        token="rs256",
        rotate="rs256",
        checks=AUTH_CHECKS,
        cache="miss",
        notes="jwt_cache_config absent; wrk cycles through distinct tokens",
    ),
    Config(
        "W-jwt-miss-rs",
        "meshward jwt-auth, RS256, fresh token per request (cache 0)",
        (JWT_WASM_NOCACHE,),
        token="rs256",
        rotate="rs256",
        checks=AUTH_CHECKS,
        cache="miss",
        pair="N-jwt-miss-rs",
        needs=("jwt-auth.wasm",),
        notes="jwt_cache_size 0; wrk cycles through distinct tokens",
    ),
    Config(
        "N-jwt-miss-es",
        "native jwt_authn, ES256, fresh token per request (no cache)",
        (JWT_NATIVE_NOCACHE,),
        token="es256",
        rotate="es256",
        checks=ES_CHECKS,
        cache="miss",
    ),
    Config(
        "W-jwt-miss-es",
        "meshward jwt-auth, ES256, fresh token per request (cache 0)",
        (JWT_WASM_NOCACHE,),
        token="es256",
        rotate="es256",
        checks=ES_CHECKS,
        cache="miss",
        pair="N-jwt-miss-es",
        needs=("jwt-auth.wasm",),
    ),
    Config(
        "C1",
        "native chain: jwt_authn (cached) + rbac + local_ratelimit",
        (JWT_NATIVE_CACHED, ("rbac", {"subject": "bench-user"}), ("local_ratelimit", {})),
        token="rs256",
        checks=AUTH_CHECKS + (Check("rs256_other_sub", 403, "subject not allowed by rbac"),),
    ),
    # --- pending: add when the filters land -------------------------------
    Config(
        "W-authz",
        "meshward authz vs native rbac",
        (),
        pair="N-rbac",
        module="authz",
        needs=("authz.wasm",),
        pending="not wired yet: add when filters/authz and its config schema are stable",
    ),
    Config(
        "W-ratelimit",
        "meshward rate-limit vs native local_ratelimit",
        (),
        pair="N-ratelimit",
        module="rate-limit",
        needs=("rate-limit.wasm",),
        pending="not wired yet: add when filters/rate-limit and its config schema are stable",
    ),
    Config(
        "C2",
        "meshward chain: jwt-auth + authz + rate-limit",
        (),
        pair="C1",
        needs=("jwt-auth.wasm", "authz.wasm", "rate-limit.wasm"),
        pending="needs the W-authz and W-ratelimit configurations first",
    ),
)

BY_ID = {c.id: c for c in CONFIGS}


def runnable(selected: set[str] | None = None) -> list[Config]:
    return [c for c in CONFIGS if not c.pending and (not selected or c.id in selected)]


def pending() -> list[Config]:
    return [c for c in CONFIGS if c.pending]

