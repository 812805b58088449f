"""Page faults, kernel CPU time and s/step of a short `experiment=grpo_addition` run under
each memory-allocator setting, side by side (issue 17's page-fault storm).

    python scripts/bench_alloc.py                        # the default settings, 2 runs each
    python scripts/bench_alloc.py --steps 4 --reps 1 --settings glibc r1 thp
    python scripts/bench_alloc.py --threads 1            # on a machine others are using too

Each run is `scripts/train.py experiment=grpo_addition` (same seed, so the same work) in its
own child process, with held-out validation only where train.py always runs it, after fit,
on 4 problems. Per setting: one 1-step run (start-up: imports, model load, the first step,
that validation), then --reps runs of --steps steps; the settings take turns (glibc, r1, ...,
glibc, r1, ...), so a machine that gets busier part-way slows every setting alike. From each
child's rusage (os.wait4): minor page faults, user and system CPU seconds, peak RSS; from its
metrics.csv: perf/step_s (wall, the first step left out). Per step: a --steps run's count
less the 1-step run's, over steps - 1, so start-up drops out. --threads N runs each child
with N intra-op threads (OMP_NUM_THREADS): on a shared machine, OpenMP threads that outnumber
the free cores spin, and wall times mean little. Writes outputs/bench/alloc.json.

Settings: `glibc` is glibc's default malloc (R1_MALLOC_TUNING=0); `r1` is what every r1
script does by itself (r1.cli.tune_malloc: mallopt at start); `glibc-env-threshold` and
`glibc-env-nommap` are the same idea through glibc's MALLOC_*_ variables (the largest mmap
threshold, no trimming; and with mmap off, r1's setting by another route); `thp` asks torch
for transparent huge pages on large allocations; `jemalloc` and `tcmalloc` are preloaded
(LD_PRELOAD) where the library is installed (apt-get install libjemalloc2
libtcmalloc-minimal4), and skipped with a note where not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from r1.cli import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
LIBDIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
PRELOADS = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"}
OFF = {"R1_MALLOC_TUNING": "0"}
THRESHOLDS = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
    "MALLOC_TOP_PAD_": str(256 << 20),
}
SETTINGS = {
    "glibc": OFF,
    "r1": {},
    "glibc-env-threshold": {**OFF, **THRESHOLDS},
    "glibc-env-nommap": {**OFF, **THRESHOLDS, "MALLOC_MMAP_MAX_": "0"},
    "thp": {**OFF, "THP_MEM_ALLOC_ENABLE": "1"},
    "r1-thp": {"THP_MEM_ALLOC_ENABLE": "1"},
    "jemalloc": OFF,
    "tcmalloc": OFF,
}
DEFAULT = ["glibc", "r1", "glibc-env-threshold", "jemalloc", "tcmalloc"]


def preload(setting: str) -> str | None:
    """The shared library to preload for `setting`, '' for none, None if not installed."""
    if setting not in PRELOADS:
        return ""
    for directory in LIBDIRS:
        path = Path(directory) / PRELOADS[setting]
        if path.is_file():
            return str(path)
    return None


def step_seconds(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv") as f:
        return [float(row["perf/step_s"]) for row in csv.DictReader(f) if row.get("perf/step_s")]


def run_once(setting: str, library: str, steps: int, args: argparse.Namespace) -> dict:
    root = Path(args.root)
    run_dir = Path(scratch_dir(prefix=f"bench_alloc_{setting}_"))
    env = {**os.environ, **SETTINGS[setting], "PYTHONPATH": str(root)}
    if library:
        env["LD_PRELOAD"] = library
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    command = [
        sys.executable,
        str(root / "scripts" / "train.py"),
        "experiment=grpo_addition",
        f"trainer.max_steps={steps}",
        "validate_before_training=false",
        "trainer.val_check_interval=null",
        "data.num_val=4",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
        f"hydra.run.dir={run_dir}",
        *args.overrides,
    ]
    started = time.perf_counter()
    with open(run_dir / "stdout.log", "w") as log:
        child = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # Ctrl-C: the run and its reward workers go too
            os.killpg(child.pid, signal.SIGKILL)
            raise
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{setting} run failed ({code}): see {run_dir}/stdout.log")
    return {
        "steps": steps,
        "wall_s": wall,
        "minor_faults": usage.ru_minflt,
        "major_faults": usage.ru_majflt,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,  # Linux: KiB
        "step_s": step_seconds(run_dir)[1:],
        "run_dir": str(run_dir),
    }


def summary(start: dict, runs: list[dict]) -> dict:
    """Per step (start-up taken out), and the whole runs' figures."""
    extra = runs[0]["steps"] - start["steps"]

    def per_step(key: str) -> float:
        return (statistics.mean(r[key] for r in runs) - start[key]) / extra

    faults, user, sys_ = per_step("minor_faults"), per_step("user_s"), per_step("sys_s")
    wall = statistics.mean(statistics.mean(r["step_s"]) for r in runs)
    return {
        "faults_per_step": faults,
        "user_s_per_step": user,
        "sys_s_per_step": sys_,
        "cpu_s_per_step": user + sys_,
        "sys_share": sys_ / (user + sys_),
        "faults_per_cpu_s": faults / (user + sys_),
        "faults_per_s": faults / wall,
        "s_per_step": wall,
        "run_faults_per_s": statistics.mean(r["minor_faults"] / r["wall_s"] for r in runs),
        "run_sys_share": statistics.mean(r["sys_s"] / (r["user_s"] + r["sys_s"]) for r in runs),
        "peak_rss_gb": max(r["peak_rss_gb"] for r in [start, *runs]),
        "runs": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=DEFAULT)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each run (unset: all)")
    parser.add_argument("--overrides", nargs="*", default=[], help="more train.py overrides")
    parser.add_argument(
        "--root", default=str(ROOT), help="the r1 tree to run (e.g. a snapshot of a commit)"
    )
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "alloc.json"))
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (a 1-step run is the start-up baseline)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill: the runs go too

    libraries, skipped = {}, {}
    for setting in args.settings:
        library = preload(setting)
        if library is None:
            skipped[setting] = f"{PRELOADS[setting]} not found in {', '.join(LIBDIRS)}"
            print(f"skipping {setting}: {skipped[setting]}", flush=True)
        else:
            libraries[setting] = library
    starts = {}
    runs: dict[str, list[dict]] = {s: [] for s in libraries}
    for rep in range(args.reps + 1):
        for setting, library in libraries.items():
            steps = 1 if rep == 0 else args.steps
            result = run_once(setting, library, steps, args)
            if rep == 0:
                starts[setting] = result
            else:
                runs[setting].append(result)
            print(
                f"[{rep}/{args.reps}] {setting}, {steps} steps: {result['minor_faults']:,} faults, "
                f"user {result['user_s']:.1f} s, sys {result['sys_s']:.1f} s, "
                f"{result['wall_s']:.0f} s, peak RSS {result['peak_rss_gb']:.2f} GB",
                flush=True,
            )
    report = {
        "settings": {
            "command": "scripts/train.py experiment=grpo_addition (see scripts/bench_alloc.py)",
            "steps": args.steps,
            "reps": args.reps,
            "overrides": args.overrides,
            "threads": args.threads,
            "env": {s: SETTINGS[s] for s in runs},
            "preload": {s: lib for s, lib in libraries.items() if lib},
            "skipped": skipped,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        },
        "summary": {s: summary(starts[s], r) for s, r in runs.items()},
        "start_up_runs": starts,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("per step, start-up taken out:")
    print(
        f"{'setting':<21}{'faults':>11}{'user s':>8}{'sys s':>7}{'sys %':>7}"
        f"{'faults/s':>10}{'s/step':>8}{'peak RSS GB':>13}"
    )
    for setting, m in report["summary"].items():
        print(
            f"{setting:<21}{m['faults_per_step']:>11,.0f}{m['user_s_per_step']:>8.2f}"
            f"{m['sys_s_per_step']:>7.2f}{m['sys_share']:>7.0%}{m['faults_per_s']:>10,.0f}"
            f"{m['s_per_step']:>8.2f}{m['peak_rss_gb']:>13.2f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
