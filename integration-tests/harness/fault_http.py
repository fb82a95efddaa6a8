"""A loopback HTTP server for fault tests: serves fixed documents (JWKS, OIDC discovery) and
can make any of them fail on demand.

    srv = FaultyHttp().start()
    srv.serve("/jwks", {"keys": [...]})
    srv.set_fault("/jwks", "garbage")      # or "slow", "huge", "html", "text_json", "redirect",
    srv.set_fault("/jwks", None)           #    "at_limit", "status500", "bad_header"; None = healthy
    srv.stop(); srv.start()                # down (connection refused), then up on the same port

Every response carries `connection: close`, so stopping the server leaves no pooled
connection behind (a stopped server really refuses). Requests are recorded in `srv.hits`
as (monotonic time, path). Handlers run in daemon threads: a "slow" answer never blocks
shutdown.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MIB = 1 << 20

FAULTS = ("slow", "garbage", "huge", "at_limit", "html", "text_json", "redirect", "status500",
          "bad_header")


def padded_json(doc: dict, size: int) -> bytes:
    """`doc` plus a `"pad"` member, serialised to exactly `size` bytes (still valid JSON)."""
    base = json.dumps({**doc, "pad": ""}, separators=(",", ":")).encode()
    if size < len(base):
        raise ValueError(f"document is already {len(base)} bytes")
    out = json.dumps({**doc, "pad": "x" * (size - len(base))}, separators=(",", ":")).encode()
    assert len(out) == size
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meshward-faulty"

    def do_GET(self) -> None:  # noqa: N802
        owner: FaultyHttp = self.server.owner  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        owner._hit(path)
        doc = owner.docs.get(path)
        fault, opts = owner.faults.get(path, (None, {}))
        if doc is None:
            return self._send(404, b"not found", "text/plain")
        if fault == "redirect" and query != "moved":
            return self._send(opts.get("status", 302), b"", "text/plain",
                              {"location": f"{path}?moved"})
        if fault == "slow":
            time.sleep(opts.get("delay", 3.0))
        if fault == "garbage":
            return self._send(200, b"\x00\xff{{{ not json \xfe", "application/json")
        if fault == "huge":
            return self._send(200, padded_json(doc, opts.get("size", MIB + 1)), "application/json")
        if fault == "at_limit":
            return self._send(200, padded_json(doc, MIB), "application/json")
        if fault == "html":
            return self._send(200, b"<!doctype html><html><body>Sign in</body></html>",
                              "text/html; charset=utf-8")
        if fault == "status500":
            return self._send(500, b"internal error", "text/plain")
        body = json.dumps(doc).encode()
        ctype = "text/plain" if fault == "text_json" else "application/json"
        # a response header value that is not UTF-8 (send_header encodes Latin-1: bytes e9, ff)
        extra = {"x-note": "caf\xe9 \xff"} if fault == "bad_header" else None
        self._send(200, body, ctype, extra)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.send_header("connection", "close")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client (Envoy) gave up first: expected for "slow"
            pass
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # quiet: resets are expected
        pass


class FaultyHttp:
    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host = host
        self._port = port
        self.docs: dict[str, dict] = {}
        self.faults: dict[str, tuple[str | None, dict]] = {}
        self.hits: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None

    # -- content ---------------------------------------------------------------------
    def serve(self, path: str, doc: dict) -> "FaultyHttp":
        self.docs[path] = doc
        return self

    def set_fault(self, path: str, fault: str | None, **opts) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.faults[path] = (fault, opts)

    def _hit(self, path: str) -> None:
        with self._lock:
            self.hits.append((time.monotonic(), path))

    def hits_for(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p in self.hits if p == path)

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> "FaultyHttp":
        self._server = _Server((self.host, self._port), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="faulty-http", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused until start() again, on the same port)."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reserve_port(self) -> int:
        """Pick the port now without listening (a server that is down from the start)."""
        if not self._port:
            from .ports import free_port

            self._port = free_port(self.host)
        return self._port
