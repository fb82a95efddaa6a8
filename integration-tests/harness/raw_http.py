"""One HTTP/1.1 request sent byte for byte: the path as written (no dot resolution or
re-quoting, which `requests` does) and headers in order, repeats kept."""

from __future__ import annotations

import http.client


def raw_request(port: int, path: str = "/", headers=(), authority: str | None = None,
                timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Returns (status, response headers lower-cased, body). `authority` replaces the Host
    header http.client would add."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host=authority is not None, skip_accept_encoding=True)
        if authority is not None:
            conn.putheader("host", authority)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()
