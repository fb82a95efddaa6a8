"""Assertions on meshward responses and Envoy logs."""

from __future__ import annotations

import json
from typing import Iterable

import requests


def problem(r: requests.Response) -> dict:
    """The RFC 9457 body of a meshward deny (empty dict if the body is not JSON)."""
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def assert_denied(r: requests.Response, status: int, reasons: Iterable[str] | str | None = None) -> dict:
    body = problem(r)
    detail = f"status={r.status_code} headers={dict(r.headers)} body={r.text[:500]!r}"
    assert r.status_code == status, detail
    assert r.headers.get("content-type", "").startswith("application/problem+json"), detail
    if reasons is not None:
        allowed = {reasons} if isinstance(reasons, str) else set(reasons)
        assert body.get("reason") in allowed, f"reason {body.get('reason')!r} not in {sorted(allowed)}; {detail}"
        assert body.get("type") == f"urn:meshward:problem:{body.get('reason')}", detail
        assert body.get("status") == status, detail
    return body


def audit_lines(log_text: str) -> list[dict]:
    """Every JSON object with a `meshward_audit` key found in an Envoy log."""
    out = []
    dec = json.JSONDecoder()
    for line in log_text.splitlines():
        if '"meshward_audit"' not in line:
            continue
        start = line.find("{")
        while start >= 0:
            try:
                obj, _ = dec.raw_decode(line[start:])
            except ValueError:
                start = line.find("{", start + 1)
                continue
            if isinstance(obj, dict) and "meshward_audit" in obj:
                out.append(obj)
            break
    return out
