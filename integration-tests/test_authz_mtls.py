"""mTLS peer identity: certificates generated at test time with SPIFFE URI SANs. Service A's
certificate is allowed on its route, B's gets 403, and a client without a certificate is
refused during the TLS handshake."""

from __future__ import annotations

import pytest
import requests

from harness.authz_support import authz_filter, make_pki, require_client_certs
from harness.checks import assert_denied
from harness.envoy import static_cluster

A = "spiffe://meshward.test/ns/shop/sa/service-a"
B = "spiffe://meshward.test/ns/shop/sa/service-b"
EVIL = "spiffe://evil.test/ns/shop/sa/service-a"

POLICY = {"expose_policy": True, "policies": [
    {"name": "a-only", "rules": [{"from": [{"source": {"principals": [A]}}],
                                  "to": [{"operation": {"paths": ["/api/*"]}}]}]},
    {"name": "shop-namespace", "rules": [{"from": [{"source": {"namespaces": ["shop"],
                                                              "trustDomains": ["meshward.test"]}}],
                                          "to": [{"operation": {"paths": ["/shared/*"]}}]}]},
]}


@pytest.fixture
def mtls(procs):
    pki = make_pki(procs.workdir / "pki", {"a": A, "b": B, "evil": EVIL})
    up = procs.echo()
    e = procs.envoy([authz_filter(POLICY)], [static_cluster("upstream", up.port)])
    require_client_certs(e, pki)
    e.start()
    return e, pki


def _get(e, pki, path, who):
    cert = (str(pki[f"{who}_cert"]), str(pki[f"{who}_key"])) if who else None
    return requests.get(f"https://127.0.0.1:{e.port}{path}", cert=cert, verify=str(pki["ca"]), timeout=10)


def test_service_a_allowed_b_denied(mtls):
    e, pki = mtls
    r = _get(e, pki, "/api/orders", "a")
    assert r.status_code == 200, r.text
    body = assert_denied(_get(e, pki, "/api/orders", "b"), 403, "no_allow_match")
    assert "policy" not in body


def test_namespace_and_trust_domain_from_spiffe_id(mtls):
    e, pki = mtls
    assert _get(e, pki, "/shared/x", "a").status_code == 200
    assert _get(e, pki, "/shared/x", "b").status_code == 200
    assert _get(e, pki, "/shared/x", "evil").status_code == 403, "other trust domain"
    assert _get(e, pki, "/api/x", "evil").status_code == 403, "same path, other trust domain"


def test_client_without_certificate_refused_at_tls(mtls):
    e, pki = mtls
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        _get(e, pki, "/api/orders", None)
    # refused before HTTP: the filter never saw a request
    assert e.metric("meshward_authz_allowed") + e.metric("meshward_authz_denied") == 0
