"""One-step-off-policy rollouts against synchronous ones on experiment=grpo_addition.

    python scripts/bench_async.py                  # 10 steps each: steps/s, async / sync
    python scripts/bench_async.py --steps 20 --device cuda
    python scripts/bench_async.py --accuracy       # 3 seeds x {sync, async}, full runs (long)

Speed: scripts/train.py runs each mode in its own child process, interleaved (sync, async,
async, sync for --rounds 2), with the same seed and settings; the load average before and
after each run is recorded (other work on the machine slows the two modes differently), and
--omp-wait-policy passive keeps idle OpenMP threads from spinning (on a busy machine the
trainer thread's spinning team slowed its own generation many times over, which a background
thread escaped: that, not the overlap, would then dominate the ratio); a step's time is its logged perf/step_s (sync: generate, score,
update; async: the update and the wait for the batch generated beside it), the first
`--warmup` steps left out. Also reported: the generation time (rollout/s, in the thread when
async), the time the async trainer waited for the thread (rollout/wait_s) and the staleness.
Writes outputs/bench/async.json.

Accuracy (--accuracy): the full experiment (60 steps) for seeds 0, 1, 2 in both modes, one
Hydra multirun (--side-by-side: one multirun per mode at once, each pinned to its own core with
one thread), then val/accuracy after training per mode: mean, standard error, and whether
async's mean is at most one standard error (of the difference of the two means) below sync's. Writes outputs/bench/async_accuracy.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {"sync": 0, "async": 1}


def train(run_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> float:
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started


def logged(run_dir: Path) -> dict[int, dict[str, float]]:
    steps: dict[int, dict[str, float]] = {}
    with open(run_dir / "logs" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if v and k != "step"}
            steps.setdefault(int(row["step"]), {}).update(values)
    return steps


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def speed(args) -> dict:
    overrides = [
        "experiment=grpo_addition",
        f"trainer.max_steps={args.steps}",
        f"trainer.accelerator={args.device}",
        "trainer.val_check_interval=null",
        "data.num_val=4",
        "validate_before_training=false",
        "checkpoint.save_on_train_end=false",
        f"seed={args.seed}",
    ]
    env = dict(os.environ)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    report: dict = {
        "overrides": overrides,
        "warmup": args.warmup,
        "omp_wait_policy": env.get("OMP_WAIT_POLICY"),
        "runs": [],
        "modes": {},
    }
    # sync, async, async, sync, ...: a drift in the machine's load falls on both alike
    order = [
        name
        for i in range(args.rounds)
        for name in (list(MODES) if i % 2 == 0 else list(MODES)[::-1])
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(order):
            run_dir = Path(tmp) / f"{i}-{name}"
            load = os.getloadavg()[0]
            seconds = train(run_dir, *overrides, f"rollout.async_steps={MODES[name]}", env=env)
            rows = [v for s, v in sorted(logged(run_dir).items()) if "perf/step_s" in v]
            timed = rows[args.warmup :]
            step_s = [r["perf/step_s"] for r in timed]
            report["runs"].append(
                {
                    "mode": name,
                    "steps_per_s": len(step_s) / sum(step_s),
                    "s_per_step": mean(step_s),
                    "generation_s": mean([r["rollout/s"] for r in timed]),
                    "wait_s": mean([r.get("rollout/wait_s", 0.0) for r in timed]),
                    "staleness": mean([r.get("rollout/staleness", 0.0) for r in timed]),
                    "reward": mean([r["train/reward"] for r in rows if "train/reward" in r]),
                    "process_s": seconds,
                    "load_before": load,
                    "load_after": os.getloadavg()[0],
                }
            )
            print(json.dumps(report["runs"][-1]), flush=True)
    for name in MODES:
        runs = [r for r in report["runs"] if r["mode"] == name]
        report["modes"][name] = {k: mean([r[k] for r in runs]) for k in runs[0] if k != "mode"}
    sync, off = report["modes"]["sync"], report["modes"]["async"]
    report["async_over_sync_steps_per_s"] = off["steps_per_s"] / sync["steps_per_s"]
    report["cpu_count"] = os.cpu_count()
    return report


def accuracy(args) -> dict:
    sweep = ROOT / "outputs" / "bench" / "async_accuracy"
    base = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        "-m",
        "experiment=grpo_addition",
        f"trainer.accelerator={args.device}",
        "seed=0,1,2",
    ]
    if args.side_by_side:
        # one multirun per mode at once, each on its own core with one thread: the modes'
        # accuracies do not depend on the speed, and the two sweeps take the time of one
        env = dict(os.environ, OMP_NUM_THREADS="1")
        commands = {
            name: [
                "taskset",
                "-c",
                str(core),
                *base,
                f"rollout.async_steps={steps}",
                f"hydra.sweep.dir={sweep / name}",
            ]
            for core, (name, steps) in enumerate(MODES.items())
        }
        running = [subprocess.Popen(c, cwd=ROOT, env=env) for c in commands.values()]
        if any(p.wait() != 0 for p in running):
            sys.exit("a sweep failed: see its output above")
        command = [" & ".join(" ".join(c[4:]) for c in commands.values())]  # from the script on
    else:
        command = [*base, "rollout.async_steps=0,1", f"hydra.sweep.dir={sweep}"]
        subprocess.run(command, cwd=ROOT, check=True)
        command = [" ".join(command[1:])]  # from the script on
    found: dict[str, list[float]] = {name: [] for name in MODES}
    for summary in sorted(sweep.glob("**/summary.json")):
        overrides = (summary.parent / ".hydra" / "overrides.yaml").read_text()
        name = "async" if "rollout.async_steps=1" in overrides else "sync"
        found[name].append(float(json.loads(summary.read_text())["after"]["val/accuracy"]))
    report: dict = {"command": command[0], "modes": {}}
    for name, values in found.items():
        se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        report["modes"][name] = {"accuracy": values, "mean": mean(values), "se": se}
    sync, off = report["modes"]["sync"], report["modes"]["async"]
    report["se_of_difference"] = math.hypot(sync["se"], off["se"])
    report["async_within_one_se"] = off["mean"] >= sync["mean"] - report["se_of_difference"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode, interleaved")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--accuracy", action="store_true", help="3 seeds x 2 modes, 60 steps")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --accuracy: the two modes' sweeps at once, one core and one thread each",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=["active", "passive"],
        help="OMP_WAIT_POLICY for the runs (default: inherited); see docs/async_rollouts.md",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must be more than --warmup")
    report = accuracy(args) if args.accuracy else speed(args)
    default = "async_accuracy.json" if args.accuracy else "async.json"
    out = args.out or ROOT / "outputs" / "bench" / default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in report["modes"].items():
        print(
            name,
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
        )
    if args.accuracy:
        print(f"async within one standard error of sync: {report['async_within_one_se']}")
    else:
        print(f"async / sync steps/s: {report['async_over_sync_steps_per_s']:.3f}")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
