"""A Hydra multirun of two tiny GRPO arms, then plot_ablation.py on its sweep directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two training runs; tests/scripts/test_objectives.py sweeps by multirun too
def test_two_arm_multirun_is_found_and_plotted_by_plot_ablation(tmp_path):
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "scripts/train.py",
        "-m",
        "stage=grpo",
        "model=tiny",
        "data.num_train=8",
        "data.num_val=2",
        "data.batch_size=2",
        "module.group_size=4",
        "module.sampling.max_new_tokens=6",
        "module.max_new_tokens=4",
        "reward=repetition",
        "module.dynamic_sampling=false",  # tied groups are trained on, not refilled
        "trainer.max_steps=2",
        "validate_before_training=false",
        "module.kl_coef=0.0,0.1",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = sorted(p.parent.parent.name for p in sweep.glob("*/logs/metrics.csv"))
    assert len(runs) == 2 and "module.kl_coef=0.0" in runs[0] and "module.kl_coef=0.1" in runs[1]

    plotted = subprocess.run(
        [sys.executable, "scripts/plot_ablation.py", str(sweep), "--out", str(tmp_path / "a.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plotted.returncode == 0, plotted.stderr[-3000:]
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figures = json.loads((tmp_path / "a.json").read_text())
    assert set(figures) == {"module.kl_coef=0.0", "module.kl_coef=0.1"}
    assert figures["module.kl_coef=0.1"]["train/reward"]["seeds"] == 1
    assert "train/reflection_words" in figures["module.kl_coef=0.0"]


def test_a_sweep_job_directory_name_stays_within_the_file_system_limit():
    from r1.cli import MAX_NAME, short_name

    assert short_name("module.kl_coef=0.1") == "module.kl_coef=0.1"
    names = [short_name(f"{'data.num_train=8,' * 20}module.kl_coef={k}") for k in (0.0, 0.1)]
    assert all(len(n.encode()) <= MAX_NAME for n in names)
    assert names[0] != names[1]  # the hash tells apart what the cut made equal
    assert names[0].startswith("data.num_train=8,")
    assert len(short_name("计算" * 100).encode()) <= MAX_NAME  # never cut inside a character
