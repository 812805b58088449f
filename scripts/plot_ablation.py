"""Compare the arms of an ablation from local logs (no W&B needed), as a PNG.

    python scripts/plot_ablation.py outputs/multirun/<date>/<time>_ablation_lang_reward
    python scripts/plot_ablation.py <sweep> <another sweep or run> --out docs/results/ablation.png

Runs are found by their logs/metrics.csv below each directory (a directory may itself be a run)
and grouped into arms by their .hydra/overrides.yaml, leaving out seed=, resume= and hydra.*
overrides and the overrides every run shares, so an arm is labelled by what differs (e.g.
reward=lang_consistency); the runs of an arm are its seeds. If every run gets the same label,
each run is its own arm, labelled by its directory name.

One panel per metric against the logged training step (a generation batch in RL stages): per
arm the mean over seeds, and the min-max band over seeds when the arm has more than one. The mean is taken only at steps every seed of
the arm logged, so a seed that stopped early shortens the curve instead of making it jump.
A metric no run logged is skipped. Also prints the final value of each metric per arm (mean
± standard error over seeds of each seed's last logged value) and writes it as JSON next to the
PNG (<out stem>.json: {arm: {metric: {"mean", "std", "se", "seeds"}}}). `--arms dirname` groups
runs by their directory's name instead (the stages of one pipeline run per seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import statistics
import sys
import textwrap
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DEFAULT_METRICS = [
    "train/reward",
    "val/accuracy",
    "train/completion_len",
    "train/reflection_words",
]
YLABELS = {
    "train/reward": "train reward",
    "val/accuracy": "held-out strict accuracy",
    "train/completion_len": "completion length (tokens)",
    "train/reflection_words": "reflection words per completion",
}
IGNORED_KEYS = {"seed", "resume"}
CHAR_INCHES = 0.085  # rough width of a legend character (10 pt)
LEGEND_HANDLE_CHARS = 12  # room for a legend entry's line sample and padding, in characters

Series = dict[int, float]  # step -> value


def natural_key(path: Path) -> list[int | str]:
    """Sort key that puts sweep job 2_... before 10_..."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(directory: Path) -> list[Path]:
    """Run directories (those holding logs/metrics.csv) at or below `directory`."""
    if not directory.is_dir():
        raise SystemExit(f"plot_ablation: no such directory: {directory}")
    runs = [p.parent.parent for p in directory.rglob("metrics.csv") if p.parent.name == "logs"]
    if not runs:
        raise SystemExit(f"plot_ablation: no runs (logs/metrics.csv) found under {directory}")
    return sorted(runs, key=natural_key)


def read_overrides(run: Path) -> list[str]:
    """The command-line overrides of a run (.hydra/overrides.yaml), [] if it has none."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as e:
        raise SystemExit(f"plot_ablation: cannot read {path}: {e}") from None
    return [str(o) for o in overrides]


def read_metrics(path: Path) -> dict[str, Series]:
    """Each metric column of a Lightning CSVLogger file as {step: value}.

    Rows are sparse (train and val rows fill different columns); empty, non-numeric and NaN
    (no signal that step) cells are skipped, and a step logged twice keeps its last value.
    """
    series: dict[str, Series] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or ""))
            except ValueError:
                continue
            for name, cell in row.items():
                if name in ("step", "epoch") or name is None or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if value == value:  # NaN: the metric had no signal at this step
                    series.setdefault(name, {})[step] = value
    return series


def is_ignored(override: str) -> bool:
    """Whether an override says nothing about the arm (seed, resume, Hydra's own settings)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key in IGNORED_KEYS or key == "hydra" or key.startswith(("hydra.", "hydra/"))


def arm_labels(overrides: list[list[str]], names: list[str]) -> list[str]:
    """One arm label per run: its overrides that differ between runs, joined by ", ".

    `overrides[i]` and `names[i]` belong to run i; the names label the runs instead when
    nothing tells the runs apart.
    """
    kept = [[o for o in run if not is_ignored(o)] for run in overrides]
    shared = set.intersection(*(set(run) for run in kept)) if kept else set()
    labels = [", ".join(o for o in run if o not in shared) for run in kept]
    if len(set(labels)) <= 1 and len(labels) > 1:
        return names
    return [label or "(defaults)" for label in labels]


def common_overrides(overrides: list[list[str]]) -> list[str]:
    """Overrides every run shares (seed/resume/hydra.* left out), in the first run's order."""
    if not overrides:
        return []
    shared = set.intersection(*(set(run) for run in overrides))
    return [o for o in overrides[0] if o in shared and not is_ignored(o)]


def run_names(runs: list[Path]) -> list[str]:
    """Directory names of the runs, as paths below their common parent if names repeat."""
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return names
    resolved = [run.resolve() for run in runs]
    parent = Path(os.path.commonpath(resolved))
    return [str(run.relative_to(parent)) for run in resolved]


def seed_band(seeds: list[Series]) -> tuple[list[int], list[float], list[float], list[float]]:
    """(steps, mean, min, max) over the seeds, at the steps every seed logged."""
    steps = sorted(set.intersection(*(set(s) for s in seeds))) if seeds else []
    values = [[s[step] for s in seeds] for step in steps]
    return (
        steps,
        [statistics.fmean(v) for v in values],
        [min(v) for v in values],
        [max(v) for v in values],
    )


def final_value(seeds: list[Series]) -> dict[str, float | int]:
    """Mean, sample std (0 for one seed) and standard error of the mean (std / sqrt(seeds))
    over seeds of each seed's last logged value."""
    last = [s[max(s)] for s in seeds]
    std = statistics.stdev(last) if len(last) > 1 else 0.0
    return {
        "mean": statistics.fmean(last),
        "std": std,
        "se": std / math.sqrt(len(last)),
        "seeds": len(last),
    }


def collect(
    runs: list[Path], labels: list[str], metrics: list[str]
) -> dict[str, dict[str, list[Series]]]:
    """{arm: {metric: [one series per seed that logged it]}}, arms in order of first run."""
    arms: dict[str, dict[str, list[Series]]] = {}
    for run, label in zip(runs, labels):
        series = read_metrics(run / "logs" / "metrics.csv")
        arm = arms.setdefault(label, {m: [] for m in metrics})
        for metric in metrics:
            if series.get(metric):
                arm[metric].append(series[metric])
    return arms


def legend_label(arm: str, runs_per_arm: dict[str, int]) -> str:
    """The arm label with its number of seeds, e.g. `reward=r1_zero (3 seeds)`."""
    n = runs_per_arm[arm]
    return f"{arm} ({n} seed{'s' if n != 1 else ''})"


def legend_layout(labels: list[str], width: float) -> tuple[list[str], int, float]:
    """(wrapped labels, columns, height in inches) of a legend that fits `width` inches:
    long arm labels get fewer columns, and are wrapped when even one column is too narrow."""
    width_chars = int(width / CHAR_INCHES) - LEGEND_HANDLE_CHARS
    wrapped = [textwrap.fill(label, width=width_chars) for label in labels]
    longest = max(len(line) for label in wrapped for line in label.splitlines())
    ncols = max(1, min(len(wrapped), width_chars // (longest + LEGEND_HANDLE_CHARS)))
    lines_per_row = [
        max(label.count("\n") + 1 for label in wrapped[i : i + ncols])
        for i in range(0, len(wrapped), ncols)
    ]
    return wrapped, ncols, 0.25 * sum(lines_per_row) + 0.2


def plot(
    arms: dict[str, dict[str, list[Series]]],
    metrics: list[str],
    runs_per_arm: dict[str, int],
    out: Path,
    title: str,
) -> None:
    """One panel per metric; one colour per arm: mean line and min-max seed band; one legend
    below the panels (so it never covers a curve)."""
    ncols = min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    width = max(4.2 * ncols, 6.4)
    labels, legend_cols, legend_height = legend_layout(
        [legend_label(arm, runs_per_arm) for arm in arms], width
    )
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, 3.4 * nrows + legend_height),
        squeeze=False,
        layout="constrained",
    )
    handles = {}
    for ax, metric in zip(axes.flat, metrics):
        for i, (label, per_metric) in enumerate(zip(labels, arms.values())):
            steps, mean, low, high = seed_band(per_metric[metric])
            if not steps:
                continue
            (handles[label],) = ax.plot(
                steps,
                mean,
                color=f"C{i}",
                marker="o" if metric.startswith("val/") else None,
                markersize=4,
            )
            if len(per_metric[metric]) > 1:
                ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.2, linewidth=0)
        ax.set_xlabel("training step (RL: generation batch)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(YLABELS.get(metric, metric))
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    shown = [label for label in labels if label in handles]
    fig.legend(
        [handles[label] for label in shown], shown, loc="outside lower center", ncols=legend_cols
    )
    fig.suptitle(textwrap.fill(title, width=int(width / 0.11)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def final_table(
    arms: dict[str, dict[str, list[Series]]], metrics: list[str], runs_per_arm: dict[str, int]
) -> tuple[str, dict[str, dict[str, dict[str, float | int]]]]:
    """The final values per arm and metric, as a plain-text table and as a JSON-ready dict."""
    finals = {
        arm: {m: final_value(seeds) for m, seeds in per_metric.items() if seeds}
        for arm, per_metric in arms.items()
    }
    header = ["arm", "seeds", *metrics]
    rows = [
        [
            arm,
            str(runs_per_arm[arm]),
            *(f"{f[m]['mean']:.4g} ± {f[m]['se']:.2g}" if m in f else "-" for m in metrics),
        ]
        for arm, f in finals.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines), finals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run directories")
    parser.add_argument("--out", type=Path, help="PNG to write (default: <first dir>/ablation.png)")
    parser.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS, help="one panel each")
    parser.add_argument("--title", help="figure title (default: the overrides all runs share)")
    parser.add_argument(
        "--arms",
        choices=["overrides", "dirname"],
        default="overrides",
        help="group runs into arms by their differing overrides, or by their directory's name "
        "(a pipeline's stage: <pipeline seed 0>/rl_zero and <pipeline seed 1>/rl_zero are one arm)",
    )
    args = parser.parse_args()

    runs = list(dict.fromkeys(run.resolve() for d in args.dirs for run in find_runs(d)))
    overrides = [read_overrides(run) for run in runs]
    if args.arms == "dirname":
        labels = [run.name for run in runs]
    else:
        labels = arm_labels(overrides, run_names(runs))
    runs_per_arm = {arm: labels.count(arm) for arm in dict.fromkeys(labels)}
    requested = list(dict.fromkeys(args.metrics))
    arms = collect(runs, labels, requested)

    metrics = [m for m in requested if any(per_metric[m] for per_metric in arms.values())]
    for skipped in (m for m in requested if m not in metrics):
        print(f"skipping {skipped}: no run logged it", file=sys.stderr)
    if not metrics:
        raise SystemExit(f"plot_ablation: no run logged any of {', '.join(requested)}")

    out = args.out or args.dirs[0] / "ablation.png"
    title = args.title or ", ".join(common_overrides(overrides)) or args.dirs[0].resolve().name
    plot(arms, metrics, runs_per_arm, out, title)
    table, finals = final_table(arms, metrics, runs_per_arm)
    print(f"{len(runs)} runs, {len(arms)} arms; final values (mean ± standard error over seeds):")
    print(table)
    out.with_suffix(".json").write_text(json.dumps(finals, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
