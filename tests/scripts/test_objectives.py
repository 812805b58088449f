"""Each registered objective added with the registry, selected by one override and run
through scripts/train.py on the tiny model: the run trains (finite loss, a gradient) and
logs what the objective measures."""

from __future__ import annotations

import math

import pytest
from run_files import logged_values, run_train

TINY_GRPO = [
    "stage=grpo",
    "model=tiny",
    "data.num_train=8",
    "data.num_val=2",
    "data.batch_size=2",
    "module.group_size=4",
    "module.sampling.max_new_tokens=6",
    "module.max_new_tokens=2",
    "module.optimizer.lr=1e-3",
    "module.kl_coef=0.05",
    "module.inner_updates=2",  # a second update sees ratios other than 1: clipping can act
    "reward=repetition",
    "reward.terms.repetition.params.n=1",  # repeated words vary on random text
    "trainer.max_steps=4",
    "validate_before_training=false",
    "checkpoint.save_on_train_end=false",
]


@pytest.mark.parametrize(
    "overrides",
    [
        ["module.policy_loss=gspo", "module.clip_low=3e-4", "module.clip_high=4e-4"],
        ["module.policy_loss=cispo", "module.clip_low=1.0", "module.clip_high=0.28"],
        ["module.advantage=reinforce_pp", "module.group_size=1", "data.batch_size=4"],
        ["module.advantage=reinforce_pp_baseline"],
        ["module.entropy_coef=0.01"],
    ],
    ids=["gspo", "cispo", "reinforce_pp", "reinforce_pp_baseline", "entropy_bonus"],
)
def test_objective_trains_through_the_train_script(overrides, tmp_path):
    run_train(tmp_path, *TINY_GRPO, *overrides)
    run_dir = tmp_path / "run"
    losses = logged_values(run_dir, "train/loss")
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)  # 4 steps = 2 batches x mu
    assert all(g > 0 for g in logged_values(run_dir, "train/grad_norm"))
    assert all(0.0 <= c <= 1.0 for c in logged_values(run_dir, "train/clip_ratio"))
    assert all(k >= 0.0 for k in logged_values(run_dir, "train/kl"))  # k3, whatever the loss


def test_an_option_that_does_not_apply_to_the_loss_is_refused_by_name(tmp_path):
    import subprocess
    import sys

    from run_files import ROOT

    command = [
        sys.executable,
        "scripts/train.py",
        *TINY_GRPO,
        f"hydra.run.dir={tmp_path / 'run'}",
        "module.policy_loss=cispo",
        "module.dual_clip=3.0",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "module.dual_clip=3.0 applies to policy_loss=ppo_clip only, not 'cispo'" in (
        result.stdout + result.stderr
    )
