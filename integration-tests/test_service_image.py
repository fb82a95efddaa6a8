"""The rate-limit service's container image (`make image`: dist/images/ratelimit-service, the
image istio-manifests/infra/ratelimit-service.yaml deploys) is self-contained: pushed to a real
registry, pulled back, its one layer unpacked as the root filesystem and its entrypoint run
there (chroot, as the image's own user), it answers a real Envoy's rate-limit filter from a
real Redis."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import requests

from harness import DIST, REPO_ROOT
from harness.envoy import static_cluster
from harness.ports import free_port
from harness.procs import Proc, start_listening
from harness.redis_proc import Redis
from harness.registry import Registry, skopeo
from harness.rls_proc import grpc_cluster, rate_limit_filter

SERVICE = "ratelimit-service"
IMAGE_PY = REPO_ROOT / "scripts" / "image.py"


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """Build the image, push it to a real registry and pull it back: (layout, manifest digest,
    config, layer bytes)."""
    if not (DIST / SERVICE).is_file():
        pytest.fail(f"dist/{SERVICE} is missing: run `make build` first")
    wd = tmp_path_factory.mktemp("service-image")
    p = subprocess.run([sys.executable, str(IMAGE_PY), "--out", str(wd / "images"), SERVICE],
                       capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert p.returncode == 0, p.stderr
    digest, ref = p.stdout.split()[:2]
    tag = ref.rsplit(":", 1)[1]
    reg = Registry(wd).start()
    try:
        repo = f"{reg.host}/meshward/{SERVICE}"
        push = skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
                      f"oci:{wd / 'images' / SERVICE}:{tag}", f"docker://{repo}:{tag}")
        assert push.returncode == 0, push.stderr
        # Pulled by digest, as the release's Deployment names it.
        pull = skopeo("copy", "--src-tls-verify=false", f"docker://{repo}@{digest}",
                      f"oci:{wd / 'pulled'}:{tag}")
        assert pull.returncode == 0, pull.stderr
    finally:
        reg.stop()
    layout = wd / "pulled"
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    manifest = json.loads(_blob(layout, digest))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    assert len(manifest["layers"]) == 1
    return layout, digest, config, _blob(layout, manifest["layers"][0]["digest"])


def test_image_config_runs_the_service_unprivileged(pulled):
    _, _, config, _ = pulled
    assert config["os"] == "linux"
    assert config["config"]["Entrypoint"] == [f"/{SERVICE}"]
    uid, gid = config["config"]["User"].split(":")
    assert int(uid) != 0 and int(gid) != 0
    assert "8081/tcp" in config["config"]["ExposedPorts"]


def test_layer_holds_the_binary_and_only_what_it_loads(pulled):
    _, _, _, layer = pulled
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert tar.extractfile(files[SERVICE]).read() == (DIST / SERVICE).read_bytes()
    ldd = subprocess.run(["ldd", str(DIST / SERVICE)], capture_output=True, text=True).stdout
    loaded = {w.lstrip("/") for line in ldd.splitlines() for w in line.split()
              if w.startswith("/")}
    assert set(files) == {SERVICE} | loaded, sorted(files)


def test_unpacked_image_serves_envoy_from_redis(pulled, procs, tmp_path):
    """The image's own root filesystem and entrypoint, nothing from the host: a missing library
    or a wrong entrypoint fails here."""
    if os.geteuid() != 0:
        pytest.fail("this test runs the image with chroot, which needs root (CI runs as root)")
    _, _, config, layer = pulled
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        tar.extractall(rootfs, filter="tar")
    redis = Redis(tmp_path).start()
    try:
        def launch(port: int) -> Proc:
            argv = [shutil.which("chroot") or "/usr/sbin/chroot",
                    f"--userspec={config['config']['User']}", str(rootfs),
                    *config["config"]["Entrypoint"], "--listen", f"127.0.0.1:{port}",
                    "--redis", redis.url(), "--redis-timeout-ms", "100"]
            return Proc("rls-image", argv, tmp_path / "rls-image.log").start()

        rls, port = start_listening("ratelimit-service (image)", launch, free_port(), True)
        try:
            key = uuid.uuid4().hex
            cfg = {"mode": "global",
                   "rate_limit_service": {"cluster": "rls", "timeout": "0.25s",
                                          "failure_mode_deny": True},
                   "rules": [{"name": "image", "key": [{"literal": key}],
                              "limit": {"requests": 2, "per": "hour"}}]}
            echo = procs.echo()
            envoy = procs.envoy([rate_limit_filter(cfg)],
                                [static_cluster("upstream", echo.port), grpc_cluster("rls", port)]
                                ).start()
            codes = [requests.get(envoy.url("/"), timeout=10).status_code for _ in range(3)]
            assert codes == [200, 200, 429], (codes, rls.tail(20))
            # The count is in Redis, so the image's service did the counting.
            assert key.encode() in redis.command("KEYS", "*"), rls.tail(20)
        finally:
            rls.stop()
    finally:
        redis.stop()
