"""Fixtures for meshward's integration tests (real Envoy, real OIDC provider, Python echo upstream).

Helpers live in harness/; this module only wires them into pytest fixtures. Every process
started here is stopped in teardown (process-group kill), and every Envoy started through a
fixture is checked for health (alive, /ready, no panic / VM crash lines) when it is torn down.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import DIST  # noqa: E402
from harness.echo import EchoUpstream  # noqa: E402
from harness.envoy import Envoy, jwt_auth_filter, static_cluster  # noqa: E402
from harness.oidc import OidcProvider  # noqa: E402
from harness import tokens as tk  # noqa: E402

from harness.configs import LOCAL_AUD, LOCAL_ISS, local_jwt_config  # noqa: E402


# ------------------------------------------------------------------ build output
@pytest.fixture(scope="session")
def jwt_wasm() -> Path:
    p = DIST / "jwt-auth.wasm"
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make build` first")
    return p


# ------------------------------------------------------------------ keys
@pytest.fixture(scope="session")
def keys() -> SimpleNamespace:
    """Trusted keys (published in the local JWKS) and attacker keys (never published)."""
    return SimpleNamespace(
        rsa=tk.rsa_key("rsa-1"),
        ec=tk.ec_key("ec-1"),
        ed=tk.ed_key("ed-1"),
        attacker_rsa=tk.rsa_key("attacker-1"),
        attacker_ec=tk.ec_key("attacker-ec"),
        # same kid as a trusted key, different key material
        impostor_rsa=tk.rsa_key("rsa-1"),
    )


# ------------------------------------------------------------------ process factories
class _Registry:
    def __init__(self):
        self.envoys: list[tuple[Envoy, bool]] = []
        self.oidcs: list[OidcProvider] = []
        self.echos: list[EchoUpstream] = []

    def teardown(self) -> list[str]:
        problems = []
        for e, check in self.envoys:
            if check and e.proc is not None:
                problems += [f"[{e.name}] {p}" for p in e.health_problems()]
            e.stop()
        for o in self.oidcs:
            o.stop()
        for u in self.echos:
            u.stop()
        return problems


@pytest.fixture
def procs(tmp_path):
    """Factory for Envoy / OIDC / echo processes scoped to one test."""
    reg = _Registry()

    def envoy(http_filters, clusters, check_health=True, **kw) -> Envoy:
        e = Envoy(tmp_path, http_filters, clusters, name=f"envoy{len(reg.envoys)}", **kw)
        reg.envoys.append((e, check_health))
        return e

    def oidc(keys, port=None) -> OidcProvider:
        o = OidcProvider(tmp_path, keys, port=port, name=f"oidc{len(reg.oidcs)}")
        reg.oidcs.append(o)
        return o

    def echo() -> EchoUpstream:
        u = EchoUpstream().start()
        reg.echos.append(u)
        return u

    yield SimpleNamespace(envoy=envoy, oidc=oidc, echo=echo, workdir=tmp_path)
    problems = reg.teardown()
    if problems:
        pytest.fail("Envoy health after test:\n" + "\n".join(problems))


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, keys, jwt_wasm):
    """Echo upstream + Envoy with the local-JWKS jwt-auth config, shared by a test module.

    `stack.tokens` collects every token the module minted, for the log-hygiene check."""
    workdir = tmp_path_factory.mktemp("local")
    echo = EchoUpstream().start()
    envoy = Envoy(workdir, [jwt_auth_filter(local_jwt_config(keys))],
                  [static_cluster("upstream", echo.port)], name="envoy-local")
    try:
        envoy.start()
    except Exception:
        echo.stop()
        raise
    minted: list[str] = []

    def token(key=None, alg=None, headers=None, **claim_overrides) -> str:
        c = tk.claims(LOCAL_ISS, LOCAL_AUD)
        c.update(claim_overrides)
        t = tk.mint(key or keys.rsa, c, headers=headers, alg=alg)
        minted.append(t)
        return t

    stack = SimpleNamespace(echo=echo, envoy=envoy, keys=keys, token=token, tokens=minted,
                            iss=LOCAL_ISS, aud=LOCAL_AUD)
    yield stack
    envoy.stop()
    echo.stop()


def pytest_report_header(config):
    from harness.envoy import module_mode

    return f"meshward module under test: {module_mode()} (MESHWARD_MODULE)"
