"""Put several benchmark evaluations side by side: a row per benchmark, a column per
evaluation, each cell the metric (percent) ± its standard error over problems, as the paper
prints its table. Reads the benchmarks.json that `scripts/evaluate.py benchmark(s)=...` writes.

python scripts/compare_evals.py outputs/eval/<date>/<base> outputs/eval/<date>/<trained>
python scripts/compare_evals.py <dir> <dir> --labels base,grpo --metrics pass@1,pass@k,cons@k --out cmp.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r1.eval.benchmark_eval import SUMMARY_JSON, comparison_markdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("evaluations", nargs="+", help="evaluation dirs (or their benchmarks.json)")
    parser.add_argument("--labels", help="comma-separated column names (default: the models)")
    parser.add_argument("--metrics", default="pass@1", help="comma-separated, e.g. pass@1,cons@k")
    parser.add_argument("--out", help="also write the table to this markdown file")
    return parser.parse_args(argv)


def read_summary(path: Path) -> dict:
    file = path / SUMMARY_JSON if path.is_dir() else path
    if not file.is_file():
        raise SystemExit(f"{path}: no {SUMMARY_JSON} (run scripts/evaluate.py benchmark=... first)")
    return json.loads(file.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summaries = [read_summary(Path(p)) for p in args.evaluations]
    if args.labels:
        labels = [label.strip() for label in args.labels.split(",")]
        if len(labels) != len(summaries):
            raise SystemExit(f"--labels: {len(labels)} labels for {len(summaries)} evaluations")
    else:
        labels = [
            str(s["settings"].get("model") or Path(p).name)
            for s, p in zip(summaries, args.evaluations)
        ]
        if len(set(labels)) < len(labels):  # one model twice: tell them apart by directory
            labels = [Path(p).name for p in args.evaluations]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    table = comparison_markdown(
        [(label, s["benchmarks"]) for label, s in zip(labels, summaries)], metrics
    )
    print(table)
    if args.out:
        Path(args.out).write_text(table)
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
