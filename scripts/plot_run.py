"""Training curves of one run from its logs/metrics.csv, as a PNG.

    python scripts/plot_run.py outputs/runs/<date>/<time>_grpo_addition --out docs/results/grpo_addition.png

Panels: train/reward, held-out strict accuracy (val/accuracy), completion length and the share
of completions that stop (train/stop_rate), against wall-clock minutes when perf/step_s is
logged (else optimizer steps).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [
    ("train/reward", "train reward"),
    ("val/accuracy", "held-out strict accuracy"),
    ("train/completion_len", "completion length (tokens)"),
    ("train/stop_rate", "share of completions that stop"),
]


def read_series(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
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
        for name, _ in PANELS:
            if row.get(name):
                x = clock.get(step, elapsed) / 60 if clock else step
                series.setdefault(name, []).append((x, float(row[name])))
    return series


def plot(runs: list[Path], labels: list[str], out: Path, title: str) -> None:
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    for run, label in zip(runs, labels):
        series = read_series(run)
        for ax, (name, ylabel) in zip(axes, PANELS):
            points = sorted(series.get(name, []))
            if points:
                ax.plot(
                    *zip(*points),
                    marker="o" if name.startswith("val/") else None,
                    markersize=4,
                    label=label,
                )
            ax.set_xlabel("minutes of training (wall clock)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[1].set_ylim(0, 1)
    axes[3].set_ylim(0, 1.05)
    if len(runs) > 1:
        axes[1].legend()
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
    args = parser.parse_args()
    plot(args.runs, args.labels or [r.name for r in args.runs], args.out, args.title)


if __name__ == "__main__":
    main()
