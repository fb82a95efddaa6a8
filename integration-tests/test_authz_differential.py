"""Differential test: meshward authz vs Envoy's native rbac on generated policies.

Both Envoys run native jwt_authn first (claims reach both from jwt_authn dynamic metadata),
then either meshward authz or native rbac with the Istio-equivalent policy (DENY filter, then
ALLOW filter). Policies use the subset both can express: methods, paths (exact, prefix,
suffix, not*), request headers, remote IPs (XFF with one trusted hop) and JWT claims (string
and list claims). Every generated request goes to both; allow/deny must agree on all of them.

Seeded: AUTHZ_DIFF_SEED=<n> replays a run; the failure message lists the diverging cases.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import random

import pytest
import requests

from harness import tokens as tk
from harness.authz_support import authz_filter, hcm, native_jwt_authn, native_rbac_filters
from harness.envoy import static_cluster

SEED = int(os.environ.get("AUTHZ_DIFF_SEED", "20240607"))
SETS = 12
PER_SET = 850  # 12 * 850 = 10,200 requests
ISS = "https://diff.meshward.test"

METHODS = ["GET", "POST", "PUT", "DELETE"]
PATHS = ["/", "/a", "/a/b", "/a/b/c", "/api/v1/x", "/api/v2/y.json", "/static/app.js", "/admin",
         "/admin/users", "/x.json", "/ab"]
PATH_PATTERNS = ["/a", "/a/*", "/api/*", "*.json", "*.js", "/admin", "/admin/*", "/a/b", "/api/v1/*", "/",
                 "/ab"]
HDR_VALUES = ["alpha", "beta", "gamma", "alpha-1", "beta-2"]
HDR_PATTERNS = ["alpha", "beta*", "*-1", "gamma", "*"]
IPS = ["10.0.0.1", "10.1.2.3", "192.168.1.10", "192.168.2.20", "203.0.113.5", "203.0.113.200", "8.8.8.8"]
CIDRS = ["10.0.0.0/8", "10.1.0.0/16", "192.168.1.0/24", "203.0.113.0/25", "8.8.8.8/32", "0.0.0.0/0",
         "192.168.0.0/16"]
GROUPS = ["eng", "ops", "sales"]
TIERS = ["gold", "silver", "bronze"]
PRINCIPALS = [f"{ISS}/user{i}" for i in range(4)] + ["*", f"{ISS}/nobody"]


def _some(rng, pool, lo=1, hi=2):
    return rng.sample(pool, rng.randint(lo, min(hi, len(pool))))


def gen_rule(rng) -> dict:
    rule: dict = {}
    if rng.random() < 0.8:
        ops = []
        for _ in range(rng.randint(1, 2)):
            op = {}
            if rng.random() < 0.5:
                op["methods"] = _some(rng, METHODS)
            if rng.random() < 0.15:
                op["notMethods"] = _some(rng, METHODS, 1, 1)
            if rng.random() < 0.6:
                op["paths"] = _some(rng, PATH_PATTERNS, 1, 3)
            if rng.random() < 0.15:
                op["notPaths"] = _some(rng, PATH_PATTERNS, 1, 2)
            ops.append({"operation": op})
        rule["to"] = ops
    if rng.random() < 0.35:
        srcs = []
        for _ in range(rng.randint(1, 2)):
            s = {}
            if rng.random() < 0.8:
                s["remoteIpBlocks"] = _some(rng, CIDRS)
            if rng.random() < 0.3:
                s["notRemoteIpBlocks"] = _some(rng, CIDRS, 1, 1)
            if rng.random() < 0.3:
                s["requestPrincipals"] = _some(rng, PRINCIPALS)
            if rng.random() < 0.15:
                s["notRequestPrincipals"] = _some(rng, PRINCIPALS, 1, 1)
            srcs.append({"source": s})
        rule["from"] = srcs
    when = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        kind = rng.choice(["header", "group", "tier", "ip"])
        key, pool = {"header": ("request.headers[x-h]", HDR_PATTERNS),
                     "group": ("request.auth.claims[groups]", GROUPS + ["s*", "*s"]),
                     "tier": ("request.auth.claims[tier]", TIERS + ["g*"]),
                     "ip": ("remote.ip", CIDRS)}[kind]
        cond = {"key": key}
        r = rng.random()
        if r < 0.6:
            cond["values"] = _some(rng, pool)
        elif r < 0.85:
            cond["notValues"] = _some(rng, pool)
        else:
            cond["values"] = _some(rng, pool)
            cond["notValues"] = _some(rng, pool, 1, 1)
        when.append(cond)
    if when:
        rule["when"] = when
    return rule


def gen_policies(rng, set_no: int) -> list[dict]:
    out = []
    for i in range(rng.randint(1, 4)):
        action = rng.choice(["ALLOW", "ALLOW", "DENY"])
        n_rules = rng.choice([0, 1, 1, 2, 3]) if action == "ALLOW" else rng.choice([1, 1, 2])
        out.append({"name": f"s{set_no}-p{i}", "action": action,
                    "rules": [gen_rule(rng) for _ in range(n_rules)]})
    return out


def gen_request(rng, tokens: list[str]) -> dict:
    headers = {}
    if rng.random() < 0.6:
        headers["x-h"] = rng.choice(HDR_VALUES)
    if rng.random() < 0.7:
        headers["x-forwarded-for"] = ", ".join(rng.choice(IPS) for _ in range(rng.randint(1, 2)))
    if rng.random() < 0.7:
        headers["authorization"] = f"Bearer {rng.choice(tokens)}"
    path = rng.choice(PATHS) + ("?q=1" if rng.random() < 0.2 else "")
    return {"method": rng.choice(METHODS), "path": path, "headers": headers}


def _send(envoy_port: int, session: requests.Session, req: dict) -> int:
    r = session.request(req["method"], f"http://127.0.0.1:{envoy_port}{req['path']}",
                        headers=req["headers"], timeout=10)
    return r.status_code


@pytest.mark.timeout(900)
def test_authz_matches_native_rbac(procs, keys):
    rng = random.Random(SEED)
    key = keys.rsa
    jwks = tk.jwks(key)
    tokens = []
    for g in range(8):
        c = tk.claims(ISS, "api", sub=f"user{g}", ttl=3600,
                      groups=rng.sample(GROUPS, rng.randint(0, 3)), tier=rng.choice(TIERS))
        tokens.append(tk.mint(key, c))
    tokens.append(tk.mint(key, tk.claims(ISS, "api", sub="nogroups", ttl=3600)))
    tokens.append("not-a-valid-token")  # jwt_authn lets it through without metadata

    up = procs.echo()
    total, denied, divergences = 0, 0, []
    for s in range(SETS):
        policies = gen_policies(rng, s)
        authz_cfg = {"trusted_xff_hops": 1, "decision_state": False,
                     "identity": {"meshward": False, "jwt_authn": {"payload_in_metadata": "jwt_payload"}},
                     "policies": policies}
        ours = procs.envoy([native_jwt_authn(jwks, ISS), authz_filter(authz_cfg)],
                           [static_cluster("upstream", up.port)], check_health=False, access_log=False)
        hcm(ours)["use_remote_address"] = True
        native = procs.envoy([native_jwt_authn(jwks, ISS), *native_rbac_filters(policies)],
                             [static_cluster("upstream", up.port)], check_health=False,
                             access_log=False)
        hcm(native)["use_remote_address"] = True
        hcm(native)["xff_num_trusted_hops"] = 1
        ours.start()
        native.start()
        reqs = [gen_request(rng, tokens) for _ in range(PER_SET)]

        def run(chunk):
            so, sn = requests.Session(), requests.Session()
            return [(r, _send(ours.port, so, r), _send(native.port, sn, r)) for r in chunk]

        chunks = [reqs[i::4] for i in range(4)]
        with cf.ThreadPoolExecutor(4) as pool:
            results = [x for part in pool.map(run, chunks) for x in part]
        for req, a, b in results:
            assert a in (200, 403) and b in (200, 403), (a, b, req)
            total += 1
            denied += a == 403
            if a != b:
                divergences.append({"set": s, "authz": a, "rbac": b, "request": req,
                                    "policies": policies})
        for e in (ours, native):  # checked here because they are stopped before teardown
            assert not e.health_problems(), e.health_problems()
            e.stop()
    summary = (f"differential authz vs rbac: seed={SEED} requests={total} denied={denied} "
               f"divergences={len(divergences)}")
    print(summary)
    (procs.workdir / "differential-summary.txt").write_text(summary + "\n")
    assert total >= 10_000
    assert 0.1 * total < denied < 0.9 * total, f"generator is lopsided: {summary}"
    assert not divergences, summary + "\n" + "\n".join(json.dumps(d) for d in divergences[:5])
