"""scripts/bench_rollout.py on the tiny model at one tiny configuration: the JSON it writes has
the machine's limits, a bound and positive tokens/s for each engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_run_writes_rates_and_bounds(tmp_path):
    out = tmp_path / "rollout.json"
    command = [sys.executable, "scripts/bench_rollout.py", "--model", "tiny", "--device", "cpu"]
    command += ["--lengths", "4", "--batches", "2", "--engines", "r1", "hf", "--threads", "1"]
    command += ["--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"machine", "settings", "model_costs", "limits", "results", "skipped"} <= set(report)
    limits = report["limits"]
    assert limits["copy_gb_per_s"] > 0 and limits["matmul_large"]["gflops"] > 0
    assert limits["matmul_decode"]["2"]["model_gflops"] > 0
    assert [(r["engine"], r["rows"], r["length"]) for r in report["results"]] == [
        ("r1", 2, 4),
        ("hf", 2, 4),
    ]
    for result in report["results"]:
        assert result["tokens"] == 2 * 4  # EOS cannot end a row
        assert result["tokens_per_s"] > 0 and result["peak_mem_gb"] > 0
        assert result["bound"]["tokens_per_s"] > 0
        assert result["fraction_of_bound"] > 0
    assert report["peak_rss_gb"] > 0 and not report["skipped"]
    assert report["machine"]["torch_threads"] == 1
    assert "fraction" in done.stdout  # the summary table
