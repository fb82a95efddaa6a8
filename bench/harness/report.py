"""Writes the Markdown and JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

from .analysis import MAX_SPREAD, spread
from .loadgen import PCTS


def _f(v, fmt="{:.0f}", none="n/a"):
    return fmt.format(v) if v is not None else none


def _pct(v):
    return _f(v, "{:.1%}")


def _x(v):
    return _f(v, "{:.2f}x")


def markdown(doc: dict, png_name: str | None) -> str:
    meta, s, r = doc["meta"], doc["summary"], doc["ratios"]
    L = [f"# meshward benchmark report: {meta['started_utc']} ({meta['mode']})", ""]
    L += ["Ratios are the figures to quote: absolute numbers depend on this machine and its load.", ""]
    noisy = [cid for cid, d in s.items() if spread(d) > MAX_SPREAD]
    busy = meta["loadavg_at_start"][0] > 1.0 or any((d.get("core0_other_pct") or 0) > 5 for d in s.values())
    if noisy or busy:
        L += [f"> **Noise warning**: load average at start {meta['loadavg_at_start'][0]}, at end "
              f"{meta.get('loadavg_at_end', ['?'])[0]} (2 cores{'; other work was running' if busy else ''}). "
              "Throughput spread over rounds "
              f"exceeded {MAX_SPREAD:.0%} for: {', '.join(noisy) or 'none'}. Other processes took a median "
              f"{max((d.get('core0_other_pct') or 0) for d in s.values()):.0f}% (worst configuration) of Envoy's "
              "core 0 during the runs (column 'core0 other'). Prefer the CPU µs/req ratios, which count only "
              "Envoy's own CPU time, and re-run on an idle machine before drawing conclusions.", ""]
    L += ["## Setup", ""]
    for k in ("git_commit", "envoy_version", "cpu_model", "loadavg_at_start", "method", "durations"):
        L.append(f"- **{k}**: {meta.get(k)}")
    L.append("- **wasm sizes**: " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in meta["wasm_sizes"].items()))
    L.append("")
    L += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for t in doc["targets"]:
        L.append(f"| {t['target']} | {t['measured']} | **{t['verdict']}** |")
    L.append("")
    bad = [cid for cid, d in s.items() if not d["correct"]]
    L += ["## Correctness", ""]
    if bad:
        L.append("**FLAGGED: these configurations did not answer with the intended statuses; their numbers are "
                 "not valid:** " + ", ".join(bad))
        for cid in bad:
            for e in s[cid]["errors"][:5]:
                L.append(f"- {cid}: {e}")
    else:
        L.append("Every configuration passed its pre-flight checks (200 with a valid token; 401 without one or with "
                 "a bad signature; 403 for an RBAC-denied subject) and every load response was 200.")
    L.append("")
    L += ["## Throughput and cost per request (medians over rounds)", "",
          "'rounds used': medians use only the rounds in which other processes took at most 10% of either core "
          "('clean'), when at least two were clean; otherwise all rounds. 'other on core0 / core1' is the median "
          "share of Envoy's core / the load generator's core taken by other processes over the rounds used; a busy "
          "core1 starves wrk and caps throughput, so throughput verdicts then defer to the CPU µs/req figure.", "",
          "| config | description | req/s | range/median | vs C0 | CPU µs/req | RSS MiB | RSS vs C0 | JWT cache hits | other on core0 / core1 | rounds used | correct |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cid, d in s.items():
        v = r["vs_C0"][cid]
        L.append(f"| {cid} | {d['title']} | {_f(d['rps'])} | {_f(spread(d) if d['rps'] else None, '{:.0%}')} | {_pct(v['throughput'])} | "
                 f"{_f(d['cpu_us_per_req'], '{:.1f}')} | {_f(d['rss_mib'], '{:.1f}')} | "
                 f"{_f(v['rss_added_mib'], '{:+.1f}')} | {_f(d['cache_hit_ratio'], '{:.0%}', '-')} | {_f(d.get('core0_other_pct'), '{:.0f}%')} / {_f(d.get('core1_other_pct'), '{:.0f}%')} | {d.get('rounds_used', d['rounds'])}/{d['rounds']} | {'yes' if d['correct'] else '**NO**'} |")
    L.append("")
    L += ["## Pairs: wasm vs native (and design variant vs its baseline)", "",
          "Latency columns use the highest fixed rate (a fraction of C0's maximum) that both sides sustained; when "
          "they sustained none, a rate of 50% of the slower side's maximum ('50% a/b'), also run on C0.", "",
          "| pair | throughput ratio | CPU/req ratio | rate | p50 ratio | added p50 µs wasm / native (ratio) |",
          "|---|---|---|---|---|---|"]
    for name, p in r["pairs"].items():
        lab = next((x for x in ("75% C0", "50% C0", "25% C0", f"50% {name}") if x in p["added_p50"]), None)
        if lab:
            a = p["added_p50"][lab]
            lat = (f"{lab} | {_x(a['p50_ratio'])} | {a['wasm_added_p50_us']:.0f} / {a['native_added_p50_us']:.0f}"
                   + (f" ({a['ratio']:.2f}x)" if a.get("ratio") is not None else ""))
        else:
            lat = "none common | n/a | n/a"
        L.append(f"| {name} | {_x(p['throughput'])} | {_x(p['cpu_per_req'])} | {lat} |")
    L.append("")
    L += ["## Latency at fixed rates (oha, --latency-correction), ms, medians over rounds", "",
          "| config | rate | achieved req/s | " + " | ".join(PCTS) + " |", "|---|---|---|" + "---|" * len(PCTS)]
    for cid, d in s.items():
        for label, v in d["latency_ms"].items():
            if "skipped" in v:
                L.append(f"| {cid} | {label} ({v['rate']:.0f}/s) | skipped: {v['skipped']} |" + " |" * len(PCTS))
            else:
                L.append(f"| {cid} | {label} ({v['rate']:.0f}/s) | {_f(v['achieved_rps'])} | "
                         + " | ".join(_f(v[p], "{:.3f}") for p in PCTS) + " |")
    L.append("")
    if png_name:
        L += [f"![throughput and latency]({png_name})", ""]
    L += ["## Criterion benches (`cargo bench`, mean per iteration)", ""]
    crit = doc["criterion"]
    if crit.get("skipped"):
        L.append(f"Not run: {crit['skipped']}.")
    elif not crit.get("results"):
        L.append("No criterion results: " + (crit.get("note") or "none produced") + ".")
    else:
        L += ["| bench | mean | 95% CI |", "|---|---|---|"]
        for b in crit["results"]:
            L.append(f"| {b['id']} | {_ns(b['mean_ns'])} | {_ns(b['ci_low_ns'])} – {_ns(b['ci_high_ns'])} |")
        if crit.get("failed"):
            L.append(f"\nFailed to run: {', '.join(crit['failed'])}")
    L.append("")
    L += ["## Pending configurations", ""]
    for p in doc["pending"]:
        L.append(f"- {p['id']} ({p['title']}): {p['reason']}")
    for sk in doc.get("skipped", []):
        L.append(f"- {sk['id']} ({sk['title']}): skipped in this run: {sk['reason']}")
    L += ["", "## Notes", ""]
    for cid, d in s.items():
        if d["notes"]:
            L.append(f"- {cid}: {d['notes']}")
    L.append("- Latency rates above 90% of a configuration's own measured maximum are skipped (the queue would "
             "dominate); such configurations get one extra run at 50% of their own maximum.")
    L.append("- The fresh-token configurations disable the cache (wasm `jwt_cache_size: 0`, native no "
             "`jwt_cache_config`), and wrk also cycles through distinct tokens; oha sends one token there, which "
             "still misses because no cache is configured.")
    return "\n".join(L) + "\n"


def _ns(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"


def write(doc: dict, out_dir: Path, stem: str, png: Path | None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / f"{stem}.json"
    md = out_dir / f"{stem}.md"
    js.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md.write_text(markdown(doc, png.name if png else None))
    return md, js
