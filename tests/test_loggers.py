"""Every logger keeps the local metrics file the plot scripts read (<run dir>/logs/metrics.csv)."""

from __future__ import annotations

import csv

import pytest
from run_files import metrics_rows, run_train

from r1.loggers import tensorboard_logger, wandb_logger


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def offline_wandb(monkeypatch, tmp_path):
    """W&B with no credentials and no network: offline runs written under tmp_path."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


@pytest.mark.parametrize("factory", ["tensorboard", "wandb"])
def test_each_logger_also_writes_the_local_metrics_file(factory, tmp_path, monkeypatch):
    if factory == "wandb":
        offline_wandb(monkeypatch, tmp_path)
        loggers = wandb_logger("r1", "g", "n", save_dir=str(tmp_path), mode="disabled")
    else:
        loggers = tensorboard_logger(str(tmp_path), name="tensorboard")
    main, local = loggers
    for step in range(3):
        for logger in loggers:
            logger.log_metrics({"train/reward": step / 10}, step=step)
    for logger in loggers:
        logger.save()
    rows = read_rows(tmp_path / "logs" / "metrics.csv")
    assert [r["train/reward"] for r in rows] == ["0.0", "0.1", "0.2"]
    if factory == "tensorboard":
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_local_metrics_can_be_switched_off(tmp_path):
    logger = tensorboard_logger(str(tmp_path), name="tb", local_metrics=False)
    assert not isinstance(logger, list)


def test_a_wandb_run_keeps_metrics_csv_for_the_plot_scripts(tmp_path, monkeypatch):
    """A short training run with logger=wandb, W&B offline (nothing reaches the network):
    the run directory holds the offline W&B run and logs/metrics.csv with every step."""
    offline_wandb(monkeypatch, tmp_path)
    run_train(
        tmp_path,
        "model=tiny",
        "logger=wandb",
        "logger.mode=offline",
        "data.num_train=32",
        "data.num_val=4",
        "data.batch_size=8",
        "module.max_new_tokens=4",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
    )
    run_dir = tmp_path / "run"
    rows = metrics_rows(run_dir)
    assert len([r for r in rows if r.get("train/loss")]) == 4  # 32 / 8, one row per step
    assert any(r.get("val/accuracy") for r in rows)
    assert list((run_dir / "wandb").glob("offline-run-*"))
