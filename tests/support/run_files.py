"""Reading what a scripts/train.py run wrote."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_train(
    tmp_path: Path, *overrides: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """scripts/train.py as a user runs it, in <tmp_path>/run, with `env` added to the
    environment; fails the test if it fails."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "scripts/train.py", f"hydra.run.dir={run_dir}", *overrides]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """The rows of <run dir>/logs/metrics.csv (empty cells are "")."""
    with open(Path(run_dir) / "logs" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def logged_values(run_dir: Path, name: str) -> list[float]:
    """Every logged value of one metric, in order."""
    return [float(r[name]) for r in metrics_rows(run_dir) if r.get(name)]
