"""Debian `redis-server` as a managed process on a free loopback port (no persistence, so a
restart of Redis loses counters; restarting *Envoy* keeps them, which is what quotas need)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .ports import free_port
from .procs import Proc, start_listening


def redis_bin() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, workdir: Path, port: int | None = None, name: str = "redis"):
        self.workdir = Path(workdir)
        self._owned = port is None  # picked here: may be re-picked if another process took it
        self.port = port or free_port()
        self.name = name
        self.proc: Proc | None = None

    def start(self, timeout: float = 10.0) -> "Redis":
        def launch(port: int) -> Proc:
            argv = [redis_bin(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"]
            return Proc(self.name, argv, self.workdir / f"{self.name}.log").start()

        self.proc, self.port = start_listening("redis", launch, self.port, self._owned, timeout)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def command(self, *args: str) -> bytes:
        """One RESP command (for checks such as FLUSHALL / KEYS); returns the raw reply."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload)
            return s.recv(65536)
