"""python -m harness [smoke|quick|full]  (run through bench/run.sh, which installs the tools)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import analysis, configs, criterion, report, tokens
from .envoy import envoy_binary, kill_all
from .filters import Ctx
from .modes import MODES
from .runner import Runner, log

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    return f"{os.cpu_count()} cores"


def _envoy_version(binary: Path) -> str:
    m = re.search(r"version: (\S+)", _sh([str(binary), "--version"]))
    return m.group(1) if m else "unknown"


def _oha_bin() -> str:
    local = ROOT / "bench" / ".tools" / "bin" / "oha"
    return str(local) if local.exists() else (shutil.which("oha") or "oha")


def main(mode_name: str) -> int:
    mode = MODES[mode_name]
    # Overrides for targeted runs (design experiments): BENCH_ROUNDS / BENCH_SECONDS for the throughput phase.
    if os.environ.get("BENCH_ROUNDS") or os.environ.get("BENCH_SECONDS"):
        mode = dataclasses.replace(mode, tput_rounds=int(os.environ.get("BENCH_ROUNDS") or mode.tput_rounds),
                                   tput_seconds=float(os.environ.get("BENCH_SECONDS") or mode.tput_seconds))
    started = dt.datetime.now(dt.timezone.utc)
    stem = started.strftime("%Y-%m-%dT%H%M%SZ")
    workdir = RESULTS / "tmp" / stem
    workdir.mkdir(parents=True, exist_ok=True)
    dist = ROOT / "dist"

    selected = {x.strip() for x in os.environ.get("BENCH_CONFIGS", "").split(",") if x.strip()} or None
    run_cfgs, skipped = [], []
    design = bool(os.environ.get("BENCH_DESIGN"))
    for c in configs.runnable(selected, design):
        missing = [n for n in c.needs if not ((ROOT / n) if "/" in n else (dist / n)).exists()]
        if missing:
            skipped.append({"id": c.id, "title": c.title,
                            "reason": "missing " + ", ".join(n if "/" in n else f"dist/{n}" for n in missing)})
            log(f"skip {c.id}: missing {missing}")
        else:
            run_cfgs.append(c)
    if selected and "C0" not in selected:
        log("note: C0 not selected, so no latency phase and no C0 ratios")

    binary = envoy_binary(ROOT / ".venv")
    loadavg = os.getloadavg()
    log(f"mode {mode.name}; loadavg {loadavg[0]:.2f}; configs {[c.id for c in run_cfgs]}")
    if loadavg[0] > 0.5:
        log("warning: the machine is not idle; other work skews absolute numbers (ratios are less affected)")
    log(f"minting keys and {mode.rotate_count} tokens per algorithm")
    toks = tokens.mint(workdir, mode.rotate_count)
    runner = Runner(mode, run_cfgs, binary, Ctx(dist=dist, jwks=toks.jwks), toks, workdir, _oha_bin())
    raw = runner.run()
    kill_all()

    if mode.criterion is None:
        crit = {"skipped": f"mode {mode.name} does not run criterion"}
    elif os.environ.get("BENCH_SKIP_CRITERION"):
        crit = {"skipped": "BENCH_SKIP_CRITERION is set"}
    else:
        targets = criterion.discover(ROOT)
        if not targets:
            crit = {"results": [], "note": "no criterion benches exist yet (no filters/*/benches/*.rs)"}
        else:
            log(f"criterion: {[f'{t.package}/{t.bench}' for t in targets]}")
            crit = criterion.run(ROOT, targets, *mode.criterion, log=workdir / "criterion.log")
            if not crit["results"]:
                crit["note"] = (f"benches {crit['ran'] + crit['failed']} ran but wrote no criterion estimates "
                                "(placeholders?); log: " + str((workdir / "criterion.log").relative_to(ROOT)))

    summary = analysis.summarize(raw)
    ratios = analysis.ratios(summary)
    doc = {
        "meta": {
            "mode": mode.name,
            "started_utc": started.isoformat(timespec="seconds"),
            "git_commit": _sh(["git", "rev-parse", "--short", "HEAD"]),
            "envoy_version": _envoy_version(binary),
            "cpu_model": _cpu_model(),
            "loadavg_at_start": [round(x, 2) for x in loadavg],
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "method": "Envoy --concurrency 1 pinned to core 0 (taskset); load generator pinned to core 1; "
                      "direct_response route; generate_request_id false; router dynamic_stats false; "
                      "use_all_default_tags false; 127.0.0.1 only; configurations interleaved per round",
            "durations": f"throughput {mode.tput_rounds} x {mode.tput_seconds}s (wrk -t1 -c{mode.wrk_conns}); "
                         f"latency {mode.lat_rounds} x {mode.lat_seconds}s per rate (oha -c{mode.oha_conns})",
            "wasm_sizes": {p.name: p.stat().st_size for p in sorted(dist.glob("*.wasm"))},
        },
        "summary": summary,
        "ratios": ratios,
        "targets": analysis.targets(summary, ratios),
        "criterion": crit,
        "pending": [{"id": c.id, "title": c.title, "reason": c.pending} for c in configs.pending()],
        "skipped": skipped,
        "raw": raw,
    }

    out_dir = RESULTS if mode.publish else workdir
    png = out_dir / f"{stem}.png"
    try:
        from .plot import plot
        plot(summary, f"meshward bench {stem} ({mode.name})", png)
    except Exception as e:  # the report matters more than the picture
        log(f"plot failed: {e}")
        png = None
    md, js = report.write(doc, out_dir, stem, png if png and png.exists() else None)
    if mode.publish:
        text = md.read_text()
        (RESULTS / "LATEST.md").write_text(
            f"<!-- copy of {md.name}; JSON: {js.name} -->\n" + text)
    log(f"report: {md.relative_to(ROOT)}")
    print(md.read_text())

    bad = [cid for cid, d in summary.items() if not d["correct"]]
    if bad:
        log(f"CORRECTNESS FAILURE in {bad}")
        return 1
    if not summary:
        log("nothing was measured")
        return 1
    return 0


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "quick"
    if arg not in MODES:
        sys.exit(f"usage: python -m harness [{'|'.join(MODES)}]")
    sys.exit(main(arg))
