"""rate-limit lease admission through real Envoy with 4 workers (docs/rate-limit.md, "Leases").

Envoy keeps a connection on the worker that accepted it, so a keep-alive connection is a
handle on one worker's VM (and its leases); each connection's worker is read from Envoy's
per-worker listener stats. Fixed windows (per day, aligned to the epoch) keep the counts exact;
the tests wait out a window edge that is less than a minute away.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.envoy import static_cluster
from harness.rls_proc import rate_limit_filter

WORKERS = 4
DAY = 86_400


def _envoy(procs, cfg):
    echo = procs.echo()
    return procs.envoy([rate_limit_filter(cfg)], [static_cluster("upstream", echo.port)],
                       concurrency=WORKERS).start()


def _rule(requests_: int, key: str) -> dict:
    return {"name": "r", "match": {"prefix": "/limited"}, "key": [{"literal": key}],
            "limit": {"requests": requests_, "per": "day", "algorithm": "fixed_window"}}


def _clear_of_window_edge(margin: float = 60.0) -> None:
    left = DAY - time.time() % DAY
    if left < margin:
        time.sleep(left + 1)


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status


def _cx_totals(e) -> dict[str, int]:
    return {k.split(".worker_")[1].split(".")[0]: v for k, v in e.stats().items()
            if ".worker_" in k and k.startswith("listener.") and k.endswith(".downstream_cx_total")}


def _pinned(e) -> list[http.client.HTTPConnection]:
    """One keep-alive connection on each worker, in worker order. Each probe request goes to a
    path no rule matches, so it takes nothing from any limit."""
    found: dict[str, http.client.HTTPConnection] = {}
    before = _cx_totals(e)
    for _ in range(200):
        c = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
        assert _get(c, "/free") == 200
        after = _cx_totals(e)
        grew = [w for w in after if after[w] > before.get(w, 0)]
        before = after
        if len(grew) == 1 and grew[0] not in found:
            found[grew[0]] = c
        else:
            c.close()
        if len(found) == WORKERS:
            return [found[w] for w in sorted(found)]
    pytest.fail(f"could not open a connection on every worker: {sorted(found)}")


def test_uniform_demand_admits_exactly_n(procs):
    """Every worker keeps demand until no unit is left anywhere (its own leases, the shared slot,
    units other workers gave back): exactly N pass, never more, from far fewer CAS than requests."""
    n = 400
    e = _envoy(procs, {"admission": "lease", "rules": [_rule(n, uuid.uuid4().hex)]})
    conns = _pinned(e)
    _clear_of_window_edge()
    lock = threading.Lock()
    last_ok = [time.monotonic()]
    results: list[list[int]] = [[] for _ in conns]

    def drive(i: int) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            s = _get(conns[i], "/limited")
            results[i].append(s)
            with lock:
                if s == 200:
                    last_ok[0] = time.monotonic()
                # a unit given back on tick (lifetime 0.1 s + 20 ms) would show up well within 1 s
                quiet = time.monotonic() - last_ok[0] > 1.0
            if quiet and 429 in results[i]:
                return

    with ThreadPoolExecutor(len(conns)) as pool:
        list(pool.map(drive, range(len(conns))))
    admitted = [r.count(200) for r in results]
    total = sum(len(r) for r in results)
    print(f"admitted per worker {admitted} of {[len(r) for r in results]} requests")
    assert sum(admitted) == n, admitted
    assert all(a > 0 for a in admitted), admitted
    assert all(set(r) <= {200, 429} for r in results)
    assert e.metric("meshward_rate_limit_allowed", rule="r") == n
    assert e.metric("meshward_rate_limit_limited", rule="r") == total - n
    taken = e.counter("meshward.rate_limit.lease.taken")
    print(f"{taken} leases for {n} admitted requests")
    assert 0 < taken < n // 2, taken


def test_skewed_demand_bound(procs):
    """Three workers take leases and go idle; a fourth (hot) worker drains the rest. It is limited
    while the idle ones still hold units (at most 3 x lease.max), and gets those units once the
    idle leases expire and go back on tick (lifetime + one 20 ms tick): the window still ends at
    exactly N."""
    n, lease_max, lifetime = 400, 16, 3.0
    e = _envoy(procs, {"admission": "lease", "lease": {"max": lease_max, "lifetime": f"{lifetime}s"},
                       "rules": [_rule(n, uuid.uuid4().hex)]})
    hot, *idle = _pinned(e)
    _clear_of_window_edge()
    t0 = time.monotonic()
    # 12 requests per idle worker: leases of 1, 2, 4, 8 -> 3 units left on each
    warm = sum(_get(c, "/limited") == 200 for c in idle for _ in range(12))
    assert warm == 36
    hot_ok = 0
    while _get(hot, "/limited") == 200:
        hot_ok += 1
        assert hot_ok <= n
    held = n - warm - hot_ok
    elapsed = time.monotonic() - t0
    print(f"hot worker limited after {hot_ok}; idle workers hold {held} ({elapsed:.2f} s after the first take)")
    assert 0 <= held <= 3 * lease_max
    if elapsed < lifetime - 0.5:
        # nothing expired yet: exactly what the sizing rule leaves on each idle worker
        assert held == 9, held
    time.sleep(lifetime + 0.5)
    more = 0
    while _get(hot, "/limited") == 200:
        more += 1
        assert more <= held
    assert more == held
    assert warm + hot_ok + more == n
    assert e.metric("meshward_rate_limit_allowed", rule="r") == n
    assert e.counter("meshward.rate_limit.lease.units_returned") == held
    assert e.counter("meshward.rate_limit.lease.units_expired") == 0


def test_per_request_admission_stays_exact(procs):
    """`"admission": "per_request"`: one CAS per request, no leases, exact under a blast of new
    connections spread over the workers."""
    n = 60
    e = _envoy(procs, {"admission": "per_request", "rules": [
        {"name": "r", "key": [{"literal": uuid.uuid4().hex}],
         "limit": {"requests": n, "per": "day", "algorithm": "fixed_window"}}]})
    _clear_of_window_edge()

    def one(_):
        return requests.get(e.url("/"), headers={"connection": "close"}, timeout=10).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(one, range(n * 4)))
    assert statuses.count(200) == n
    assert statuses.count(429) == n * 3
    assert e.counter("meshward.rate_limit.lease.taken") == 0
