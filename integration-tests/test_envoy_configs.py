"""Every shipped Envoy config passes `envoy --mode validate`, and an invalid jwt-auth config
is refused with a log line naming the field path."""

from __future__ import annotations

import json

import pytest

from harness import REPO_ROOT
from harness.envoy import Envoy, jwt_auth_filter, static_cluster, validate
from harness.procs import wait_until

CONFIGS = sorted(p for ext in ("yaml", "yml", "json") for p in (REPO_ROOT / "envoy-configs").glob(f"*.{ext}"))


def test_expected_configs_are_shipped():
    names = {p.name for p in CONFIGS}
    for must in ("demo.yaml", "jwt-auth.yaml", "jwt-auth-remote.yaml", "native-jwt_authn.yaml"):
        assert must in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_validates(path, jwt_wasm):
    rc, out = validate(path.relative_to(REPO_ROOT))
    assert rc == 0 and "OK" in out, out[-3000:]


BAD_CONFIGS = {
    # provider without its required issuer
    "missing-issuer": ({"providers": {"corp": {"local_jwks": {"inline_string": '{"keys":[]}'}}},
                        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]},
                       "providers.corp.issuer"),
    # nested required field
    "missing-cluster": ({"providers": {"corp": {"issuer": "https://i", "remote_jwks": {
                            "http_uri": {"uri": "http://127.0.0.1:1/jwks", "timeout": "1s"}}}},
                         "rules": []},
                        "providers.corp.remote_jwks.http_uri.cluster"),
    # unknown field (deny_unknown_fields)
    "unknown-field": ({"providers": {"corp": {"issuer": "https://i", "isuer": "typo",
                                              "local_jwks": {"inline_string": '{"keys":[]}'}}},
                       "rules": []},
                      "isuer"),
}


def _bad_bootstrap(workdir, cfg):
    e = Envoy(workdir, [jwt_auth_filter(cfg)], [static_cluster("upstream", 1)], name="bad")
    e.config_path.write_text(json.dumps(e.config))
    return e


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_invalid_config_rejected_by_validate(case, tmp_path, jwt_wasm):
    cfg, field = BAD_CONFIGS[case]
    e = _bad_bootstrap(tmp_path, cfg)
    rc, out = validate(e.config_path)
    assert rc != 0, out[-3000:]
    assert "meshward jwt-auth: invalid config:" in out, out[-3000:]
    assert field in out, out[-3000:]


def test_invalid_config_envoy_refuses_to_start(tmp_path, jwt_wasm):
    cfg, field = BAD_CONFIGS["missing-issuer"]
    e = Envoy(tmp_path, [jwt_auth_filter(cfg)], [static_cluster("upstream", 1)], name="bad")
    e.start(wait_ready=False)
    try:
        rc = e.proc.wait_exit(30)
        if rc is None:
            # still running: the listener must not have been accepted
            r = wait_until(lambda: _listeners(e), 5)
            assert "ingress" not in (r or ""), "listener with an invalid jwt-auth config is active"
        else:
            assert rc != 0
        log = e.log_text()
        assert f"meshward jwt-auth: invalid config: {field}" in log, log[-3000:]
    finally:
        e.stop()


def _listeners(e):
    import requests

    try:
        return requests.get(e.admin_url("/listeners"), timeout=1).text
    except requests.RequestException:
        return None
