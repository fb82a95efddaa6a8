"""Re-analyse a saved report's raw rounds and rewrite its .md (after a report-format change):

    PYTHONPATH=bench .venv/bin/python -m harness.rerender bench/results/<stem>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import analysis, report


def main(path: Path) -> None:
    doc = json.loads(path.read_text())
    s = analysis.summarize(doc["raw"])
    r = analysis.ratios(s)
    doc.update(summary=s, ratios=r, targets=analysis.targets(s, r))
    png = path.with_suffix(".png")
    from .plot import plot

    plot(s, f"meshward bench {path.stem} ({doc['meta']['mode']})", png)
    report.write(doc, path.parent, path.stem, png if png.exists() else None)
    print(path.with_suffix(".md"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
