"""`make image` and `make release` against a real registry (Debian `docker-registry`) and real
`skopeo`: every image is pushed, read back the way Istio's agent reads it (manifest digest,
last layer of type tar+gzip, the file plugin.wasm) and pulled again with skopeo; the layer
holds exactly plugin.wasm with the bytes of dist/<module>.wasm; the release's pinned
WasmPlugins carry the digest the registry serves for their url."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import DIST, REPO_ROOT, TESTS_DIR
from harness.registry import Registry, skopeo

IMAGE_PY = REPO_ROOT / "scripts" / "image.py"
RELEASE_PY = REPO_ROOT / "scripts" / "release.py"
MANIFESTS = REPO_ROOT / "istio-manifests"

# The shipped modules: one list, the builder's own.
_spec = importlib.util.spec_from_file_location("meshward_image", IMAGE_PY)
_image = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_image)
MODULES: tuple[str, ...] = _image.MODULES
SERVICES: tuple[str, ...] = _image.SERVICES  # container images (linux), not Wasm

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"  # Istio's compat variant
# What go-containerregistry (Istio's client) accepts for a manifest.
ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)


def printed_digests(stdout: str) -> dict[str, str]:
    """module -> manifest digest from image.py's lines `sha256:...  meshward/<m>:<tag> ...`."""
    out = {}
    for line in stdout.splitlines():
        digest, ref = line.split()[:2]
        out[ref.split("/")[-1].split(":")[0]] = digest
    return out


def http_get(url: str, accept: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def fetch_like_istio(reg: Registry, repo: str, ref: str) -> tuple[str, dict, bytes]:
    """Read an image as istio-agent does (pkg/wasm/imagefetcher.go): the manifest's digest is
    what WasmPlugin.sha256 is compared with; the wasm is plugin.wasm in the last layer, which
    must be tar+gzip. Returns (manifest digest hex, manifest, wasm bytes)."""
    status, headers, body = http_get(reg.url(f"/v2/{repo}/manifests/{ref}"), ACCEPT)
    assert status == 200, (status, body[:300])
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert headers.get("Docker-Content-Digest") == digest
    assert headers.get("Content-Type") == OCI_MANIFEST
    manifest = json.loads(body)
    layer = manifest["layers"][-1]
    assert layer["mediaType"] == OCI_LAYER_GZIP
    status, _, blob = http_get(reg.url(f"/v2/{repo}/blobs/{layer['digest']}"))
    assert status == 200
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = next(m for m in tar.getmembers() if Path(m.name).name == "plugin.wasm")
        wasm = tar.extractfile(member).read()
    return digest.removeprefix("sha256:"), manifest, wasm


def push(layout: Path, tag: str, reg: Registry, repo: str) -> subprocess.CompletedProcess:
    # --preserve-digests: fail rather than let skopeo rewrite the manifest.
    return skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
                  f"oci:{layout}:{tag}", f"docker://{reg.host}/{repo}:{tag}")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def wasms() -> dict[str, bytes]:
    missing = [m for m in MODULES if not (DIST / f"{m}.wasm").is_file()]
    if missing:
        pytest.fail(f"dist/{missing[0]}.wasm is missing: run `make build` first")
    return {m: (DIST / f"{m}.wasm").read_bytes() for m in MODULES}


@pytest.fixture(scope="module")
def built(tmp_path_factory, wasms):
    """scripts/image.py (what `make image` runs) into a temporary dir: (dir, digests, tag)."""
    out = tmp_path_factory.mktemp("images")
    p = run_script(IMAGE_PY, "--out", str(out))
    assert p.returncode == 0, p.stderr
    digests = printed_digests(p.stdout)
    assert sorted(digests) == sorted(MODULES + SERVICES), p.stdout
    tag = json.loads((out / "jwt-auth" / "index.json").read_text())[
        "manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    return out, digests, tag


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        status, headers, _ = http_get(reg.url("/v2/"))
        # Our registry answers, not whatever else might hold the port.
        assert status == 200 and headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
        yield reg
    finally:
        reg.stop()
        assert not reg.proc.alive(), "docker-registry still running after stop"


# ------------------------------------------------------------------ the build
def test_layouts_are_istio_compat_images(built, wasms):
    out, digests, tag = built
    assert (out / "DIGESTS").read_text().split() == [
        w for m in MODULES + SERVICES for w in (digests[m], f"meshward/{m}:{tag}")]
    for m in MODULES:
        layout = out / m
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads((layout / "index.json").read_text())
        assert [d["digest"] for d in index["manifests"]] == [digests[m]]
        blobs = layout / "blobs" / "sha256"
        raw = (blobs / digests[m].removeprefix("sha256:")).read_bytes()
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digests[m]
        manifest = json.loads(raw)
        assert manifest["mediaType"] == OCI_MANIFEST
        assert manifest["config"]["mediaType"] == OCI_CONFIG
        assert [lay["mediaType"] for lay in manifest["layers"]] == [OCI_LAYER_GZIP]
        assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
        # GNU tar, not our own reader: exactly one entry, plugin.wasm, root-owned, epoch mtime.
        layer = blobs / manifest["layers"][0]["digest"].removeprefix("sha256:")
        listing = subprocess.run(["tar", "--numeric-owner", "--full-time", "-tvzf", str(layer)],
                                 capture_output=True, text=True, check=True).stdout.split()
        assert listing[0] == "-rw-r--r--" and listing[1] == "0/0", listing
        assert listing[3:6] == ["1970-01-01", "00:00:00", "plugin.wasm"], listing
        assert len(listing) == 6, listing
        assert int(listing[2]) == len(wasms[m])
        diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer.read_bytes())).hexdigest()
        config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
        assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}


def test_build_is_deterministic(tmp_path, built):
    _, digests, _ = built
    # A fresh copy of each wasm with another mtime, built a second later: the same digests.
    dist = tmp_path / "dist"
    dist.mkdir()
    for m in MODULES:
        shutil.copyfile(DIST / f"{m}.wasm", dist / f"{m}.wasm")
    for svc in SERVICES:
        shutil.copyfile(DIST / svc, dist / svc)
    time.sleep(1.1)
    p = run_script(IMAGE_PY, "--dist", str(dist), "--out", str(tmp_path / "again"))
    assert p.returncode == 0, p.stderr
    assert printed_digests(p.stdout) == digests
    # One changed byte at the end of the module changes the digest.
    (dist / "authz.wasm").write_bytes((DIST / "authz.wasm").read_bytes() + b"\0")
    p = run_script(IMAGE_PY, "--dist", str(dist), "--out", str(tmp_path / "changed"), "authz")
    assert p.returncode == 0, p.stderr
    assert printed_digests(p.stdout)["authz"] != digests["authz"]


@pytest.mark.parametrize("case", ["missing", "not-wasm", "unknown-module", "bad-tag"])
def test_builder_refuses_bad_input_clearly(tmp_path, case):
    dist = tmp_path / "dist"
    dist.mkdir()
    for m in MODULES:
        shutil.copyfile(DIST / f"{m}.wasm", dist / f"{m}.wasm")
    for svc in SERVICES:
        shutil.copyfile(DIST / svc, dist / svc)
    args = ["--dist", str(dist), "--out", str(tmp_path / "out")]
    if case == "missing":
        (dist / "rate-limit.wasm").unlink()
        want = f"{dist / 'rate-limit.wasm'}: no such file (run `make build` first)"
    elif case == "not-wasm":
        (dist / "authz.wasm").write_text("<html>not a module</html>")
        want = f"{dist / 'authz.wasm'}: not a WebAssembly module"
    elif case == "unknown-module":
        args.append("noop")
        want = "unknown module noop"
    else:
        args += ["--version", "1.0 beta"]
        want = "version '1.0 beta' is not a valid image tag"
    p = run_script(IMAGE_PY, *args)
    assert p.returncode == 1
    assert want in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------ the registry round trip
@pytest.mark.parametrize("module", MODULES)
def test_registry_round_trip(module, built, registry, wasms, tmp_path):
    out, digests, tag = built
    repo = f"meshward/{module}"
    p = push(out / module, tag, registry, repo)
    assert p.returncode == 0, p.stderr

    digest_hex, manifest, wasm = fetch_like_istio(registry, repo, tag)
    assert "sha256:" + digest_hex == digests[module]
    assert wasm == wasms[module]
    assert len(manifest["layers"]) == 1

    # skopeo's own view, then a pull back into a fresh layout.
    p = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo}:{tag}")
    assert p.returncode == 0, p.stderr
    assert "sha256:" + hashlib.sha256(p.stdout.encode()).hexdigest() == digests[module]
    pulled = tmp_path / "pulled"
    p = skopeo("copy", "--preserve-digests", "--src-tls-verify=false",
               f"docker://{registry.host}/{repo}:{tag}", f"oci:{pulled}:{tag}")
    assert p.returncode == 0, p.stderr
    index = json.loads((pulled / "index.json").read_text())
    assert [d["digest"] for d in index["manifests"]] == [digests[module]]
    blobs = pulled / "blobs" / "sha256"
    manifest = json.loads((blobs / digests[module].removeprefix("sha256:")).read_bytes())
    layer = blobs / manifest["layers"][0]["digest"].removeprefix("sha256:")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(layer), "-C", str(unpacked)], check=True)
    assert [p.name for p in unpacked.iterdir()] == ["plugin.wasm"]
    assert (unpacked / "plugin.wasm").read_bytes() == wasms[module]


def test_registry_refuses_a_layout_with_a_wrong_blob(built, tmp_path):
    out, _, tag = built
    bad = tmp_path / "bad"
    shutil.copytree(out / "authz", bad)
    manifest_digest = json.loads((bad / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((bad / "blobs/sha256" / manifest_digest.removeprefix("sha256:")).read_bytes())
    layer = bad / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content: only the digest check catches it
    layer.write_bytes(bytes(data))
    # A registry of its own: one that already holds the real blob lets skopeo skip the upload.
    registry = Registry(tmp_path / "registry").start()
    try:
        p = push(bad, tag, registry, "meshward/tampered")
        assert p.returncode != 0
        # skopeo checks each blob against its digest while it reads the layout.
        assert "digest did not match" in p.stderr.lower(), p.stderr
        status, _, _ = http_get(registry.url(f"/v2/meshward/tampered/manifests/{tag}"), ACCEPT)
        assert status == 404
    finally:
        registry.stop()


# ------------------------------------------------------------------ make release
def _docs(path: Path) -> list[dict]:
    """The mapping documents of a YAML file (kustomize JSON patches are lists: left out)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def _url_patches(path: Path) -> list[list]:
    """JSON 6902 patch documents that set /spec/url."""
    return [d for d in yaml.safe_load_all(path.read_text())
            if isinstance(d, list) and any(isinstance(op, dict) and op.get("path") == "/spec/url"
                                           and op.get("op") in ("add", "replace") for op in d)]


def test_release_pins_what_the_registry_serves(built, registry, wasms, tmp_path):
    _, digests, tag = built
    out = tmp_path / "release"
    p = run_script(RELEASE_PY, "--registry", registry.host, "--out", str(out))
    assert p.returncode == 0, p.stderr
    rel = out / tag

    # Versioned modules and their sums, checked by coreutils.
    names = {m: f"meshward-{tag}.wasm" if m == "meshward" else f"meshward-{m}-{tag}.wasm"
             for m in MODULES}
    for m, name in names.items():
        assert (rel / name).read_bytes() == wasms[m]
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=rel,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(check.stdout.split()) == sorted([f"{n}:" for n in names.values()]
                                                  + ["OK"] * len(names))
    assert (rel / "LICENSE").read_bytes() == (REPO_ROOT / "LICENSE").read_bytes()

    # The release's images are the same images (same wasm, same digest).
    for m in MODULES:
        index = json.loads((rel / "images" / m / "index.json").read_text())
        assert index["manifests"][0]["digest"] == digests[m]

    sources = [s for s in sorted(MANIFESTS.rglob("*.y*ml"))
               if any(d.get("kind") == "WasmPlugin" for d in _docs(s))]
    assert sources, "no WasmPlugin in istio-manifests/"
    seen = set()
    for src in sources:
        pinned = rel / "istio-manifests" / src.relative_to(MANIFESTS)
        before, after = _docs(src), _docs(pinned)
        assert len(before) == len(after)
        for b, a in zip(before, after):
            if b.get("kind") != "WasmPlugin" or "url" not in b.get("spec", {}):
                assert a == b
                continue
            url = a["spec"]["url"]
            assert url.startswith(f"oci://{registry.host}/meshward/") and url.endswith(f":{tag}")
            repo, ref = url.removeprefix(f"oci://{registry.host}/").rsplit(":", 1)
            if repo not in seen:
                p = push(rel / "images" / repo.split("/")[-1], tag, registry, repo)
                assert p.returncode == 0, p.stderr
                seen.add(repo)
            digest_hex, _, wasm = fetch_like_istio(registry, repo, ref)
            assert a["spec"]["sha256"] == digest_hex, src
            assert wasm == wasms[repo.split("/")[-1]]
            # Nothing else changed.
            for d in (a, b):
                d["spec"].pop("url")
                d["spec"].pop("sha256", None)
            assert a == b
    assert seen

    # An overlay that points the plugin at another image drops the release's sha256 with it.
    for src in sorted(MANIFESTS.rglob("*.y*ml")):
        if not _url_patches(src):
            continue
        before = _url_patches(src)
        after = _url_patches(rel / "istio-manifests" / src.relative_to(MANIFESTS))
        for b, a in zip(before, after, strict=True):
            if any(op.get("path") == "/spec/sha256" for op in b):
                assert a == b  # the overlay handles sha256 itself
                continue
            assert [op for op in a if op.get("path") != "/spec/sha256"] == b
            assert {"op": "remove", "path": "/spec/sha256"} in a


def test_pinned_manifests_pass_the_istio_crd_schema(tmp_path):
    out = tmp_path / "release"
    p = run_script(RELEASE_PY, "--out", str(out))
    assert p.returncode == 0, p.stderr
    pinned = [f for f in sorted(out.rglob("istio-manifests/**/*.y*ml"))
              if any(d.get("kind") == "WasmPlugin" for d in _docs(f))]
    assert pinned
    node = shutil.which("node") or "node"
    v = subprocess.run([node, str(TESTS_DIR / "istio" / "validate-manifests.mjs"), *map(str, pinned)],
                       cwd=TESTS_DIR, capture_output=True, text=True, timeout=60)
    try:
        results = [r for r in json.loads(v.stdout) if r["kind"] == "WasmPlugin"]
    except json.JSONDecodeError:
        pytest.fail(f"the manifest validator gave no JSON:\n{v.stdout}{v.stderr}")
    assert results and all(r["ok"] for r in results), v.stdout + v.stderr


def test_release_refuses_a_wasmplugin_it_cannot_map(tmp_path):
    manifests = tmp_path / "istio-manifests"
    manifests.mkdir()
    (manifests / "other.yaml").write_text(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: x\n"
        "spec:\n  url: oci://ghcr.io/someone/else:1.0\n")
    p = run_script(RELEASE_PY, "--manifests", str(manifests), "--out", str(tmp_path / "out"))
    assert p.returncode == 1
    assert "cannot tell which module spec.url 'oci://ghcr.io/someone/else:1.0' is" in p.stderr
    assert "Traceback" not in p.stderr, p.stderr


def test_pinning_edits_only_url_and_sha256(tmp_path):
    """Block-style variations the manifests may take: quoted values, an old digest url, an
    existing sha256, comments, a deeper `url:` in pluginConfig, a WasmPlugin patch without a
    url, and another kind with a url. Comments survive; PyYAML reads the result."""
    src = (
        "# leading comment\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
        "metadata:\n  name: a\nspec:   # the spec\n    # a comment at another indent\n"
        "    url: \"oci://ghcr.io/meshward/authz@sha256:0000\"  # old\n    sha256: 'deadbeef'\n"
        "    pluginConfig:\n      url: keep-me\n"
        "---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n"
        "  name: patch\nspec:\n  priority: 10\n"
        "--- # third\nkind: EnvoyFilter\nspec:\n  url: oci://ghcr.io/meshward/authz:1\n"
        "---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: c}\n"
        "spec:\n  url: file:///opt/meshward/rate-limit.wasm\nstatus: {}\n")
    manifests = tmp_path / "istio-manifests"
    (manifests / "nested").mkdir(parents=True)
    (manifests / "nested" / "plugins.yaml").write_text(src)
    (manifests / "kustomization.yaml").write_text("resources:\n- nested/plugins.yaml\n")
    patch = ("- op: replace\n  path: /spec/url\n  value: oci://ghcr.io/meshward/meshward:dev\n"
             "- op: replace\n  path: /spec/failStrategy\n  value: FAIL_OPEN\n")
    own_sha = "- path: /spec/url\n  op: add\n  value: x\n- op: remove\n  path: /spec/sha256\n"
    (manifests / "dev.yaml").write_text(patch)
    (manifests / "own.yaml").write_text(own_sha)
    p = run_script(RELEASE_PY, "--manifests", str(manifests), "--out", str(tmp_path / "out"),
                   "--registry", "registry.example.com/platform", "--version", "9.9.9")
    assert p.returncode == 0, p.stderr
    rel = tmp_path / "out" / "9.9.9"
    digests = dict(line.split()[::-1] for line in (rel / "images" / "DIGESTS").read_text().splitlines())
    out = (rel / "istio-manifests" / "nested" / "plugins.yaml").read_text()
    assert "# leading comment" in out and "# a comment at another indent" in out
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["spec"] == {
        "url": "oci://registry.example.com/platform/meshward/authz:9.9.9",
        "sha256": digests["meshward/authz:9.9.9"].removeprefix("sha256:"),
        "pluginConfig": {"url": "keep-me"}}
    assert docs[1]["metadata"] == {"name": "patch"} and docs[1]["spec"] == {"priority": 10}
    assert docs[2]["spec"] == {"url": "oci://ghcr.io/meshward/authz:1"}
    assert docs[3]["spec"]["url"] == "oci://registry.example.com/platform/meshward/rate-limit:9.9.9"
    assert docs[3]["status"] == {}
    assert (rel / "istio-manifests" / "kustomization.yaml").read_text() == \
        "resources:\n- nested/plugins.yaml\n"
    dev = yaml.safe_load((rel / "istio-manifests" / "dev.yaml").read_text())
    assert dev == yaml.safe_load(patch)[:1] + [{"op": "remove", "path": "/spec/sha256"}] + \
        yaml.safe_load(patch)[1:]
    assert (rel / "istio-manifests" / "own.yaml").read_text() == own_sha


def test_pinned_kustomizations_render_consistent_sha256(tmp_path):
    """kubectl's kustomize over every kustomization in the release copy: a rendered WasmPlugin
    carries the release's sha256 only with the release's url for its module, and none when an
    overlay points it elsewhere (Istio would refuse that image)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl missing (scripts/ensure-deps.sh installs Debian kubernetes-client)"
    out = tmp_path / "release"
    p = run_script(RELEASE_PY, "--out", str(out))
    assert p.returncode == 0, p.stderr
    rel = next(out.iterdir())
    digests = dict(line.split()[::-1] for line in (rel / "images" / "DIGESTS").read_text().splitlines())
    dirs = sorted(k.parent for k in (rel / "istio-manifests").rglob("kustomization.yaml"))
    if not dirs:
        pytest.fail("no kustomization.yaml in istio-manifests/")
    plugins = containers = 0
    for d in dirs:
        r = subprocess.run([kubectl, "kustomize", str(d)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{d}: {r.stderr}"
        for doc in yaml.safe_load_all(r.stdout):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                # A shipped service runs the release's image, by digest, in every overlay.
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    for svc in SERVICES:
                        if f"/meshward/{svc}" in c["image"]:
                            containers += 1
                            assert c["image"] == (f"ghcr.io/meshward/{svc}@"
                                                  + digests[f"meshward/{svc}:{rel.name}"]), d
            if not isinstance(doc, dict) or doc.get("kind") != "WasmPlugin":
                continue
            plugins += 1
            spec = doc["spec"]
            module = spec["url"].rsplit("/", 1)[-1].split(":")[0]
            release_url = f"oci://ghcr.io/meshward/{module}:{rel.name}"
            if spec["url"] == release_url:
                assert spec.get("sha256") == digests[f"meshward/{module}:{rel.name}"].removeprefix(
                    "sha256:"), d
            else:
                assert "sha256" not in spec, f"{d}: {spec['url']} with the release's sha256"
    assert plugins and containers
