"""PPOModule: the critic learns a learnable reward; the stage runs through train.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from grpo_fixtures import fixed_rollout
from run_files import metrics_rows

from r1.models import load_model
from r1.modules import PPOModule
from r1.rewards import CompositeReward
from r1.rollout.producer import ScoredRollout
from r1.rollout.types import concat_rollouts

ROOT = Path(__file__).resolve().parents[2]


def driven(module):
    """Run PPOModule.training_step without a Trainer; returns the logged metrics per call."""
    module.setup("fit")
    optimizer = module.optimizer_factory(module.parameter_groups())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    module.optimizers = lambda: optimizer
    module.lr_schedulers = lambda: scheduler
    module.manual_backward = lambda loss: loss.backward()
    logged: list[dict[str, float]] = []

    def log_metrics(metrics, num_prompts):
        logged.append(dict(metrics))

    module.log_metrics = log_metrics
    return logged


def test_the_critic_learns_a_learnable_reward():
    """Two prompts, the reward fixed by the prompt (1 for the first, 0 for the second): the
    value of every state is predictable, so the value loss must fall and the explained
    variance rise. The policy's learning rate is 0, so the batch stays on-policy."""
    model, tokenizer = load_model("tiny", seed=3)
    rollout = concat_rollouts([fixed_rollout(tokenizer, group_size=2)] * 2)
    rollout.prompt_ids[1] = torch.roll(rollout.prompt_ids[1], 1)  # a different second prompt
    module = PPOModule(
        model,
        tokenizer,
        optimizer=lambda groups: torch.optim.AdamW(groups, lr=0.0),
        reward=CompositeReward({"accuracy": {}}, workers=0),
        group_size=2,
        sampling={"max_new_tokens": 5},
        critic_lr=3e-3,
        vf_coef=1.0,
        value_clip=10.0,
        inner_updates=1,
        max_grad_norm=None,
    )
    logged = driven(module)
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0])
    for _ in range(25):
        module.update(ScoredRollout(rollout, rewards, torch.zeros(4)))
    first, last = logged[0], logged[-1]
    assert last["train/value_loss"] < 0.1 * first["train/value_loss"]
    assert first["train/explained_variance"] == pytest.approx(0.0, abs=1e-6)  # values start at 0
    assert last["train/explained_variance"] > 0.8
    assert last["train/approx_kl"] == 0.0  # lr 0: the policy did not move


# (train/explained_variance is NaN, so not logged, when every return is equal, as here)
PPO_METRICS = {
    "train/value_loss",
    "train/value_clipfrac",
    "train/approx_kl",
    "train/policy_loss",
    "train/reward",
    "train/kl",
    "perf/peak_mem_gb",
    "perf/step_s",
    "val/accuracy",
}


def test_adaptive_kl_coefficient_moves_towards_its_target():
    """kl_in_reward with adaptive_kl_target: after each step the coefficient grows if the
    step's KL exceeded the target and shrinks if not (Ziegler et al.'s controller)."""
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer, group_size=2)
    module = PPOModule(
        model,
        tokenizer,
        optimizer=lambda groups: torch.optim.AdamW(groups, lr=1e-2),
        reward=CompositeReward({"accuracy": {}}, workers=0),
        group_size=2,
        sampling={"max_new_tokens": 5},
        kl_coef=0.1,
        kl_in_reward=True,
        adaptive_kl_target=1e-6,
        inner_updates=2,
    )
    logged = driven(module)
    for _ in range(2):
        module.update(ScoredRollout(rollout, torch.ones(2), torch.zeros(2)))
    assert logged[0]["train/kl_coef"] == 0.1
    above = logged[0]["train/kl"] > 1e-6  # the KL the controller saw after step 0
    assert (logged[1]["train/kl_coef"] > 0.1) == above and logged[1]["train/kl_coef"] != 0.1


def test_ppo_stage_through_the_train_script(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "scripts/train.py",
        "stage=ppo",
        "model=tiny",
        f"hydra.run.dir={run_dir}",
        "data.num_train=8",
        "data.num_val=2",
        "data.batch_size=2",
        "module.group_size=2",
        "module.minibatch_prompts=1",  # 2 minibatches x 2 epochs = 4 optimizer steps a batch
        "module.sampling.max_new_tokens=6",
        "module.max_new_tokens=4",
        "reward=repetition",
        "trainer.max_steps=8",
        "validate_before_training=false",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = metrics_rows(run_dir)
    logged = {k for r in rows for k, v in r.items() if v}
    assert PPO_METRICS <= logged, PPO_METRICS - logged
    assert len([r for r in rows if r.get("train/value_loss")]) == 2  # 8 steps / 4 per batch
    assert float(next(r for r in rows if r.get("perf/peak_mem_gb"))["perf/peak_mem_gb"]) > 0.1
    assert (run_dir / "checkpoint" / "config.json").exists()  # the policy, not the critic


def test_ppo_refuses_grpo_settings(tiny):
    model, tokenizer = tiny
    # GRPO-only settings are not PPO's: refused by name, not silently ignored
    with pytest.raises(ValueError, match="dynamic_sampling=true .* set it to false"):
        PPOModule(model, tokenizer, optimizer=None, reward=None, dynamic_sampling=True)
    for setting in ("advantage", "process_reward"):
        with pytest.raises(TypeError, match=setting):
            PPOModule(model, tokenizer, optimizer=None, reward=None, **{setting: True})
