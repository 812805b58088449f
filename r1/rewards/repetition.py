"""N-gram repetition penalty: loops ("= 85 = 85 = 85 ...") are a classic RL failure."""

from __future__ import annotations

import re

from r1.rewards.types import RewardSample

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def repetition_rate(text: str, n: int = 3) -> float | None:
    """1 - distinct n-grams / all n-grams over word and punctuation tokens; None if too short."""
    tokens = _TOKEN.findall(text.lower())
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return None
    return 1.0 - len(set(grams)) / len(grams)


def ngram_repetition(sample: RewardSample, n: int = 3, max_penalty: float = -1.0) -> float:
    """max_penalty * repetition rate: 0 for text with no repeated n-gram, max_penalty for
    text that is one n-gram repeated forever. Short texts get 0."""
    rate = repetition_rate(sample.completion, n)
    return 0.0 if rate is None else max_penalty * rate
