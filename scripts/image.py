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
import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules users deploy (dist/noop.wasm is the benchmark's baseline, not shipped).
MODULES = ("jwt-auth", "authz", "rate-limit", "anomaly", "meshward")
# Services the manifests deploy as containers (istio-manifests/infra/): dist/<name>, an ELF
# binary, goes into a linux image FROM scratch with the shared libraries `ldd` names.
SERVICES = ("ratelimit-service",)
SERVICE_PORTS = {"ratelimit-service": 8081}
# A user id with no home and no shell: the service needs no privileges.
SERVICE_USER = "65532:65532"
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


def layer_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar of `files` (path -> (content, mode)) and their parent directories,
    in sorted order, every header field fixed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dirs = sorted({str(parent) for path in files for parent in Path(path).parents
                       if str(parent) != "."})
        for d in dirs:
            info = _fixed(tarfile.TarInfo(d))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path in sorted(files):
            content, mode = files[path]
            info = _fixed(tarfile.TarInfo(path))
            info.size = len(content)
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


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
    config = {
        # The wasm32-wasip1 target, in OCI's GOARCH/GOOS spelling.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
    }
    # The compat spec asks for the variant annotation on OCI-typed compat images.
    return write_layout(module, layer_tar({"plugin.wasm": (wasm, 0o644)}), config, version, out,
                        {VARIANT_ANNOTATION[0]: VARIANT_ANNOTATION[1]})


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temp dir next to `dest`, swapped in for it when the block succeeds: no half-written
    output is left behind on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_layout(name: str, tar: bytes, config: dict, version: str, out: Path,
                 annotations: dict[str, str]) -> Image:
    """One image of one layer as an OCI layout at out/<name>, swapped in whole."""
    layer = gzip_bytes(tar)
    config = canonical_json({**config,
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]}})
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": sha256_digest(layer),
                    "size": len(layer)}],
        "annotations": {
            **annotations,
            "org.opencontainers.image.title": name,
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

    with staged(out / name) as tmp:
        blobs = tmp / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for blob in (layer, config, manifest):
            (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (tmp / "index.json").write_bytes(index)
    return Image(name, version, out / name, digest, len(layer))


# OCI's GOARCH spelling of the machines a service binary is built on.
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def shared_libraries(binary: Path) -> list[Path]:
    """The files the dynamic loader maps for `binary`, as `ldd` names them (the loader too)."""
    try:
        p = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ImageError("ldd not found (Debian package libc-bin)") from None
    if p.returncode != 0:
        if "not a dynamic executable" in p.stdout + p.stderr:
            return []
        raise ImageError(f"ldd {binary}: {(p.stderr or p.stdout).strip()}")
    libs = []
    for line in p.stdout.splitlines():
        if "not found" in line:
            raise ImageError(f"{binary}: a library is missing: {line.strip()}")
        # "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        path = line.split("=>")[-1].strip().split(" (")[0].strip()
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def service_image(name: str, binary: Path, version: str, out: Path) -> Image:
    """A linux image FROM scratch: /<name> plus its shared libraries, run as a non-root user."""
    if not binary.is_file():
        raise ImageError(f"{binary}: no such file (run `make build` first)")
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF":
        raise ImageError(f"{binary}: not an ELF executable")
    arch = OCI_ARCH.get(platform.machine())
    if arch is None:
        raise ImageError(f"no OCI architecture name for this machine ({platform.machine()})")
    files = {name: (data, 0o755)}
    for lib in shared_libraries(binary):
        # The content under the path the loader asks for (symlinks resolved).
        files[str(lib).lstrip("/")] = (lib.read_bytes(), 0o755)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": [f"/{name}"],
            "User": SERVICE_USER,
            "ExposedPorts": {f"{SERVICE_PORTS[name]}/tcp": {}} if name in SERVICE_PORTS else {},
        },
    }
    return write_layout(name, layer_tar(files), config, version, out, {})


def build_all(dist: Path, out: Path, modules: list[str], version: str,
              services: list[str] | tuple[str, ...] = ()) -> list[Image]:
    wasms = {m: read_wasm(dist / f"{m}.wasm") for m in modules}  # check all before writing
    for svc in services:
        if not (dist / svc).is_file():
            raise ImageError(f"{dist / svc}: no such file (run `make build` first)")
    images = [build_image(m, wasms[m], version, out) for m in modules]
    images += [service_image(svc, dist / svc, version, out) for svc in services]
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
        known = MODULES + SERVICES
        unknown = [m for m in args.modules if m not in known]
        if unknown:
            raise ImageError(f"unknown module {', '.join(unknown)} (known: {', '.join(known)})")
        version = check_tag(args.version or workspace_version())
        out = args.out or args.dist / "images"
        picked = args.modules or list(known)
        images = build_all(args.dist, out, [m for m in picked if m in MODULES], version,
                           [m for m in picked if m in SERVICES])
    except (ImageError, OSError) as e:
        print(f"image: error: {e}", file=sys.stderr)
        return 1
    for i in images:
        shown = os.path.relpath(i.layout) if i.layout.is_relative_to(Path.cwd()) else i.layout
        print(f"{i.digest}  {i.name:<28} {shown}  (layer {i.size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
