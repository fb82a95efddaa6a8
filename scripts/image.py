#!/usr/bin/env python3
"""Build Istio "compat" Wasm OCI images from dist/*.wasm, with no Docker daemon or registry.

Each image is an OCI image layout (oci-layout, index.json, blobs/sha256/...) holding one
manifest whose single layer (application/vnd.oci.image.layer.v1.tar+gzip) is a tar with one
file, plugin.wasm. That is the layout Istio's agent unpacks (pkg/wasm/imagefetcher.go: the
last layer, that media type, the entry named plugin.wasm). The build is deterministic: fixed
tar metadata and a gzip header without time or name, so the same wasm gives the same digest.

Usage: scripts/image.py [--dist dist] [--out dist/images] [MODULE...]
Prints one line per image: the manifest digest, then the image reference and the layout path.
Stdlib only (Python 3.11+ for tomllib).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules users deploy (dist/noop.wasm is the benchmark's baseline, not shipped).
MODULES = ("jwt-auth", "authz", "rate-limit", "meshward")
REPOSITORY = "meshward"  # images are <registry>/meshward/<module>:<version>

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# The compat spec asks for this annotation on OCI-typed compat images.
VARIANT_ANNOTATION = ("module.wasm.image/variant", "compat")
WASM_MAGIC = b"\x00asm"


class ImageError(Exception):
    """A user-facing build error (printed without a traceback)."""


def workspace_version(root: Path = ROOT) -> str:
    """The one version the shipped modules' crates carry; refuses to guess when they differ."""
    try:
        import tomllib
    except ImportError:
        raise ImageError("reading Cargo.toml needs Python 3.11+ (or pass --version)") from None
    ws = tomllib.loads((root / "Cargo.toml").read_text())
    ws_version = ws.get("workspace", {}).get("package", {}).get("version")
    versions: dict[str, str] = {}
    for member in ws.get("workspace", {}).get("members", []):
        manifest = root / member / "Cargo.toml"
        if not manifest.is_file():
            continue
        pkg = tomllib.loads(manifest.read_text()).get("package", {})
        if pkg.get("name") not in MODULES:
            continue
        v = pkg.get("version")
        if isinstance(v, dict) and v.get("workspace"):
            v = ws_version
        if not isinstance(v, str):
            raise ImageError(f"{manifest}: no package version")
        versions[pkg["name"]] = v
    missing = sorted(set(MODULES) - set(versions))
    if missing:
        raise ImageError(f"no workspace crate named {', '.join(missing)} in Cargo.toml members")
    distinct = sorted(set(versions.values()))
    if len(distinct) != 1:
        raise ImageError("the module crates disagree on the version: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return distinct[0]


def check_tag(version: str) -> str:
    # The OCI distribution spec's tag grammar.
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", version):
        raise ImageError(f"version {version!r} is not a valid image tag")
    return version


def read_wasm(path: Path) -> bytes:
    if not path.is_file():
        raise ImageError(f"{path}: no such file (run `make build` first)")
    data = path.read_bytes()
    if len(data) < 8 or data[:4] != WASM_MAGIC:
        raise ImageError(f"{path}: not a WebAssembly module (no \\0asm header)")
    return data


def layer_tar(wasm: bytes) -> bytes:
    """An uncompressed tar with plugin.wasm only; every header field fixed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and an empty name keep the gzip header free of build-time state.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Image:
    def __init__(self, module: str, version: str, layout: Path, digest: str, size: int):
        self.module = module
        self.version = version
        self.layout = layout
        self.digest = digest  # the manifest's digest: what a registry serves for the tag
        self.size = size

    @property
    def name(self) -> str:
        return f"{REPOSITORY}/{self.module}:{self.version}"


def build_image(module: str, wasm: bytes, version: str, out: Path) -> Image:
    """Write the OCI layout for one module to out/<module> (replaced whole) and return it."""
    tar = layer_tar(wasm)
    layer = gzip_bytes(tar)
    config = canonical_json({
        # The wasm32-wasip1 target, in OCI's GOARCH/GOOS spelling.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": sha256_digest(layer),
                    "size": len(layer)}],
        "annotations": {
            VARIANT_ANNOTATION[0]: VARIANT_ANNOTATION[1],
            "org.opencontainers.image.title": module,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.licenses": "Apache-2.0",
        },
    })
    digest = sha256_digest(manifest)
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": MEDIA_MANIFEST, "digest": digest, "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": version}}],
    })

    out.mkdir(parents=True, exist_ok=True)
    # Build next to the target, then swap it in: no half-written layout on failure.
    tmp = Path(tempfile.mkdtemp(prefix=f".{module}.", dir=out))
    try:
        blobs = tmp / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for blob in (layer, config, manifest):
            (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (tmp / "index.json").write_bytes(index)
        dest = out / module
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return Image(module, version, out / module, digest, len(layer))


def build_all(dist: Path, out: Path, modules: list[str], version: str) -> list[Image]:
    wasms = {m: read_wasm(dist / f"{m}.wasm") for m in modules}  # check all before writing
    images = [build_image(m, wasms[m], version, out) for m in modules]
    lines = "".join(f"{i.digest}  {i.name}\n" for i in images)
    (out / "DIGESTS").write_text(lines)
    return images


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the .wasm files are")
    ap.add_argument("--out", type=Path, default=None, help="output dir (default DIST/images)")
    ap.add_argument("--version", default=None, help="tag (default: the crates' version)")
    ap.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: {' '.join(MODULES)}")
    args = ap.parse_args(argv)
    try:
        unknown = [m for m in args.modules if m not in MODULES]
        if unknown:
            raise ImageError(f"unknown module {', '.join(unknown)} (known: {', '.join(MODULES)})")
        version = check_tag(args.version or workspace_version())
        out = args.out or args.dist / "images"
        images = build_all(args.dist, out, args.modules or list(MODULES), version)
    except (ImageError, OSError) as e:
        print(f"image: error: {e}", file=sys.stderr)
        return 1
    for i in images:
        shown = os.path.relpath(i.layout) if i.layout.is_relative_to(Path.cwd()) else i.layout
        print(f"{i.digest}  {i.name:<28} {shown}  (layer {i.size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
