"""The `prm` reward term and the two reward configs of the PRM ablation."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from r1.models.loading import load_prm
from r1.rewards import CompositeReward
from r1.rewards.types import RewardSample
from r1.search.prm import PRMScorer, aggregate_step_scores
from r1.text import completion_steps
from tests.support.compose import compose_config

RIGHT = "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>"
WRONG = "<think>\n12 + 88 = 90\n90 - 69 = 21\n</think>\n<answer>21</answer>"


def samples() -> list[RewardSample]:
    return [
        RewardSample(completion=text, gold="31", task="arithmetic", prompt="What is 12 + 88 - 69?")
        for text in (RIGHT, WRONG, "   ")
    ]


@pytest.mark.parametrize("how", ["min", "last", "product"])
def test_the_term_is_the_aggregated_step_score(how) -> None:
    reward = CompositeReward(
        {"prm": {"fn": "prm", "params": {"name": "tiny", "aggregate": how}}}, workers=0
    )
    out = reward.score(samples())
    model, tokenizer = load_prm(name="tiny")
    scorer = PRMScorer(model, tokenizer)
    for sample, value in zip(samples()[:2], out.terms["prm"][:2]):
        steps = scorer.score([sample.prompt], [completion_steps(sample.completion)])[0]
        assert len(steps) == 4
        assert value == pytest.approx(aggregate_step_scores(steps, how), abs=1e-6)
    assert out.terms["prm"][2] is None  # no step: no signal
    assert out.total[2] is None


def test_the_ablation_arms_reward_one_signal_and_measure_the_other(tmp_path) -> None:
    for name, rewarded, watched in (
        ("prm", "prm", "accuracy"),
        ("r1_zero_prm_watched", "accuracy", "prm"),
    ):
        cfg = compose_config(
            [
                "stage=grpo",
                f"reward={name}",
                "reward.terms.prm.params.path=null",
                "reward.terms.prm.params.name=tiny",
            ],
            tmp_path,
        )
        terms = cfg.reward.terms
        assert terms[rewarded].weight == 1.0 and terms[watched].weight == 0.0, name
        reward = CompositeReward(OmegaConf.to_container(terms), workers=0)
        out = reward.score(samples()[:2])
        assert set(out.metrics()) >= {"train/reward/prm", "train/reward/accuracy"}
        format_values = out.terms["format"]
        for i in range(2):
            expected = out.terms[rewarded][i] + format_values[i]
            assert out.total[i] == pytest.approx(expected), (name, i)
