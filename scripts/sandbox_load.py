"""Run sandboxed programs in a loop: fork storms, memory bombs and ordinary programs.

A load generator for checking that several processes can use the sandbox at once, e.g.
`make test` while this runs beside it:

    python scripts/sandbox_load.py --seconds 900 &
    make test

Exits 1 if an ordinary program of its own ever failed to print its result.
"""

from __future__ import annotations

import argparse
import sys
import time

from r1.rewards.sandbox import (
    SandboxLimits,
    describe_protections,
    run_many,
    sandbox_protections,
)

FORK_STORM = (
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
)
MEMORY_BOMB = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    args = parser.parse_args()
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=1, max_processes=8, memory_mb=256)
    print(f"sandbox load running for {args.seconds:g} s; {describe_protections()}", flush=True)
    # Without a process limit a fork storm would exhaust the host, not the sandbox.
    hostile = [FORK_STORM] if sandbox_protections()["process_limit"] else []
    hostile.append(MEMORY_BOMB)
    end = time.monotonic() + args.seconds
    rounds = wrong = 0
    while time.monotonic() < end:
        jobs = [(code, "") for code in hostile] + [(f"print({rounds} + 1)", "")]
        *_, ordinary = run_many(jobs, limits, max_workers=len(jobs))
        wrong += getattr(ordinary, "stdout", None) != f"{rounds + 1}\n"
        rounds += 1
    print(f"{rounds} rounds, {wrong} ordinary programs failed", flush=True)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
