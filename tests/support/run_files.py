"""Reading what a scripts/train.py run wrote."""

from __future__ import annotations

import csv
from pathlib import Path


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """The rows of <run dir>/logs/metrics.csv (empty cells are "")."""
    with open(Path(run_dir) / "logs" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def logged_values(run_dir: Path, name: str) -> list[float]:
    """Every logged value of one metric, in order."""
    return [float(r[name]) for r in metrics_rows(run_dir) if r.get(name)]
