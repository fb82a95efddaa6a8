"""A private Docker daemon for tests: Debian `docker.io`'s dockerd with its data root, exec root,
pidfile and socket in a temporary directory, no iptables, no bridge (containers use the host
network), so it touches nothing of a Docker the machine may already run.

    d = PrivateDockerd(Path(tempfile.mkdtemp(prefix="mwd-", dir="/tmp"))).start()
    subprocess.run([DOCKER, "info"], env=d.env(), ...)
    d.stop()   # stops the daemon, unmounts what it left mounted, removes the directory
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from .procs import Proc, wait_until

# Debian docker.io's binaries by path: another (newer) client may come first on PATH.
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
COMPOSE = "/usr/bin/docker-compose"


class DockerdError(RuntimeError):
    pass


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


class PrivateDockerd:
    def __init__(self, root: Path):
        # The socket path must stay short (108 bytes, and containerd's socket lives in the
        # exec root): keep `root` near /tmp.
        self.root = Path(root)
        self.sock = self.root / "docker.sock"
        self.proc: Proc | None = None

    def env(self) -> dict:
        env = dict(os.environ)
        env["DOCKER_HOST"] = f"unix://{self.sock}"
        env.pop("DOCKER_CONTEXT", None)
        return env

    def _ping(self) -> bool:
        try:
            r = subprocess.run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=self.env(),
                               capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0 and bool(r.stdout.strip())

    def start(self, timeout: float = 30.0) -> "PrivateDockerd":
        for binary in (DOCKERD, DOCKER, COMPOSE):
            if not os.access(binary, os.X_OK):
                raise DockerdError(f"{binary} missing: install Debian docker.io and docker-compose "
                                   "(`make deps` does)")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [DOCKERD, "--data-root", self.root / "data", "--exec-root", self.root / "exec",
                "--pidfile", self.root / "dockerd.pid", "--host", f"unix://{self.sock}",
                "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"]
        self.proc = Proc("dockerd", argv, self.root / "dockerd.log").start()
        if not wait_until(lambda: not self.proc.alive() or self._ping(), timeout, 0.2) or not self.proc.alive():
            rc = self.proc.returncode()
            how = f"exited with status {rc}" if rc is not None else f"did not answer within {timeout:.0f}s"
            tail = self.proc.tail(25)
            self.stop()
            raise DockerdError(f"the private dockerd ({DOCKERD}) {how}; its last log lines:\n{tail}")
        return self

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop the daemon (SIGTERM to it alone, so it shuts containerd down itself), unmount
        what it left (exec-root/netns/default), remove the directory. Returns problems found."""
        problems = []
        if self.proc is not None:
            if self.proc.alive() and self.proc.pid:
                os.kill(self.proc.pid, signal.SIGTERM)
                if self.proc.wait_exit(timeout) is None:
                    problems.append(f"dockerd did not exit within {timeout:.0f}s of SIGTERM; killed")
            self.proc.stop(timeout=2)  # SIGKILLs anything left in its process group
            self.proc = None
        if self.root.exists():
            for point in _mounts_under(self.root):
                r = subprocess.run(["umount", point], capture_output=True, text=True, timeout=10)
                if r.returncode != 0:
                    r = subprocess.run(["umount", "-l", point], capture_output=True, text=True, timeout=10)
                    if r.returncode != 0:
                        problems.append(f"umount {point}: {r.stderr.strip()}")
            shutil.rmtree(self.root, ignore_errors=True)
        return problems
