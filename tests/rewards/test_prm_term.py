"""The `prm` reward term, its aggregations and the two reward configs of the PRM ablation."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from r1.checks import ConfigError
from r1.models.prm import PRMScorer, load_prm, prm_reward_params
from r1.rewards import CompositeReward
from r1.rewards.prm import aggregate_step_scores
from r1.rewards.types import RewardSample
from r1.text import completion_steps
from tests.support.compose import compose_config

RIGHT = "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>"
WRONG = "<think>\n12 + 88 = 90\n90 - 69 = 21\n</think>\n<answer>21</answer>"


def samples() -> list[RewardSample]:
    return [
        RewardSample(completion=text, gold="31", task="arithmetic", prompt="What is 12 + 88 - 69?")
        for text in (RIGHT, WRONG, "   ")
    ]


@pytest.mark.parametrize(
    "how, expected",
    [("min", 0.2), ("last", 0.5), ("product", 0.9 * 0.2 * 0.5), ("mean", (0.9 + 0.2 + 0.5) / 3)],
)
def test_aggregations_by_hand(how, expected) -> None:
    assert aggregate_step_scores([0.9, 0.2, 0.5], how) == pytest.approx(expected)


def test_aggregation_without_steps_is_no_signal_and_bad_names_are_named() -> None:
    assert aggregate_step_scores([], "min") is None
    with pytest.raises(ValueError, match="'median'.*min, last, product, mean"):
        aggregate_step_scores([0.5], "median")


@pytest.mark.parametrize("how", ["min", "last", "product"])
def test_the_term_is_the_aggregated_step_score(how) -> None:
    reward = CompositeReward(
        {"prm": {"fn": "prm", "params": prm_reward_params(name="tiny", aggregate=how)}}, workers=0
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
        reward = instantiate(cfg.reward, workers=0)  # the PRM comes from the config's wiring
        out = reward.score(samples()[:2])
        assert set(out.metrics()) >= {"train/reward/prm", "train/reward/accuracy"}
        format_values = out.terms["format"]
        for i in range(2):
            expected = out.terms[rewarded][i] + format_values[i]
            assert out.total[i] == pytest.approx(expected), (name, i)


def test_a_prm_term_without_its_scorer_is_refused_when_the_reward_is_built() -> None:
    """The reward package loads no model: a term given only where the PRM is fails at once,
    saying where its scorer comes from, instead of scoring every sample as an error."""
    with pytest.raises(ConfigError, match="'prm'.*scorer.*params._target_"):
        CompositeReward({"prm": {"fn": "prm", "params": {"name": "tiny"}}}, workers=0)
