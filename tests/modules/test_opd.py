"""On-policy distillation: the update on the tiny model, and a run through scripts/train.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from grpo_fixtures import fixed_rollout, make_module, token_logprobs
from run_files import metrics_rows

from r1.checks import ConfigError
from r1.models import load_model
from r1.modules import OPDModule
from r1.rollout.producer import ScoredRollout

ROOT = Path(__file__).resolve().parents[2]


def test_an_update_moves_the_student_along_the_teachers_per_token_advantages():
    student, tokenizer = load_model("tiny", seed=3)
    teacher, _ = load_model("tiny", seed=5)
    rollout = fixed_rollout(tokenizer)  # sampled by a copy of the student
    module = make_module(
        student,
        tokenizer,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.05),
        module_class=OPDModule,
        teacher={"name": "tiny", "seed": 5},
    )
    module.teacher_model = teacher.eval().requires_grad_(False)
    before = token_logprobs(student, rollout)
    advantages = token_logprobs(teacher, rollout) - before  # by hand: teacher minus student
    assert advantages.abs().sum() > 0
    module.update(ScoredRollout(rollout, torch.zeros(2), torch.zeros(2)))
    moved = token_logprobs(student, rollout) - before
    # First order: a gradient step on sum(A_t log pi(x_t)) raises it.
    assert float((advantages * moved).sum()) > 0
    prompt = int(rollout.prompt_mask.sum())  # read once for the group (shared prefix)
    assert module.teacher_tokens == prompt + int(rollout.completion_mask.sum())


def test_the_loss_is_minus_the_mean_advantage_by_hand():
    """mu = 1: the ratio is 1, so PPO's clipped loss per token is -A_t, and GRPO's
    seq_mean_token_mean averages it over each completion's tokens, then over completions:
    loss = mean_i mean_t (log pi_student - log pi_teacher), a per-sequence reverse-KL estimate."""
    student, tokenizer = load_model("tiny", seed=3)
    teacher, _ = load_model("tiny", seed=5)
    rollout = fixed_rollout(tokenizer)
    module = make_module(
        student, tokenizer, module_class=OPDModule, teacher={"name": "tiny", "seed": 5}
    )
    module.teacher_model = teacher.eval().requires_grad_(False)
    gap = token_logprobs(student, rollout) - token_logprobs(teacher, rollout)
    mask = rollout.completion_mask.float()
    expected = float(((gap * mask).sum(1) / mask.sum(1)).mean())
    metrics, _ = module.train_on(ScoredRollout(rollout, torch.zeros(2), torch.zeros(2)))
    assert metrics["train/loss"] == pytest.approx(expected, abs=1e-5)
    assert metrics["train/reverse_kl"] == pytest.approx(
        float((gap * mask).sum() / mask.sum()), abs=1e-5
    )


def test_a_teacher_is_required():
    model, tokenizer = load_model("tiny")
    with pytest.raises(ConfigError, match="needs a teacher, e.g. module.teacher.path="):
        make_module(model, tokenizer, module_class=OPDModule, teacher={"path": None})


def test_tiny_opd_run_through_train_script(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "scripts/train.py",
        "stage=opd",
        "model=tiny",
        "module.teacher.name=tiny",
        "module.teacher.path=null",
        "+module.teacher.seed=1",
        f"hydra.run.dir={run_dir}",
        "data.num_train=16",
        "data.num_val=4",
        "module.group_size=4",
        "data.batch_size=2",
        "module.sampling.max_new_tokens=8",
        "trainer.max_steps=3",
        "trainer.precision=32-true",
        "module.optimizer.lr=1e-3",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [r for r in metrics_rows(run_dir) if r.get("train/teacher_tokens")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    tokens = [float(r["train/teacher_tokens"]) for r in rows]
    assert tokens[0] > 0 and tokens[0] < tokens[1] < tokens[2]  # counted over the run
    assert all(float(r["train/reverse_kl"]) != 0 for r in rows)  # two different random models
    assert (run_dir / "checkpoint" / "config.json").exists()
