"""Durations and repetitions per mode. Quick must stay under 3 minutes on 2 cores."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    tput_rounds: int  # interleaved rounds of the wrk throughput phase
    tput_seconds: float
    lat_rounds: int  # interleaved rounds of the oha latency phase
    lat_seconds: float
    lat_fractions: tuple[float, ...]  # fixed rates, as fractions of C0's median max throughput
    rotate_count: int  # distinct tokens per algorithm for the fresh-token configs (> cache size 1000)
    wrk_conns: int = 32
    oha_conns: int = 16
    criterion: tuple[float, float] | None = None  # (warm-up s, measurement s) or None: skip
    publish: bool = True  # write into bench/results (else bench/results/tmp)
    warmup_seconds: float = 0  # unmeasured load after each Envoy start (V8 tier-up, first verify)


MODES = {
    # wrk's -d has a resolution of 1 s; smoke runs no warm-up (correctness only).
    "smoke": Mode("smoke", 1, 1, 1, 1, (0.25,), 1100, criterion=None, publish=False),
    "quick": Mode("quick", 3, 1, 1, 0.6, (0.25, 0.5, 0.75), 1100, criterion=(0.2, 0.5), warmup_seconds=0.3),
    "full": Mode("full", 5, 8, 3, 5, (0.25, 0.5, 0.75), 2000, criterion=(2.0, 5.0), warmup_seconds=2),
}
