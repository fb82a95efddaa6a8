"""PNG: throughput (median, min-max bars) and latency percentiles per configuration."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .loadgen import PCTS  # noqa: E402


def plot(summary: dict, title: str, out: Path) -> None:
    ids = [cid for cid, d in summary.items() if d["rps"]]
    if not ids:
        return
    # Fixed fractions of C0, "50% own", and the chain pair's common rate; the per-pair common rates
    # of the single-filter pairs stay in the report's tables only (three bars each).
    labels = sorted({lab for cid in ids for lab, v in summary[cid]["latency_ms"].items()
                     if "p50" in v and ("/" not in lab or lab.startswith("50% C2/"))},
                    key=lambda s: (("own" in s), ("/" in s), s))
    fig, axes = plt.subplots(1 + len(labels), 1, figsize=(max(8, 1.1 * len(ids) + 3), 3.6 * (1 + len(labels))))
    axes = axes if hasattr(axes, "__len__") else [axes]
    ax = axes[0]
    rps = [summary[c]["rps"] for c in ids]
    err = [[r - (summary[c]["rps_min"] or r) for c, r in zip(ids, rps)],
           [(summary[c]["rps_max"] or r) - r for c, r in zip(ids, rps)]]
    colors = ["tab:red" if not summary[c]["correct"] else "tab:blue" for c in ids]
    ax.bar(ids, rps, yerr=err, color=colors, capsize=3)
    ax.set_ylabel("req/s (median, min-max)")
    ax.set_title(f"{title}\nthroughput (wrk, 1 Envoy worker on core 0; red = correctness failure)")
    ax.tick_params(axis="x", rotation=30)
    for i, r in enumerate(rps):
        ax.text(i, r, f"{r / 1000:.1f}k", ha="center", va="bottom", fontsize=8)
    width = 0.8 / len(PCTS)
    for ax, label in zip(axes[1:], labels):
        present = [c for c in ids if "p50" in summary[c]["latency_ms"].get(label, {})]
        for j, p in enumerate(PCTS):
            xs = [ids.index(c) + (j - (len(PCTS) - 1) / 2) * width for c in present]
            ys = [summary[c]["latency_ms"][label][p] for c in present]
            ax.bar(xs, ys, width=width, label=p)
        ax.set_xticks(range(len(ids)), ids, rotation=30)
        ax.set_xlim(-0.5, len(ids) - 0.5)
        ax.set_yscale("log")
        ax.set_ylabel("latency ms (log)")
        ax.set_title(f"latency at fixed rate {label} (oha --latency-correction); missing = above capacity")
        ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
