"""Bar chart of a pipeline's held-out table (pipeline.json): pass@1, format rate and language
consistency after each stage.

    python scripts/plot_pipeline.py outputs/pipelines/r1_pipeline_seed0 docs/r1_pipeline.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = (("pass@1", "pass@1"), ("format_rate", "format"), ("lang_consistency", "language"))


def main(pipeline_dir: str, out: str) -> None:
    rows = json.loads((Path(pipeline_dir) / "pipeline.json").read_text())
    width = 0.8 / len(METRICS)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 3.6))
    for i, (key, label) in enumerate(METRICS):
        values = [row.get(key) or 0.0 for row in rows]
        positions = [x + (i - (len(METRICS) - 1) / 2) * width for x in range(len(rows))]
        bars = axes.bar(positions, values, width, label=label)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(
        range(len(rows)), [row["label"].replace(": ", ":\n") for row in rows], fontsize=8
    )
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("held-out")
    axes.legend(fontsize=8, ncols=len(METRICS))
    axes.set_title(Path(pipeline_dir).name, fontsize=9)
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: plot_pipeline.py <pipeline dir> <out.png>")
    main(sys.argv[1], sys.argv[2])
