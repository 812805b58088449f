"""Format rewards: the `<think>...</think><answer>...</answer>` layout the template asks for."""

from __future__ import annotations

from r1.rewards.types import RewardSample
from r1.text import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, parse_completion


def format_strict(sample: RewardSample, require_stop: bool = True) -> float:
    """1.0 for exactly one think block then one answer block and nothing after, else 0.0.
    A truncated completion fails when require_stop (its format was never finished)."""
    if require_stop and sample.truncated:
        return 0.0
    return float(parse_completion(sample.completion).strict)


def format_soft(sample: RewardSample) -> float:
    """Partial credit, 0.25 for each: one <think>...</think> pair; one <answer>...</answer>
    pair; the think block closes before the answer opens; nothing but whitespace after
    </answer>. Gives a gradient towards the strict format early in training."""
    text = sample.completion
    counts = {tag: text.count(tag) for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)}
    one_think = (
        counts[THINK_OPEN] == 1
        and counts[THINK_CLOSE] == 1
        and text.find(THINK_OPEN) < text.find(THINK_CLOSE)
    )
    one_answer = (
        counts[ANSWER_OPEN] == 1
        and counts[ANSWER_CLOSE] == 1
        and text.find(ANSWER_OPEN) < text.find(ANSWER_CLOSE)
    )
    ordered = one_think and one_answer and text.find(THINK_CLOSE) < text.find(ANSWER_OPEN)
    clean_end = one_answer and not text[text.rfind(ANSWER_CLOSE) + len(ANSWER_CLOSE) :].strip()
    return 0.25 * (one_think + one_answer + ordered + clean_end)
