"""Runs the measurement phases: interleaved throughput rounds (wrk), then
interleaved latency rounds (oha) at fixed fractions of C0's measured maximum."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

from . import loadgen
from .configs import Config
from .envoy import Envoy, core_busy_seconds, wait_idle
from .loadgen import GEN_CORE
from .filters import Ctx
from .modes import Mode
from .tokens import Tokens

IGNORED_OHA_ERRORS = ("aborted due to deadline",)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def request_status(url: str, token: str | None, body: str | None = None) -> int:
    headers = {"Host": "bench"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, headers=headers, data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def preflight(env: Envoy, tokens: Tokens) -> list[dict]:
    out = []
    for chk in env.cfg.checks:
        tok = tokens.fixed[chk.token] if chk.token else None
        got = request_status(env.url, tok, chk.body)
        out.append({"why": chk.why, "expected": chk.status, "got": got, "ok": got == chk.status})
    return out


class Runner:
    def __init__(self, mode: Mode, configs: list[Config], binary: Path, ctx: Ctx, tokens: Tokens,
                 workdir: Path, oha_bin: str):
        self.mode, self.configs, self.binary, self.ctx = mode, configs, binary, ctx
        self.tokens, self.workdir, self.oha_bin = tokens, workdir, oha_bin
        self.wait_idle = float(os.environ.get("BENCH_WAIT_IDLE") or 0)  # max seconds to wait per run
        self.results: dict[str, dict] = {
            c.id: {"id": c.id, "title": c.title, "notes": c.notes, "pair": c.pair, "module": c.module,
                   "cache": c.cache, "rss_base": c.rss_base, "modules": c.modules, "design": c.design, "errors": [], "preflight": [], "throughput": [], "latency": [], "load_status_ok": True}
            for c in configs
        }

    def _start(self, cfg: Config, tag: str) -> Envoy | None:
        if self.wait_idle:
            waited = wait_idle(self.wait_idle)
            if waited > 1:
                log(f"  (waited {waited:.0f}s for an idle machine)")
        env = Envoy(self.binary, cfg, self.ctx, self.workdir, tag)
        try:
            env.start()
        except RuntimeError as e:
            self.results[cfg.id]["errors"].append(str(e))
            log(f"  {cfg.id}: {e}")
            return None
        checks = preflight(env, self.tokens)
        self.results[cfg.id]["preflight"].append(checks)
        bad = [c for c in checks if not c["ok"]]
        if bad:
            msg = "; ".join(f"{c['why']}: expected {c['expected']} got {c['got']}" for c in bad)
            self.results[cfg.id]["errors"].append(f"pre-flight: {msg}")
            log(f"  {cfg.id}: pre-flight FAILED: {msg}")
            env.stop()
            return None
        if self.mode.warmup_seconds:
            token = self.tokens.fixed[cfg.token] if cfg.token else None
            try:
                got = loadgen.warmup(env.url, self.mode.warmup_seconds, self.mode.oha_conns, token, self.oha_bin)
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                got = {"error": 1}
                log(f"  {cfg.id}: {e}")
            got.pop("aborted due to deadline", None)
            if set(got) != {"200"}:
                self.results[cfg.id]["load_status_ok"] = False
                self.results[cfg.id]["errors"].append(f"warm-up statuses {got}")
        return env

    def throughput_phase(self) -> None:
        m = self.mode
        for rnd in range(m.tput_rounds):
            for cfg in self.configs:
                env = self._start(cfg, f"{cfg.id}-t{rnd}")
                if env is None:
                    continue
                try:
                    self._one_throughput(cfg, env, rnd)
                except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                    self.results[cfg.id]["errors"].append(f"throughput round {rnd}: {e}")
                    log(f"  {cfg.id}: {e}")
                finally:
                    env.stop()

    def _one_throughput(self, cfg: Config, env: Envoy, rnd: int) -> None:
        token = self.tokens.fixed[cfg.token] if cfg.token else None
        token_file = self.tokens.files[cfg.rotate] if cfg.rotate else None
        stats0 = env.stats()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, core0, gen0, wall0 = env.cpu_seconds(), core_busy_seconds(), core_busy_seconds(GEN_CORE), time.monotonic()
        res = loadgen.wrk(env.url, self.mode.tput_seconds, self.mode.wrk_conns, token, token_file)
        cpu1, core1, gen1, wall1 = env.cpu_seconds(), core_busy_seconds(), core_busy_seconds(GEN_CORE), time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        # CPU time other processes took on Envoy's core / the generator's core during the run: interference.
        other = max(0.0, (core1 - core0) - (cpu1 - cpu0)) / (wall1 - wall0)
        gen_other = max(0.0, (gen1 - gen0) - wrk_cpu) / (wall1 - wall0)
        rss = env.rss_kib()
        stats1 = env.stats()
        delta = {k: v - stats0.get(k, 0) for k, v in stats1.items() if v - stats0.get(k, 0)}
        rec = asdict(res) | {
            "round": rnd,
            "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / res.requests if res.requests else None,
            "rss_mib": rss / 1024,
            "core0_other_pct": 100 * other,
            "core1_other_pct": 100 * gen_other,
            "stats_delta": delta,
        }
        self.results[cfg.id]["throughput"].append(rec)
        if res.non_2xx_3xx or res.socket_errors or not res.requests:
            self.results[cfg.id]["load_status_ok"] = False
            self.results[cfg.id]["errors"].append(
                f"wrk round {rnd}: {res.non_2xx_3xx} non-2xx/3xx, {res.socket_errors} socket errors, "
                f"{res.requests} requests")
        log(f"  {cfg.id:<14} round {rnd}: {res.rps:9.0f} req/s  cpu {rec['cpu_us_per_req'] or 0:6.1f} us/req  "
            f"rss {rec['rss_mib']:.1f} MiB  non2xx {res.non_2xx_3xx}  other: core0 {rec['core0_other_pct']:.0f}% core1 {rec['core1_other_pct']:.0f}%")

    def median_rps(self, cid: str) -> float | None:
        vals = [r["rps"] for r in self.results.get(cid, {}).get("throughput", [])]
        return statistics.median(vals) if vals else None

    def pair_rates(self, c0_rps: float) -> dict[str, list[tuple[str, float]]]:
        """For each pair (a, b) that sustains none of the C0 fractions on both sides, one extra rate,
        50% of the slower side's maximum, run on a, b and C0, so added p50 over C0 is comparable."""
        ids = {c.id for c in self.configs}
        extra: dict[str, list[tuple[str, float]]] = {}
        for cfg in self.configs:
            if not cfg.pair or cfg.pair not in ids:
                continue
            a, b = self.median_rps(cfg.id), self.median_rps(cfg.pair)
            if not a or not b:
                continue
            if any(f * c0_rps <= 0.9 * min(a, b) for f in self.mode.lat_fractions):
                continue
            label = f"50% {cfg.id}/{cfg.pair}"
            for cid in (cfg.id, cfg.pair, "C0"):
                extra.setdefault(cid, []).append((label, 0.5 * min(a, b)))
        return extra

    def latency_phase(self, c0_rps: float) -> None:
        m = self.mode
        extra = self.pair_rates(c0_rps)
        for rnd in range(m.lat_rounds):
            for cfg in self.configs:
                own = self.median_rps(cfg.id)
                if not own:
                    continue
                plan = []
                for f in m.lat_fractions:
                    rate = f * c0_rps
                    plan.append((f"{int(f * 100)}% C0", rate, rate <= 0.9 * own))
                pair_plan = [(label, rate, True) for label, rate in extra.get(cfg.id, [])]
                if any(not ok for _, _, ok in plan) and not pair_plan:
                    plan.append(("50% own", 0.5 * own, True))
                plan += pair_plan
                env = self._start(cfg, f"{cfg.id}-l{rnd}")
                if env is None:
                    continue
                try:
                    token = self.tokens.fixed[cfg.token] if cfg.token else None
                    for label, rate, ok in plan:
                        if not ok:
                            self.results[cfg.id]["latency"].append(
                                {"round": rnd, "label": label, "rate": rate, "skipped": "above 90% of own capacity"})
                            continue
                        try:
                            self._one_latency(cfg, env, rnd, label, rate, token)
                        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                            self.results[cfg.id]["errors"].append(f"latency {label} round {rnd}: {e}")
                            log(f"  {cfg.id}: {e}")
                finally:
                    env.stop()

    def _one_latency(self, cfg: Config, env: Envoy, rnd: int, label: str, rate: float, token: str | None) -> None:
        res = loadgen.oha(env.url, self.mode.lat_seconds, rate, self.mode.oha_conns, token, self.oha_bin)
        errors = {k: v for k, v in res.errors.items() if not any(i in k for i in IGNORED_OHA_ERRORS)}
        rec = asdict(res) | {"round": rnd, "label": label}
        self.results[cfg.id]["latency"].append(rec)
        non200 = {k: v for k, v in res.statuses.items() if k != "200"}
        if non200 or errors or not res.total:
            self.results[cfg.id]["load_status_ok"] = False
            self.results[cfg.id]["errors"].append(f"oha {label} round {rnd}: statuses {res.statuses}, errors {errors}")
        p = res.percentiles_ms
        log(f"  {cfg.id:<14} {label:>8} ({rate:7.0f}/s): p50 {p['p50']:.3f}  p99 {p['p99']:.3f}  "
            f"p99.9 {p['p99.9']:.3f} ms  statuses {res.statuses}")

    def run(self) -> dict[str, dict]:
        t0 = time.monotonic()
        log(f"throughput phase: {self.mode.tput_rounds} round(s) x {len(self.configs)} configs, "
            f"{self.mode.tput_seconds}s each")
        self.throughput_phase()
        c0 = self.median_rps("C0")
        if c0:
            log(f"latency phase: rates {[f'{f:.0%}' for f in self.mode.lat_fractions]} of C0 median {c0:.0f} req/s")
            self.latency_phase(c0)
        else:
            log("no C0 throughput: latency phase skipped")
        log(f"load phases took {time.monotonic() - t0:.0f}s")
        return self.results
