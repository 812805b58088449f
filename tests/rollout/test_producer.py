"""RolloutProducer with a fake engine: scoring, advantages, dynamic-sampling refills, the
sample table, per-step advantages."""

from __future__ import annotations

import math

import pytest
import torch
from rollout_fixtures import text_rollout

from r1.data.problem import Problem
from r1.rewards import CompositeReward, RewardSample
from r1.rollout.producer import RolloutProducer, sampled_consistency
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


LEVELS = {"easy": 1, "hard": 3}


def batch_of(kinds):
    problems = [Problem(question=k, answer="7", meta={"level": LEVELS[k]}) for k in kinds]
    return {
        "problems": problems,
        "prompts": kinds,
        "prompt_ids": [[1 if k == "easy" else 2] for k in kinds],
    }


class FakePromptSource:
    def __init__(self, kind):
        self.kind = kind

    def random_prompt_batch(self, k):
        return batch_of([self.kind] * k)


def run(dynamic, refill_kind="hard", **settings):
    engine = FakeEngine()
    producer = RolloutProducer(
        engine,
        CompositeReward({"accuracy": {}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=4,
        dynamic_sampling=dynamic,
        prompt_source=FakePromptSource(refill_kind) if dynamic else None,
        **settings,
    )
    return engine, producer.produce(batch_of(["easy", "hard", "easy"]), step=0)


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


def test_each_row_carries_its_outcome_and_level_through_the_refills():
    # for the behaviour metrics (lengths of right vs wrong completions, by level): the
    # producer's own scoring, row by row, in the order of the batch that is trained on
    _, scored = run(dynamic=True)
    assert scored.correct.tolist() == [1, 0, 1, 0] * 3
    assert scored.levels == [3] * 12
    _, scored = run(dynamic=True, refill_kind="easy")
    assert scored.correct.tolist() == [1, 0, 1, 0] + [1] * 8
    assert scored.levels == [3] * 4 + [1] * 8


def test_without_a_correctness_term_no_row_is_called_right_or_wrong():
    producer = RolloutProducer(
        FakeEngine(),
        CompositeReward({"format": {"fn": "format_strict"}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=2,
    )
    scored = producer.produce(batch_of(["hard"]), step=0)
    assert torch.isnan(scored.correct).all() and scored.levels == [3, 3]


def test_a_pending_batch_keeps_its_outcomes_through_a_checkpoint(tmp_path):
    from r1.rollout.asynchronous import PendingRollout

    _, scored = run(dynamic=False)
    torch.save({"pending": PendingRollout(scored, 4).state_dict()}, tmp_path / "ckpt")
    state = torch.load(tmp_path / "ckpt", weights_only=True)["pending"]
    restored = PendingRollout.from_state_dict(state).scored
    assert (
        restored.correct.tolist() == scored.correct.tolist() == [1, 1, 1, 1, 1, 0, 1, 0] + [1] * 4
    )
    assert restored.levels == [1] * 4 + [3] * 4 + [1] * 4


def test_sampled_reasoning_is_scored_against_each_problems_language():
    samples = [
        RewardSample("<think>The sum is 47. 所以答案是47</think>", meta={"language": "zh"}),  # 5/8
        RewardSample("<think>47 + 5 = 52</think>", meta={"language": "zh"}),  # no words
        RewardSample("<think>I add them.</think>", meta={"language": "en"}),  # 1.0
        RewardSample("<think>I add them.</think>"),  # no language: left out
    ]
    assert sampled_consistency(samples) == (0.625 + 1.0) / 2
    assert math.isnan(sampled_consistency(samples[1:2]))


def test_peak_memory_restarts_for_each_run_of_a_multirun():
    import numpy as np

    from r1.rollout.producer import peak_memory_gb, reset_peak_memory

    block = np.ones(300_000_000 // 8)  # 0.3 GB, touched
    during = peak_memory_gb()
    del block
    reset_peak_memory()
    assert peak_memory_gb() < during - 0.2


def test_process_rewards_give_per_token_advantages():
    from r1.algorithms.advantages import StepRewards, process_advantages

    seen = []

    def step_rewards(rollout, prompts):
        seen.append(list(prompts))
        rows = len(rollout.texts)
        return [[float(i % 2), 1.0] for i in range(rows)], [[0, 2]] * rows

    producer = RolloutProducer(
        FakeEngine(),
        CompositeReward({"accuracy": {}}, workers=0),
        SamplingParams(max_new_tokens=3),
        group_size=4,
        advantage="grpo_process",
        step_scorer=step_rewards,
    )
    scored = producer.produce(batch_of(["easy", "hard"]), step=0)
    steps = StepRewards([[float(i % 2), 1.0] for i in range(8)], [[0, 2]] * 8, width=3)
    expected = process_advantages(torch.zeros(8), 4, steps=steps)
    assert seen == [["easy", "hard"]]
    assert scored.advantages.shape == (8, 3) and torch.equal(scored.advantages, expected)
    assert scored.advantages[1, 0] > 0 > scored.advantages[0, 0]  # step 1 scored 1 vs 0
    assert scored.metrics["train/prm_step_score"] == 0.75
    assert scored.metrics["train/steps_per_completion"] == 2


def test_sample_rows_are_the_first_prompts_as_generated_on_recording_steps():
    _, scored = run(dynamic=False, sample_every=1, sample_prompts=1)
    assert [row["completion"] for row in scored.samples] == ["<answer>7</answer>"] * 4
    assert scored.samples[0]["reward/accuracy"] == 1.0 and scored.samples[0]["step"] == 0
    assert run(dynamic=False)[1].samples == []


def test_a_per_step_advantage_without_a_step_scorer_is_refused():
    with pytest.raises(ValueError, match="grpo_process"):
        run(dynamic=False, advantage="grpo_process")
    with pytest.raises(ValueError, match="prompt source"):
        RolloutProducer(FakeEngine(), None, SamplingParams(), 4, dynamic_sampling=True)
