"""The records rewards read and write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RewardError(RuntimeError):
    """Scoring one completion failed for a reason outside the completion (the sandbox could
    not start, a grader's own failure). A batched term returns it in that sample's place;
    the registry gives that sample the term's fallback and counts the error, and the other
    samples of the batch keep their scores."""


@dataclass(frozen=True)
class RewardSample:
    """One completion to score, with what the rule needs to judge it.

    A reward term is a plain function `term(sample: RewardSample, **params) -> float | None`:
    None means "no signal for this sample" (e.g. the gold answer is unparsable). It must not
    raise on malformed model output (the registry counts and contains exceptions anyway).
    """

    completion: str  # decoded completion, special tokens removed
    gold: str = ""  # gold final answer (task dependent)
    task: str = ""  # "arithmetic" | "countdown" | "code" | dataset name
    meta: Mapping[str, Any] = field(
        default_factory=dict, hash=False
    )  # task data: numbers/target, tests, language
    prompt: str = ""  # the rendered prompt (some rewards read the question's language)
    num_tokens: int = 0  # completion length in tokens (EOS included)
    max_tokens: int | None = None  # the generation budget, for length rewards
    truncated: bool = False  # hit the budget without EOS
