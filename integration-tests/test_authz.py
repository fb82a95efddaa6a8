"""meshward authz in real Envoy, behind the meshward jwt-auth filter: object-level checks (BOLA,
tenant isolation) with real tokens, RBAC roles with inheritance, time windows, geo header
lists, custom deny responses, AUDIT, the decision in filter state (access log) and the audit
line, per-policy metrics in /stats/prometheus, shadow mode, and invalid config refusal."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest

from harness import tokens as tk
from harness.authz_support import authz_filter, log_decision
from harness.checks import assert_denied, audit_lines
from harness.envoy import Envoy, jwt_auth_filter, parse_prometheus, static_cluster, validate
from harness.echo import EchoUpstream
from harness.procs import wait_until
from harness.raw_http import raw_request

ISS = "https://issuer.authz.meshward.test"
AUD = "orders-api"


def hhmm(t: dt.datetime) -> str:
    return t.strftime("%H:%M")


def authz_config() -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "expose_policy": True,
        "geo_header": "x-geo-country",
        "rbac": {"role_claims": ["roles", "realm_access.roles"], "roles": {
            "viewer": {"permissions": ["orders:read"]},
            "admin": {"permissions": ["orders:admin"], "inherits": ["viewer"]},
            "superadmin": {"inherits": ["admin"]}}},
        "policies": [
            {"name": "geo-block", "action": "DENY", "rules": [
                {"to": [{"operation": {"paths": ["/geo/*"]}}], "notCountries": ["DE", "FR"]}]},
            {"name": "teapot", "action": "DENY",
             "rules": [{"to": [{"operation": {"paths": ["/teapot"]}}]}],
             "deny_response": {"status": 418, "headers": {"x-why": "short-and-stout"},
                               "body": "{\"error\":\"{reason}\",\"policy\":\"{policy}\"}",
                               "content_type": "application/json"}},
            {"name": "own-orders", "rules": [{
                "to": [{"operation": {"methods": ["GET"], "paths": ["/users/{user}/orders", "/users/{user}/orders/{**}"]}}],
                "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]},
            {"name": "tenant-isolation", "rules": [{
                "to": [{"operation": {"paths": ["/tenants/{tenant}", "/tenants/{tenant}/{**}"]}}],
                "objects": [{"capture": "tenant", "equals": "request.auth.claims[tenant]"}]}]},
            {"name": "tenant-header", "rules": [{
                "to": [{"operation": {"paths": ["/th/*"]}}],
                "objects": [{"attribute": "request.headers[x-tenant]", "equals": "request.auth.claims[tenant]"}]}]},
            {"name": "admin-area", "rules": [{"to": [{"operation": {"paths": ["/admin/*"]}}],
                                              "permissions": ["orders:admin"]}]},
            {"name": "open-hours", "rules": [{"to": [{"operation": {"paths": ["/hours/open"]}}],
                                              "time_windows": [{"start": hhmm(now - dt.timedelta(hours=1)),
                                                                "end": hhmm(now + dt.timedelta(hours=1))}]}]},
            {"name": "closed-hours", "rules": [{"to": [{"operation": {"paths": ["/hours/closed"]}}],
                                                "time_windows": [{"start": hhmm(now + dt.timedelta(hours=2)),
                                                                  "end": hhmm(now + dt.timedelta(hours=3))}]}]},
            {"name": "geo-area", "rules": [{"to": [{"operation": {"paths": ["/geo/*"]}}]}]},
            {"name": "public", "rules": [{"to": [{"operation": {"paths": ["/public/*"]}}]}]},
            {"name": "watch-public", "action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/public/audited"]}}]}]},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys, jwt_wasm):
    workdir = tmp_path_factory.mktemp("authz")
    jwt_cfg = {"providers": {"local": {"issuer": ISS, "audiences": [AUD],
                                       "local_jwks": {"inline_string": json.dumps(tk.jwks(keys.rsa))}}},
               "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]}
    echo = EchoUpstream().start()
    envoy = Envoy(workdir, [jwt_auth_filter(jwt_cfg), authz_filter(authz_config())],
                  [static_cluster("upstream", echo.port)], name="envoy-authz")
    log_decision(envoy)
    try:
        envoy.start()
    except Exception:
        echo.stop()
        raise

    def token(sub="alice", **claims) -> str:
        return tk.mint(keys.rsa, tk.claims(ISS, AUD, sub=sub, **claims))

    yield envoy, token
    problems = envoy.health_problems()
    envoy.stop()
    echo.stop()
    assert not problems, problems


def test_bola_alice_reads_own_orders_only(stack):
    e, token = stack
    alice = token("alice")
    assert e.request("/users/alice/orders", alice).status_code == 200
    assert e.request("/users/alice/orders/42/items", alice).status_code == 200
    body = assert_denied(e.request("/users/bob/orders", alice), 403, "no_allow_match")
    assert "policy" not in body, "no single policy decided a default deny"
    bob = token("bob")
    assert e.request("/users/bob/orders", bob).status_code == 200
    assert e.request("/users/alice/orders", bob).status_code == 403
    assert e.request("/users/alice/orders").status_code == 403, "anonymous"
    assert e.request("/users/alice/orders", alice, method="DELETE").status_code == 403


def test_tenant_isolation(stack):
    e, token = stack
    a = token("alice", tenant="tenant-a")
    b = token("bob", tenant="tenant-b")
    assert e.request("/tenants/tenant-a/invoices/1", a).status_code == 200
    assert e.request("/tenants/tenant-b/invoices/1", a).status_code == 403
    assert e.request("/tenants/tenant-b/invoices/1", b).status_code == 200
    assert e.request("/tenants/tenant-a", b).status_code == 403
    assert e.request("/tenants/tenant-a/x", token("carol")).status_code == 403, "no tenant claim"


def _raw(e, path: str, headers: list[tuple[str, str]]) -> int:
    return raw_request(e.port, path, headers)[0]


def test_tenant_cases_that_must_not_pass(stack):
    e, token = stack
    a = [("authorization", f"Bearer {token('alice', tenant='tenant-a')}")]
    assert _raw(e, "/th/x", a + [("x-tenant", "tenant-a")]) == 200
    assert _raw(e, "/th/x", a + [("x-tenant", "tenant-b")]) == 403
    # Two x-tenant headers name two tenants: the check refuses to pick one.
    assert _raw(e, "/th/x", a + [("x-tenant", "tenant-a"), ("x-tenant", "tenant-b")]) == 403
    assert _raw(e, "/th/x", a + [("x-tenant", "tenant-b"), ("x-tenant", "tenant-a")]) == 403
    # An object-typed tenant claim is not the list of its keys.
    obj = [("authorization", f"Bearer {token('mallory', tenant={'tenant-a': ''})}")]
    assert _raw(e, "/th/x", obj + [("x-tenant", "tenant-a")]) == 403
    assert _raw(e, "/tenants/tenant-a/x", obj) == 403
    # Dot segments are resolved before the capture is read.
    assert _raw(e, "/tenants/tenant-a/../tenant-b/x", a) == 403
    assert _raw(e, "/tenants/tenant-b/../tenant-a/x", a) == 200


def test_roles_from_claims_with_inheritance(stack):
    e, token = stack
    assert e.request("/admin/x", token(roles=["admin"])).status_code == 200
    assert e.request("/admin/x", token(realm_access={"roles": ["superadmin"]})).status_code == 200
    assert e.request("/admin/x", token(roles=["viewer"])).status_code == 403
    assert e.request("/admin/x").status_code == 403


def test_time_windows(stack):
    e, _ = stack
    assert e.request("/hours/open").status_code == 200
    assert_denied(e.request("/hours/closed"), 403, "no_allow_match")


def test_geo_header_lists(stack):
    e, _ = stack
    assert e.request("/geo/x", headers={"x-geo-country": "DE"}).status_code == 200
    assert e.request("/geo/x", headers={"x-geo-country": "fr"}).status_code == 200
    body = assert_denied(e.request("/geo/x", headers={"x-geo-country": "US"}), 403, "denied_by_policy")
    assert body["policy"] == "geo-block"
    assert_denied(e.request("/geo/x"), 403, "denied_by_policy")


def test_custom_deny_response(stack):
    e, _ = stack
    r = e.request("/teapot")
    assert r.status_code == 418
    assert r.headers["x-why"] == "short-and-stout"
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "denied_by_policy", "policy": "teapot"}


def test_decision_in_filter_state_and_audit_line(stack):
    e, token = stack
    rid = f"authz-{uuid.uuid4()}"
    assert e.request("/users/bob/orders?secret=1", token("alice"), headers={"x-request-id": rid}).status_code == 403
    ok = f"authz-ok-{uuid.uuid4()}"
    assert e.request("/users/alice/orders", token("alice"), headers={"x-request-id": ok}).status_code == 200

    def entries():
        got = {x.get("request_id"): x for x in e.access_log()}
        return got if rid in got and ok in got else None
    log = wait_until(entries, 10)
    assert log, e.access_log()[-3:]
    denied = json.loads(log[rid]["authz"])
    assert denied["decision"] == "deny" and denied["reason"] == "no_allow_match"
    assert "own-orders rules[0]: objects did not match" in denied["why"], denied
    allowed = json.loads(log[ok]["authz"])
    assert (allowed["decision"], allowed["policy"], allowed["rule"]) == ("allow", "own-orders", 0)
    assert "{user} == request.auth.claims[sub]" in allowed["why"]
    lines = wait_until(lambda: [a for a in audit_lines(e.log_text()) if a.get("request_id") == rid], 10)
    assert lines and len(lines) == 1, lines
    a = lines[0]
    assert (a["filter"], a["decision"], a["reason"], a["status"]) == ("authz", "deny", "no_allow_match", 403)
    assert a["path"] == "/users/bob/orders"
    assert "objects" in a["why"]


def test_audit_policy_logs_allowed_request(stack):
    e, _ = stack
    rid = f"audit-{uuid.uuid4()}"
    assert e.request("/public/audited", headers={"x-request-id": rid}).status_code == 200
    lines = wait_until(lambda: [a for a in audit_lines(e.log_text()) if a.get("request_id") == rid], 10)
    assert lines and lines[0]["decision"] == "allow" and lines[0]["audit_policies"] == ["watch-public"]
    assert e.wait_metric("meshward_authz_audited", 1, policy="watch-public") >= 1


def _prom(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m and m.group(1) == name:
            total += float(m.group(3))
    return total


def test_per_policy_metrics_in_prometheus(stack):
    e, token = stack
    for _ in range(3):
        assert e.request("/users/alice/orders", token("alice")).status_code == 200
    for _ in range(2):
        assert e.request("/teapot").status_code == 418
    assert e.wait_metric("meshward_authz_allowed", 3, policy="own-orders") >= 3
    prom = e.prometheus()
    # the policy is a label: Envoy's stats_tags cut it out of the stat name
    got = {(n, tuple(sorted(lbl.items()))): v for n, lbl, v in parse_prometheus(prom)}
    assert got.get(("meshward_authz_allowed", (("policy", "own-orders"),)), 0) >= 3, \
        [l for l in prom.splitlines() if "authz" in l][:20]
    assert got.get(("meshward_authz_denied", (("policy", "teapot"),)), 0) >= 2
    assert _prom(prom, "meshward_authz_allowed") >= 3
    assert _prom(prom, "meshward_authz_denied") >= 2
    assert ("meshward_authz_shadow_denied", (("policy", "teapot"),)) in got
    assert ("meshward_authz_denied", (("policy", "_default"),)) in got
    assert not [l for l in prom.splitlines() if l.startswith("meshward_authz_policy") or "=.=" in l]


def test_shadow_mode_lets_requests_through_and_counts(procs, tmp_path):
    up = procs.echo()
    e = procs.envoy([authz_filter({"shadow": True, "policies": [
        {"name": "only-public", "rules": [{"to": [{"operation": {"paths": ["/public/*"]}}]}]},
        {"name": "no-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}]})],
        [static_cluster("upstream", up.port)])
    e.start()
    rid = f"shadow-{uuid.uuid4()}"
    assert e.request("/private", headers={"x-request-id": rid}).status_code == 200
    assert e.request("/admin").status_code == 200
    assert e.request("/public/x").status_code == 200
    assert e.wait_metric("meshward_authz_shadow_denied", 2) == 2
    assert e.metric("meshward_authz_shadow_denied", policy="_default") == 1
    assert e.metric("meshward_authz_shadow_denied", policy="no-admin") == 1
    assert e.metric("meshward_authz_denied") == 0
    assert e.metric("meshward_authz_allowed", policy="only-public") == 1
    lines = wait_until(lambda: [a for a in audit_lines(e.log_text()) if a.get("request_id") == rid], 10)
    assert lines and lines[0]["decision"] == "shadow_deny"
    assert _prom(e.prometheus(), "meshward_authz_shadow_denied") == 2
    assert len(up.snapshot()) == 3


def test_dry_run_policy_is_counted_not_enforced(procs):
    up = procs.echo()
    e = procs.envoy([authz_filter({"policies": [
        {"name": "future-block", "action": "DENY", "dry_run": True,
         "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}]})],
        [static_cluster("upstream", up.port)])
    e.start()
    assert e.request("/x", method="DELETE").status_code == 200
    assert e.wait_metric("meshward_authz_shadow_denied", 1, policy="future-block") == 1
    assert e.metric("meshward_authz_allowed") == 1


@pytest.mark.parametrize("cfg,field", [
    ({"policies": [{"name": "p", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/33"]}}]}]}]},
     "policies[0].rules[0].from[0].source.ipBlocks[0]"),
    ({"policies": [{"name": "p", "rules": [{"to": [{"operation": {"paths": ["/a/{**}/{*}"]}}]}]}]},
     "policies[0].rules[0].to[0].operation.paths[0]"),
    ({"policies": [{"name": "p", "rules": [{"when": [{"key": "request.colour", "values": ["x"]}]}]}]},
     "policies[0].rules[0].when[0].key"),
    ({"policies": [{"name": "p", "acton": "DENY"}]}, "policies[0].acton"),
])
def test_invalid_config_refused_with_field_path(cfg, field, tmp_path):
    e = Envoy(tmp_path, [authz_filter(cfg)], [static_cluster("upstream", 1)], name="bad-authz")
    e.config_path.write_text(json.dumps(e.config))
    rc, out = validate(e.config_path)
    assert rc != 0, out[-2000:]
    assert f"meshward authz: invalid config: {field}: " in out, out[-3000:]
