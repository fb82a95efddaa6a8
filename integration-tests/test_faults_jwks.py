"""Faults of the JWKS and OIDC discovery endpoints, through a real Envoy (issue 13).

The endpoint is a Python server the test controls (harness/fault_http.py). Each Envoy has two
providers on it: `j` (remote_jwks at /j/jwks) and `d` (oidc_discovery from /d, whose
discovery document is the one made to fail; its jwks_uri /d/jwks stays healthy).

For each fault: requests get `jwks_unavailable_status` (503 here; 401 by default, covered in
test_jwt_remote.py) no later than jwks_pending_timeout plus the 250 ms tick and scheduling;
the endpoint is then fixed and requests pass again with no restart, within the documented
retry backoff (1 s doubling, capped at 10 s while no keys ever loaded); Envoy stays healthy
(the `procs` fixture checks its log for VM crashes on teardown).

Faults after the keys loaded (on refresh) keep the last good keys: covered below for every
fault at once, with fresh tokens so each request needs the keys.
"""

from __future__ import annotations

import threading
import time

import pytest

from harness import tokens as tk
from harness.checks import assert_denied
from harness.envoy import jwt_auth_filter, static_cluster
from harness.fault_http import MIB, FaultyHttp
from harness.procs import wait_until

AUD = "urn:meshward:faults"
HTTP_TIMEOUT = 0.5   # remote_jwks.http_uri.timeout / oidc_discovery.timeout
PENDING = 1.5        # jwks_pending_timeout
TICK = 0.25          # the filter's tick (docs/jwt-auth.md, "Remote keys")
# a paused request is answered within the pending timeout plus one tick, plus scheduling on
# this shared 2-core box
DENY_BOUND = PENDING + TICK + 1.0
# recovery: the next retry comes after at most the 10 s backoff cap (no keys loaded yet),
# then one fetch (timeout) and one tick
RECOVERY_BOUND = 10 + HTTP_TIMEOUT + TICK + 2.0

JWKS_PATH = "/j/jwks"
DISCOVERY_PATH = "/d/.well-known/openid-configuration"


def _server(key) -> FaultyHttp:
    srv = FaultyHttp()
    port = srv.reserve_port()
    base = f"http://127.0.0.1:{port}"
    srv.serve(JWKS_PATH, tk.jwks(key))
    srv.serve(DISCOVERY_PATH, {"issuer": f"{base}/d", "jwks_uri": f"{base}/d/jwks"})
    srv.serve("/d/jwks", tk.jwks(key))
    return srv


def _config(port: int, pending: float = PENDING, cache: str = "600s") -> dict:
    base = f"http://127.0.0.1:{port}"
    return {
        "providers": {
            "j": {"issuer": f"{base}/j", "audiences": [AUD],
                  "remote_jwks": {"http_uri": {"uri": f"{base}{JWKS_PATH}", "cluster": "idp",
                                               "timeout": f"{HTTP_TIMEOUT}s"},
                                  "cache_duration": cache}},
            "d": {"issuer": f"{base}/d", "audiences": [AUD],
                  "oidc_discovery": {"cluster": "idp", "timeout": f"{HTTP_TIMEOUT}s",
                                     "cache_duration": cache}},
        },
        "rules": [{"match": {"prefix": "/j/"}, "requires": {"provider_name": "j"}},
                  {"match": {"prefix": "/d/"}, "requires": {"provider_name": "d"}}],
        "jwks_unavailable_status": 503,
        "jwks_pending_timeout": f"{pending}s",
        # every test token is fresh (unique sub), so each request needs the keys
    }


def _envoy(procs, srv, **kw):
    echo = procs.echo()
    return procs.envoy([jwt_auth_filter(_config(srv.port, **kw))],
                       [static_cluster("upstream", echo.port),
                        static_cluster("idp", srv.port, connect_timeout="0.25s")]).start()


def _token(key, port, prov, n=0):
    return tk.mint(key, tk.claims(f"http://127.0.0.1:{port}/{prov}", AUD, sub=f"u{n}-{time.time_ns()}"))


def _timed(envoy, path, tok):
    t = time.monotonic()
    r = envoy.request(path, tok, timeout=30)
    return r, time.monotonic() - t


def _both(envoy, key, port, tag):
    """One request per provider, concurrently: {prov: (response, seconds)}."""
    out = {}

    def one(prov):
        out[prov] = _timed(envoy, f"/{prov}/{tag}", _token(key, port, prov))
    ths = [threading.Thread(target=one, args=(p,)) for p in ("j", "d")]
    for t in ths:
        t.start()
    for t in ths:
        t.join(40)
    return out


def _counter(envoy, prov, what):
    return int(envoy.metric(f"meshward_jwt_auth_{what}", provider=prov))


FAILING = {
    # fault name in harness/fault_http.py -> extra options
    "down": {},
    "slow": {"delay": HTTP_TIMEOUT + 2.5},   # answers after the callout timeout (and our deadline)
    "garbage": {},
    "huge": {"size": MIB + 1},               # docs/jwt-auth.md: documents over 1 MiB are refused
    "html": {},                              # wrong content type, and an HTML body (a login page)
    "redirect": {"status": 302},             # 3xx is not followed: non-200 is a failed fetch
    "status500": {},
}


@pytest.mark.parametrize("fault", list(FAILING))
def test_endpoint_fault_before_first_keys_then_recovery(procs, fault):
    key = tk.rsa_key("fk1")
    srv = _server(key)
    for p in (JWKS_PATH, DISCOVERY_PATH):
        if fault != "down":
            srv.set_fault(p, fault, **FAILING[fault])
    if fault != "down":
        srv.start()
    try:
        envoy = _envoy(procs, srv)
        port = srv.port
        # 1. the configured mode holds, within the deadline
        for rnd in range(1):
            res = _both(envoy, key, port, f"{fault}/{rnd}")
            for prov, (r, dt) in res.items():
                assert_denied(r, 503, "jwks_unavailable")
                assert dt < DENY_BOUND, (fault, prov, dt)
                # paused for the pending timeout, not refused at once
                assert dt >= PENDING - 0.3, (fault, prov, dt)
            print(f"{fault}: 503 jwks_unavailable after "
                  + ", ".join(f"{p} {dt:.2f}s" for p, (_, dt) in sorted(res.items())))
        for prov in ("j", "d"):
            assert _counter(envoy, prov, "jwks_fetch_success") == 0, prov
            if fault != "down" and fault != "slow":
                assert _counter(envoy, prov, "jwks_fetch_failed") >= 1, prov
        if fault == "redirect":  # the redirect was not followed
            assert not [h for _, h in srv.hits if h.endswith("?moved")]
        assert [r for r in envoy.access_log() if r.get("status") == 200] == []

        # 2. fix the endpoint: requests pass again, no restart
        for p in (JWKS_PATH, DISCOVERY_PATH):
            srv.set_fault(p, None)
        if fault == "down":
            srv.start()
        fixed = time.monotonic()
        worst = 0.0
        recovered = {}
        while len(recovered) < 2 and time.monotonic() - fixed < RECOVERY_BOUND:
            for prov, (r, dt) in _both(envoy, key, port, f"{fault}/recover").items():
                worst = max(worst, dt)
                assert dt < DENY_BOUND, (fault, prov, dt)
                if r.status_code == 200:
                    recovered.setdefault(prov, time.monotonic() - fixed)
                else:
                    assert_denied(r, 503, "jwks_unavailable")
        assert set(recovered) == {"j", "d"}, (fault, recovered)
        print(f"{fault}: recovered after " + ", ".join(f"{p} {s:.2f}s" for p, s in sorted(recovered.items()))
              + f" (slowest request {worst:.2f}s)")
        # both workers load keys in time; every request passes from here
        assert wait_until(lambda: all(_both(envoy, key, port, "after")[p][0].status_code == 200
                                      for p in ("j", "d")), RECOVERY_BOUND)
    finally:
        srv.stop()


@pytest.mark.parametrize("fault", ["text_json", "at_limit", "bad_header"])
def test_endpoint_quirks_that_still_load(procs, fault):
    """A JWKS with a wrong content type (text/plain) but a JSON body loads: the content type is
    not checked, as in Envoy's jwt_authn. A document of exactly 1 MiB is at the limit, not over
    it, and loads. A response header whose value is not UTF-8 is read without a VM panic (the
    SDK's string getter would unwrap it) and the document loads."""
    key = tk.rsa_key("fk2")
    srv = _server(key)
    for p in (JWKS_PATH, DISCOVERY_PATH):
        srv.set_fault(p, fault)
    srv.start()
    try:
        envoy = _envoy(procs, srv)
        for prov, (r, dt) in _both(envoy, key, srv.port, fault).items():
            assert r.status_code == 200, (prov, r.status_code, r.text)
            assert dt < DENY_BOUND, (prov, dt)
            assert _counter(envoy, prov, "jwks_fetch_success") >= 1
    finally:
        srv.stop()


def test_faults_on_refresh_keep_the_last_good_keys(procs):
    """Keys loaded, then every fault in turn while the background refresh runs (cache_duration
    2 s: refresh after 1.8 s): requests with fresh tokens (no token cache) keep passing without
    waiting, failed refreshes are counted, and refreshes succeed again once the endpoint is
    fixed."""
    key = tk.rsa_key("fk3")
    srv = _server(key).start()
    try:
        envoy = _envoy(procs, srv, cache="2s")
        assert wait_until(lambda: all(_both(envoy, key, srv.port, "warm")[p][0].status_code == 200
                                      for p in ("j", "d")), 10)
        worst = 0.0
        sent = 0
        for fault in ["garbage", "huge", "html", "redirect", "status500", "slow", "down"]:
            if fault == "down":
                srv.stop()
            else:
                for p in (JWKS_PATH, "/d/jwks"):
                    srv.set_fault(p, fault, **FAILING[fault])
            t_end = time.monotonic() + 0.8
            while time.monotonic() < t_end:
                for prov, (r, dt) in _both(envoy, key, srv.port, f"refresh/{fault}").items():
                    assert r.status_code == 200, (fault, prov, r.status_code, r.text)
                    worst = max(worst, dt)
                    sent += 1
                time.sleep(0.05)
        failed = {p: _counter(envoy, p, "jwks_fetch_failed") for p in ("j", "d")}
        assert all(v >= 1 for v in failed.values()), failed
        print(f"refresh faults: {sent} requests, all 200, slowest {worst * 1000:.0f} ms; "
              f"failed refreshes {failed}")
        assert worst < 0.5, worst  # nobody waits for a failing refresh
        srv.start()
        for p in (JWKS_PATH, "/d/jwks"):
            srv.set_fault(p, None)
        ok = {p: _counter(envoy, p, "jwks_fetch_success") for p in ("j", "d")}
        assert wait_until(lambda: all(_counter(envoy, p, "jwks_fetch_success") > ok[p] for p in ok),
                          RECOVERY_BOUND + 50), ok  # backoff may have reached its 60 s cap
    finally:
        srv.stop()
