"""python -m harness.paired  (bench/run.sh paired): side-by-side A/B ratios that survive a noisy machine.

The interleaved modes start a fresh Envoy per configuration and round, so a
slow drift of the shared machine (CPU steal, frequency) lands between the two
sides of a pair. Here every configuration of a group runs at the same time
(idle Envoys cost nothing), each gets a 3 s warm-up, and then the rounds visit
them in a shuffled order with short wrk windows. Each round yields one ratio
per configuration against the group's baseline, measured seconds apart; the
report gives the median of those paired ratios and of the paired difference in
Envoy CPU µs per request. Correctness: every configuration passes its
pre-flight checks and every load response is 2xx, or the run fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from . import bodies, configs, loadgen, tokens
from .envoy import Envoy, envoy_binary, kill_all
from .filters import Ctx
from .runner import preflight

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Group:
    title: str
    ids: tuple[str, ...]  # the first is the baseline of the group
    target: tuple[str, str, float] | None = None  # (wasm id, native id, minimum throughput ratio)
    # (id, baseline id, maximum added MiB): RSS of the group's configurations at --concurrency 2
    rss_target: tuple[str, str, float] | None = None
    # (id, baseline id, maximum added Envoy CPU µs per request), from the paired rounds
    cpu_targets: tuple[tuple[str, str, float], ...] = ()
    # (id, baseline id, maximum added p99 µs, rate): open-loop (oha) at a fixed rate, in turns
    p99_targets: tuple[tuple[str, str, float, float], ...] = ()


GROUPS = (
    Group("rate-limit: meshward local mode vs native local_ratelimit",
          ("N-ratelimit", "W-ratelimit", "W-ratelimit-lease", "W-ratelimit-cas", "C0", "C3"),
          ("W-ratelimit", "N-ratelimit", 0.90)),
    Group("authz vs rbac, both behind native jwt_authn",
          ("N-rbac", "W-authz", "N-jwt", "P-jwt", "P-metadata"), ("W-authz", "N-rbac", 0.90)),
    Group("jwt-auth vs jwt_authn (cached token)", ("N-jwt", "W-jwt", "C0"), ("W-jwt", "N-jwt", 0.90)),
    Group("price of one host call (ABI probes on the no-op module)",
          ("C3", "P-header", "P-property", "P-setprop", "P-shared", "C0")),
    Group("the suite (one module) vs the native chain, with the three-module chain and the stage costs",
          ("C1", "C4", "C4-jwt", "C4-authz", "C4-out", "C2", "C3", "C0"), ("C4", "C1", 1.0),
          rss_target=("C4", "C1", 25.0)),
    Group("fresh RS256 token per request: jwt-auth with Envoy's verify_signature, with ring, native jwt_authn",
          ("N-jwt-miss-rs", "W-jwt-miss-rs", "W-jwt-miss-rs-ring"), ("W-jwt-miss-rs", "N-jwt-miss-rs", 1.0)),
    Group("fresh ES256 token per request: jwt-auth with Envoy's verify_signature, with ring, native jwt_authn",
          ("N-jwt-miss-es", "W-jwt-miss-es", "W-jwt-miss-es-ring"), ("W-jwt-miss-es", "N-jwt-miss-es", 1.0)),
    Group("the anomaly stage in the suite: no body, 1 KiB and 16 KiB JSON bodies",
          ("C4", "C4-anom", "C4-b1k", "C4-anom-b1k", "C4-b16k", "C4-anom-b16k", "C0"),
          cpu_targets=(("C4-anom", "C4", 8.0), ("C4-anom-b1k", "C4-b1k", 30.0)),
          p99_targets=(("C4-anom-b16k", "C4-b16k", 200.0, 500.0),)),
)


P99_TURNS = 3
P99_SECONDS = 5


def plot(groups: list[tuple[Group, dict[str, float]]], out: Path) -> None:
    """PNG: one panel per group, the paired throughput ratio of each configuration vs the baseline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not groups:
        return
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 3.2 * len(groups)))
    axes = axes if hasattr(axes, "__len__") else [axes]
    for ax, (g, ratios) in zip(axes, groups):
        ids = list(ratios)
        vals = [ratios[i] * 100 for i in ids]
        ax.bar(ids, vals, color=["tab:gray" if i == g.ids[0] else "tab:blue" for i in ids])
        ax.axhline(100, color="black", linewidth=0.8)
        if g.target:
            ax.axhline(g.target[2] * 100, color="tab:red", linestyle="--", linewidth=0.8,
                       label=f"target for {g.target[0]}")
            ax.legend(fontsize=8)
        for x, v in enumerate(vals):
            ax.text(x, v, f"{v:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel(f"% of {g.ids[0]} (paired)")
        ax.set_title(g.title, fontsize=10)
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def rss_at_two_workers(g: Group, binary: Path, ctx: Ctx, toks: tokens.Tokens,
                       work: Path) -> tuple[list[str], list[str]]:
    """Each configuration alone with --concurrency 2, after 2 s of load on 32 connections (both
    workers serve, so both VMs exist and have run): VmRSS, and the difference to the baseline."""
    rss: dict[str, float] = {}
    for cid in g.ids:
        cfg = configs.BY_ID[cid]
        env = Envoy(binary, cfg, ctx, work, f"rss2-{cid}", concurrency=2)
        env.start()
        try:
            token = toks.fixed[cfg.token] if cfg.token else None
            loadgen.wrk(env.url, 2, 32, token, toks.files[cfg.rotate] if cfg.rotate else None)
            rss[cid] = env.rss_kib() / 1024
        finally:
            env.stop()
    assert g.rss_target
    w, base, limit = g.rss_target
    rows = ["", f"RSS with `--concurrency 2` (each configuration alone, after 2 s of load), against **{base}**:", "",
            "| config | RSS MiB | added vs " + base + " |", "|---|---|---|"]
    rows += [f"| {cid} | {mib:.1f} | {mib - rss[base]:+.1f} |" for cid, mib in rss.items()]
    added = rss[w] - rss[base]
    verdict = (f"| {w} RSS <= {base} + {limit:.0f} MiB (--concurrency 2) | {added:+.1f} MiB | "
               f"{'met' if added <= limit else '**NOT MET**'} |")
    return rows, [verdict]


def run_group(g: Group, binary: Path, ctx: Ctx, toks: tokens.Tokens, work: Path, rounds: int,
              seconds: int, oha_bin: str) -> tuple[list[str], list[str], dict[str, float]]:
    envs: list[tuple[configs.Config, Envoy, str | None]] = []
    files: dict[str, Path | None] = {}
    body: dict[str, Path | None] = {}
    errors: list[str] = []
    upstream = None
    with_body = any(configs.BY_ID[cid].body for cid in g.ids)
    body_files = bodies.write(work) if with_body else {}
    if with_body:
        # Bodies need a routed upstream (see filters.Ctx): bare Envoy, on the generator's core.
        upstream = Envoy(binary, configs.BY_ID["C0"], ctx, work, f"paired-upstream-{g.ids[0]}",
                         core=loadgen.GEN_CORE)
        upstream.start()
        ctx = dataclasses.replace(ctx, upstream_port=upstream.port)
    try:
        for i, cid in enumerate(g.ids):
            cfg = configs.BY_ID[cid]
            env = Envoy(binary, cfg, ctx, work, f"paired-{cid}-{i}")
            env.start()
            bad = [c for c in preflight(env, toks) if not c["ok"]]
            if bad:
                errors.append(f"{cid}: pre-flight {bad}")
            token = toks.fixed[cfg.token] if cfg.token else None
            # a fresh-token configuration cycles through distinct tokens, as in the other modes
            files[cfg.id] = toks.files[cfg.rotate] if cfg.rotate else None
            body[cfg.id] = body_files[cfg.body] if cfg.body else None
            # warm-up: V8 compiles and tiers up lazily
            loadgen.wrk(env.url, 3, 32, token, files[cfg.id], body[cfg.id])
            envs.append((cfg, env, token))
        samples: dict[str, list[tuple[float, float]]] = {c.id: [] for c, _, _ in envs}
        for _ in range(rounds):
            order = list(envs)
            random.shuffle(order)
            for cfg, env, token in order:
                c0 = env.cpu_seconds()
                r = loadgen.wrk(env.url, seconds, 32, token, files[cfg.id], body[cfg.id])
                c1 = env.cpu_seconds()
                if r.non_2xx_3xx or r.socket_errors:
                    errors.append(f"{cfg.id}: {r.non_2xx_3xx} non-2xx, {r.socket_errors} socket errors")
                samples[cfg.id].append((r.rps, 1e6 * (c1 - c0) / max(r.requests, 1)))
        base = samples[g.ids[0]]
        rows = [f"### {g.title}", "",
                f"Baseline **{g.ids[0]}**; {rounds} rounds of {seconds} s per configuration.", "",
                "| config | description | req/s (median) | CPU µs/req (median) | paired throughput ratio | "
                "paired CPU ratio | paired Δ CPU µs/req |",
                "|---|---|---|---|---|---|---|"]
        ratios: dict[str, float] = {}
        for cfg, _, _ in envs:
            s = samples[cfg.id]
            tput = statistics.median(a[0] / b[0] for a, b in zip(s, base))
            ratios[cfg.id] = tput
            cpu = statistics.median(a[1] / b[1] for a, b in zip(s, base))
            delta = statistics.median(a[1] - b[1] for a, b in zip(s, base))
            rows.append(f"| {cfg.id} | {cfg.title} | {statistics.median(x[0] for x in s):.0f} | "
                        f"{statistics.median(x[1] for x in s):.1f} | {tput:.1%} | {cpu:.3f}x | {delta:+.1f} |")
        verdicts = []
        if g.target:
            w, n, minimum = g.target
            ws, ns = samples[w], samples[n]
            tput = statistics.median(a[0] / b[0] for a, b in zip(ws, ns))
            cpu = statistics.median(b[1] / a[1] for a, b in zip(ws, ns))
            ok = tput >= minimum and not errors
            verdicts.append(f"| {w} >= {minimum:.0%} of {n} throughput | {tput:.1%} (CPU-based: {cpu:.1%}) | "
                            f"{'met' if ok else '**NOT MET**'} |")
        for w, n, limit in g.cpu_targets:
            delta = statistics.median(a[1] - b[1] for a, b in zip(samples[w], samples[n]))
            ok = delta <= limit and not errors
            verdicts.append(f"| {w} adds <= {limit:.0f} µs Envoy CPU/req over {n} | {delta:+.1f} µs | "
                            f"{'met' if ok else '**NOT MET**'} |")
        if g.p99_targets:
            by_id = {c.id: (c, e, t) for c, e, t in envs}
            rows += ["", "Open-loop latency (oha, fixed rate, 16 connections; the pair alternates, "
                     f"{P99_TURNS} turns of {P99_SECONDS} s each; medians of the turns):", "",
                     "| config | rate | p50 µs | p99 µs |", "|---|---|---|---|"]
            for w, n, limit, rate in g.p99_targets:
                p99: dict[str, list[float]] = {w: [], n: []}
                p50: dict[str, list[float]] = {w: [], n: []}
                for _ in range(P99_TURNS):
                    for cid in random.sample([w, n], 2):
                        cfg, env, token = by_id[cid]
                        r = loadgen.oha(env.url, P99_SECONDS, rate, 16, token, oha_bin, body[cid])
                        # requests still in flight when -z ends are reported as aborted
                        errs = {k: v for k, v in r.errors.items() if "aborted due to deadline" not in k}
                        if set(r.statuses) - {"200"} or errs:
                            errors.append(f"{cid}: oha statuses {r.statuses} errors {errs}")
                        p99[cid].append(r.percentiles_ms["p99"] * 1000)
                        p50[cid].append(r.percentiles_ms["p50"] * 1000)
                for cid in (n, w):
                    rows.append(f"| {cid} | {rate:.0f}/s | {statistics.median(p50[cid]):.0f} | "
                                f"{statistics.median(p99[cid]):.0f} |")
                added = statistics.median(p99[w]) - statistics.median(p99[n])
                ok = added <= limit and not errors
                verdicts.append(f"| {w} adds <= {limit:.0f} µs p99 over {n} at {rate:.0f}/s | "
                                f"{added:+.0f} µs | {'met' if ok else '**NOT MET**'} |")
        return rows + [""] + [f"- error: {e}" for e in errors], verdicts + [f"error:{e}" for e in errors], ratios
    finally:
        for _, env, _ in envs:
            env.stop()
        if upstream:
            upstream.stop()


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS") or 12)
    seconds = int(os.environ.get("BENCH_SECONDS") or 1)
    only = {x.strip() for x in os.environ.get("BENCH_GROUPS", "").split(",") if x.strip()}
    started = dt.datetime.now(dt.timezone.utc)
    stem = started.strftime("%Y-%m-%dT%H%M%SZ") + "-paired"
    work = RESULTS / "tmp" / stem
    work.mkdir(parents=True, exist_ok=True)
    # distinct tokens for the fresh-token groups (more than any cache holds)
    toks = tokens.mint(work, int(os.environ.get("BENCH_ROTATE") or 2000))
    ctx = Ctx(dist=ROOT / "dist", jwks=toks.jwks)
    binary = envoy_binary(ROOT / ".venv")
    oha_bin = os.environ.get("BENCH_OHA") or str(ROOT / "bench" / ".tools" / "bin" / "oha")
    body: list[str] = []
    verdicts: list[str] = []
    plotted: list[tuple[Group, dict[str, float]]] = []
    for i, g in enumerate(GROUPS):
        if only and str(i + 1) not in only:
            continue
        print(f"[bench] paired group {i + 1}: {g.title}", file=sys.stderr, flush=True)
        rows, v, ratios = run_group(g, binary, ctx, toks, work, rounds, seconds, oha_bin)
        if g.rss_target:
            rss_rows, rss_v = rss_at_two_workers(g, binary, ctx, toks, work)
            rows += rss_rows
            v += rss_v
        body += rows + [""]
        verdicts += v
        plotted.append((g, ratios))
    failed = [v for v in verdicts if v.startswith("error:")]
    out = [f"# meshward paired benchmark: {started.isoformat(timespec='seconds')}", "",
           f"git {os.popen('git rev-parse --short HEAD').read().strip()}; load average at start "
           f"{os.getloadavg()[0]:.2f} (2 cores). Method: bench/harness/paired.py (all configurations of a group "
           "run at once; shuffled rounds; medians of per-round ratios against the group's baseline).", "",
           "## Targets", "", "| target | measured | verdict |", "|---|---|---|",
           *[v for v in verdicts if not v.startswith("error:")], "", "## Groups", "", *body]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stem}.md"
    png = RESULTS / f"{stem}.png"
    plot(plotted, png)
    out += ["", f"![paired throughput ratios]({png.name})"]
    path.write_text("\n".join(out) + "\n")
    print("\n".join(out))
    print(f"[bench] wrote {path.relative_to(ROOT)}", file=sys.stderr)
    kill_all()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
