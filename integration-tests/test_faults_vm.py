"""VM failure: Envoy's Wasm `failure_policy` (envoy.extensions.wasm.v3.PluginConfig, Envoy 1.40:
FAIL_CLOSED (the default, also for UNSPECIFIED), FAIL_OPEN, FAIL_RELOAD with `reload_config.backoff`)
exercised by a module that traps (issue 13).

No meshward module can be made to trap by config (no panics in the data path, by design), so
the trap comes from a test-only proxy-wasm crate, integration-tests/trap-filter/ (not a
workspace member; built here with cargo, cached in its own target/): `x-trap: 1` executes
`unreachable`. It runs first, in its own VM, in front of the shipped jwt-auth (local JWKS).
One Envoy worker, so every request meets the VM that trapped.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests

from harness import REPO_ROOT
from harness.configs import LOCAL_AUD, LOCAL_ISS, local_jwt_config
from harness.envoy import jwt_auth_filter, static_cluster, wasm_filter
from harness import tokens as tk

CRATE = Path(__file__).resolve().parent / "trap-filter"
WASM = CRATE / "target" / "wasm32-wasip1" / "release" / "trap_filter.wasm"
TRAP_LINE = "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"
RELOAD_BACKOFF = 0.3  # reload_config.backoff.base_interval


@pytest.fixture(scope="session")
def trap_wasm() -> str:
    sources = [CRATE / "Cargo.toml", CRATE / "src" / "lib.rs"]
    if not WASM.exists() or WASM.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        p = subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1"],
                           cwd=CRATE, capture_output=True, text=True, timeout=170)
        if p.returncode != 0:  # offline first run: the lock file pins what ~/.cargo holds
            p = subprocess.run(["cargo", "build", "--offline", "--release", "--target", "wasm32-wasip1"],
                               cwd=CRATE, capture_output=True, text=True, timeout=170)
        assert p.returncode == 0, p.stderr[-3000:]
    return str(WASM.relative_to(REPO_ROOT))


def _trap_filter(wasm, policy):
    f = wasm_filter("{}", wasm=wasm, name="trap", root_id="", vm_id="trap")
    cfg = f["typed_config"]["config"]
    if policy is not None:
        cfg["failure_policy"] = policy
    if policy == "FAIL_RELOAD":
        cfg["reload_config"] = {"backoff": {"base_interval": f"{RELOAD_BACKOFF}s",
                                            "max_interval": f"{RELOAD_BACKOFF * 4}s"}}
    return f


def _start(procs, keys, trap_wasm, policy):
    echo = procs.echo()
    e = procs.envoy([_trap_filter(trap_wasm, policy), jwt_auth_filter(local_jwt_config(keys))],
                    [static_cluster("upstream", echo.port)], concurrency=1, check_health=False)
    return echo, e.start()


def _get(e, token=None, trap=False):
    h = {"authorization": f"Bearer {token}"} if token else {}
    if trap:
        h["x-trap"] = "1"
    t = time.monotonic()
    r = requests.get(e.url("/api"), headers=h, timeout=10)
    return r, time.monotonic() - t


def _vm(r):
    return r.headers.get("x-trap-vm-id"), r.headers.get("x-trap-vm-seq")


def _healthy_apart_from_the_trap(e, traps):
    problems = [p for p in e.health_problems() if TRAP_LINE not in p]
    assert problems == [], problems
    assert e.log_text().count(TRAP_LINE) == traps


@pytest.mark.parametrize("policy", [None, "FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"])
def test_trapping_module_under_each_failure_policy(procs, keys, trap_wasm, policy):
    echo, e = _start(procs, keys, trap_wasm, policy)
    tok = tk.mint(keys.rsa, tk.claims(LOCAL_ISS, LOCAL_AUD))
    r, _ = _get(e, tok)
    assert r.status_code == 200 and _vm(r)[1] == "1", (r.status_code, r.headers)
    vm_before = _vm(r)[0]
    assert _get(e)[0].status_code == 401  # jwt-auth behind it enforces

    # the request that traps: 503 under every policy, never reaches the upstream
    echo.reset()
    r, dt = _get(e, tok, trap=True)
    trapped_at = time.monotonic()
    assert r.status_code == 503, (policy, r.status_code, r.text)
    assert dt < 1.0 and echo.snapshot() == []
    print(f"{policy or 'unspecified'}: trapping request -> {r.status_code} {r.text!r} in {dt * 1000:.0f} ms")

    after = [(_get(e, tok), _get(e)) for _ in range(5)]
    if policy in (None, "FAIL_CLOSED"):
        # the worker's VM is dead for good: every request on it is 503, the upstream sees none
        for (ok, _), (no_tok, _) in after:
            assert ok.status_code == 503 and no_tok.status_code == 503
        time.sleep(1.0)
        assert _get(e, tok)[0].status_code == 503  # no recovery without a restart (or new config)
        assert echo.snapshot() == []
    elif policy == "FAIL_OPEN":
        # the trapped module is skipped from then on; the next module (its own VM) still enforces
        for (ok, _), (no_tok, _) in after:
            assert ok.status_code == 200 and _vm(ok) == (None, None), ok.headers
            assert no_tok.status_code == 401
    else:  # FAIL_RELOAD: 503 until the backoff passes, then a fresh VM
        deadline = trapped_at + RELOAD_BACKOFF * 4 + 2.0
        first_ok = None
        while time.monotonic() < deadline:
            r, _ = _get(e, tok)
            if r.status_code == 200:
                first_ok = time.monotonic() - trapped_at
                break
            assert r.status_code == 503
            time.sleep(0.02)
        assert first_ok is not None, "VM not reloaded"
        vm_after, seq = _vm(r)
        assert vm_after != vm_before and seq == "1", (vm_before, vm_after, seq)  # fresh VM state
        assert _get(e)[0].status_code == 401
        assert e.counter("wasm.trap.vm_reload_success") >= 1
        print(f"FAIL_RELOAD: first 200 {first_ok * 1000:.0f} ms after the trap "
              f"(backoff base {RELOAD_BACKOFF * 1000:.0f} ms), new VM")
        # and it can trap and come back again
        assert _get(e, tok, trap=True)[0].status_code == 503
        from harness.procs import wait_until
        assert wait_until(lambda: _get(e, tok)[0].status_code == 200, RELOAD_BACKOFF * 4 + 3)
    _healthy_apart_from_the_trap(e, traps=2 if policy == "FAIL_RELOAD" else 1)
