"""Load generators: wrk (closed-loop throughput) and oha (open-loop latency).

Both run pinned to core 1 (Envoy has core 0), against 127.0.0.1 only, with a
fixed duration and a hard subprocess timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GEN_CORE = "1"
LUA = Path(__file__).with_name("wrk.lua")


def _check_local(url: str) -> None:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"refusing to load a non-loopback target: {url}")


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx_3xx: int
    socket_errors: int
    lat_p50_ms: float
    lat_p99_ms: float


def wrk(url: str, seconds: float, conns: int, token: str | None, token_file: Path | None,
        body_file: Path | None = None, content_type: str = "application/json") -> WrkResult:
    _check_local(url)
    cmd = ["taskset", "-c", GEN_CORE, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s",
           "--timeout", "5s", "-s", str(LUA), "-H", "Host: bench"]
    if token and not token_file:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd.append(url)
    env = dict(os.environ, BENCH_TOKEN_FILE=str(token_file) if token_file else "",
               BENCH_BODY_FILE=str(body_file) if body_file else "", BENCH_CONTENT_TYPE=content_type)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 30)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()} {out.stdout[-500:]}")
    d = json.loads(line[len("WRKJSON "):])
    secs = d["duration_us"] / 1e6
    return WrkResult(
        requests=d["requests"], seconds=secs, rps=d["requests"] / secs if secs else 0.0,
        non_2xx_3xx=d["status"], socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
        lat_p50_ms=d["lat_p50_us"] / 1000, lat_p99_ms=d["lat_p99_us"] / 1000,
    )


@dataclass
class OhaResult:
    rate: float
    achieved_rps: float
    total: int
    percentiles_ms: dict[str, float]
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


PCTS = ("p50", "p90", "p99", "p99.9")


def oha(url: str, seconds: float, rate: float, conns: int, token: str | None, oha_bin: str = "oha",
        body_file: Path | None = None, content_type: str = "application/json") -> OhaResult:
    _check_local(url)
    cmd = ["taskset", "-c", GEN_CORE, oha_bin, "-z", f"{seconds}s", "-q", f"{rate:.0f}", "--latency-correction",
           "-c", str(conns), "--no-tui", "--output-format", "json", "-H", "Host: bench"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if body_file:
        cmd += ["-m", "POST", "-D", str(body_file), "-T", content_type]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    d = json.loads(out.stdout)
    lp = d.get("latencyPercentiles", {})
    summary = d.get("summary", {})
    statuses = {str(k): int(v) for k, v in d.get("statusCodeDistribution", {}).items()}
    return OhaResult(
        rate=rate,
        achieved_rps=float(summary.get("requestsPerSec") or 0.0),
        total=sum(statuses.values()),
        percentiles_ms={p: (lp[p] * 1000 if lp.get(p) is not None else float("nan")) for p in PCTS},
        statuses=statuses,
        errors={str(k): int(v) for k, v in d.get("errorDistribution", {}).items()},
    )


def warmup(url: str, seconds: float, conns: int, token: str | None, oha_bin: str = "oha") -> dict[str, int]:
    """Unmeasured requests right after start, so V8's lazy compilation and tier-up of the Wasm
    code (and the first JWT verification) happen before the measured window; returns the status
    counts (the runner still requires them all to be 200)."""
    _check_local(url)
    cmd = ["taskset", "-c", GEN_CORE, oha_bin, "-z", f"{seconds}s", "-c", str(conns), "--no-tui",
           "--output-format", "json", "-H", "Host: bench"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"oha warm-up failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return {str(k): int(v) for k, v in json.loads(out.stdout).get("statusCodeDistribution", {}).items()}
