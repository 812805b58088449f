"""scripts/plot_pipeline.py draws a pipeline's table, the chosen rows, with a tokens panel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chosen_rows_and_the_tokens_panel(tmp_path):
    rows = [
        {
            "stage": "base",
            "label": "base model",
            "pass@1": 0.2,
            "selected": 0.25,
            "tokens_per_problem": 180,
        },
        {
            "stage": "mcts",
            "label": "MCTS, PRM-valued",
            "pass@1": None,
            "selected": 0.3,
            "tokens_per_problem": 350,
        },
    ]
    (tmp_path / "pipeline.json").write_text(json.dumps(rows))
    out = tmp_path / "chart.png"
    command = [sys.executable, "scripts/plot_pipeline.py", str(tmp_path), str(out)]
    done = subprocess.run(
        [*command, "--rows", "mcts", "base", "--metrics", "selected", "--tokens"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000
    bad = subprocess.run([*command, "--rows", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "--rows: no stage nope" in bad.stderr


def test_seeds_give_means_with_standard_errors(tmp_path):
    dirs = []
    for seed, (base, tuned) in enumerate([(0.0, 0.6), (0.1, 0.8)]):
        directory = tmp_path / f"seed{seed}"
        directory.mkdir()
        rows = [
            {"stage": "base", "label": "base model", "pass@1": base, "format_rate": 0.0},
            {"stage": "rl", "label": "RL", "pass@1": tuned, "format_rate": 1.0},
        ]
        (directory / "pipeline.json").write_text(json.dumps(rows))
        dirs.append(str(directory))
    out = tmp_path / "seeds.png"
    command = [sys.executable, "scripts/plot_pipeline.py", *dirs, str(out)]
    done = subprocess.run(
        [*command, "--metrics", "pass@1", "format_rate"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    table = json.loads(out.with_suffix(".json").read_text())
    rl = table["rl"]["pass@1"]
    assert rl["mean"] == 0.7 and abs(rl["se"] - 0.1) < 1e-9 and rl["values"] == [0.6, 0.8]
    assert "| RL | 0.700 ± 0.100 (0.60, 0.80) | 1.000 ± 0.000 (1.00, 1.00) |" in done.stdout
