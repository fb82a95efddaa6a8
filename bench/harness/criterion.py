"""Criterion in-VM benches: discover `benches/*.rs` of workspace crates, run them,
and read target/criterion/**/new/estimates.json (mean, in ns)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BenchTarget:
    package: str
    bench: str


def _package_name(crate_dir: Path) -> str | None:
    text = (crate_dir / "Cargo.toml").read_text()
    m = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    return m.group(1) if m else None


def discover(root: Path) -> list[BenchTarget]:
    targets = []
    for rs in sorted(list(root.glob("filters/*/benches/*.rs")) + list(root.glob("shared/benches/*.rs"))):
        crate = rs.parent.parent
        pkg = _package_name(crate)
        if pkg:
            targets.append(BenchTarget(pkg, rs.stem))
    return targets


def run(root: Path, targets: list[BenchTarget], warm_up: float, measure: float, log: Path) -> dict:
    """Run each bench; return {"ran": [...], "failed": [...], "results": [{id, mean_ns, ...}]}"""
    started = time.time()
    ran, failed = [], []
    with log.open("a") as fh:
        for t in targets:
            cmd = ["cargo", "bench", "-p", t.package, "--bench", t.bench, "--",
                   "--warm-up-time", str(warm_up), "--measurement-time", str(measure), "--noplot"]
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            rc = subprocess.run(cmd, cwd=root, stdout=fh, stderr=subprocess.STDOUT, timeout=1800).returncode
            (ran if rc == 0 else failed).append(f"{t.package}/{t.bench}")
    return {"ran": ran, "failed": failed, "results": read_estimates(root / "target" / "criterion", since=started)}


def read_estimates(crit_dir: Path, since: float = 0.0) -> list[dict]:
    out = []
    for est in sorted(crit_dir.glob("**/new/estimates.json")):
        if est.stat().st_mtime < since:
            continue
        bench_json = est.parent / "benchmark.json"
        try:
            name = json.loads(bench_json.read_text()).get("full_id") if bench_json.exists() else None
            d = json.loads(est.read_text())
        except (OSError, ValueError):
            continue
        name = name or str(est.parent.parent.relative_to(crit_dir))
        mean = d.get("mean", {})
        ci = mean.get("confidence_interval", {})
        out.append({
            "id": name,
            "mean_ns": mean.get("point_estimate"),
            "ci_low_ns": ci.get("lower_bound"),
            "ci_high_ns": ci.get("upper_bound"),
            "median_ns": d.get("median", {}).get("point_estimate"),
        })
    return out
