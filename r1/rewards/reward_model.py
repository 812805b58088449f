"""A learned reward: a sequence-classification model scoring (prompt, completion) pairs.

The paper uses one for helpfulness/harmlessness in the all-scenario RL stage, only late in
training (a windowed term), because learned rewards get hacked. The term loads no model: it
gets its `scorer` in its params, built by the layer that loads models
(conf/reward/reward_model.yaml: `params._target_: r1.models.reward_model.reward_model_params`;
in Python, `r1.models.reward_model.reward_model_scorer(...)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from r1.checks import ConfigError
from r1.rewards.types import RewardSample
from r1.text import THINK_OPEN, after_thinking, opens_think


class PairScorer(Protocol):
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """A scalar score per (prompt, completion) (r1.models.reward_model.RewardModelScorer)."""
        ...


SCORE_ON = ("full", "summary")


def reward_model(
    samples: Sequence[RewardSample], scorer: PairScorer, score_on: str = "full"
) -> list[float]:
    """The reward model's score of prompt + completion for each sample.

    score_on: "full" scores the whole response (the paper's harmlessness model: risks can sit
    in the reasoning too); "summary" only what a reader is shown, the text after </think>
    (the paper's helpfulness model, so the reasoning is left alone). For "summary", a prompt
    that opens the think block itself (data.template.response_prefix) is scored without it.
    """
    _check_score_on(score_on)
    if score_on == "full":
        prompts, completions = [s.prompt for s in samples], [s.completion for s in samples]
    else:
        prompts = [
            s.prompt.removesuffix(THINK_OPEN) if opens_think(s.prompt) else s.prompt
            for s in samples
        ]
        completions = [after_thinking(s.completion) for s in samples]
    return [float(score) for score in scorer.score(prompts, completions)]


def _check_score_on(score_on: str = "full", **_: object) -> None:
    if score_on not in SCORE_ON:
        raise ConfigError(f"score_on={score_on!r}; valid: {', '.join(SCORE_ON)}")


reward_model.check_params = _check_score_on
