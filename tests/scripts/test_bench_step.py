"""scripts/bench_step.py on the tiny model, a few tokens: one warm-up and one profiled GRPO
step, each phase timed with its peak memory, and the phases adding up to the step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASES = ["generation", "rewards", "old/ref log-probs", "forward", "backward", "optimizer"]


def test_tiny_step_is_profiled_phase_by_phase(tmp_path):
    out = tmp_path / "step.json"
    command = [sys.executable, "scripts/bench_step.py", "--model", "tiny", "--reward", "repetition"]
    command += ["--prompts", "2", "--group", "2", "--new-tokens", "6", "--warmup-new-tokens", "3"]
    command += ["--logit-chunk-tokens", "4", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["shapes"]["rows"] == 4 and report["shapes"]["completion_length"] == 6
    assert report["shapes"]["completion_tokens"] == 4 * 6  # every row runs to the budget
    assert report["warmup"]["new_tokens"] == 3
    assert report["settings"]["logit_chunk_tokens"] == 4  # (below the 24 tokens: chunked)
    phases = report["phases"]
    assert list(phases) == [*PHASES, "other"]
    for name in ("generation", "old/ref log-probs", "forward", "backward", "optimizer"):
        assert phases[name]["seconds"] > 0 and phases[name]["peak_mem_gb"] > 0, name
    for name in ("generation", "old/ref log-probs", "forward", "backward"):
        assert phases[name]["gflop_per_s"] > 0, name
    assert sum(p["seconds"] for p in phases.values()) <= report["step_s"] * 1.001
    assert sum(p["share"] for p in phases.values()) > 0.9
    assert report["peak_mem_gb"] == max(p["peak_mem_gb"] or 0 for p in phases.values())
    assert "old/ref log-probs" in done.stdout  # the table
