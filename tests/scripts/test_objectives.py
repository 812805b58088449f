"""Each registered objective added with the registry, selected by one override and run
through scripts/train.py on the tiny model (one Hydra multirun per registry, to pay the
start-up once): every run trains (finite loss, a gradient) and logs what it measures."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from run_files import logged_values

ROOT = Path(__file__).resolve().parents[2]
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
    "trainer.max_steps=2",  # one generation batch, two updates
    "module.dynamic_sampling=false",  # tied groups are trained on, not refilled
    "validate_before_training=false",
    "checkpoint.save_on_train_end=false",
]


def train(*overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "scripts/train.py", *(["-m"] if multirun else []), *TINY_GRPO]
    return subprocess.run(
        command + list(overrides), cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "sweep, arms",
    [
        # an entropy bonus keeps the gradient non-zero when a batch's rewards tie (the tiny
        # model's repetition rewards all tie for some draws: zero advantages)
        ("module.policy_loss=gspo,cispo module.entropy_coef=0.01", ["gspo", "cispo"]),
        # with an entropy bonus, so the bonus's gradient path runs too
        (
            "module.advantage=reinforce_pp,reinforce_pp_baseline module.entropy_coef=0.01",
            ["reinforce_pp", "reinforce_pp_baseline"],
        ),
    ],
    ids=["policy_losses", "advantages_with_entropy_bonus"],
)
def test_each_objective_trains_through_the_train_script(sweep, arms, tmp_path):
    sweep_dir = f"hydra.sweep.dir={tmp_path}"
    result = train(*sweep.split(), sweep_dir, "hydra.sweep.subdir=${hydra.job.num}", multirun=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number, arm in enumerate(arms):
        run_dir = tmp_path / str(number)
        assert f"={arm}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
        losses = logged_values(run_dir, "train/loss")
        assert len(losses) == 1 and all(math.isfinite(v) for v in losses)  # 1 batch x mu 2
        assert all(g > 0 for g in logged_values(run_dir, "train/grad_norm"))
        assert all(0.0 <= c <= 1.0 for c in logged_values(run_dir, "train/clip_ratio"))
        assert all(k >= 0.0 for k in logged_values(run_dir, "train/kl"))  # k3 whatever the loss


def test_an_option_that_does_not_apply_to_the_loss_is_refused_by_name(tmp_path):
    result = train(
        f"hydra.run.dir={tmp_path / 'run'}", "module.policy_loss=cispo", "module.dual_clip=3.0"
    )
    assert result.returncode == 2
    assert "module.dual_clip=3.0 applies to policy_loss=ppo_clip only, not 'cispo'" in (
        result.stdout + result.stderr
    )


def test_reinforce_pp_needs_no_group(tiny):
    from r1.modules import GRPOModule

    model, tokenizer = tiny
    module = GRPOModule(
        model, tokenizer, optimizer=None, reward=None, advantage="reinforce_pp", group_size=1
    )
    assert module.group_size == 1
    with pytest.raises(ValueError, match="module.group_size=1 must be >= 2"):
        GRPOModule(model, tokenizer, optimizer=None, reward=None, group_size=1)
    # dynamic sampling (stage=grpo's default) has nothing to compare in a group of one
    with pytest.raises(ValueError, match="set module.dynamic_sampling=false"):
        GRPOModule(
            model,
            tokenizer,
            optimizer=None,
            reward=None,
            advantage="reinforce_pp",
            group_size=1,
            dynamic_sampling=True,
        )
