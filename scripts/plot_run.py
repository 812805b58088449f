"""Training curves of one run from its logs/metrics.csv, as a PNG.

    python scripts/plot_run.py outputs/runs/<date>/<time>_grpo_addition --out docs/results/grpo_addition.png
    python scripts/plot_run.py <run> --behaviour --out behaviour.png   # the paper's behaviour curves

Panels: train/reward, held-out strict accuracy (val/accuracy), completion length and the share
of completions that stop (train/stop_rate), against wall-clock minutes when perf/step_s is
logged (else optimizer steps).

--behaviour draws the behaviour curves instead (r1.eval.behaviour, docs/metrics.md): each
reflection word's rate (the words that ever occur), completion length of right and wrong
completions, length by difficulty level (where the data has one), and the repetition and
language-mixing rates; training rollouts as lines, held-out validation (val/) as markers.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (metrics: names or fnmatch patterns, y label, y limits)
PANELS = [
    (["train/reward"], "train reward", None),
    (["val/accuracy"], "held-out strict accuracy", (0, 1)),
    (["train/completion_len"], "completion length (tokens)", None),
    (["train/stop_rate"], "share of completions that stop", (0, 1.05)),
]
BEHAVIOUR_PANELS = [
    (["train/reflection_rate/*"], "share of completions with the word", (0, 1.05)),
    (
        [
            f"{split}/completion_len_{outcome}"
            for split in ("train", "val")
            for outcome in ("correct", "incorrect")
        ],
        "completion length (tokens)",
        None,
    ),
    (["train/completion_len_level_*", "val/completion_len_level_*"], "length by level", None),
    (
        ["train/repetition_rate", "train/language_mixing_rate", "val/language_mixing_rate"],
        "rate",
        (0, 1.05),
    ),
]


def read_series(run_dir: Path) -> tuple[dict[str, list[tuple[float, float]]], bool]:
    """Every metric column as (x, value) points, x in minutes of training when perf/step_s
    is logged, else the step; and whether x is minutes."""
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # wall clock: cumulative perf/step_s by step (validation time is not included)
    step_seconds = {
        int(float(r["step"])): float(r["perf/step_s"]) for r in rows if r.get("perf/step_s")
    }
    elapsed, clock = 0.0, {}
    for step in sorted(step_seconds):
        clock[step] = elapsed
        elapsed += step_seconds[step]
    clock[max(clock, default=0) + 1] = elapsed
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        step = int(float(row["step"]))
        x = clock.get(step, elapsed) / 60 if step_seconds else step
        for name, cell in row.items():
            if name in ("step", "epoch") or not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                continue
            if value == value:  # NaN: the metric had no signal at this step
                series.setdefault(name, []).append((x, value))
    return series, bool(step_seconds)


def matching(series: dict, patterns: list[str], behaviour: bool) -> list[str]:
    """The logged metrics a panel draws, in pattern order; reflection words that never occur
    are left out (a flat zero line per word would hide the ones that do)."""
    names: list[str] = []
    for pattern in patterns:
        for name in sorted(series) if "*" in pattern else [pattern]:
            if name in series and fnmatch.fnmatch(name, pattern) and name not in names:
                if behaviour and "reflection_rate/" in name:
                    if not any(value for _, value in series[name]):
                        continue
                names.append(name)
    return names


def plot(
    runs: list[Path], labels: list[str], out: Path, title: str, behaviour: bool = False
) -> None:
    panels = BEHAVIOUR_PANELS if behaviour else PANELS
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    minutes = False
    for run, label in zip(runs, labels):
        series, minutes = read_series(run)
        for ax, (patterns, _, _) in zip(axes, panels):
            names = matching(series, patterns, behaviour)
            for name in names:
                short = name.removeprefix("train/")
                ax.plot(
                    *zip(*sorted(series[name])),
                    marker="o" if name.startswith("val/") else None,
                    markersize=4,
                    label=f"{label}: {short}" if len(runs) > 1 else short,
                )
    for ax, (_, ylabel, limits) in zip(axes, panels):
        ax.set_xlabel("minutes of training (wall clock)" if minutes else "optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if limits:
            ax.set_ylim(*limits)
        if len(runs) > 1 or len(ax.get_lines()) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="*")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="GRPO on SmolLM2-135M (2-core CPU)")
    parser.add_argument(
        "--behaviour", action="store_true", help="the behaviour curves (docs/metrics.md)"
    )
    args = parser.parse_args()
    plot(
        args.runs, args.labels or [r.name for r in args.runs], args.out, args.title, args.behaviour
    )


if __name__ == "__main__":
    main()
