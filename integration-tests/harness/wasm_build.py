"""Build a test-only proxy-wasm crate that is a workspace member (it reuses the release
artifacts `make build` leaves, so this takes seconds) and return its module's path."""

from __future__ import annotations

import subprocess

from . import REPO_ROOT


def build_test_module(package: str) -> str:
    cmd = ["cargo", "build", "--release", "--target", "wasm32-wasip1", "-p", package]
    p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=170)
    if p.returncode != 0:  # offline: the lock file pins what ~/.cargo holds
        p = subprocess.run(cmd + ["--offline"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=170)
    assert p.returncode == 0, p.stderr[-3000:]
    return f"target/wasm32-wasip1/release/{package.replace('-', '_')}.wasm"
