"""RolloutCallback with a fake engine: scoring, advantages, dynamic-sampling refills."""

from __future__ import annotations

import torch
from rollout_fixtures import text_rollout

from r1.data.problem import Problem
from r1.rewards import CompositeReward
from r1.rollout.callback import RolloutCallback
from r1.rollout.types import SamplingParams


class FakeEngine:
    """Answers "7" to questions containing "easy" (every sample right: zero spread), and
    alternates right/wrong otherwise."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompt_ids, params, n):
        self.calls += 1
        texts = []
        for ids in prompt_ids:
            easy = ids[0] == 1
            texts += [
                "<answer>7</answer>" if easy or i % 2 == 0 else "<answer>8</answer>"
                for i in range(n)
            ]
        return text_rollout(prompt_ids, texts, n)

    def update_weights(self, model):
        pass


def batch_of(kinds):
    problems = [Problem(question=k, answer="7") for k in kinds]
    return {
        "problems": problems,
        "prompts": kinds,
        "prompt_ids": [[1 if k == "easy" else 2] for k in kinds],
    }


class FakeDataModule:
    refill_kind = "hard"

    def random_problems(self, k):
        return [Problem(question=self.refill_kind, answer="7")] * k

    def prompt_batch(self, problems):
        return batch_of([p.question for p in problems])


class FakeTrainer:
    global_step = 0
    datamodule = FakeDataModule()


def run(dynamic, refill_kind="hard"):
    engine = FakeEngine()
    FakeTrainer.datamodule.refill_kind = refill_kind
    callback = RolloutCallback(
        engine,
        CompositeReward({"accuracy": {}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=4,
        dynamic_sampling=dynamic,
    )
    batch = batch_of(["easy", "hard", "easy"])
    callback.on_train_batch_start(FakeTrainer(), None, batch, 0)
    return engine, batch["scored"]


def test_scores_and_group_advantages():
    _, scored = run(dynamic=False)
    assert scored.rewards.tolist() == [1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1]
    assert (
        scored.advantages[:4].abs().sum() == 0 and scored.advantages[8:].abs().sum() == 0
    )  # zero spread
    assert scored.advantages[4] > 0 > scored.advantages[5]
    assert abs(scored.metrics["train/zero_spread_groups"] - 2 / 3) < 1e-6
    assert scored.metrics["train/reward"] == 10 / 12
    assert {"rollout/tokens_per_s", "train/completion_len", "train/stop_rate"} <= set(
        scored.metrics
    )


def test_dynamic_sampling_replaces_zero_spread_groups():
    engine, scored = run(dynamic=True)
    assert engine.calls == 2  # one refill round brought two informative groups
    assert scored.rollout.num_prompts == 3
    assert scored.rewards.tolist() == [1, 0, 1, 0] * 3  # only groups with a reward spread
    assert (scored.advantages != 0).all()


def test_when_refills_run_out_the_dropped_groups_fill_the_batch():
    # Every refill is zero-spread too: the batch keeps its 3 groups (1 informative + 2 of the
    # dropped ones, advantage 0), so data-parallel ranks still train on equal batches.
    engine, scored = run(dynamic=True, refill_kind="easy")
    assert engine.calls == 1 + 3  # max_refills rounds, all useless
    assert scored.rollout.num_prompts == 3
    assert scored.rewards.tolist() == [1, 0, 1, 0] + [1] * 8
    assert (scored.advantages[:4] != 0).all() and (scored.advantages[4:] == 0).all()


def test_peak_memory_restarts_for_each_run_of_a_multirun():
    import numpy as np

    from r1.rollout.callback import peak_memory_gb, reset_peak_memory

    block = np.ones(300_000_000 // 8)  # 0.3 GB, touched
    during = peak_memory_gb()
    del block
    reset_peak_memory()
    assert peak_memory_gb() < during - 0.2


def test_process_rewards_give_per_token_advantages():
    from r1.algorithms.advantages import process_advantages

    seen = []

    def step_rewards(rollout, prompts):
        seen.append(list(prompts))
        rows = len(rollout.texts)
        return [[float(i % 2), 1.0] for i in range(rows)], [[0, 2]] * rows

    callback = RolloutCallback(
        FakeEngine(),
        CompositeReward({"accuracy": {}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=4,
        step_rewards=step_rewards,
    )
    batch = batch_of(["easy", "hard"])
    callback.on_train_batch_start(FakeTrainer(), None, batch, 0)
    scored = batch["scored"]
    expected = process_advantages([[float(i % 2), 1.0] for i in range(8)], [[0, 2]] * 8, 4, width=3)
    assert seen == [["easy", "hard"]]
    assert scored.advantages.shape == (8, 3) and torch.equal(scored.advantages, expected)
    assert scored.advantages[1, 0] > 0 > scored.advantages[0, 0]  # step 1 scored 1 vs 0
    assert scored.metrics["train/prm_step_score"] == 0.75
    assert scored.metrics["train/steps_per_completion"] == 2
