"""The harness survives losing a port race: ports are picked by binding port 0 and releasing
it, so another process can take one before Envoy binds it. Envoy.start() then retries with
new ports instead of failing the test (or silently sharing a listener with another Envoy)."""

from __future__ import annotations

import socket

import pytest

from harness.envoy import Envoy, static_cluster
from harness.ports import listening_sockets


def _envoy(workdir, name: str, echo_port: int, concurrency: int = 2) -> Envoy:
    return Envoy(workdir, [], [static_cluster("upstream", echo_port)], name=name,
                 concurrency=concurrency)


def test_a_taken_listener_port_is_replaced(procs, tmp_path):
    echo = procs.echo()
    e = _envoy(tmp_path, "taken-listener", echo.port)
    picked = e.port
    thief = socket.socket()
    thief.bind(("127.0.0.1", picked))
    thief.listen()
    try:
        e.start()
        assert e.port != picked
        assert e.request("/").status_code == 200
        assert (tmp_path / "taken-listener.bind-retry0.log").exists()
        assert "Address already in use" not in e.log_text()
    finally:
        e.stop()
        thief.close()


def test_a_taken_admin_port_is_replaced(procs, tmp_path):
    echo = procs.echo()
    e = _envoy(tmp_path, "taken-admin", echo.port)
    picked = e.admin_port
    # a connected socket, like a client's ephemeral port, is enough to block the bind
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    thief = socket.create_connection(server.getsockname(), source_address=("127.0.0.1", picked))
    try:
        e.start()
        assert e.admin_port != picked
        assert e.stats(), "admin answers"
        assert e.request("/").status_code == 200
    finally:
        e.stop()
        thief.close()
        server.close()


def test_a_listener_held_by_another_envoy_is_not_shared(procs, tmp_path):
    """Envoy sets SO_REUSEPORT on listeners: a second Envoy on the same port would start
    and take part of the traffic. The harness notices and moves the second one."""
    echo = procs.echo()
    first = _envoy(tmp_path, "first", echo.port).start()
    second = _envoy(tmp_path, "second", echo.port)
    second.config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = first.port
    second.port = first.port
    try:
        second.start()
        assert second.port != first.port
        assert listening_sockets(first.port) == first.concurrency
        assert listening_sockets(second.port) == second.concurrency
        for _ in range(20):
            assert first.request("/", headers={"connection": "close"}).status_code == 200
        assert first.counter("http.ingress.downstream_rq_completed") >= 20
        assert second.counter("http.ingress.downstream_rq_completed") == 0
    finally:
        second.stop()
        first.stop()


def test_taken_redis_and_rls_ports_are_replaced(tmp_path):
    """Redis and the rate-limit service on a port another process holds: each fails to bind
    and exits, while a "something listens there" check would pass against the intruder. The
    harness checks its own process is alive and moves to a new port."""
    from harness.redis_proc import Redis
    from harness.rls_proc import Rls

    redis = Redis(tmp_path, name="redis-taken")
    thief = socket.socket()
    thief.bind(("127.0.0.1", redis.port))
    thief.listen()
    picked = redis.port
    rls = None
    try:
        redis.start()
        assert redis.port != picked
        assert redis.command("PING").startswith(b"+PONG")
        rls = Rls(tmp_path, redis.url(), name="rls-taken")
        thief.close()
        thief = socket.socket()
        thief.bind(("127.0.0.1", rls.port))
        thief.listen()
        picked = rls.port
        rls.start()
        assert rls.port != picked and rls.proc.alive()
        # an explicit port is the caller's choice: no silent move
        with pytest.raises(RuntimeError):
            Rls(tmp_path, redis.url(), port=picked, name="rls-explicit").start(timeout=2)
    finally:
        thief.close()
        if rls:
            rls.stop()
        redis.stop()
