#!/usr/bin/env python3
"""Write a release to dist/release/<version>/ from the built modules in dist/.

  meshward-<module>-<version>.wasm  each module (the suite: meshward-<version>.wasm)
  SHA256SUMS                        sha256sum format, for `sha256sum -c`
  LICENSE                           the Apache-2.0 terms the modules ship under
  images/<module>/                  the OCI image layouts (scripts/image.py), images/DIGESTS
  istio-manifests/...               a copy of istio-manifests/ where every WasmPlugin's
                                    spec.url is oci://<registry>/meshward/<module>:<version>
                                    and spec.sha256 is that image's manifest digest; a
                                    container `image:` of a shipped service (the rate-limit
                                    service) becomes <registry>/meshward/<name>:<version>@<digest>

Istio compares a WasmPlugin's sha256 against the digest of the image manifest it pulls for
an oci:// url (pkg/wasm/cache.go, istio/istio#37565), and against the file's own sha256 for
http(s) urls. The pinned copies therefore carry the manifest digest, not the wasm's sha256.

The manifests are edited as text (only the url and sha256 lines), so comments and layout
survive. Usage: scripts/release.py [--registry ghcr.io] [--dist dist] [--out dist/release]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image import (MODULES, REPOSITORY, ROOT, SERVICES, ImageError, build_all, staged,  # noqa: E402
                   check_tag, read_wasm, workspace_version)

DEFAULT_REGISTRY = "ghcr.io"  # the prefix the shipped manifests use

_DOC_SEP = re.compile(r"^---(\s|$)")
_KIND_WASMPLUGIN = re.compile(r"^kind:\s*[\"']?WasmPlugin[\"']?\s*(#.*)?$")
_SPEC = re.compile(r"^spec:\s*(#.*)?$")


def wasm_name(module: str, version: str) -> str:
    # The suite is the product itself: meshward-<v>.wasm rather than meshward-meshward-<v>.
    return f"meshward-{version}.wasm" if module == "meshward" else f"meshward-{module}-{version}.wasm"


def module_of_url(url: str) -> str | None:
    """jwt-auth for oci://ghcr.io/meshward/jwt-auth:0.1.0, .../jwt-auth@sha256:..,
    file:///opt/jwt-auth.wasm; None when the image name is not a module."""
    rest = url.split("://", 1)[-1]
    last = rest.rstrip("/").rsplit("/", 1)[-1]
    name = last.split("@", 1)[0].split(":", 1)[0]
    name = name.removesuffix(".wasm")
    return name if name in MODULES else None


def _yaml_scalar(raw: str) -> str:
    """The value of `key: value  # comment` in block style (plain or quoted)."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        q = raw[0]
        end = raw.find(q, 1)
        return raw[1:end] if end > 0 else raw[1:]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def pin_document(lines: list[str], refs: dict[str, tuple[str, str]], where: str
                 ) -> tuple[list[str], str | None]:
    """Pin one YAML document (a list of lines). Returns the new lines and the module pinned,
    or None when the document is not a WasmPlugin with a spec.url (left as it is)."""
    if not any(_KIND_WASMPLUGIN.match(line) for line in lines):
        return lines, None
    spec = next((i for i, line in enumerate(lines) if _SPEC.match(line)), None)
    if spec is None:
        if any(line.startswith("spec:") for line in lines):
            raise ImageError(f"{where}: flow-style `spec:` cannot be pinned; use block style")
        return lines, None
    # The spec block: the lines after `spec:` up to the next top-level key.
    end = len(lines)
    for j in range(spec + 1, len(lines)):
        s = lines[j]
        if s.strip() and not s.lstrip().startswith("#") and not s[:1].isspace():
            end = j
            break
    children = [lines[j] for j in range(spec + 1, end)
                if lines[j].strip() and not lines[j].lstrip().startswith("#")]
    if not children:
        return lines, None
    indent = children[0][: len(children[0]) - len(children[0].lstrip())]
    url_re = re.compile(rf"^{re.escape(indent)}url:(.*)$")
    sha_re = re.compile(rf"^{re.escape(indent)}sha256:(.*)$")
    url_at = next((j for j in range(spec + 1, end) if url_re.match(lines[j])), None)
    if url_at is None:
        return lines, None
    url = _yaml_scalar(url_re.match(lines[url_at]).group(1))
    module = module_of_url(url)
    if module is None:
        raise ImageError(f"{where}: cannot tell which module spec.url {url!r} is: its image "
                         f"name must be one of {', '.join(MODULES)}")
    new_url, digest = refs[module]
    out = list(lines)
    out[url_at] = f"{indent}url: {new_url}"
    sha_at = next((j for j in range(spec + 1, end) if sha_re.match(lines[j])), None)
    sha_line = f"{indent}sha256: {digest.removeprefix('sha256:')}"
    if sha_at is None:
        out.insert(url_at + 1, sha_line)
    else:
        out[sha_at] = sha_line
    return out, module


_PATCH_ITEM = re.compile(r"^-\s")
_PATCH_URL = re.compile(r"^(-\s+|\s+)path:\s*[\"']?/spec/url[\"']?\s*(#.*)?$")
_PATCH_OP_SET = re.compile(r"^(-\s+|\s+)op:\s*[\"']?(replace|add)[\"']?\s*(#.*)?$")
_PATCH_SHA = re.compile(r"^(-\s+|\s+)path:\s*[\"']?/spec/sha256[\"']?")
UNPIN_OP = ["# make release: the pinned spec.sha256 belongs to the release's url only, so a",
            "# patched url drops it (Istio would refuse the other image).",
            "- op: remove", "  path: /spec/sha256"]


def unpin_url_patch(lines: list[str]) -> tuple[list[str], bool]:
    """A JSON 6902 patch (a kustomize overlay) that sets /spec/url to another image would keep
    the base's pinned sha256 and make Istio refuse that image: append a removal of sha256."""
    if any(_PATCH_SHA.match(line) for line in lines):
        return lines, False  # the overlay manages sha256 itself
    items: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if _PATCH_ITEM.match(line):
            items.append((i, len(lines)))
            if len(items) > 1:
                items[-2] = (items[-2][0], i)
        elif items and line.strip() and not line[:1].isspace() and not line.startswith("#"):
            items[-1] = (items[-1][0], i)
    for start, end in items:
        item = lines[start:end]
        if any(_PATCH_URL.match(x) for x in item) and any(_PATCH_OP_SET.match(x) for x in item):
            last = max(j for j in range(start, end) if lines[j].strip())
            return lines[: last + 1] + UNPIN_OP + lines[last + 1:], True
    return lines, False


def pin_text(text: str, refs: dict[str, tuple[str, str]], where: str
             ) -> tuple[str, list[str], bool]:
    """Pin every WasmPlugin document of a (multi-document) YAML file. Also returns whether a
    url patch was made to drop the pinned sha256."""
    lines = text.split("\n")
    docs: list[list[str]] = [[]]
    for line in lines:
        if _DOC_SEP.match(line):
            docs.append([line])
        else:
            docs[-1].append(line)
    pinned: list[str] = []
    unpinned = False
    out: list[str] = []
    for n, doc in enumerate(docs):
        new, module = pin_document(doc, refs, f"{where} (document {n + 1})")
        if module:
            pinned.append(module)
        else:
            new, dropped = unpin_url_patch(new)
            unpinned |= dropped
        out.extend(new)
    return "\n".join(out), pinned, unpinned


def pin_container_images(text: str, services: dict[str, tuple[str, str]]
                         ) -> tuple[str, list[str]]:
    """Point a shipped service's container image at the release's, by digest, so a Deployment
    runs exactly the binary this release built: `image: <any>/meshward/<name>[:tag]` lines, and
    a kustomization's `images:` entry for it (`newTag` becomes `digest`, which kustomize would
    otherwise apply over the pinned reference). `services`: name -> (repository, digest)."""
    if not services:
        return text, []
    pinned = []
    names = "|".join(re.escape(n) for n in services)
    ref = rf"[\"']?[^\s\"'#]*/{REPOSITORY}/(?P<name>{names})"

    def image_line(m: re.Match) -> str:
        pinned.append(m.group("name"))
        repo, digest = services[m.group("name")]
        return f"{m.group('lead')}{repo}@{digest}{m.group('tail')}"

    def images_entry(m: re.Match) -> str:
        pinned.append(m.group("name"))
        repo, digest = services[m.group("name")]
        return f"{m.group('lead')}{repo}\n{m.group('ind')}digest: {digest}"

    text = re.sub(rf"^(?P<lead>\s*(?:-\s+)?image:\s*){ref}(?::[A-Za-z0-9_.-]+)?"
                  rf"(?:@sha256:[0-9a-f]{{64}})?[\"']?(?P<tail>\s*(?:#.*)?)$",
                  image_line, text, flags=re.MULTILINE)
    text = re.sub(rf"^(?P<lead>\s*-\s+name:\s*){ref}[\"']?\s*\n(?P<ind>\s*)newTag:[^\n]*$",
                  images_entry, text, flags=re.MULTILINE)
    return text, pinned


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release(dist: Path, out: Path, registry: str, manifests: Path, version: str) -> Path:
    registry = registry.strip().rstrip("/")
    if not registry or "://" in registry or re.search(r"\s", registry):
        raise ImageError(f"registry {registry!r}: give host[:port][/path], without a scheme")
    if not manifests.is_dir():
        raise ImageError(f"{manifests}: no such directory")
    modules = list(MODULES)
    for m in modules:
        read_wasm(dist / f"{m}.wasm")  # every input checked before anything is written
    for svc in SERVICES:
        if not (dist / svc).is_file():
            raise ImageError(f"{dist / svc}: no such file (run `make build` first)")
    # Everything goes to a staging dir swapped in at the end: no half-written release.
    final = out / version
    with staged(final) as rel:
        report = _write(dist, rel, registry, manifests, version, modules)
    for r in report:
        print(r.replace(str(rel), str(final)))
    return final


def _write(dist: Path, rel: Path, registry: str, manifests: Path, version: str,
           modules: list[str]) -> list[str]:
    sums = []
    for m in modules:
        name = wasm_name(m, version)
        shutil.copyfile(dist / f"{m}.wasm", rel / name)
        sums.append(f"{sha256_file(rel / name)}  {name}\n")
    (rel / "SHA256SUMS").write_text("".join(sorted(sums, key=lambda s: s.split()[1])))
    shutil.copyfile(ROOT / "LICENSE", rel / "LICENSE")

    images = build_all(dist, rel / "images", modules, version, SERVICES)
    refs = {i.module: (f"oci://{registry}/{REPOSITORY}/{i.module}:{version}", i.digest)
            for i in images if i.module in MODULES}
    services = {i.module: (f"{registry}/{REPOSITORY}/{i.module}", i.digest)
                for i in images if i.module in SERVICES}

    report = []
    dest_root = rel / "istio-manifests"
    shutil.copytree(manifests, dest_root)
    for src in sorted(p for p in manifests.rglob("*") if p.suffix in (".yaml", ".yml")):
        rel_path = src.relative_to(manifests)
        text, pinned, unpinned = pin_text(src.read_text(), refs,
                                          str(src.relative_to(manifests.parent)))
        text, containers = pin_container_images(text, services)
        if pinned or unpinned or containers:
            (dest_root / rel_path).write_text(text)
        report += [f"{dest_root / rel_path}: {m} -> {refs[m][0]} sha256 "
                   f"{refs[m][1].removeprefix('sha256:')}" for m in pinned]
        report += [f"{dest_root / rel_path}: {c} image -> {'@'.join(services[c])}"
                   for c in containers]
        if unpinned:
            report.append(f"{dest_root / rel_path}: sets another spec.url, so it also removes "
                          "spec.sha256")
    return [f"{i.digest}  {registry}/{i.name}" for i in images] + report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the .wasm files are")
    ap.add_argument("--out", type=Path, default=None, help="default DIST/release")
    ap.add_argument("--registry", default=DEFAULT_REGISTRY,
                    help=f"host[:port][/path] the images are pushed to (default {DEFAULT_REGISTRY})")
    ap.add_argument("--manifests", type=Path, default=ROOT / "istio-manifests")
    ap.add_argument("--version", default=None, help="default: the crates' version")
    args = ap.parse_args(argv)
    try:
        version = check_tag(args.version or workspace_version())
        rel = release(args.dist, args.out or args.dist / "release", args.registry,
                      args.manifests, version)
    except (ImageError, OSError) as e:
        print(f"release: error: {e}", file=sys.stderr)
        return 1
    print(f"release {version} written to {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
