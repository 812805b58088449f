"""A process reward model as a reward term: the PRM's step scores aggregated to one number.

DeepSeek-R1 (section 4.2) tried a PRM and dropped it: a model-based reward for steps invites
reward hacking. `reward=prm` reproduces that attempt (the PRM of a `stage=prm` run replaces
the outcome reward); `reward=r1_zero_prm_watched` keeps the outcome reward and only measures
the PRM's score, so the two arms can be compared on held-out accuracy and PRM score alike.
Imports torch and the PRM lazily, like the reward-model term.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from r1.rewards.types import RewardSample


@lru_cache(maxsize=2)
def _scorer(
    name: str | None, path: str | None, dtype: str, seed: int, batch_size: int, max_length: int
):
    from r1.models.loading import load_prm
    from r1.search.prm import PRMScorer

    model, tokenizer = load_prm(name=name, path=path, dtype=dtype, seed=seed)
    return PRMScorer(model, tokenizer, batch_size=batch_size, max_length=max_length)


def prm_score(
    samples: Sequence[RewardSample],
    path: str | None = None,
    name: str | None = None,
    aggregate: str = "min",
    delimiter: str = "auto",
    dtype: str = "float32",
    batch_size: int = 16,
    max_length: int = 1024,
    seed: int = 0,
) -> list[float | None]:
    """The PRM's aggregate step score in [0, 1] of each completion (r1.search.prm: "min",
    "last", "product" or "mean" over the steps of `completion_steps`); None for a completion
    with no step (no signal)."""
    from r1.search.prm import aggregate_step_scores

    scorer = _scorer(name, path, dtype, seed, batch_size, max_length)
    step_scores = scorer.score_completions(
        [s.prompt for s in samples], [s.completion for s in samples], delimiter
    )
    return [aggregate_step_scores(scores, aggregate) for scores in step_scores]
