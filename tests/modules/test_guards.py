"""Numerical guards and degenerate batches: a non-finite loss or gradient skips the step and
is counted, N in a row stop the run with a clear message; empty completions, zero-spread
groups and over-long prompts are handled and counted, never crash."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from grpo_fixtures import fixed_rollout, make_module

import r1.modules.rl as rl_module
from r1.checks import ConfigError
from r1.data.datamodule import ReasoningDataModule
from r1.data.problem import Problem
from r1.models import load_model
from r1.modules import SFTModule
from r1.modules.guards import NonFiniteError, NonFiniteGuard
from r1.rewards import CompositeReward
from r1.rollout.producer import RolloutProducer, ScoredRollout
from r1.rollout.types import Rollout, SamplingParams


def test_guard_skips_counts_resets_and_stops_after_n_in_a_row():
    guard = NonFiniteGuard(max_consecutive=3)
    assert guard.allows(1.0, 2.0, step=0)
    assert not guard.allows(float("nan"), 2.0, step=1)
    assert not guard.allows(1.0, float("inf"), step=2)
    assert guard.allows(1.0, None, step=3)  # a finite step resets the run of failures
    assert (guard.skipped, guard.consecutive) == (2, 0)
    assert not guard.allows(float("inf"), 1.0, step=4)
    assert not guard.allows(float("nan"), 1.0, step=5)
    with pytest.raises(NonFiniteError) as error:
        guard.allows(float("nan"), float("nan"), step=6)
    message = str(error.value)
    assert "training stopped at step 6" in message and "3 consecutive steps" in message
    assert "module.optimizer.lr" in message and "module.max_nonfinite_steps" in message
    assert guard.skipped == 5


def adamw_module(**kwargs):
    model, tokenizer = load_model("tiny", seed=3)
    module = make_module(
        model, tokenizer, optimizer=lambda p: torch.optim.AdamW(p, lr=0.1), **kwargs
    )
    return module, fixed_rollout(tokenizer)


def train_once(module, rollout):
    scored = ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0]))
    logged = {}
    module.log = lambda name, value, **_: logged.__setitem__(name, value)
    module.update(scored)
    return logged


def snapshot(module):
    return {k: v.clone() for k, v in module.model.state_dict().items()}


def assert_unchanged(module, before):
    after = module.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not module.optimizers().state  # AdamW's moments were never touched


def test_grpo_non_finite_loss_skips_the_step(monkeypatch):
    module, rollout = adamw_module()
    before = snapshot(module)
    real = rl_module.aggregate_loss
    monkeypatch.setattr(rl_module, "aggregate_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    logged = train_once(module, rollout)
    assert_unchanged(module, before)
    assert logged["train/skipped_steps"] == 1.0
    assert "train/loss" not in logged  # no update was made: NaN metrics are not logged

    monkeypatch.setattr(rl_module, "aggregate_loss", real)
    logged = train_once(module, rollout)  # a healthy step afterwards trains normally
    assert not all(torch.equal(before[k], v) for k, v in module.model.state_dict().items())
    assert logged["train/skipped_steps"] == 1.0 and math.isfinite(logged["train/loss"])


def test_grpo_non_finite_gradient_skips_the_step():
    module, rollout = adamw_module()
    before = snapshot(module)
    module.model.get_input_embeddings().weight.register_hook(lambda g: g * float("inf"))
    logged = train_once(module, rollout)
    assert_unchanged(module, before)
    assert module.nonfinite.skipped == 1 and logged["train/skipped_steps"] == 1.0


def test_grpo_stops_after_max_nonfinite_steps_in_a_row(monkeypatch):
    module, rollout = adamw_module(max_nonfinite_steps=2)
    real = rl_module.aggregate_loss
    monkeypatch.setattr(rl_module, "aggregate_loss", lambda *a, **k: real(*a, **k) * float("inf"))
    train_once(module, rollout)
    with pytest.raises(NonFiniteError, match="non-finite .* in 2 consecutive steps"):
        train_once(module, rollout)


def test_sft_skips_non_finite_loss_and_gradients(tiny):
    model, tokenizer = load_model("tiny", seed=3)
    module = SFTModule(model, tokenizer, optimizer=None)
    module.log = lambda *a, **k: None
    module._step_loss = 1.0
    for p in model.parameters():
        p.grad = torch.full_like(p, float("nan"))
    module.on_before_optimizer_step(None)
    assert all(p.grad is None for p in model.parameters())  # AdamW skips them
    assert module.nonfinite.skipped == 1

    module.completion_loss = lambda batch: torch.tensor(float("inf"))
    batch = {"labels": torch.zeros(1, 2, dtype=torch.long)}
    module.optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.1)
    assert module.training_step(batch, 0) is None  # Lightning skips backward and update
    assert module.nonfinite.skipped == 2


class EmptyAndUniformEngine:
    """First group: one empty completion (EOS at once) and one answer; second group: two
    identical answers (zero reward spread)."""

    def generate(self, prompt_ids, params, n):
        texts = [
            "",
            "<think>x</think><answer>7</answer>",
            "<answer>7</answer>",
            "<answer>7</answer>",
        ]
        mask = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 1, 0], [1, 1, 0]])
        return Rollout(
            prompt_ids=torch.tensor([[5, 6], [5, 7]]),
            prompt_mask=torch.ones(2, 2, dtype=torch.long),
            completion_ids=torch.ones(4, 3, dtype=torch.long),
            completion_mask=mask,
            sampling_logprobs=torch.zeros(4, 3),
            ends=["eos"] * 4,
            texts=texts,
            group_size=n,
        )

    def update_weights(self, model):
        pass


def test_empty_completions_and_zero_spread_groups_are_counted_and_train(tiny):
    producer = RolloutProducer(
        EmptyAndUniformEngine(),
        CompositeReward({"accuracy": {}, "format_strict": {}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=2,
    )
    problems = [Problem(question="q1", answer="7"), Problem(question="q2", answer="7")]
    batch = {"problems": problems, "prompts": ["q1", "q2"], "prompt_ids": [[5, 6], [5, 7]]}
    scored = producer.produce(batch, step=0)
    assert scored.metrics["train/empty_completions"] == 0.25
    assert scored.metrics["train/zero_spread_groups"] == 0.5
    assert torch.equal(scored.advantages[2:], torch.zeros(2))  # no signal, no NaN
    assert scored.rewards[0] == 0.0  # the empty completion is scored, as wrong

    model, tokenizer = load_model("tiny", seed=3)
    module = make_module(model, tokenizer)
    logged = {}
    module.log = lambda name, value, **_: logged.__setitem__(name, value)
    module.update(scored)
    assert math.isfinite(logged["train/loss"]) and module.nonfinite.skipped == 0


def test_over_long_rl_prompts_are_left_out_and_counted(tokenizer, caplog):
    long_question = "What is " + " + ".join(["1"] * 200) + "?"
    problems = [Problem(question=f"What is {i} + 1?", answer=str(i + 1)) for i in range(12)]
    problems[0] = Problem(question=long_question, answer="200")
    data = ReasoningDataModule(
        lambda: problems,
        tokenizer=tokenizer,
        num_train=10,
        num_val=2,
        max_length=128,
        train_format="prompts",
    )
    with caplog.at_level(logging.WARNING):
        data.setup("fit")
    assert long_question not in [p.question for p in data.val_problems]  # the split is fixed
    assert data.prompts_dropped["training"] == 1
    assert long_question not in [p.question for p in data.train_problems]
    assert len(data.train_problems) == 9
    assert "left out 1 of 10 training problems" in caplog.text

    everything_long = ReasoningDataModule(
        lambda: [Problem(question=long_question + str(i), answer="1") for i in range(6)],
        tokenizer=tokenizer,
        num_train=4,
        num_val=1,
        max_length=128,
        train_format="prompts",
    )
    with pytest.raises(ConfigError, match="every training prompt is longer than data.max_length"):
        everything_long.setup("fit")
