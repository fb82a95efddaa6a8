"""Path tricks through real Envoy, against all three filters at once (jwt-auth rules, authz
policies, rate-limit keys), with and without the HCM's own normalisation: a spelling of a
path never reaches another rule than the one its normal form names, and a path whose meaning
depends on the upstream is refused with 400 before the upstream sees it.

Requests go out through http.client so the path bytes are exactly the ones written here
(`requests` would re-quote them)."""

from __future__ import annotations

import json

import pytest

from harness import tokens as tk
from harness.authz_support import authz_filter
from harness.envoy import jwt_auth_filter, static_cluster
from harness.raw_http import raw_request
from harness.rls_proc import rate_limit_filter

ISS = "https://issuer.paths.meshward.test"
AUD = "paths-api"

JWT = {
    "rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"}, "required_scopes": ["admin"]},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ],
}
AUTHZ = {"policies": [
    {"name": "public", "rules": [{"to": [{"operation": {"paths": ["/public/*"]}}]}]},
    {"name": "admin", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}], "scopes": ["admin"]}]},
    {"name": "own-orders", "rules": [{"to": [{"operation": {"paths": ["/users/{user}/orders/{**}"]}}],
                                      "objects": [{"capture": "user", "equals": "request.auth.claims[sub]"}]}]},
    {"name": "limited", "rules": [{"to": [{"operation": {"paths": ["/limited/*"]}}]}]},
]}
RATE = {"rules": [{"name": "per-path", "match": {"prefix": "/limited"}, "key": [{"path": {}}],
                   "limit": {"requests": 2, "per": "minute", "algorithm": "fixed_window"}}]}

# HCM variants: none of its normalisation, and Istio's MERGE_SLASHES.
HCMS = {
    "raw": {},
    "istio": {"normalize_path": True, "merge_slashes": True},
}


@pytest.fixture(params=sorted(HCMS), scope="module")
def chain(request, tmp_path_factory, keys, jwt_wasm):
    from harness.echo import EchoUpstream
    from harness.envoy import Envoy

    echo = EchoUpstream().start()
    jwt_cfg = dict(JWT, providers={"p": {"issuer": ISS, "audiences": [AUD],
                                          "local_jwks": {"inline_string": json.dumps(tk.jwks(keys.rsa))}}})
    envoy = Envoy(tmp_path_factory.mktemp(f"paths-{request.param}"),
                  [jwt_auth_filter(jwt_cfg), authz_filter(AUTHZ), rate_limit_filter(RATE)],
                  [static_cluster("upstream", echo.port)], name=f"envoy-paths-{request.param}")
    hcm = envoy.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.update(HCMS[request.param])
    envoy.start()

    def token(sub: str, scope: str = "read") -> str:
        return tk.mint(keys.rsa, tk.claims(ISS, AUD, sub=sub, scope=scope))

    yield request.param, envoy, echo, token
    problems = envoy.health_problems()
    envoy.stop()
    echo.stop()
    assert not problems, problems


def raw_get(envoy, path: str, token: str | None = None) -> int:
    headers = [("authorization", f"Bearer {token}")] if token else []
    return raw_request(envoy.port, path, headers)[0]


def seen(echo, before: int) -> list[str]:
    return [r["path"] for r in echo.requests[before:]]


WALKS_TO_ADMIN = ["/public/../admin", "//admin", "/public/%2e%2e/admin", "/public/./../admin",
                  "/%61dmin", "/public//../../admin"]


@pytest.mark.parametrize("path", WALKS_TO_ADMIN)
def test_no_spelling_of_admin_gets_in_through_public(chain, path):
    hcm, e, echo, token = chain
    n = len(echo.requests)
    # /public/../../admin climbs above the root: Envoy's own normaliser clamps it to /admin,
    # ours refuses it; either way it is not a pass into /admin.
    assert raw_get(e, path) in (400, 401), (hcm, path)
    assert raw_get(e, path, token("alice")) in (400, 403), (hcm, path)
    assert seen(echo, n) == [], (hcm, path)
    assert raw_get(e, path, token("root", "admin")) in (200, 400), (hcm, path)


@pytest.mark.parametrize("path", ["/public/..%2Fadmin", "/public%2F..%2Fadmin", "/public/%2e%2e%2fadmin",
                                  "/public/..%5Cadmin", "/public/x%00", "/public/%zz"])
def test_ambiguous_paths_are_refused_before_the_upstream(chain, path):
    hcm, e, echo, token = chain
    n = len(echo.requests)
    assert raw_get(e, path) == 400, (hcm, path)
    assert raw_get(e, path, token("root", "admin")) == 400, (hcm, path)
    assert seen(echo, n) == [], (hcm, path)


def test_public_stays_public_and_admin_needs_its_scope(chain):
    hcm, e, echo, token = chain
    assert raw_get(e, "/public/x") == 200
    assert raw_get(e, "/public/a/../b") == 200
    assert raw_get(e, "/admin/x", token("alice")) == 403, hcm
    assert raw_get(e, "/admin/x", token("root", "admin")) == 200, hcm


@pytest.mark.parametrize("path,ok", [
    ("/users/alice/orders/1", True),
    ("/users/alice//orders/1", True),
    ("/users/alice/orders/./1", True),
    ("/users/alice/orders/../../bob/orders/1", False),
    ("/users/bob/orders/../../alice/orders/1", True),
    ("/users/%61lice/orders/1", True),
    ("/users/alice/orders/..%2F..%2Fbob/orders/1", False),
])
def test_object_checks_see_the_normal_form(chain, path, ok):
    hcm, e, echo, token = chain
    status = raw_get(e, path, token("alice"))
    assert (status == 200) == ok, (hcm, path, status)


def test_rate_limit_keys_count_every_spelling_as_one_path(chain):
    hcm, e, echo, token = chain
    t = token("carol")
    base = f"/limited/{hcm}"
    spellings = [f"{base}/k", f"/limited/./{hcm}/k", f"//limited/{hcm}//k"]
    assert [raw_get(e, p, t) for p in spellings] == [200, 200, 429], hcm
