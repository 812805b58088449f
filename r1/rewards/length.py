"""Length shaping: cosine-scaled length reward and DAPO's soft overlong punishment."""

from __future__ import annotations

import math

from r1.rewards.types import RewardSample


def _budget(sample: RewardSample, max_tokens: int | None) -> int | None:
    budget = max_tokens if max_tokens is not None else sample.max_tokens
    return budget if budget and budget > 0 else None


def cosine_interpolate(length: int, max_length: int, at_zero: float, at_max: float) -> float:
    """at_zero at length 0, at_max at max_length, along half a cosine period."""
    progress = min(max(length / max_length, 0.0), 1.0)
    return at_max + 0.5 * (at_zero - at_max) * (1.0 + math.cos(math.pi * progress))


def cosine_length(
    sample: RewardSample,
    max_tokens: int | None = None,
    correct_short: float = 2.0,
    correct_long: float = 1.0,
    wrong_short: float = -10.0,
    wrong_long: float = 0.0,
    exceed: float = -10.0,
    source: str = "answer_tag",
) -> float | None:
    """Cosine length-scaled correctness reward (Yeo et al., 2025, "Demystifying Long
    Chain-of-Thought Reasoning in LLMs"): right answers earn more when short, wrong answers
    are punished less when long (the model is encouraged to keep thinking when unsure), and a
    completion that runs out of budget gets `exceed`. Replaces `accuracy` in a composite."""
    from r1.rewards.accuracy import accuracy

    budget = _budget(sample, max_tokens)
    if budget is None:
        return None
    if sample.truncated or sample.num_tokens > budget:
        return exceed
    correct = accuracy(sample, source=source)
    if correct is None:
        return None
    if correct:
        return cosine_interpolate(sample.num_tokens, budget, correct_short, correct_long)
    return cosine_interpolate(sample.num_tokens, budget, wrong_short, wrong_long)


def overlong_penalty(
    sample: RewardSample, max_tokens: int | None = None, buffer: int = 64
) -> float | None:
    """DAPO's soft overlong punishment: 0 up to max - buffer tokens, then falling linearly to
    -1 at the budget, -1 beyond it (and for truncated completions)."""
    budget = _budget(sample, max_tokens)
    if budget is None:
        return None
    length = budget if sample.truncated else sample.num_tokens
    soft_start = budget - buffer
    if length <= soft_start:
        return 0.0
    if length <= budget:
        return (soft_start - length) / buffer
    return -1.0
