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

from r1.rewards.types import RewardSample


class PairScorer(Protocol):
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """A scalar score per (prompt, completion) (r1.models.reward_model.RewardModelScorer)."""
        ...


def reward_model(samples: Sequence[RewardSample], scorer: PairScorer) -> list[float]:
    """The reward model's score of prompt + completion for each sample."""
    scores = scorer.score([s.prompt for s in samples], [s.completion for s in samples])
    return [float(score) for score in scores]
