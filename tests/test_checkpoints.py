"""The pieces of resuming that need no training run: finding the checkpoint, atomic commits,
loggers that continue a run's files."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from r1.checkpoints import (
    ResumePoint,
    checkpoint_path,
    commit,
    list_checkpoints,
    resolve_resume,
    temporary_path,
)
from r1.checks import ConfigError
from r1.loggers import csv_logger, tensorboard_logger


def fake_run(run_dir, overrides, steps):
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    for step in steps:
        path = checkpoint_path(run_dir / "checkpoints", step)
        path.parent.mkdir(exist_ok=True)
        torch.save({"r1": {"global_step": step, "loggers": {"csv_rows": step}}}, path)
    return run_dir


def test_half_written_checkpoints_are_never_listed(tmp_path):
    final = checkpoint_path(tmp_path, 4)
    temporary_path(final).write_bytes(b"half")
    assert list_checkpoints(tmp_path) == []
    commit(temporary_path(final), final)
    torch.save({}, checkpoint_path(tmp_path, 12))
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step-00000004.ckpt",
        "step-00000012.ckpt",
    ]


def test_resume_auto_picks_the_newest_run_with_the_same_overrides(tmp_path):
    root = tmp_path / "outputs"
    same = ["stage=grpo", "seed=1"]
    fake_run(root / "a", same, [5])
    newest = fake_run(root / "b", [*same, "resume=auto", "hydra.run.dir=x"], [5, 10])
    fake_run(root / "c", ["stage=grpo", "seed=2"], [20])  # another sweep job
    fake_run(root / "d", same, [])  # launched, killed before its first checkpoint
    point = resolve_resume("auto", root / "new", runs_root=root, overrides=["seed=1", "stage=grpo"])
    assert isinstance(point, ResumePoint)
    assert point.checkpoint == checkpoint_path(newest / "checkpoints", 10)
    assert point.run_dir == newest and point.logger_state()["csv_rows"] == 10

    assert resolve_resume("auto", root / "new", runs_root=root, overrides=["seed=3"]) is None
    assert resolve_resume(None, root / "new", runs_root=root) is None


def test_resume_names_a_directory_or_a_file(tmp_path):
    run = fake_run(tmp_path / "run", [], [3, 6])
    assert resolve_resume(str(run), tmp_path).checkpoint.name == "step-00000006.ckpt"
    file = checkpoint_path(run / "checkpoints", 3)
    point = resolve_resume(str(file), tmp_path / "elsewhere")
    assert point.checkpoint == file and point.run_dir == run
    with pytest.raises(ConfigError, match="no checkpoint in"):
        resolve_resume(str(fake_run(tmp_path / "empty", [], [])), tmp_path)
    not_ours = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, not_ours)
    with pytest.raises(ConfigError, match="is not an r1 training checkpoint"):
        resolve_resume(str(not_ours), tmp_path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_continues_the_rows_up_to_the_checkpoint(tmp_path):
    first = csv_logger(str(tmp_path), name="logs")
    for step in range(5):
        first.log_metrics({"train/reward": step / 10}, step=step)
    first.save()
    path = tmp_path / "logs" / "metrics.csv"
    assert len(read_csv(path)) == 5

    resumed = csv_logger(str(tmp_path), name="logs", resume={"csv_rows": 3, "next_log_step": 3})
    resumed.log_metrics({"train/reward": 0.9, "train/kl": 0.1}, step=3)  # a new column, too
    resumed.save()
    rows = read_csv(path)
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[3]["train/reward"] == "0.9" and rows[3]["train/kl"] == "0.1"

    fresh = csv_logger(str(tmp_path), name="logs")  # not resuming: the old file is kept aside
    fresh.log_metrics({"train/reward": 0.0}, step=0)
    fresh.save()
    assert len(read_csv(path)) == 1
    (kept,) = [p for p in (tmp_path / "logs").glob("metrics.*.csv")]
    assert len(read_csv(kept)) == 4


def test_tensorboard_logger_purges_steps_after_the_checkpoint(tmp_path):
    logger, local = tensorboard_logger(str(tmp_path), name="tb", resume={"next_log_step": 7})
    assert logger._kwargs["purge_step"] == 7
    assert local.keep_rows == 0  # the local metrics file resumes too (no csv_rows: none kept)


def test_wandb_runs_are_tagged_with_their_arm(tmp_path):
    from r1.loggers import arm_tags, wandb_logger

    assert arm_tags("reward=lang_consistency,seed=1") == ["reward=lang_consistency"]
    assert arm_tags("") == []
    logger = wandb_logger(
        project="r1",
        group="ablation_lang_reward",
        name="ablation_lang_reward",
        save_dir=str(tmp_path),
        tags=["cpu"],
        mode="disabled",
        arm="reward=lang_consistency,seed=1",
        local_metrics=False,
    )
    assert logger._wandb_init["tags"] == ["cpu", "reward=lang_consistency"]
    assert logger._wandb_init["group"] == "ablation_lang_reward"
    assert logger._wandb_init["name"] == "ablation_lang_reward-reward=lang_consistency,seed=1"
