"""jwt-auth with a local JWKS against real Envoy: allow/deny basics, claim headers and
anti-spoofing, scopes, metrics, audit lines, filter state, log hygiene, Envoy health."""

from __future__ import annotations

import json
import re
import uuid

from harness import tokens as tk
from harness.checks import assert_denied, audit_lines
from harness.envoy import parse_prometheus
from harness.procs import wait_until


def _seen(stack, marker: str) -> list[dict]:
    return [r for r in stack.echo.snapshot() if marker in r["path"]]


def test_valid_token_allowed_claims_forwarded(local_stack):
    s = local_stack
    tok = s.token(sub="alice", org={"id": "acme"}, groups=["eng", "ops"])
    r = s.envoy.request("/api/claims", tok)
    assert r.status_code == 200, r.text
    h = r.json()["headers"]
    assert h.get("x-jwt-sub") == "alice"
    assert h.get("x-jwt-org") == "acme"
    assert [g.strip() for g in h.get("x-jwt-groups", "").split(",")] == ["eng", "ops"]
    # the token is not forwarded upstream by default
    assert "authorization" not in h
    payload = json.loads(tk.b64url_decode(h["x-jwt-payload"]))
    assert payload["sub"] == "alice" and payload["iss"] == s.iss
    assert "=" not in h["x-jwt-payload"]


def test_each_supported_asymmetric_alg_accepted(local_stack):
    s = local_stack
    for key in (s.keys.rsa, s.keys.ec, s.keys.ed):
        r = s.envoy.request(f"/api/alg/{key.alg}", s.token(key=key))
        assert r.status_code == 200, (key.alg, r.status_code, r.text)


def test_token_in_access_token_param_accepted_and_removed(local_stack):
    s = local_stack
    tok = s.token(sub="param-user")
    r = s.envoy.request(f"/api/param?x=1&access_token={tok}")
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["headers"].get("x-jwt-sub") == "param-user"
    assert "access_token" not in seen["path"]
    assert tok not in json.dumps(seen)


def test_missing_token_401_problem_json(local_stack):
    s = local_stack
    r = s.envoy.request("/api/missing-token")
    body = assert_denied(r, 401, "token_missing")
    assert r.headers.get("www-authenticate") == 'Bearer realm="meshward"'
    assert body.get("title") == "Unauthorized"
    assert not _seen(s, "/api/missing-token")


def test_invalid_token_www_authenticate_has_error(local_stack):
    s = local_stack
    r = s.envoy.request("/api/expired", s.token(exp=1_000_000, iat=999_000))
    assert_denied(r, 401, "token_expired")
    wa = r.headers.get("www-authenticate", "")
    assert wa.startswith('Bearer realm="meshward"'), wa
    assert 'error="invalid_token"' in wa, wa
    assert not _seen(s, "/api/expired")


def test_bypass_rule_passes_without_token(local_stack):
    r = local_stack.envoy.request("/public/info")
    assert r.status_code == 200, r.text


def test_claim_headers_cannot_be_spoofed(local_stack):
    s = local_stack
    spoof = {"x-jwt-sub": "admin", "x-jwt-payload": tk.b64url_json({"sub": "admin"}),
             "x-jwt-org": "evil", "x-jwt-groups": "admins"}
    # no token on an allow_missing route: passes, but the spoofed headers are stripped
    r = s.envoy.request("/open/no-token", headers=spoof)
    assert r.status_code == 200, r.text
    h = r.json()["headers"]
    for name in spoof:
        assert name not in h, f"{name} reached upstream: {h.get(name)!r}"
    # with a token: only the verified values
    r = s.envoy.request("/open/with-token", s.token(sub="bob", org={"id": "good"}), headers=spoof)
    assert r.status_code == 200, r.text
    h = r.json()["headers"]
    assert h.get("x-jwt-sub") == "bob"
    assert h.get("x-jwt-org") == "good"
    assert "x-jwt-groups" not in h  # the token has no groups claim
    assert json.loads(tk.b64url_decode(h["x-jwt-payload"]))["sub"] == "bob"
    # an invalid token on an allow_missing route is still refused
    r = s.envoy.request("/open/bad-token", s.token(aud="someone-else"), headers=spoof)
    assert_denied(r, 401, "audience_mismatch")


def test_required_scopes(local_stack):
    s = local_stack
    r = s.envoy.request("/admin/panel", s.token(scope="read write"))
    assert_denied(r, 403, "insufficient_scope")
    wa = r.headers.get("www-authenticate", "")
    assert 'error="insufficient_scope"' in wa and 'scope="admin"' in wa, wa
    assert not _seen(s, "/admin/panel")
    r = s.envoy.request("/admin/panel2", s.token(scope="read admin"))
    assert r.status_code == 200, r.text


def test_cors_preflight_bypassed(local_stack):
    r = local_stack.envoy.request("/api/cors", method="OPTIONS", headers={
        "origin": "https://app.example", "access-control-request-method": "POST"})
    assert r.status_code == 200, r.text


def _prom_value(text: str, metric_re: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m and re.search(metric_re, m.group(1)):
            total += float(m.group(3))
    return total


def test_metrics_in_stats_and_prometheus(local_stack):
    s = local_stack
    e = s.envoy
    before_allowed = e.metric("meshward_jwt_auth_allowed")
    before_missing = e.metric("meshward_jwt_auth_denied", reason="token_missing")
    before_prov = e.metric("meshward_jwt_auth_provider_allowed", provider="local")
    for i in range(3):
        assert e.request(f"/api/metrics/{i}", s.token()).status_code == 200
    for i in range(2):
        assert e.request(f"/api/metrics/deny/{i}").status_code == 401
    assert e.wait_metric("meshward_jwt_auth_allowed", before_allowed + 3) >= before_allowed + 3
    assert e.wait_metric("meshward_jwt_auth_denied", before_missing + 2, reason="token_missing") >= before_missing + 2
    assert e.metric("meshward_jwt_auth_provider_allowed", provider="local") >= before_prov + 3
    # Envoy 1.40 puts define_metric counters in the `wasmcustom` stats namespace: /stats shows
    # `wasmcustom.<name>` with the labels still encoded in it; /stats/prometheus strips the
    # namespace, adds no `envoy_` prefix, and turns the encoded tags into labels.
    stats = e.stats()
    assert stats.get("wasmcustom.meshward.jwt_auth.allowed", 0) >= before_allowed + 3, \
        sorted(n for n in stats if "meshward" in n)
    assert stats.get("wasmcustom.meshward.jwt_auth.reason=.=token_missing;.;denied", 0) >= 2
    prom = e.prometheus()
    got = {(n, tuple(sorted(lbl.items()))): v for n, lbl, v in parse_prometheus(prom)}
    assert _prom_value(prom, r"^meshward_jwt_auth_allowed$") >= 3
    assert got.get(("meshward_jwt_auth_denied", (("reason", "token_missing"),)), 0) >= 2, \
        [l for l in prom.splitlines() if "jwt_auth" in l][:20]
    assert got.get(("meshward_jwt_auth_provider_allowed", (("provider", "local"),)), 0) >= 3
    assert ("meshward_jwt_auth_provider_denied", (("provider", "local"), ("reason", "token_missing"))) in got


def test_deny_writes_one_audit_line(local_stack):
    e = local_stack.envoy
    rid = f"audit-{uuid.uuid4()}"
    r = e.request("/api/audit/deny?q=secret", headers={"x-request-id": rid})
    assert r.status_code == 401
    lines = wait_until(lambda: [a for a in audit_lines(e.log_text()) if a.get("request_id") == rid], 10)
    assert lines, f"no audit line for {rid}; log tail:\n{e.proc.tail(30)}"
    assert len(lines) == 1, lines
    a = lines[0]
    assert a["meshward_audit"] == 1 and a["filter"] == "jwt-auth"
    assert a["decision"] == "deny" and a["reason"] == "token_missing" and a["status"] == 401
    assert a["method"] == "GET" and a["path"] == "/api/audit/deny"


def test_bad_token_audit_line_has_reason_and_no_token(local_stack):
    s = local_stack
    rid = f"audit-{uuid.uuid4()}"
    tok = s.token(iss="https://evil.example")
    r = s.envoy.request("/api/audit/bad", tok, headers={"x-request-id": rid})
    assert_denied(r, 401, "issuer_mismatch")
    lines = wait_until(lambda: [a for a in audit_lines(s.envoy.log_text()) if a.get("request_id") == rid], 10)
    assert lines and lines[0]["reason"] == "issuer_mismatch", lines
    assert tok.split(".")[2] not in json.dumps(lines)


def test_identity_in_filter_state_access_log(local_stack):
    s = local_stack
    rid = f"fs-{uuid.uuid4()}"
    r = s.envoy.request("/api/identity", s.token(sub="carol", scope="read"), headers={"x-request-id": rid})
    assert r.status_code == 200, r.text
    entries = wait_until(lambda: [x for x in s.envoy.access_log() if x.get("request_id") == rid], 10)
    assert entries, f"no access log entry for {rid}"
    raw = entries[0]["identity"]
    assert raw and raw != "-", entries[0]
    ident = json.loads(raw)
    assert ident["subject"] == "carol"
    assert ident["issuer"] == s.iss and ident["provider"] == "local"
    assert s.aud in ident["audiences"]
    assert "read" in ident["scopes"]


def test_zz_no_token_text_in_envoy_log(local_stack):
    """Runs last in this module: no minted token (or its signature) appears in Envoy's log."""
    log = local_stack.envoy.log_text()
    assert local_stack.tokens
    for t in local_stack.tokens:
        assert t not in log
        sig = t.split(".")[2]
        if len(sig) >= 16:
            assert sig not in log, "a token signature appears in Envoy's log"


def test_zz_envoy_healthy(local_stack):
    assert local_stack.envoy.health_problems() == []
