"""`make run` is tested through its non-interactive mode: scripts/run_demo.py --check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness import REPO_ROOT
from harness.ports import free_port, wait_listening

SCRIPT = REPO_ROOT / "scripts" / "run_demo.py"


def test_run_demo_check(jwt_wasm):
    p = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "check passed" in out
    assert "TOKEN=" in out and "curl" in out and "/stats" in out


def test_run_demo_runs_the_suite_by_default_and_the_same_sections_standalone(jwt_wasm, tmp_path):
    """`make run` loads dist/meshward.wasm; `make run MODULES=standalone` the three modules with
    the same sections. Both pass the same checks."""
    for modules, banner, loads in (("suite", "one module, dist/meshward.wasm", "meshward suite: stages"),
                                   ("standalone", "three standalone modules", "meshward authz: configured")):
        env = dict(os.environ, MODULES=modules)
        run_dir = tmp_path / modules
        p = subprocess.run([sys.executable, str(SCRIPT), "--check", "--run-dir", str(run_dir)], cwd=REPO_ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out[-4000:]
        assert banner in out and "check passed" in out, out[-2000:]
        assert loads in (run_dir / "envoy.log").read_text()


def test_run_demo_global_mode_starts_redis_and_the_service(jwt_wasm):
    """`make run RATE_LIMIT_MODE=global`: the same checks, with the limit counted in Redis
    through the shipped rate-limit service, which the demo starts and stops itself."""
    env = dict(os.environ, RATE_LIMIT_MODE="global")
    p = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "rate limit global mode (Redis + rate-limit service" in out
    assert "check passed" in out
    service = str(REPO_ROOT / "dist" / "ratelimit-service")
    leftovers = subprocess.run(["pgrep", "-f", service], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "the demo left the rate-limit service running"


def test_run_demo_stops_everything_on_sigint(jwt_wasm, tmp_path):
    """Interactive mode: SIGINT stops Envoy and the upstream, leaving nothing listening."""
    port, admin, up = free_port(), free_port(), free_port()
    p = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port), "--admin-port", str(admin),
                          "--upstream-port", str(up), "--run-dir", str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert wait_listening(port, timeout=40), "demo listener never came up"
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        assert "Ctrl-C" in out
        for q in (port, admin, up):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and wait_listening(q, timeout=0.2):
                time.sleep(0.2)
            assert not wait_listening(q, timeout=0.2), f"port {q} still listening after Ctrl-C"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
