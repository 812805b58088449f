"""A process reward model as a reward term: the PRM's step scores aggregated to one number.

DeepSeek-R1 (section 4.2) tried a PRM and dropped it: a model-based reward for steps invites
reward hacking. `reward=prm` reproduces that attempt (the PRM of a `stage=prm` run replaces
the outcome reward); `reward=r1_zero_prm_watched` keeps the outcome reward and only measures
the PRM's score, so the two arms can be compared on held-out accuracy and PRM score alike.

The term loads no model: it gets its `scorer` in its params, built by the layer that loads
models (conf/reward/prm.yaml: `params._target_: r1.models.prm.prm_reward_params`; in Python,
`r1.models.prm.prm_scorer(...)` or any object with `StepScorer.score`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from r1.checks import ConfigError
from r1.rewards.types import RewardSample
from r1.text import completion_steps

AGGREGATIONS = ("min", "last", "product", "mean")


class StepScorer(Protocol):
    def score(
        self, prompts: Sequence[str], step_lists: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """One score in [0, 1] per step of each (prompt, steps) pair (r1.models.prm.PRMScorer);
        trailing steps may get none (past the PRM's length limit)."""
        ...


def _check_aggregation(how: str) -> None:
    if how not in AGGREGATIONS:
        raise ConfigError(f"unknown PRM aggregation {how!r}; valid: {', '.join(AGGREGATIONS)}")


def aggregate_step_scores(scores: Sequence[float], how: str = "min") -> float | None:
    """One number for a solution from its step scores in [0, 1]: "min" (the weakest step; a
    solution is as good as its worst step), "last" (the final step, which carries the answer),
    "product" (every step right), "mean". No steps: None (no signal)."""
    _check_aggregation(how)
    if not scores:
        return None
    if how == "min":
        return float(min(scores))
    if how == "last":
        return float(scores[-1])
    if how == "product":
        return float(math.prod(scores))
    return float(sum(scores) / len(scores))


def prm_score(
    samples: Sequence[RewardSample],
    scorer: StepScorer,
    aggregate: str = "min",
    delimiter: str = "auto",
) -> list[float | None]:
    """The PRM's aggregate step score in [0, 1] of each completion ("min", "last", "product"
    or "mean" over the steps of `r1.text.completion_steps`); None for a completion with no
    step (no signal)."""
    _check_aggregation(aggregate)  # before the PRM runs
    steps = [completion_steps(s.completion, delimiter) for s in samples]
    step_scores = scorer.score([s.prompt for s in samples], steps)
    return [aggregate_step_scores(scores, aggregate) for scores in step_scores]
