"""scripts/compare_evals.py: several benchmarks.json side by side with standard errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def summary(model: str, pass1: float, k: int = 4) -> dict:
    bench = {
        "name": "humaneval",
        "kind": "code",
        "k": k,
        "num_problems": 164,
        "metrics": {"pass@1": pass1, "pass@k": 0.5},
        "stderr": {"pass@1": 0.02, "pass@k": 0.04},
        "settings": {},
    }
    return {"settings": {"model": model}, "benchmarks": [bench]}


def test_two_evaluations_side_by_side(tmp_path):
    for name, model, value in (("a", "smollm2", 0.1), ("b", "trained", 0.25)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "benchmarks.json").write_text(json.dumps(summary(model, value)))
    out = tmp_path / "cmp.md"
    command = [
        sys.executable,
        "scripts/compare_evals.py",
        str(tmp_path / "a"),
        str(tmp_path / "b" / "benchmarks.json"),
        "--metrics",
        "pass@1,pass@k",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    assert "| benchmark | smollm2 | trained |" in table
    assert "| humaneval | 10.0 ± 2.0 | 25.0 ± 2.0 |" in table
    assert "| humaneval | 50.0 ± 4.0 (k=4) | 50.0 ± 4.0 (k=4) |" in table
    assert table in result.stdout
