"""GRPO under each training strategy, side by side: generated tokens/s, step time and peak
memory per rank, from the runs' own metrics (rollout/tokens_per_s summed over ranks,
perf/step_s and perf/peak_mem_gb the max over ranks; the first step is warm-up, not counted).

    python scripts/bench_strategies.py                                   # CPU: auto (1 process), ddp and fsdp on 2
    python scripts/bench_strategies.py --accelerator gpu --devices 1 --size 100m --strategies auto,fsdp
    python scripts/bench_strategies.py --strategies deepspeed_zero2 --accelerator gpu -- module.group_size=16

The model is randomly initialised from a config (no weights to download): `tiny` (~3M
parameters) or `100m` (a 12-layer, 768-wide Llama with SmolLM2's vocabulary, ~113M):
throughput and sharding do not need trained weights. Writes outputs/bench/strategies.json
and prints a table with each strategy's ratio to the first.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "tiny": [],
    "100m": [
        "model.tiny_overrides={hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12,"
        " num_attention_heads: 12, num_key_value_heads: 4}"
    ],
}


def run(strategy: str, args, extra: list[str]) -> dict:
    devices = 1 if strategy == "auto" else args.devices
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "stage=grpo",
            "model=tiny",
            *SIZES[args.size],
            f"strategy={strategy}",
            f"trainer.accelerator={args.accelerator}",
            f"trainer.devices={devices}",
            f"trainer.max_steps={args.steps}",
            f"data.batch_size={args.prompts_per_rank}",
            f"module.group_size={args.group_size}",
            f"module.sampling.max_new_tokens={args.max_new_tokens}",
            "module.max_new_tokens=8",
            "data.num_val=4",
            "validate_before_training=false",
            "checkpoint.every_n_steps=1000",
            f"hydra.run.dir={tmp}/run",
            *extra,
        ]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            return {"strategy": strategy, "error": result.stderr[-2000:]}
        with open(Path(tmp) / "run" / "logs" / "metrics.csv") as f:
            rows = [r for r in csv.DictReader(f) if r.get("perf/step_s")]
    timed = rows[1:] or rows  # the first step is warm-up

    def column(name: str) -> list[float]:
        return [float(r[name]) for r in timed if r.get(name)]

    return {
        "strategy": strategy,
        "devices": devices,
        "steps_timed": len(timed),
        "tokens_per_s": statistics.median(column("rollout/tokens_per_s")),
        "step_s": statistics.median(column("perf/step_s")),
        "rollout_s": statistics.median(column("rollout/s")),
        "peak_mem_gb": max(column("perf/peak_mem_gb")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default="auto,ddp,fsdp")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prompts-per-rank", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("overrides", nargs="*", help="more train.py overrides (after --)")
    args = parser.parse_args()

    results = [run(s, args, args.overrides) for s in args.strategies.split(",")]
    out = ROOT / "outputs" / "bench" / "strategies.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))

    base = next((r for r in results if "error" not in r), None)
    print(
        f"{'strategy':<18}{'devices':>8}{'tokens/s':>12}{'s/step':>10}{'peak GB/rank':>14}  vs first"
    )
    for r in results:
        if "error" in r:
            print(f"{r['strategy']:<18} failed:\n{r['error']}")
            continue
        ratio = r["tokens_per_s"] / base["tokens_per_s"]
        print(
            f"{r['strategy']:<18}{r['devices']:>8}{r['tokens_per_s']:>12.0f}{r['step_s']:>10.2f}"
            f"{r['peak_mem_gb']:>14.2f}  tokens/s x{ratio:.2f}"
        )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
