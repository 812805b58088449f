"""Bar chart of a pipeline's held-out table (pipeline.json): by default pass@1, format rate and
language consistency after each stage; `--metrics` picks other columns, `--tokens` adds a panel
of generated tokens per problem (for searches compared at an equal budget).

Several pipeline directories (one per seed) give one bar per stage at the mean over seeds with
its standard error, a printed table of mean ± s.e. with each seed's value, and
<out stem>.json ({stage: {metric: {"mean", "se", "values"}}}).

    python scripts/plot_pipeline.py outputs/pipelines/r1_pipeline_seed0 docs/results/r1_pipeline.png
    python scripts/plot_pipeline.py outputs/pipelines/unsuccessful_attempts_seed0 docs/results/ablation_mcts.png \\
        --rows base sampling best_of_n mcts --metrics selected pass@1 --tokens
    python scripts/plot_pipeline.py outputs/pipelines/ablation_cold_start_seed{0,1,2} docs/results/ablation_cold_start_stages.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
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


def stage_rows(pipeline_dirs, rows_shown=None) -> list[list[dict]]:
    """Per stage (in the first pipeline's order, or `rows_shown`'s), its row in each pipeline."""
    tables = [json.loads((Path(d) / "pipeline.json").read_text()) for d in pipeline_dirs]
    order = rows_shown or [row["stage"] for row in tables[0]]
    stages = []
    for name in order:
        found = [[row for row in table if row["stage"] == name] for table in tables]
        missing = [str(d) for d, rows in zip(pipeline_dirs, found) if not rows]
        if missing:
            raise SystemExit(f"--rows: no stage {name} in {', '.join(missing)}")
        stages.append([rows[0] for rows in found])
    return stages


def summary(values: list[float]) -> dict:
    """Mean, standard error of the mean (0 for one value) and the values."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "se": se, "values": values}


def main(
    pipeline_dirs,
    out: str,
    metrics=DEFAULT_METRICS,
    rows_shown=None,
    tokens: bool = False,
) -> dict:
    if isinstance(pipeline_dirs, str | Path):
        pipeline_dirs = [pipeline_dirs]
    stages = stage_rows(pipeline_dirs, rows_shown)
    table = {
        rows[0]["stage"]: {
            key: summary([row.get(key) or 0.0 for row in rows])
            for key in [*metrics, *(["tokens_per_problem"] if tokens else [])]
        }
        for rows in stages
    }
    seeds = len(pipeline_dirs)
    panels = 2 if tokens else 1
    figure, axes = plt.subplots(
        1, panels, figsize=(max(6, 1.6 * len(stages)) + 3 * (panels - 1), 3.6), squeeze=False
    )
    names = [rows[0]["label"].replace(": ", ":\n").replace(", ", ",\n") for rows in stages]
    width = 0.8 / len(metrics)
    left = axes[0][0]
    for i, key in enumerate(metrics):
        means = [table[rows[0]["stage"]][key]["mean"] for rows in stages]
        errors = [table[rows[0]["stage"]][key]["se"] for rows in stages]
        positions = [x + (i - (len(metrics) - 1) / 2) * width for x in range(len(stages))]
        bars = left.bar(
            positions, means, width, yerr=errors if seeds > 1 else None, label=LABELS.get(key, key)
        )
        left.bar_label(bars, fmt="%.2f", fontsize=7)
    left.set_xticks(range(len(stages)), names, fontsize=8)
    left.set_ylim(0, 1.1)
    left.set_ylabel("held-out" + (f" (mean ± s.e., {seeds} seeds)" if seeds > 1 else ""))
    left.legend(fontsize=8, ncols=len(metrics))
    left.set_title(
        Path(pipeline_dirs[0]).name + (f" and {seeds - 1} more" if seeds > 1 else ""), fontsize=9
    )
    if tokens:
        right = axes[0][1]
        values = [table[rows[0]["stage"]]["tokens_per_problem"]["mean"] for rows in stages]
        bars = right.bar(range(len(stages)), values)
        right.bar_label(bars, fmt="%.0f", fontsize=7)
        right.set_xticks(range(len(stages)), names, fontsize=8)
        right.set_ylabel("generated tokens per problem")
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    if seeds > 1:
        Path(out).with_suffix(".json").write_text(json.dumps(table, indent=2))
        print(markdown(table, stages, metrics))
    print(f"wrote {out}")
    return table


def markdown(table: dict, stages: list[list[dict]], metrics) -> str:
    header = "| stage | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |"
    lines = [header, "|---" * (len(metrics) + 1) + "|"]
    for rows in stages:
        cells = []
        for key in metrics:
            s = table[rows[0]["stage"]][key]
            each = ", ".join(f"{v:.2f}" for v in s["values"])
            cells.append(f"{s['mean']:.3f} ± {s['se']:.3f} ({each})")
        lines.append(f"| {rows[0]['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline_dirs", nargs="+", help="one pipeline directory per seed")
    parser.add_argument("out")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--rows", nargs="+", help="stages to show, in this order (default all)")
    parser.add_argument("--tokens", action="store_true", help="add a tokens-per-problem panel")
    args = parser.parse_args()
    main(args.pipeline_dirs, args.out, args.metrics, args.rows, args.tokens)
