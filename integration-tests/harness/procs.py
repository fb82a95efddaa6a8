"""Managed subprocesses: own process group, output to a log file, bounded waits, clean kill.

Every started process is registered so an atexit hook can kill leftovers even when a test
run is interrupted.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

_live: "set[Proc]" = set()


class Proc:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path | None = None,
                 env: dict | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.popen: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "Proc":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def wait_exit(self, timeout: float) -> int | None:
        if not self.popen:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the whole process group, then SIGKILL it if it lingers."""
        p = self.popen
        if p is None:
            return
        if p.poll() is None:
            _killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(p.pid, signal.SIGKILL)  # children left in the group
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._log:
            self._log.close()
            self._log = None
        _live.discard(self)

    # -- logs --------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float, start_offset: int = 0) -> bool:
        return wait_until(lambda: needle in self.log_text()[start_offset:] or not self.alive(),
                          timeout) and needle in self.log_text()[start_offset:]

    def rss_kb(self) -> int:
        """Resident memory of the process (VmRSS), in kB; 0 when it is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (FileNotFoundError, TypeError):
            pass
        return 0

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the starting thread dies (even by SIGKILL), so no
    process outlives the harness. Linux only; a no-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.05):
    """Poll `pred` until truthy or `timeout` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def start_listening(what: str, launch: Callable[[int], Proc], port: int, owned: bool,
                    timeout: float = 10.0, retries: int = 5) -> tuple[Proc, int]:
    """Start a server with `launch(port)` and wait until it listens and is still alive.

    A port from `free_port()` is free only when picked: another process can bind it first. The
    server then exits (its bind fails), and a plain "is the port listening" check would pass
    against the intruder. So success also needs our process alive a moment after the port
    answers; when it is not, and the port was picked here (`owned`), pick another and retry.
    Returns the process and the port it listens on."""
    from .ports import free_port, wait_listening

    for attempt in range(retries + 1):
        proc = launch(port)
        listening = wait_listening(port, timeout=timeout)
        time.sleep(0.2)
        alive = proc.alive()
        if listening and alive:
            return proc, port
        tail = proc.tail(40)
        proc.stop()
        if owned and attempt < retries:
            port = free_port()
            continue
        raise RuntimeError(f"{what} did not listen on {port} (process alive: {alive}):\n{tail}")
    raise AssertionError("unreachable")


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_live):
        p.stop(timeout=2)
