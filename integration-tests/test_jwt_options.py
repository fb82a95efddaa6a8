"""jwt-auth options with their own Envoy: shadow mode, custom deny response, required claims,
allow audit lines, forward: true."""

from __future__ import annotations

import uuid

from harness import tokens as tk
from harness.checks import assert_denied, audit_lines
from harness.configs import LOCAL_AUD, LOCAL_ISS, local_jwt_config, local_provider
from harness.envoy import jwt_auth_filter, static_cluster
from harness.procs import wait_until


def start(procs, cfg):
    echo = procs.echo()
    envoy = procs.envoy([jwt_auth_filter(cfg)], [static_cluster("upstream", echo.port)]).start()
    return echo, envoy


def mint(keys, **kw):
    c = tk.claims(LOCAL_ISS, LOCAL_AUD)
    c.update(kw)
    return tk.mint(keys.rsa, c)


def test_shadow_mode_never_denies_but_logs_and_counts(procs, keys, jwt_wasm):
    echo, envoy = start(procs, local_jwt_config(keys, shadow=True))
    rid = f"shadow-{uuid.uuid4()}"
    r = envoy.request("/api/shadow", headers={"x-request-id": rid})
    assert r.status_code == 200, r.text
    assert [x for x in echo.snapshot() if x["path"] == "/api/shadow"]
    lines = wait_until(lambda: [a for a in audit_lines(envoy.log_text()) if a.get("request_id") == rid], 10)
    assert lines and lines[0]["decision"] == "shadow_deny" and lines[0]["reason"] == "token_missing", lines
    assert envoy.wait_metric("meshward_jwt_auth_shadow_denied", 1, reason="token_missing") >= 1
    # a bad token in shadow mode: passes, but its claims are not forwarded as verified
    r = envoy.request("/api/shadow-bad", mint(keys, aud="other"), headers={"x-jwt-sub": "spoof"})
    assert r.status_code == 200, r.text
    assert r.json()["headers"].get("x-jwt-sub") != "spoof"


def test_custom_deny_response(procs, keys, jwt_wasm):
    cfg = local_jwt_config(keys, deny_response={"status": 418, "headers": {"x-denied-by": "meshward"},
                                                "body": "no entry: {reason}", "content_type": "text/plain"})
    echo, envoy = start(procs, cfg)
    r = envoy.request("/api/custom")
    assert r.status_code == 418, r.text
    assert r.headers.get("x-denied-by") == "meshward"
    assert r.headers.get("content-type", "").startswith("text/plain")
    assert r.text == "no entry: token_missing"
    assert echo.snapshot() == []


def test_required_claims(procs, keys, jwt_wasm):
    provider = local_provider(keys, required_claims=[
        {"name": "tenant", "equals": "acme"},
        {"name": "env", "one_of": ["prod", "stage"]},
        {"name": "groups", "contains": "admins"}])
    echo, envoy = start(procs, local_jwt_config(keys, provider=provider))
    good = dict(tenant="acme", env="prod", groups=["dev", "admins"])
    assert envoy.request("/api/rc/ok", mint(keys, **good)).status_code == 200
    for i, bad in enumerate([dict(good, tenant="globex"), dict(good, env="dev"), dict(good, groups=["dev"])]):
        assert_denied(envoy.request(f"/api/rc/bad/{i}", mint(keys, **bad)), 401, "claim_mismatch")
    missing = dict(good)
    del missing["tenant"]
    assert_denied(envoy.request("/api/rc/missing", mint(keys, **missing)), 401,
                  {"claim_mismatch", "claim_invalid"})
    assert not [x for x in echo.snapshot() if x["path"].startswith("/api/rc/bad") or x["path"] == "/api/rc/missing"]


def test_audit_allow_and_forward(procs, keys, jwt_wasm):
    provider = local_provider(keys, forward=True)
    echo, envoy = start(procs, local_jwt_config(keys, provider=provider, audit_allow=True))
    rid = f"allow-{uuid.uuid4()}"
    tok = mint(keys, sub="dora")
    r = envoy.request("/api/allow", tok, headers={"x-request-id": rid})
    assert r.status_code == 200, r.text
    assert r.json()["headers"].get("authorization") == f"Bearer {tok}"  # forward: true
    lines = wait_until(lambda: [a for a in audit_lines(envoy.log_text()) if a.get("request_id") == rid], 10)
    assert lines and lines[0]["decision"] == "allow", lines
    assert tok.split(".")[2] not in envoy.log_text()
