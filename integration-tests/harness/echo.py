"""An HTTP upstream that answers every request with the request it saw, as JSON, and records it.

    up = EchoUpstream().start()
    ... up.port, up.requests (list of dicts), up.reset(), up.stop()

Response body: {"method": ..., "path": ..., "headers": {lower-case name: value}, "body": ...}.
Repeated headers are joined with ", ". Runs in a daemon thread of the calling process.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meshward-echo"
    # headers and body go out in two writes; with Nagle on, the body waits for the peer's
    # delayed ACK (40 ms), which showed up as the soak's p99
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        record = {"method": self.command, "path": self.path, "headers": headers, "body": body}
        self.server.owner._record(record)  # type: ignore[attr-defined]
        out = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def log_message(self, *args) -> None:  # quiet
        pass


class EchoUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, record: bool = True):
        self.host = host
        self._port = port
        self.record = record
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "EchoUpstream":
        self._server = ThreadingHTTPServer((self.host, self._port), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="echo-upstream",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def _record(self, rec: dict) -> None:
        if not self.record:  # long runs (the soak) would otherwise grow without bound
            return
        with self._lock:
            self.requests.append(rec)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


if __name__ == "__main__":  # standalone: python -m harness.echo [PORT] [--no-record]
    import sys
    import time

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    up = EchoUpstream(port=int(args[0]) if args else 18080, record="--no-record" not in sys.argv).start()
    print(f"echo upstream on 127.0.0.1:{up.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        up.stop()
