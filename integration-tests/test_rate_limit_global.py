"""rate-limit in global and hybrid mode against real Envoy, the repo's ratelimit-service and a
real Redis: two Envoys share one limit, hybrid overshoot stays within its bound, Redis down and
RLS down follow the failure mode without hanging past the deadline and recover, and a quota
survives an Envoy restart."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.envoy import static_cluster
from harness.ports import free_port
from harness.redis_proc import Redis
from harness.rls_proc import Rls, grpc_cluster, rate_limit_filter


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    wd = tmp_path_factory.mktemp("rls")
    redis = Redis(wd).start()
    rls = Rls(wd, redis.url()).start()
    yield type("Backend", (), {"redis": redis, "rls": rls, "workdir": wd})
    rls.stop()
    redis.stop()


def _safe_window():
    """Counting windows align to the epoch: keep a test inside one hour window."""
    if time.time() % 3600 > 3590:
        time.sleep(3600 - time.time() % 3600 + 0.5)


def _cfg(mode, limit, per="hour", key=None, **top):
    rls = {"cluster": "rls", "timeout": "0.25s", **top.pop("rls", {})}
    c = {"mode": mode, "rate_limit_service": rls,
         "rules": [{"name": "shared", "key": [{"literal": key or uuid.uuid4().hex}],
                    "limit": {"requests": limit, "per": per}}]}
    c.update(top)
    return c


def _envoy(procs, cfg, rls_port, concurrency=2, check_health=True):
    echo = procs.echo()
    return procs.envoy([rate_limit_filter(cfg)],
                       [static_cluster("upstream", echo.port), grpc_cluster("rls", rls_port)],
                       concurrency=concurrency, check_health=check_health).start()


def _blast(envoys, n, threads=12):
    def one(i):
        e = envoys[i % len(envoys)]
        t = time.monotonic()
        try:
            s = requests.get(e.url("/"), headers={"connection": "close"}, timeout=10).status_code
        except requests.RequestException:
            s = -1
        return s, time.monotonic() - t
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def test_global_two_envoys_share_one_limit_exactly(procs, backend):
    _safe_window()
    cfg = _cfg("global", 40)
    e1, e2 = _envoy(procs, cfg, backend.rls.port), _envoy(procs, cfg, backend.rls.port)
    res = _blast([e1, e2], 160)
    admitted = sum(1 for s, _ in res if s == 200)
    assert admitted == 40, admitted  # INCRBY is atomic in Redis: tolerance 0
    assert sum(1 for s, _ in res if s == 429) == 120
    lat = sorted(d for _, d in res)
    print(f"global: admitted {admitted}/160 (limit 40); p50 {lat[len(lat)//2]*1000:.1f} ms")
    assert e1.metric("meshward_rate_limit_allowed", rule="shared") + \
        e2.metric("meshward_rate_limit_allowed", rule="shared") == 40


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_hybrid_overshoot_stays_within_the_bound(procs, backend, share):
    """Bound (docs/rate-limit.md): admitted <= min(P*share*L, L + (P-1)*share*L) for P proxies;
    share = 1/P gives no overshoot at all."""
    _safe_window()
    limit, proxies = 60, 2
    cfg = _cfg("hybrid", limit, hybrid={"share": share, "sync_interval": "0.05s"})
    envoys = [_envoy(procs, cfg, backend.rls.port) for _ in range(proxies)]
    admitted = 0
    for _ in range(6):  # bursts with pauses, so syncs happen in between
        admitted += sum(1 for s, _ in _blast(envoys, 40) if s == 200)
        time.sleep(0.2)
    bound = int(min(proxies * share * limit, limit + (proxies - 1) * share * limit))
    print(f"hybrid share={share}: admitted {admitted} for limit {limit} across {proxies} Envoys "
          f"(overshoot {admitted - limit}, bound {bound - limit})")
    assert admitted <= bound, admitted
    assert admitted >= limit * min(1.0, proxies * share) * 0.9, admitted
    assert sum(e.counter("meshward.rate_limit.hybrid_sync_ok") for e in envoys) > 0


def test_quota_survives_envoy_restart(procs, backend):
    cfg = _cfg("global", 5, per="day")
    e = _envoy(procs, cfg, backend.rls.port, check_health=False)
    assert [e.request("/").status_code for _ in range(3)] == [200] * 3
    e.stop()
    e2 = _envoy(procs, cfg, backend.rls.port)
    assert [e2.request("/").status_code for _ in range(4)] == [200, 200, 429, 429]


def _timed(e):
    t = time.monotonic()
    r = requests.get(e.url("/"), timeout=10)
    return r.status_code, time.monotonic() - t


def test_rls_down_failure_modes_and_recovery(procs, backend, tmp_path):
    redis_url = backend.redis.url()
    rls = Rls(tmp_path, redis_url, name="rls-fault").start()
    closed = _envoy(procs, _cfg("global", 1000), rls.port)
    opened = _envoy(procs, _cfg("global", 1000, rls={"failure_mode_deny": False}), rls.port)
    assert _timed(closed)[0] == 200 and _timed(opened)[0] == 200
    rls.stop()
    for _ in range(3):
        s, d = _timed(closed)
        assert s == 503 and d < 1.0, (s, d)
        s, d = _timed(opened)
        assert s == 200 and d < 1.0, (s, d)
    rls = Rls(tmp_path, redis_url, port=rls.port, name="rls-fault2").start()
    from harness.procs import wait_until
    assert wait_until(lambda: _timed(closed)[0] == 200, 10)
    rls.stop()


def test_redis_down_failure_mode_and_recovery(procs, tmp_path):
    redis = Redis(tmp_path, name="redis-fault").start()
    rls = Rls(tmp_path, redis.url(), name="rls-redis-fault").start()
    try:
        closed = _envoy(procs, _cfg("global", 1000), rls.port)
        opened = _envoy(procs, _cfg("global", 1000, rls={"failure_mode_deny": False}), rls.port)
        assert _timed(closed)[0] == 200
        redis.stop()
        for _ in range(3):
            s, d = _timed(closed)
            assert s == 503 and d < 1.0, (s, d)
            s, d = _timed(opened)
            assert s == 200 and d < 1.0, (s, d)
        redis = Redis(tmp_path, port=redis.port, name="redis-fault2").start()
        from harness.procs import wait_until
        assert wait_until(lambda: _timed(closed)[0] == 200, 10)
        assert closed.metric("meshward_rate_limit_rls_error", rule="shared") >= 3
    finally:
        rls.stop()
        redis.stop()


def test_a_silent_rls_never_holds_a_request_past_the_deadline(procs):
    """A peer that accepts connections and never answers: our own tick deadline decides."""
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    try:
        closed = _envoy(procs, _cfg("global", 10, rls={"timeout": "0.2s"}), port)
        opened = _envoy(procs, _cfg("global", 10, rls={"timeout": "0.2s", "failure_mode_deny": False}), port)
        for e, want in ((closed, 503), (opened, 200)):
            for _ in range(3):
                s, d = _timed(e)
                assert s == want and d < 0.6, (s, d)
        assert closed.metric("meshward_rate_limit_rls_timeout", rule="shared") + \
            closed.metric("meshward_rate_limit_rls_error", rule="shared") >= 3
    finally:
        stop.set()
        srv.close()
        for c in held:
            c.close()


def test_global_path_added_latency(procs, backend):
    """Sequential requests on one keep-alive connection: local mode vs global mode (RLS + Redis
    on loopback). Prints the medians; the added median must stay under 5 ms here."""
    import statistics

    def direct(cfg):
        # direct_response: no upstream, so the filter's own cost is what differs
        e = procs.envoy([rate_limit_filter(cfg)], [grpc_cluster("rls", backend.rls.port)])
        hcm = e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"] = [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]
        return e.start()

    local = direct({"rules": [{"name": "l", "limit": {"requests": 10**9, "per": "second"}}]})
    glob = direct(_cfg("global", 10**9, per="second"))

    def median(e):
        s = requests.Session()
        for _ in range(20):
            s.get(e.url("/"))
        ts = []
        for _ in range(200):
            t = time.perf_counter()
            assert s.get(e.url("/")).status_code == 200
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1000

    m_local, m_global = median(local), median(glob)
    print(f"median latency: local {m_local:.2f} ms, global {m_global:.2f} ms, "
          f"added {m_global - m_local:.2f} ms")
    assert m_global - m_local < 5.0


def test_a_cluster_name_that_parses_as_a_grpc_service_message(procs, backend):
    """Envoy reads a gRPC call's upstream as a serialized GrpcService when the bytes parse as one,
    and as a cluster name only when they do not. `a-cluster` parses (field 12, fixed64: the other
    8 bytes), leaving a service with no target: with the bare name, Envoy 1.40 aborted the whole
    process ("panic: unset oneof"). The module sends the message itself (envoy_grpc.cluster_name),
    so any name works."""
    _safe_window()
    cfg = _cfg("global", 3, rls={"cluster": "a-cluster"})
    echo = procs.echo()
    e = procs.envoy([rate_limit_filter(cfg)],
                    [static_cluster("upstream", echo.port), grpc_cluster("a-cluster", backend.rls.port)],
                    concurrency=1).start()
    statuses = [requests.get(e.url("/"), timeout=10).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert e.metric("meshward_rate_limit_rls_error", rule="shared") == 0


def test_an_rls_cluster_envoy_does_not_have_follows_the_failure_mode_at_once(procs, backend):
    """The upstream goes as a GrpcService message, so Envoy no longer looks the name up before
    the call; a cluster it does not have must still fail the call, not hang the request."""
    echo = procs.echo()
    for deny, expected in ((True, 503), (False, 200)):
        cfg = _cfg("global", 3, rls={"cluster": "not-configured", "failure_mode_deny": deny})
        e = procs.envoy([rate_limit_filter(cfg)], [static_cluster("upstream", echo.port)],
                        concurrency=1).start()
        t = time.monotonic()
        statuses = [requests.get(e.url("/"), timeout=10).status_code for _ in range(3)]
        took = time.monotonic() - t
        assert statuses == [expected] * 3, (deny, statuses)
        assert took < 3 * 0.25 + 1.0, took  # within the call timeout, not Envoy's default
        assert e.metric("meshward_rate_limit_rls_error", rule="shared") == 3
