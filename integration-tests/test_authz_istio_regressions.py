"""One regression per difference issue 9 found between `authz` and Istio (istiod + Envoy
`rbac`), each through a real Envoy with Envoy's `jwt_authn` in front (the identity source
whose claim types used to be lost). The expected answers are Istio's; the differential test
(`test_authz_differential.py`) checks the same rules against the real `rbac` filter at
random, these pin each one by name. Path tricks are in `test_path_tricks.py`."""

from __future__ import annotations

import pytest

from harness import tokens as tk
from harness.authz_support import authz_filter, native_jwt_authn
from harness.envoy import static_cluster
from harness.raw_http import raw_request
from harness.rls_proc import rate_limit_filter

ISS = "https://idp.test"


def get(e, path="/", headers=(), authority=None) -> int:
    """Repeated headers and the :authority exactly as written."""
    return raw_request(e.port, path, headers, authority=authority)[0]


def bearer(keys, iss=ISS, **claims) -> tuple[str, str]:
    return ("authorization", "Bearer " + tk.mint(keys.rsa, tk.claims(iss, "api", **claims)))


def stack(procs, keys, policies, hcm=None, **top):
    up = procs.echo()
    cfg = {"decision_state": False, "identity": {"meshward": False, "jwt_authn": {"payload_in_metadata": "payload"}},
           "policies": policies, **top}
    e = procs.envoy([native_jwt_authn(tk.jwks(keys.rsa), None, "payload"), authz_filter(cfg)],
                    [static_cluster("upstream", up.port)])
    e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"].update(hcm or {})
    return e.start()


def allow(rule) -> list[dict]:
    return [{"name": "a", "action": "ALLOW", "rules": [rule]}]


def deny(rule) -> list[dict]:
    return [{"name": "d", "action": "DENY", "rules": [rule]}]


def test_1_ip_blocks_are_the_tcp_peer_not_x_forwarded_for(procs, keys):
    # use_remote_address: false, Istio's sidecar inbound: Envoy's derived address follows XFF.
    e = stack(procs, keys, deny({"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}))
    assert get(e, headers=[("x-forwarded-for", "9.9.9.9")]) == 403, "a spoofed XFF bypassed a DENY"
    e = stack(procs, keys, allow({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}))
    assert get(e, headers=[("x-forwarded-for", "10.1.2.3")]) == 403, "a spoofed XFF passed an ALLOW"
    # remote.ip is the derived address, as rbac's remote_ip.
    e = stack(procs, keys, allow({"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]}))
    assert get(e, headers=[("x-forwarded-for", "10.1.2.3")]) == 200


def test_2_hosts_match_the_authority_exactly(procs, keys):
    e = stack(procs, keys, allow({"to": [{"operation": {"hosts": ["api.example.com"]}}]}))
    assert get(e, authority="API.example.com") == 200
    assert get(e, authority="api.example.com:8080") == 403
    e = stack(procs, keys, allow({"to": [{"operation": {"hosts": ["api.example.com:*"]}}]}))
    assert get(e, authority="api.example.com:8080") == 200
    e = stack(procs, keys, allow({"to": [{"operation": {"hosts": ["api.example.com"]}}]}), hosts_ignore_port=True)
    assert get(e, authority="api.example.com:8080") == 200, "the opt-in widening"


def test_3_claims_keep_their_json_types(procs, keys):
    e = stack(procs, keys, deny({"when": [{"key": "request.auth.claims[role]", "notValues": ["user"]}]}))
    assert get(e, headers=[bearer(keys, role="user")]) == 200
    assert get(e, headers=[bearer(keys, role=["x", "user"])]) == 200
    assert get(e, headers=[bearer(keys, role={"user": ""})]) == 403, "an object is not a list of its keys"
    assert get(e, headers=[bearer(keys, role=5)]) == 403
    e = stack(procs, keys, allow({"when": [{"key": "request.auth.claims[code]", "values": ["abcdefgh"]}]}))
    assert get(e, headers=[bearer(keys, code="abcdefgh")]) == 200
    # The double whose 8 little-endian bytes spell "abcdefgh".
    assert get(e, headers=[bearer(keys, code=8.540883223036124e+194)]) == 403


def test_4_every_value_of_a_repeated_header_is_checked(procs, keys):
    e = stack(procs, keys, deny({"when": [{"key": "request.headers[x-role]", "values": ["admin"]}]}))
    assert get(e, headers=[("x-role", "user")]) == 200
    assert get(e, headers=[("x-role", "user"), ("x-role", "admin")]) == 403, "second value bypassed a DENY"


def test_5_request_principals_match_iss_and_sub_apart(procs, keys):
    e = stack(procs, keys, allow({"from": [{"source": {"requestPrincipals": [f"{ISS}/*"]}}]}))
    assert get(e, headers=[bearer(keys, sub="alice")]) == 200
    assert get(e, headers=[bearer(keys, iss=f"{ISS}/realms/acme", sub="alice")]) == 403
    e = stack(procs, keys, allow({"when": [{"key": "request.auth.principal", "values": [f"{ISS}/alice"]}]}))
    assert get(e, headers=[bearer(keys, sub="alice")]) == 200
    assert get(e, headers=[bearer(keys, iss=f"{ISS}/alice", sub="")]) == 403


def test_6_presenter_is_azp_only(procs, keys):
    policies = allow({"when": [{"key": "request.auth.presenter", "values": ["web"]}]})
    e = stack(procs, keys, policies)
    assert get(e, headers=[bearer(keys, azp="web")]) == 200
    assert get(e, headers=[bearer(keys, client_id="web")]) == 403
    e = stack(procs, keys, policies, presenter_falls_back_to_client_id=True)
    assert get(e, headers=[bearer(keys, client_id="web")]) == 200, "the opt-in widening"


def test_7_path_templates_are_envoy_uri_templates(procs, keys):
    e = stack(procs, keys, allow({"to": [{"operation": {"paths": ["/x/{**}", "/foo/{**}/", "/p/{*}/q"]}}]}))
    assert get(e, "/x") == 403, "/x/{**} needs the slash"
    assert get(e, "/x/") == 200
    assert get(e, "/x/a/b") == 200
    assert get(e, "/foo/a/") == 200, "Istio-valid /foo/{**}/ is accepted"
    assert get(e, "/foo/a") == 403
    assert get(e, "/p/a|b/q") == 403, "not a pchar"
    assert get(e, "/p/a:b@c/q") == 200


def test_8_header_star_is_presence(procs, keys):
    policies = allow({"when": [{"key": "request.headers[x-e]", "values": ["*"]}]})
    e = stack(procs, keys, policies)
    assert get(e, headers=[("x-e", "")]) == 200
    assert get(e) == 403
    e = stack(procs, keys, policies, header_star_requires_value=True)
    assert get(e, headers=[("x-e", "")]) == 403, "the opt-in narrowing"


@pytest.mark.parametrize("xff", ["1.2.3.4:80", "::ffff:1.2.3.4", "[1.2.3.4]"])
def test_9_xff_entries_envoy_does_not_take(procs, keys, xff):
    e = stack(procs, keys, allow({"from": [{"source": {"remoteIpBlocks": ["1.2.3.4"]}}]}))
    assert get(e, headers=[("x-forwarded-for", xff)]) == 403, xff
    assert get(e, headers=[("x-forwarded-for", "1.2.3.4")]) == 200


def test_11_authz_and_rate_limit_agree_on_the_client(procs, keys):
    # One trusted proxy in front: Envoy appends the peer, so the client is one from the right
    # of what the filters see, and both filters name it the same way.
    up = procs.echo()
    authz = {"decision_state": False, "xff_num_trusted_hops": 1,
             "policies": allow({"from": [{"source": {"remoteIpBlocks": ["203.0.113.7"]}}]})}
    rate = {"xff_num_trusted_hops": 1,
            "rules": [{"name": "per-client", "key": [{"source_ip": {}}],
                       "limit": {"requests": 1, "per": "minute", "algorithm": "fixed_window"}}]}
    e = procs.envoy([authz_filter(authz), rate_limit_filter(rate)], [static_cluster("upstream", up.port)])
    e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "use_remote_address"] = True
    e.start()
    assert get(e, headers=[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]) == 200
    assert get(e, headers=[("x-forwarded-for", "198.51.100.2, 203.0.113.7")]) == 429, \
        "rate-limit keyed another client than authz admitted"
    assert get(e, headers=[("x-forwarded-for", "203.0.113.8")]) == 403
