"""The repo's `ratelimit-service` (dist/ratelimit-service, built by `make build`) as a managed
process, plus the Envoy pieces that reach it: an HTTP/2 cluster and the rate-limit wasm filter."""

from __future__ import annotations

import json
from pathlib import Path

from . import DIST, REPO_ROOT
from .envoy import static_cluster, wasm_filter
from .ports import free_port
from .procs import Proc, start_listening


def rls_bin() -> Path:
    for p in (DIST / "ratelimit-service", REPO_ROOT / "target" / "release" / "ratelimit-service",
              REPO_ROOT / "target" / "debug" / "ratelimit-service"):
        if p.exists():
            return p
    raise FileNotFoundError("ratelimit-service binary missing: run `make build`")


class Rls:
    def __init__(self, workdir: Path, redis_url: str, port: int | None = None, name: str = "rls",
                 redis_timeout_ms: int = 100):
        self.workdir = Path(workdir)
        self.redis_url = redis_url
        self._owned = port is None  # picked here: may be re-picked if another process took it
        self.port = port or free_port()
        self.name = name
        self.redis_timeout_ms = redis_timeout_ms
        self.proc: Proc | None = None

    def start(self, timeout: float = 10.0) -> "Rls":
        def launch(port: int) -> Proc:
            argv = [rls_bin(), "--listen", f"127.0.0.1:{port}", "--redis", self.redis_url,
                    "--redis-timeout-ms", str(self.redis_timeout_ms)]
            return Proc(self.name, argv, self.workdir / f"{self.name}.log").start()

        self.proc, self.port = start_listening("ratelimit-service", launch, self.port, self._owned, timeout)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


def grpc_cluster(name: str, port: int, connect_timeout: str = "0.25s") -> dict:
    """A static cluster speaking HTTP/2 (gRPC) to 127.0.0.1:port."""
    c = static_cluster(name, port, connect_timeout=connect_timeout)
    c["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    return c


def rate_limit_filter(config: dict | str, wasm: str = "dist/rate-limit.wasm") -> dict:
    return wasm_filter(config if isinstance(config, str) else json.dumps(config), wasm=wasm,
                       name="meshward.rate_limit", root_id="rate_limit", vm_id="meshward_rate_limit")


def start_stack(workdir: Path, redis_port: int | None = None, rls_port: int | None = None) -> tuple:
    """Redis + ratelimit-service, for `make run` / scripts: returns (redis, rls); stop both
    with `.stop()`. envoy-configs/rate-limit-global.yaml expects rls_port=8081."""
    from .redis_proc import Redis

    redis = Redis(workdir, port=redis_port).start()
    try:
        rls = Rls(workdir, redis.url(), port=rls_port).start()
    except Exception:
        redis.stop()
        raise
    return redis, rls
