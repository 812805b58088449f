"""Bar chart of a pipeline's held-out table (pipeline.json): by default pass@1, format rate and
language consistency after each stage; `--metrics` picks other columns, `--tokens` adds a panel
of generated tokens per problem (for searches compared at an equal budget).

    python scripts/plot_pipeline.py outputs/pipelines/r1_pipeline_seed0 docs/results/r1_pipeline.png
    python scripts/plot_pipeline.py outputs/pipelines/unsuccessful_attempts_seed0 docs/results/ablation_mcts.png \\
        --rows base sampling best_of_n mcts --metrics selected pass@1 --tokens
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "pass@1": "pass@1",
    "cons@k": "cons@k",
    "selected": "chosen answer right",
    "format_rate": "format",
    "lang_consistency": "language",
}
DEFAULT_METRICS = ("pass@1", "format_rate", "lang_consistency")


def main(
    pipeline_dir: str,
    out: str,
    metrics=DEFAULT_METRICS,
    rows_shown=None,
    tokens: bool = False,
) -> None:
    rows = json.loads((Path(pipeline_dir) / "pipeline.json").read_text())
    if rows_shown:
        unknown = sorted(set(rows_shown) - {row["stage"] for row in rows})
        if unknown:
            raise SystemExit(f"--rows: no stage {', '.join(unknown)} in {pipeline_dir}")
        rows = [row for name in rows_shown for row in rows if row["stage"] == name]
    panels = 2 if tokens else 1
    figure, axes = plt.subplots(
        1, panels, figsize=(max(6, 1.6 * len(rows)) + 3 * (panels - 1), 3.6), squeeze=False
    )
    names = [row["label"].replace(": ", ":\n").replace(", ", ",\n") for row in rows]
    width = 0.8 / len(metrics)
    left = axes[0][0]
    for i, key in enumerate(metrics):
        values = [row.get(key) or 0.0 for row in rows]
        positions = [x + (i - (len(metrics) - 1) / 2) * width for x in range(len(rows))]
        bars = left.bar(positions, values, width, label=LABELS.get(key, key))
        left.bar_label(bars, fmt="%.2f", fontsize=7)
    left.set_xticks(range(len(rows)), names, fontsize=8)
    left.set_ylim(0, 1.1)
    left.set_ylabel("held-out")
    left.legend(fontsize=8, ncols=len(metrics))
    left.set_title(Path(pipeline_dir).name, fontsize=9)
    if tokens:
        right = axes[0][1]
        bars = right.bar(range(len(rows)), [row.get("tokens_per_problem") or 0 for row in rows])
        right.bar_label(bars, fmt="%.0f", fontsize=7)
        right.set_xticks(range(len(rows)), names, fontsize=8)
        right.set_ylabel("generated tokens per problem")
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline_dir")
    parser.add_argument("out")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--rows", nargs="+", help="stages to show, in this order (default all)")
    parser.add_argument("--tokens", action="store_true", help="add a tokens-per-problem panel")
    args = parser.parse_args()
    main(args.pipeline_dir, args.out, args.metrics, args.rows, args.tokens)
