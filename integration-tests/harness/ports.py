"""Free loopback TCP ports, never handing out the same one twice in a process.

A port picked here is free only at that moment: another process (a client's ephemeral
port, another test run) can take it before the server binds it. Servers that cannot tolerate
that retry (harness.envoy.Envoy.start), using `listening_sockets` to see who holds a port."""

import ipaddress
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


def _proc_addr(hexaddr: str) -> tuple[str, int]:
    """`0100007F:1F90` (or the IPv6 form) from /proc/net/tcp* -> ("127.0.0.1", 8080)."""
    ip_hex, port_hex = hexaddr.split(":")
    raw = bytes.fromhex(ip_hex)
    # the kernel prints each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port_hex, 16)


def listening_sockets(port: int, host: str = "127.0.0.1") -> int:
    """How many TCP sockets (any process) listen on host:port, counting wildcard binds.
    Linux only (reads /proc/net/tcp and tcp6); 0 elsewhere."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 4 or f[3] != "0A":  # 0A = LISTEN
                continue
            ip, p = _proc_addr(f[1])
            if p == port and ip in (host, "0.0.0.0", "::"):
                n += 1
    return n
