"""Generative differential test: meshward `authz` vs Envoy's native `rbac` configured the way
istiod configures it (`harness/istio_rbac.py`, written from istiod's translation code).

Both Envoys run the same native `jwt_authn` first (`payload_in_metadata: payload`, forward,
allow_missing_or_failed, any issuer). The native Envoy then runs istiod's DENY and ALLOW rbac
filters; the meshward Envoy runs `set_filter_state` (the TCP peer as `meshward.peer`) and
`authz` with the Istio policies verbatim.

Generated:
- policy sets over every translated field: from (ipBlocks, remoteIpBlocks, requestPrincipals
  and their not*), to (hosts, ports, methods, paths with `{*}` / `{**}` templates, not*), when
  (headers, source.ip, remote.ip, request.auth.principal / audiences / presenter / claims[..],
  destination.port), DENY with ALLOW, rule-less policies and empty rules;
- requests: repeated and empty headers, `host:port` authorities, x-forwarded-for variants,
  three client source addresses, tokens whose claims take every JSON type;
- HCM variants (use_remote_address, xff_num_trusted_hops, path normalization settings),
  identical on both sides. Paths stay canonical here; path tricks are another battery's job.

Each variant runs one native and one meshward Envoy; each policy set is one listener pair
with the same port on 127.0.0.1 (native) and 127.0.0.2 (meshward), so `destination.port`
agrees. A policy set that meshward refuses is reported and left out.

AUTHZ_DIFF_SEED=<n> replays a run. All results go to `differential-*.jsonl` in the test's
tmp dir; the failure message lists the first diverging cases.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import random
import socket
import time

import pytest

from harness import istio_rbac
from harness import tokens as tk
from harness.authz_support import authz_filter, native_jwt_authn
from harness.envoy import for_module, peer_state_filter, router_filter, validate
from harness.ports import free_port

SEED = int(os.environ.get("AUTHZ_DIFF_SEED", "20240607"))
SETS_PER_VARIANT = 32
PER_SET = 150            # 6 variants * 32 sets * 150 = 28,800 requests, each sent to both Envoys
FOCUSED = 0.35           # share of policy sets with a single field (one policy, rule, field)
THREADS = 4
SHOW = 12                # diverging cases listed in the failure message (at most 2 per set)

NATIVE_IP, MESH_IP = "127.0.0.1", "127.0.0.2"
SOURCE_IPS = ["127.0.0.1", "127.0.0.9", "127.3.4.5"]   # the client binds one per request
ISS = "https://diff.meshward.test"
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")

# ------------------------------------------------------------------ value pools
METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "PURGE"]
METHOD_PATTERNS = ["GET", "POST", "PUT", "DELETE", "P*", "*T", "*", "PURGE"]
PATHS = ["/", "/a", "/a/", "/a/b", "/a/b/c", "/a/x/c", "/a/b/c/d", "/ab", "/api", "/api/",
         "/api/v1/items", "/api/v1/items/42", "/api/v2/x.json", "/static/app.js", "/x.json",
         "/admin", "/admin/users", "/files/~u/doc.txt", "/p/a;b=c/x", "/p/@me/x", "/p/it's/x",
         "/p/(q)/x", "/p/a+b,c/x", "/p/a:b!$&/x",
         # segments with characters outside RFC 3986 pchar that Envoy's codec still accepts
         "/a/b|c", "/a/b^c/c", "/p/[1]/x", "/p/x`y/x", "/p/a*b/x", "/p/{x}/x"]
QUERIES = ["", "", "", "?q=1", "?next=/a/b", "?x=*.json"]
PATH_PATTERNS = ["/a", "/a/*", "/api/*", "*.json", "*.js", "*", "/admin", "/admin/*", "/a/b", "/",
                 "/ab", "/p/*", "*/x",
                 "/a/{*}", "/a/{*}/c", "/{*}/b", "/{*}", "/a/{**}", "/api/{**}", "/{**}",
                 "/files/{*}/doc.txt", "/p/{*}/x", "/api/v1/items/{*}", "/a/b/{**}", "/p/{**}",
                 # literals after `{**}` (Istio accepts them; only operators may not follow)
                 "/a/{**}/c", "/{**}/x", "/a/{**}/"]
HOST_PATTERNS = ["example.com", "*.example.com", "api.*", "*", "example.com:*", "EXAMPLE.COM",
                 "api.example.com", "127.0.0.1:*", "*:8080"]
HDR_VALUES = ["alpha", "beta", "alpha-1", "", "Alpha", "beta-2", "alpha,beta"]
HDR_PATTERNS = ["alpha", "beta*", "*-1", "*", "alpha,beta", "Alpha", "*a", "alpha*"]
HDR_KEYS = ["request.headers[x-h]", "request.headers[X-H]", "request.headers[x-e]"]
SRC_CIDRS = ["127.0.0.1", "127.0.0.0/24", "127.3.0.0/16", "127.0.0.9/32", "10.0.0.0/8",
             "::ffff:127.0.0.1", "0.0.0.0/0", "::/0", "127.0.0.0/8"]
REMOTE_CIDRS = ["1.2.3.4", "1.2.3.0/24", "10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8",
                "::ffff:1.2.3.4", "2001:db8::/32", "0.0.0.0/0", "203.0.113.7", "127.0.0.9"]
XFF_ENTRIES = ["1.2.3.4", "1.2.3.99", "10.1.2.3", "192.168.1.1", "203.0.113.7", "1.2.3.4:5678",
               "::ffff:1.2.3.4", "2001:db8::5", "[2001:db8::5]:443", "garbage", "127.0.0.9"]
REQUEST_PRINCIPALS = [
    f"{ISS}/user1", f"{ISS}/*", "*", f"{ISS}/us*", "*/user1", "*meshward.test/user2", "*1",
    "https://diff*", "issuer-no-slash", "issuer-no-slash*", f"{ISS}/a/b", "*/a/b",
    "https://other.test/realms/x/user1", "*er2", "*/"]
AUDIENCES = ["api", "web", "ap*", "*eb", "*"]
PRESENTERS = ["web-client", "cli", "web*", "*"]
CLAIMS = {  # when key -> values to pick from
    "request.auth.claims[role]": ["admin", "adm*", "*er", "*"],
    "request.auth.claims[code]": ["12345678", "1234*", "*"],
    "request.auth.claims[flag]": ["true", "false", "*"],
    "request.auth.claims[groups]": ["eng", "e*", "*s", "*"],
    "request.auth.claims[mixed]": ["eng", "1", "true", "*"],
    "request.auth.claims[org]": ["t1", "*"],
    "request.auth.claims[org][tenant]": ["t1", "t*", "*"],
    "request.auth.claims[org.tenant]": ["t1", "*"],
    "request.auth.claims[deep][a][b]": ["x", "y", "*"],
    "request.auth.claims[deep][a]": ["x", "*"],
    "request.auth.claims[blank][a]": ["*", "x"],
    "request.auth.claims[empty]": ["*", "x"],
    "request.auth.claims[iss]": [ISS, "https://*", "*"],
    "request.auth.claims[sub]": ["user1", "user*", "*"],
    "request.auth.claims[aud]": ["api", "web", "*"],
    "request.auth.claims[missing]": ["*", "x"],
}
# claims whose JSON type (number, bool, list, object, "") decides a match: drawn twice as often
CLAIM_KEYS = [k for k in CLAIMS for _ in range(
    2 if any(c in k for c in ("code", "flag", "mixed", "groups", "[org]", "deep", "blank", "empty")) else 1)]


def hcm_variants(rng: random.Random) -> list[dict]:
    """Every use_remote_address x xff_num_trusted_hops pair; path settings drawn per variant."""
    out = []
    for ura in (True, False):
        for hops in (0, 1, 2):
            out.append({
                "use_remote_address": ura, "xff_num_trusted_hops": hops,
                "normalize_path": rng.random() < 0.7, "merge_slashes": rng.random() < 0.5,
                "path_with_escaped_slashes_action": rng.choice(
                    ["KEEP_UNCHANGED", "REJECT_REQUEST", "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD"]),
            })
    return out


# ------------------------------------------------------------------ policies
def _some(rng, pool, hi=2):
    return rng.sample(pool, rng.randint(1, min(hi, len(pool))))


def gen_source(rng) -> dict:
    s: dict = {}
    while not s:
        for field, pool, p in (("ipBlocks", SRC_CIDRS, 0.3), ("notIpBlocks", SRC_CIDRS, 0.12),
                               ("remoteIpBlocks", REMOTE_CIDRS, 0.3),
                               ("notRemoteIpBlocks", REMOTE_CIDRS, 0.12),
                               ("requestPrincipals", REQUEST_PRINCIPALS, 0.35),
                               ("notRequestPrincipals", REQUEST_PRINCIPALS, 0.12)):
            if rng.random() < p:
                s[field] = _some(rng, pool)
    return {"source": s}


def gen_operation(rng, ports: list[str]) -> dict:
    o: dict = {}
    while not o:
        for field, pool, p in (("hosts", HOST_PATTERNS, 0.2), ("notHosts", HOST_PATTERNS, 0.08),
                               ("ports", ports, 0.15), ("notPorts", ports, 0.08),
                               ("methods", METHOD_PATTERNS, 0.3), ("notMethods", METHOD_PATTERNS, 0.1),
                               ("paths", PATH_PATTERNS, 0.5), ("notPaths", PATH_PATTERNS, 0.12)):
            if rng.random() < p:
                o[field] = _some(rng, pool, 3 if field == "paths" else 2)
    return {"operation": o}


def gen_condition(rng, ports: list[str]) -> dict:
    kind = rng.choice(["header", "header", "claim", "claim", "claim", "claim", "principal", "aud",
                       "azp", "src", "remote", "port"])
    if kind == "header":
        key, pool = rng.choice(HDR_KEYS), HDR_PATTERNS
    elif kind == "claim":
        key = rng.choice(CLAIM_KEYS)
        pool = CLAIMS[key]
    else:
        key, pool = {"principal": ("request.auth.principal", REQUEST_PRINCIPALS),
                     "aud": ("request.auth.audiences", AUDIENCES),
                     "azp": ("request.auth.presenter", PRESENTERS),
                     "src": ("source.ip", SRC_CIDRS),
                     "remote": ("remote.ip", REMOTE_CIDRS),
                     "port": ("destination.port", ports)}[kind]
    cond: dict = {"key": key}
    r = rng.random()
    if r < 0.6:
        cond["values"] = _some(rng, pool)
    elif r < 0.85:
        cond["notValues"] = _some(rng, pool)
    else:
        cond["values"] = _some(rng, pool)
        cond["notValues"] = _some(rng, pool, 1)
    return cond


def gen_rule(rng, ports: list[str]) -> dict:
    if rng.random() < 0.04:
        return {}  # matches every request
    rule: dict = {}
    if rng.random() < 0.45:
        rule["from"] = [gen_source(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.6:
        rule["to"] = [gen_operation(rng, ports) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.55:
        rule["when"] = [gen_condition(rng, ports) for _ in range(rng.randint(1, 2))]
    return rule


def gen_focused(rng, ports: list[str]) -> dict:
    """A rule testing one field alone, so that field's semantics decide the request (in a
    larger set other rules usually mask them)."""
    r = rng.random()
    if r < 0.3:
        src = gen_source(rng)["source"]
        k = rng.choice(sorted(src))
        return {"from": [{"source": {k: src[k]}}]}
    if r < 0.6:
        op = gen_operation(rng, ports)["operation"]
        k = rng.choice(sorted(op))
        return {"to": [{"operation": {k: op[k]}}]}
    return {"when": [gen_condition(rng, ports)]}


def gen_policies(rng, tag: str, port: int) -> list[dict]:
    ports = [str(port), "80"]
    if rng.random() < FOCUSED:
        p = {"name": f"{tag}-p0", "action": rng.choice(["ALLOW", "DENY"]),
             "rules": [gen_focused(rng, ports)]}
        istio_rbac.validate(p)
        return [p]
    out = []
    for i in range(rng.randint(1, 4)):
        action = rng.choice(["ALLOW", "ALLOW", "DENY"])
        p: dict = {"name": f"{tag}-p{i}", "action": action}
        r = rng.random()
        if r < 0.05:
            pass  # no `rules`: allow-nothing (ALLOW) / no effect (DENY)
        elif r < 0.08:
            p["rules"] = []
        else:
            p["rules"] = [gen_rule(rng, ports) for _ in range(rng.randint(1, 3))]
        istio_rbac.validate(p)
        out.append(p)
    return out


# ------------------------------------------------------------------ tokens and requests
def gen_claims(rng) -> dict:
    """A payload whose optional claims take every JSON type; None leaves the claim out."""
    now = int(time.time())
    pick = {
        "iss": [ISS, ISS, "https://other.test/realms/x", "issuer-no-slash", None],
        "sub": ["user1", "user2", "alice", "a/b", "", None],
        "aud": ["api", ["api", "web"], ["web"], [], None],
        "azp": ["web-client", "cli", None],
        "client_id": ["web-client", "cli", None],
        "role": ["admin", "viewer", None],
        "code": ["12345678", 12345678, None],                      # 8-char string vs number
        "flag": [True, False, "true", None],
        "groups": [["eng", "ops"], ["sales"], [], "eng", None],
        "mixed": [["eng", 1, True, None, {"a": "eng"}], [1.5, False], None],
        "org": [{"tenant": "t1", "tier": "gold"}, {"tenant": "t2"}, "t1", None],
        "org.tenant": ["t1", None],
        "deep": [{"a": {"b": "x"}}, {"a": {"b": ["x", "y"]}}, {"a": "x"}, None],
        "blank": [{"a": "", "b": ""}, None],
        "empty": ["", None],
    }
    c = {"iat": now, "exp": now + 7200}
    for k, choices in pick.items():
        v = rng.choice(choices)
        if v is not None:
            c[k] = v
    return c


def make_tokens(rng, key) -> list[str]:
    toks = [tk.mint(key, gen_claims(rng)) for _ in range(30)]
    toks.append(tk.mint(key, {"iss": ISS, "sub": "user1", "aud": "api", "role": "admin",
                              "exp": int(time.time()) - 60}))        # expired: no metadata
    toks.append("not.a.token")                                      # malformed: no metadata
    return toks


def gen_request(rng, tokens: list[str], port: int) -> dict:
    headers: list[list[str]] = []
    for name, p in (("x-h", 0.6), ("x-e", 0.3)):
        if rng.random() < p:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # repeated headers
                headers.append([name, rng.choice(HDR_VALUES)])
    if rng.random() < 0.7:
        entries = [rng.choice(XFF_ENTRIES) for _ in range(rng.randint(1, 3))]
        headers.append(["x-forwarded-for", rng.choice([", ", ","]).join(entries)])
    if rng.random() < 0.75:
        headers.append(["authorization", f"Bearer {rng.choice(tokens)}"])
    return {
        "method": rng.choice(METHODS),
        "path": rng.choice(PATHS) + rng.choice(QUERIES),
        "authority": rng.choice(["example.com", "EXAMPLE.com", "example.com:8080",
                                 f"example.com:{port}", "api.example.com", "API.Example.Com:443",
                                 "api.internal", "other.test", f"127.0.0.1:{port}", "127.0.0.1"]),
        "source": rng.choice(SOURCE_IPS + SOURCE_IPS[:1]),  # 127.0.0.1 twice as likely
        "headers": headers,
    }


def raw_request(req: dict) -> bytes:
    lines = [f"{req['method']} {req['path']} HTTP/1.1", f"host: {req['authority']}"]
    lines += [f"{k}: {v}" for k, v in req["headers"]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Conn:
    """A keep-alive HTTP/1.1 connection from a chosen source address. Requests go out as raw
    bytes, so repeated headers, empty values and the Host line are sent exactly as generated
    (`requests` merges repeated headers)."""

    def __init__(self, dst: str, port: int, src: str):
        self.dst, self.port, self.src = dst, port, src
        self.sock: socket.socket | None = None
        self.rfile = None

    def close(self) -> None:
        if self.sock:
            self.rfile.close()
            self.sock.close()
        self.sock = self.rfile = None

    def status(self, data: bytes) -> int:
        for attempt in (0, 1):  # a kept-alive connection may have been closed by Envoy
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection((self.dst, self.port), timeout=10,
                                                     source_address=(self.src, 0))
                self.rfile = self.sock.makefile("rb")
            try:
                self.sock.sendall(data)
                return self._read()
            except (OSError, ConnectionError, ValueError):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def _read(self) -> int:
        line = self.rfile.readline(65536)
        if not line:
            raise ConnectionError("closed before the status line")
        status = int(line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            h = self.rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                self.rfile.read(size + 2)
            self.rfile.readline()
        elif length:
            self.rfile.read(length)
        if close:
            self.close()
        return status


# ------------------------------------------------------------------ Envoy configs
def _listener(name: str, ip: str, port: int, filters: list[dict], hcm_opts: dict) -> dict:
    hcm = {"@type": HCM_TYPE, "stat_prefix": name, **hcm_opts,
           "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
               {"match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
           "http_filters": [*for_module(filters), router_filter()]}
    return {"name": name, "address": {"socket_address": {"address": ip, "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def native_listener(s: dict, jwks: dict, hcm_opts: dict) -> dict:
    return _listener(s["tag"], NATIVE_IP, s["port"],
                     [native_jwt_authn(jwks, None, "payload", forward=True),
                      *istio_rbac.rbac_filters(s["policies"])], hcm_opts)


def mesh_listener(s: dict, jwks: dict, hcm_opts: dict) -> dict:
    cfg = {"decision_state": False,
           "identity": {"meshward": False, "jwt_authn": {"payload_in_metadata": "payload"}},
           "policies": s["policies"]}
    return _listener(s["tag"], MESH_IP, s["port"],
                     [native_jwt_authn(jwks, None, "payload", forward=True), peer_state_filter(),
                      authz_filter(cfg)], hcm_opts)


def _bootstrap(e, listeners: list[dict]) -> dict:
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": e.admin_port}}},
            "static_resources": {"listeners": listeners, "clusters": []}}


def make_envoy(procs, listeners: list[dict]):
    e = procs.envoy([], [], check_health=False, access_log=False)
    e.config = _bootstrap(e, listeners)
    return e


def mesh_refusal(procs, listeners: list[dict]) -> str | None:
    """None when Envoy accepts these meshward listeners (`--mode validate` runs on_configure),
    else the filter's complaint."""
    probe = procs.envoy([], [], check_health=False, access_log=False)
    probe.config_path.write_text(json.dumps(_bootstrap(probe, listeners)))
    rc, text = validate(probe.config_path)
    if rc == 0:
        return None
    lines = [ln for ln in text.splitlines() if "invalid config" in ln] or text.splitlines()[-3:]
    return lines[0][-400:]


def shared_port() -> int:
    """A port free on both loopback addresses."""
    for _ in range(50):
        port = free_port(NATIVE_IP)
        try:
            with socket.socket() as s:
                s.bind((MESH_IP, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on both loopback addresses")


# ------------------------------------------------------------------ the test
def compact(case: dict) -> str:
    """One diverging case on one line: set, HCM, request, both statuses, the policies."""
    r = case["request"]
    hdrs = "; ".join(f"{k}: {v[:40] + '...' if k == 'authorization' and len(v) > 43 else v}"
                     for k, v in r["headers"])
    return (f"[{case['set']}] native={case['native']} meshward={case['meshward']} "
            f"hcm={json.dumps(case['hcm'], separators=(',', ':'))} "
            f"req={r['method']} {r['path']} host={r['authority']} src={r['source']} "
            f"hdrs={{{hdrs}}} claims={json.dumps(case.get('claims'), separators=(',', ':'))} "
            f"policies={json.dumps(case['policies'], separators=(',', ':'))}")


@pytest.mark.timeout(900)
def test_authz_matches_istio_rbac(procs, keys):
    started = time.monotonic()
    rng = random.Random(SEED)
    key = keys.rsa
    jwks = tk.jwks(key)
    tokens = make_tokens(rng, key)
    claims_of = {t: tk.decode_unverified(t)[1] for t in tokens if t.count(".") == 2 and t.startswith("eyJ")}
    results_path = procs.workdir / "differential-results.jsonl"
    div_path = procs.workdir / "differential-divergences.jsonl"
    total = denied = 0
    divergences: list[dict] = []
    refused: list[dict] = []
    other_status: dict[str, int] = {}

    with open(results_path, "w") as results, open(div_path, "w") as div_out:
        for v_no, hcm_opts in enumerate(hcm_variants(rng)):
            sets = []
            for k in range(SETS_PER_VARIANT):
                port = shared_port()
                tag = f"v{v_no}s{k}"
                sets.append({"tag": tag, "port": port, "policies": gen_policies(rng, tag, port),
                             "requests": [gen_request(rng, tokens, port) for _ in range(PER_SET)]})

            # a policy set that meshward refuses would stop its whole Envoy: find and drop it
            if mesh_refusal(procs, [mesh_listener(s, jwks, hcm_opts) for s in sets]):
                for s in list(sets):
                    err = mesh_refusal(procs, [mesh_listener(s, jwks, hcm_opts)])
                    if err:
                        refused.append({"set": s["tag"], "policies": s["policies"], "error": err})
                        sets.remove(s)
            if not sets:
                continue

            native = make_envoy(procs, [native_listener(s, jwks, hcm_opts) for s in sets])
            mesh = make_envoy(procs, [mesh_listener(s, jwks, hcm_opts) for s in sets])
            # start both, then wait (from this thread: the harness ties a child's life to the
            # thread that started it)
            for e in (native, mesh):
                e.start(wait_ready=False)
            for e in (native, mesh):
                assert e.wait_ready(60), e.proc.tail(40)

            jobs = [(s, r) for s in sets for r in s["requests"]]
            rng.shuffle(jobs)

            def run(chunk):
                conns: dict = {}
                out = []
                for s, req in chunk:
                    data = raw_request(req)
                    statuses = []
                    for side, ip in (("native", NATIVE_IP), ("meshward", MESH_IP)):
                        c = conns.get((side, s["port"], req["source"]))
                        if c is None:
                            c = conns[(side, s["port"], req["source"])] = Conn(ip, s["port"], req["source"])
                        statuses.append(c.status(data))
                    out.append((s, req, *statuses))
                for c in conns.values():
                    c.close()
                return out

            with cf.ThreadPoolExecutor(THREADS) as pool:
                done = [x for part in pool.map(run, [jobs[i::THREADS] for i in range(THREADS)])
                        for x in part]
            for s, req, nat, ours in done:
                total += 1
                denied += nat == 403
                for st in (nat, ours):
                    if st not in (200, 403):
                        other_status[str(st)] = other_status.get(str(st), 0) + 1
                rec = {"set": s["tag"], "port": s["port"], "hcm": hcm_opts, "request": req,
                       "native": nat, "meshward": ours}
                results.write(json.dumps(rec) + "\n")
                if nat != ours:
                    auth = next((v for k, v in req["headers"] if k == "authorization"), "")
                    case = {**rec, "policies": s["policies"],
                            "claims": claims_of.get(auth.removeprefix("Bearer "))}
                    divergences.append(case)
                    div_out.write(json.dumps(case) + "\n")
            for e in (native, mesh):  # checked here: they are stopped before the fixture's teardown
                assert not e.health_problems(), e.health_problems()
                e.stop()

    elapsed = time.monotonic() - started
    summary = (f"authz vs istiod rbac: seed={SEED} requests={total} native_denied={denied} "
               f"divergences={len(divergences)} refused_sets={len(refused)} "
               f"other_statuses={other_status} time={elapsed:.0f}s")
    print(summary)
    (procs.workdir / "differential-summary.txt").write_text(summary + "\n")
    problems = []
    if refused:
        problems.append("policy sets refused by meshward (valid Istio):\n" + "\n".join(
            f"[{r['set']}] {r['error']} policies={json.dumps(r['policies'], separators=(',', ':'))}"
            for r in refused))
    if divergences:
        shown, per_set = [], {}
        for d in divergences:
            if len(shown) < SHOW and per_set.get(d["set"], 0) < 2:
                per_set[d["set"]] = per_set.get(d["set"], 0) + 1
                shown.append(d)
        problems.append(f"{len(shown)} of {len(divergences)} divergences (all in {div_path}):\n"
                        + "\n".join(compact(d) for d in shown))
    assert not problems, summary + "\n" + "\n\n".join(problems)
    assert total >= 10_000, summary
    assert not other_status, f"requests the generator should not produce: {summary}"
    assert 0.1 * total < denied < 0.9 * total, f"generator is lopsided: {summary}"
