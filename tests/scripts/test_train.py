"""`scripts/train.py` end to end on the tiny model, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from run_files import metrics_rows as read_metrics
from run_files import run_train

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_sft_run_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path):
    result = run_train(
        tmp_path,
        "model=tiny",
        "data.num_train=128",
        "data.num_val=8",
        "data.batch_size=16",
        "module.optimizer.lr=1e-2",
        "module.max_new_tokens=8",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    )
    run_dir = tmp_path / "run"
    rows = read_metrics(run_dir)
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    val_losses = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert len(losses) == 16  # 128 / 16 * 2 epochs, one row per step
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert len(val_losses) == 3  # before training, then after each of the 2 epochs
    assert val_losses[-1] < 0.6 * val_losses[0]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 16
    assert summary["after"]["val/loss"] == val_losses[-1]
    assert set(summary["before"]) >= {"val/accuracy", "val/format_rate", "val/loss"}
    # held-out completions are also scored by the configured reward (reward=r1_zero)
    assert {"val/reward", "val/reward/accuracy", "val/reward/format"} <= set(rows[0])
    assert float(rows[0]["val/reward_errors/accuracy"]) == 0.0
    assert "held-out metric" in result.stdout and str(run_dir / "checkpoint") in result.stdout

    from r1.models import load_model

    model, _ = load_model(path=str(run_dir / "checkpoint"))
    assert model.config.num_hidden_layers == 2


def test_packing_and_countdown_run(tmp_path):
    run_train(
        tmp_path,
        "model=tiny",
        "data=countdown",
        "data.packing=true",
        "data.max_length=256",
        "data.num_train=32",
        "data.num_val=4",
        "module.max_new_tokens=4",
        "validate_before_training=false",
        "trainer.log_every_n_steps=1",
    )
    rows = read_metrics(tmp_path / "run")
    assert any(r.get("train/loss") for r in rows)


def test_cfg_job_prints_the_composed_config():
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--cfg", "job", "model=tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "name: tiny" in result.stdout and "_target_: r1.modules.SFTModule" in result.stdout
