"""Debian `docker-registry` (the CNCF distribution registry, v2 API) as a managed process on a
free loopback port, plain HTTP, no auth, its storage in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .ports import free_port
from .procs import Proc, start_listening


def registry_bin() -> str:
    return shutil.which("docker-registry") or "/usr/bin/docker-registry"


def skopeo_bin() -> str:
    return shutil.which("skopeo") or "/usr/bin/skopeo"


class Registry:
    def __init__(self, workdir: Path, port: int | None = None, name: str = "registry"):
        self.workdir = Path(workdir)
        self._owned = port is None  # picked here: may be re-picked if another process took it
        self.port = port or free_port()
        self.name = name
        self.proc: Proc | None = None

    def _config(self, port: int) -> Path:
        storage = self.workdir / f"{self.name}-storage"
        storage.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / f"{self.name}-{port}.yml"
        # JSON is YAML: no YAML writer needed.
        cfg.write_text(
            '{"version": "0.1", "log": {"level": "info", "accesslog": {"disabled": true}},'
            f' "storage": {{"filesystem": {{"rootdirectory": "{storage}"}}}},'
            f' "http": {{"addr": "127.0.0.1:{port}"}}}}\n')
        return cfg

    def start(self, timeout: float = 15.0) -> "Registry":
        def launch(port: int) -> Proc:
            argv = [registry_bin(), "serve", str(self._config(port))]
            return Proc(self.name, argv, self.workdir / f"{self.name}.log").start()

        self.proc, self.port = start_listening("docker-registry", launch, self.port, self._owned,
                                               timeout)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run skopeo with the given arguments; the caller checks returncode/stderr."""
    return subprocess.run([skopeo_bin(), *args], capture_output=True, text=True, timeout=timeout)
