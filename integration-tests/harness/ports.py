"""Free loopback TCP ports, never handing out the same one twice in a process."""

import socket
import threading

_lock = threading.Lock()
_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _given:
                _given.add(port)
                return port
    raise RuntimeError("no free port found")


def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
