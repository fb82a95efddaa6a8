"""Debian `redis-server` as a managed process on a free loopback port (no persistence, so a
restart of Redis loses counters; restarting *Envoy* keeps them, which is what quotas need)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .ports import free_port, wait_listening
from .procs import Proc


def redis_bin() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, workdir: Path, port: int | None = None, name: str = "redis"):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.name = name
        self.proc: Proc | None = None

    def start(self, timeout: float = 10.0) -> "Redis":
        argv = [redis_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"]
        self.proc = Proc(self.name, argv, self.workdir / f"{self.name}.log").start()
        if not wait_listening(self.port, timeout=timeout):
            tail = self.proc.tail(40)
            self.stop()
            raise RuntimeError(f"redis did not listen on {self.port}:\n{tail}")
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
