"""The benchmark configurations, as data.

Each configuration is an ordered list of HTTP filters (names from
`filters.BUILDERS`, with keyword arguments) placed in front of the router of a
`direct_response` route, plus how requests carry a token and which statuses a
correct deployment must answer.

To add a configuration write a `Config(...)` entry below, and a builder in
`filters.py` if it needs a new filter. `pair` names the configuration a Wasm one
is compared with (its native counterpart; for a design variant, the baseline
variant); `module` names the meshward module whose added RSS the "≤ 10 MiB per
module" target checks, against `rss_base` (C0 unless the module sits behind
another filter). `design` configurations are measured design experiments: they
run only when BENCH_DESIGN=1 or when BENCH_CONFIGS names them, so quick mode
stays under 3 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One request sent before measuring; the response status must match."""

    token: str | None  # key into tokens.Tokens.fixed, or None for no token
    status: int
    why: str
    body: str | None = None  # sent as a JSON POST body


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
    rss_base: str = "C0"  # the configuration the module's added RSS is measured against
    modules: int = 0  # number of meshward modules loaded (for the chain's per-module RSS)
    design: bool = False  # a design experiment: opt-in (BENCH_DESIGN=1 or named in BENCH_CONFIGS)
    body: str | None = None  # load requests POST this body (bodies.SIZES key); paired mode only
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

AUTHZ_CHECKS = AUTH_CHECKS + (Check("rs256_other_sub", 403, "subject not allowed by the policy"),)
_SQLI_BODY = '{"order": {"note": "1\' OR \'1\'=\'1\' --"}}'
# With bodies: the upstream route answers a POST, and the anomaly stage reads the body.
BODY_CHECKS = AUTHZ_CHECKS + (Check("rs256", 200, "JSON body reaches the upstream", '{"order": {"qty": 2}}'),)
ANOMALY_BODY_CHECKS = AUTHZ_CHECKS + (
    Check("rs256", 200, "benign JSON body passes", '{"order": {"qty": 2}}'),
    Check("rs256", 403, "SQL injection in the JSON body is blocked", _SQLI_BODY),
)
SUBJECT = "bench-user"  # tokens.SUBJECT: the subject of the valid tokens
OPT_S = "bench/.tools/target-s/wasm32-wasip1/release/"  # opt-level "s" builds (docs/performance.md)

JWT_NATIVE_CACHED = ("jwt_authn", {"cache_size": 1000})
JWT_NATIVE_NOCACHE = ("jwt_authn", {"cache_size": 0})
JWT_WASM_CACHED = ("jwt_auth_wasm", {"cache_size": 1000})
JWT_WASM_NOCACHE = ("jwt_auth_wasm", {"cache_size": 0})
# Fresh tokens, signatures checked by ring inside V8 instead of Envoy's verify_signature.
JWT_WASM_NOCACHE_RING = ("jwt_auth_wasm", {"cache_size": 0, "signature_backend": "ring"})
AUTHZ_MESHWARD = ("authz_wasm", {"subject": SUBJECT})

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
        notes="jwt_cache_size 0; wrk cycles through distinct tokens; signature_backend auto, so Envoy's "
              "verify_signature (BoringSSL) checks the signature",
    ),
    Config(
        "W-jwt-miss-rs-ring",
        "design: W-jwt-miss-rs with signature_backend ring (RS256 checked by ring inside V8)",
        (JWT_WASM_NOCACHE_RING,),
        token="rs256",
        rotate="rs256",
        checks=AUTH_CHECKS,
        cache="miss",
        pair="W-jwt-miss-rs",
        needs=("jwt-auth.wasm",),
        design=True,
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
        notes="signature_backend auto: Envoy's verify_signature checks the signature",
    ),
    Config(
        "W-jwt-miss-es-ring",
        "design: W-jwt-miss-es with signature_backend ring (ES256 checked by ring inside V8)",
        (JWT_WASM_NOCACHE_RING,),
        token="es256",
        rotate="es256",
        checks=ES_CHECKS,
        cache="miss",
        pair="W-jwt-miss-es",
        needs=("jwt-auth.wasm",),
        design=True,
    ),
    Config(
        "N-rbac",
        "native jwt_authn (cached) + rbac allowing the token's subject",
        (JWT_NATIVE_CACHED, ("rbac", {"subject": SUBJECT})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
    ),
    Config(
        "W-authz",
        "native jwt_authn (cached) + meshward authz allowing the token's subject",
        (JWT_NATIVE_CACHED, ("authz_wasm", {"subject": SUBJECT, "identity": "jwt_authn"})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="N-rbac",
        module="authz",
        rss_base="N-jwt",
        needs=("authz.wasm",),
        notes="same jwt_authn in front of both sides; authz reads the subject from jwt_authn metadata, "
              "where rbac reads it (envoy-configs/authz.yaml vs native-rbac.yaml); RSS vs N-jwt",
    ),
    Config(
        "N-ratelimit",
        "native local_ratelimit (one bucket, never trips)",
        (("local_ratelimit", {}),),
    ),
    Config(
        "W-ratelimit",
        "meshward rate-limit, local mode (one bucket, never trips)",
        (("rate_limit_wasm", {}),),
        pair="N-ratelimit",
        module="rate-limit",
        needs=("rate-limit.wasm",),
        notes="one constant-key token bucket of 1e9/s, response_headers none (as local_ratelimit)",
    ),
    Config(
        "W-ratelimit-lease",
        "design: W-ratelimit with \"admission\": \"lease\" (per-worker leases, no CAS per request)",
        (("rate_limit_wasm", {"admission": "lease"}),),
        pair="N-ratelimit",
        needs=("rate-limit.wasm",),
        design=True,
        notes="lease max 64, lifetime 0.1s (the defaults): one shared-data read + CAS per 64 requests",
    ),
    Config(
        "W-ratelimit-cas",
        "design: W-ratelimit with \"admission\": \"per_request\" (one shared-data read + CAS per request)",
        (("rate_limit_wasm", {"admission": "per_request"}),),
        pair="N-ratelimit",
        needs=("rate-limit.wasm",),
        design=True,
    ),
    Config(
        "C1",
        "native chain: jwt_authn (cached) + rbac + local_ratelimit",
        (JWT_NATIVE_CACHED, ("rbac", {"subject": SUBJECT}), ("local_ratelimit", {})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
    ),
    Config(
        "C2",
        "meshward chain: jwt-auth (cached) + authz + rate-limit",
        (JWT_WASM_CACHED, AUTHZ_MESHWARD, ("rate_limit_wasm", {})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C1",
        modules=3,
        needs=("jwt-auth.wasm", "authz.wasm", "rate-limit.wasm"),
        notes="same keys, token, subject policy and never-tripping bucket as C1; authz and rate-limit "
              "read the identity jwt-auth writes to filter state",
    ),
    Config(
        "C4",
        "meshward suite: jwt-auth (cached) + authz + rate-limit in one module (dist/meshward.wasm)",
        (("suite_wasm", {}),),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C1",
        modules=1,
        module="suite",
        needs=("meshward.wasm",),
        notes="C2's three sections in one module: one VM, one pass, each header read once, identity "
              "handed over in memory (no filter-state writes: nothing downstream reads them)",
    ),
    Config(
        "C4-jwt",
        "meshward suite with the jwt_auth section only (C4's first stage)",
        (("suite_wasm", {"stages": ("jwt_auth",)}),),
        token="rs256",
        checks=AUTH_CHECKS,
        cache="hit",
        pair="N-jwt",
        modules=1,
        needs=("meshward.wasm",),
        notes="stage cost: C4-jwt minus C3 is jwt-auth's; C4-authz minus C4-jwt is authz's; C4 minus C4-authz is rate-limit's",
    ),
    Config(
        "C4-authz",
        "meshward suite with the jwt_auth and authz sections (C4 without rate-limit)",
        (("suite_wasm", {"stages": ("jwt_auth", "authz")}),),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="N-rbac",
        modules=1,
        needs=("meshward.wasm",),
    ),
    Config(
        "C4-out",
        "design: C4 writing the identity and decision filter state (as the standalone modules do)",
        (("suite_wasm", {"outputs": True}),),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C4",
        modules=1,
        needs=("meshward.wasm",),
        design=True,
        notes="the price of turning on identity_state and decision_state for an access log",
    ),
    Config(
        "C4-anom",
        "meshward suite with the anomaly stage (signature detectors, defaults, block mode), no body",
        (("suite_wasm", {"anomaly": {}}),),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C4",
        modules=1,
        needs=("meshward.wasm",),
        notes="the anomaly stage's added cost: C4-anom minus C4 (issue target: <= 8 us of Envoy CPU)",
    ),
    Config(
        "C4-b1k",
        "C4 with a 1 KiB JSON body (POST)",
        (("suite_wasm", {}),),
        token="rs256",
        checks=BODY_CHECKS,
        cache="hit",
        modules=1,
        needs=("meshward.wasm",),
        body="json1k",
        design=True,
    ),
    Config(
        "C4-anom-b1k",
        "C4-anom with a 1 KiB JSON body (POST), inspected",
        (("suite_wasm", {"anomaly": {}}),),
        token="rs256",
        checks=ANOMALY_BODY_CHECKS,
        cache="hit",
        pair="C4-b1k",
        modules=1,
        needs=("meshward.wasm",),
        body="json1k",
        design=True,
        notes="issue target: <= 30 us over C4-b1k",
    ),
    Config(
        "C4-b16k",
        "C4 with a 16 KiB JSON body (POST)",
        (("suite_wasm", {}),),
        token="rs256",
        checks=BODY_CHECKS,
        cache="hit",
        modules=1,
        needs=("meshward.wasm",),
        body="json16k",
        design=True,
    ),
    Config(
        "C4-anom-b16k",
        "C4-anom with a 16 KiB JSON body (POST), inspected",
        (("suite_wasm", {"anomaly": {}}),),
        token="rs256",
        checks=ANOMALY_BODY_CHECKS,
        cache="hit",
        pair="C4-b16k",
        modules=1,
        needs=("meshward.wasm",),
        body="json16k",
        design=True,
        notes="issue target: added p99 <= 200 us over C4-b16k (open-loop, fixed rate)",
    ),
    Config(
        "C2-miss",
        "meshward chain, fresh token per request (jwt cache 0)",
        (JWT_WASM_NOCACHE, AUTHZ_MESHWARD, ("rate_limit_wasm", {})),
        token="rs256",
        rotate="rs256",
        checks=AUTHZ_CHECKS,
        cache="miss",
        modules=3,
        needs=("jwt-auth.wasm", "authz.wasm", "rate-limit.wasm"),
        notes="jwt_cache_size 0; wrk cycles through distinct tokens; compare with W-jwt-miss-rs / N-jwt-miss-rs",
    ),
    # --- design experiments (opt-in: BENCH_DESIGN=1) -----------------------
    Config(
        "W-jwt-s",
        "design: jwt-auth built with opt-level \"s\" (vs W-jwt, opt-level 3)",
        (("jwt_auth_wasm", {"cache_size": 1000, "wasm": OPT_S + "jwt_auth.wasm"}),),
        token="rs256",
        checks=AUTH_CHECKS,
        cache="hit",
        pair="W-jwt",
        module="jwt-auth (opt-level s)",
        needs=(OPT_S + "jwt_auth.wasm",),
        design=True,
    ),
    Config(
        "C2-s",
        "design: meshward chain, all three modules built with opt-level \"s\" (vs C2)",
        (("jwt_auth_wasm", {"cache_size": 1000, "wasm": OPT_S + "jwt_auth.wasm"}),
         ("authz_wasm", {"subject": SUBJECT, "wasm": OPT_S + "authz.wasm"}),
         ("rate_limit_wasm", {"wasm": OPT_S + "rate_limit.wasm"})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C2",
        modules=3,
        needs=(OPT_S + "jwt_auth.wasm", OPT_S + "authz.wasm", OPT_S + "rate_limit.wasm"),
        design=True,
    ),
    Config(
        "W-authz-nods",
        "design: W-authz with decision_state false (no filter-state write per request)",
        (JWT_NATIVE_CACHED, ("authz_wasm", {"subject": SUBJECT, "identity": "jwt_authn", "decision_state": False})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="W-authz",
        needs=("authz.wasm",),
        design=True,
        notes="one host call (set_property of meshward.authz.decision) fewer per request",
    ),
    # ABI probes: the no-op module making one kind of host call per request,
    # against the same module making none. They price the calls the filters make.
    Config("P-header", "probe: no-op + one request-header read (:path)",
           (("noop_wasm", {"probe": [{"header": ":path"}]}),),
           pair="C3", needs=("noop.wasm",), design=True),
    Config("P-property", "probe: no-op + one property read (source.address)",
           (("noop_wasm", {"probe": [{"property": ["source", "address"]}]}),),
           pair="C3", needs=("noop.wasm",), design=True),
    Config("P-setprop", "probe: no-op + one filter-state write (set_property)",
           (("noop_wasm", {"probe": [{"set_property": "meshward.probe"}]}),),
           pair="C3", needs=("noop.wasm",), design=True),
    Config("P-shared", "probe: no-op + one shared-data read and CAS write",
           (("noop_wasm", {"probe": [{"shared": "probe"}]}),),
           pair="C3", needs=("noop.wasm",), design=True),
    Config("P-jwt", "probe baseline: native jwt_authn (cached) + no-op",
           (JWT_NATIVE_CACHED, ("noop_wasm", {})),
           token="rs256", checks=(Check("rs256", 200, "valid RS256 token"),), cache="hit", pair="N-jwt",
           needs=("noop.wasm",), design=True),
    Config("P-metadata", "probe: native jwt_authn (cached) + no-op reading one jwt_authn metadata leaf (sub)",
           (JWT_NATIVE_CACHED, ("noop_wasm", {"probe": [{"property": [
               "metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "jwt_payload", "sub"]}]})),
           token="rs256", checks=(Check("rs256", 200, "valid RS256 token"),), cache="hit", pair="P-jwt",
           needs=("noop.wasm",), design=True,
           notes="the read authz makes for W-authz's policy; rbac reads the same value in C++"),
    Config(
        "C2-vm",
        "design: meshward chain with one vm_id shared by the three filters (vs C2)",
        (("jwt_auth_wasm", {"cache_size": 1000, "vm_id": "meshward"}),
         ("authz_wasm", {"subject": SUBJECT, "vm_id": "meshward"}),
         ("rate_limit_wasm", {"vm_id": "meshward"})),
        token="rs256",
        checks=AUTHZ_CHECKS,
        cache="hit",
        pair="C2",
        modules=3,
        needs=("jwt-auth.wasm", "authz.wasm", "rate-limit.wasm"),
        design=True,
        notes="Envoy keys a VM by vm_id and the module's code hash, so three different modules still "
              "get three VMs; this measures that",
    ),
)

BY_ID = {c.id: c for c in CONFIGS}


def runnable(selected: set[str] | None = None, design: bool = False) -> list[Config]:
    """The configurations the smoke/quick/full modes run; those that send bodies need the
    paired mode's upstream (filters.Ctx.upstream_port), so only the paired mode runs them."""
    if selected:
        return [c for c in CONFIGS if not c.pending and not c.body and c.id in selected]
    return [c for c in CONFIGS if not c.pending and not c.body and (design or not c.design)]


def pending() -> list[Config]:
    return [c for c in CONFIGS if c.pending]

