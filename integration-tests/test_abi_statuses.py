"""The host calls whose proxy-wasm SDK wrappers panic, against the real Envoy (issue 13,
hardening): Envoy answers BadArgument to a read of request headers it no longer holds (on the
response, once on_http_request_headers returned Continue) and NotFound to set_property in a
root context. The SDK (proxy-wasm 0.2.5) panics on both, which traps the VM; the shipped modules
make these calls through meshward_shared::abi instead, which maps every status to a value.

The module is test-only (integration-tests/late-read-filter/): the plugin configuration picks
the reader, `abi` or `sdk`, for the same late read, so the test shows both the hazard and that
the wrapper avoids it."""

from __future__ import annotations

import pytest
import requests

from harness.envoy import static_cluster, wasm_filter
from harness.wasm_build import build_test_module

PANIC = "unexpected status: 2"  # the SDK's message for BadArgument


@pytest.fixture(scope="module")
def late_wasm() -> str:
    return build_test_module("late-read-filter")


def _envoy(procs, wasm: str, reader: str):
    echo = procs.echo()
    f = wasm_filter(reader, wasm=wasm, name="late", root_id="", vm_id=f"late-{reader}")
    return procs.envoy([f], [static_cluster("upstream", echo.port)], concurrency=1,
                       check_health=False).start()


def test_a_released_header_map_reads_as_absent_through_abi(procs, late_wasm):
    e = _envoy(procs, late_wasm, "abi")
    for i in range(5):
        r = requests.get(e.url(f"/late/{i}"), timeout=10)
        assert r.status_code == 200, (r.status_code, r.text[:200])
        # Envoy let the request headers go: the read answers BadArgument, seen as absent
        assert r.headers.get("x-late-path") == "absent"
        # set_property in the root context (on_configure) answers NotFound: an error, no panic
        assert r.headers.get("x-root-set-property") == "NotFound"
    log = e.log_text()
    assert PANIC not in log and "panicked" not in log
    assert e.health_problems() == []


def test_the_sdk_wrapper_panics_on_the_same_read(procs, late_wasm):
    e = _envoy(procs, late_wasm, "sdk")
    try:
        r = requests.get(e.url("/late/sdk"), timeout=10)
        answered = (r.status_code, r.headers.get("x-late-path"))
    except requests.RequestException as err:
        answered = (None, type(err).__name__)
    # the VM trapped in proxy_on_response_headers: fail closed (Envoy answered 503 here)
    assert answered[0] != 200 and answered[1] is None, answered
    log = e.log_text()
    assert PANIC in log, log[-2000:]
    assert "proxy_on_response_headers failed" in log, log[-2000:]
