"""Quality filters of DeepSeek-R1's rejection sampling (stage 3 of the pipeline).

After reasoning RL converges, R1 samples many completions per prompt from the checkpoint and
keeps, for the next round of SFT, only the correct ones whose chain of thought is readable:
"we have filtered out chain-of-thought with mixed languages, long paragraphs, and code
blocks". Each filter below is a small pure function of one candidate; `failed_filters`
evaluates all of them (no short-circuit, so per-filter rejection statistics are complete).

"The reasoning" is the chain of thought: the `<think>` block as the language reward reads it
(`think_text`: also an unclosed block, or a `</think>` without `<think>` when the chat
template opened the block in the prompt), else the whole text before the first `<answer>`.

Filters, in `FILTER_NAMES` order, and what their thresholds mean:

- correct: strict correctness of `score_completion`: the completion stopped (EOS within the
  budget) and the final answer read from `answer_source` is right. `correct=False` turns it off.
- language: the `lang_consistency` reward, the share of target-language units (words; one
  per CJK character) in the `<think>` block, must be at least `min_language_consistency`.
  The target is `language`, or with "auto" the problem's `meta["language"]` (set by the
  task generators), else the language of the question in the prompt. A completion without a
  think block scores what the reward gives it (`missing_think`, 0.0), so it fails any
  threshold above 0. When the reward has no signal (None: the thought holds only numbers and
  math, or "auto" finds no target language) the candidate passes: there is no language to mix.
  (Failing those instead dropped every English arithmetic trace, "84 + 14 = 98", and kept
  only the Chinese ones, whose "先算 ... 再算 ..." carries words: a skewed SFT set.)
- paragraphs: no paragraph of the reasoning (text between blank lines) is longer than
  `max_paragraph_chars` characters: a wall of text is hard to read.
- code: with `no_code`, the reasoning holds no fenced code block (```) and no `<code>` tag.
  Code in the answer part (after `</think>`) is allowed: that is where code answers go.
- repetition: the 3-gram repetition rate of the whole completion (1 - distinct/all word and
  punctuation 3-grams, the `ngram_repetition` reward's measure; 0 = no repeated 3-gram,
  near 1 = one phrase looped) is at most `max_repetition`. Too-short texts pass.

A threshold set to None turns its filter off. Model output is untrusted: no function here
raises on any completion text. Bad data does raise: an unknown `meta["language"]` code is
the language reward's ValueError, as it is in training.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from r1.checks import ConfigError, check_choice, check_float, check_int
from r1.data.problem import Problem
from r1.eval.heldout import score_completion
from r1.rewards.accuracy import ANSWER_SOURCES
from r1.rewards.language import lang_consistency, normalize_language, think_text
from r1.rewards.repetition import repetition_rate
from r1.rewards.types import RewardSample
from r1.rollout.types import Generation
from r1.text import ANSWER_OPEN

FILTER_NAMES = ("correct", "language", "paragraphs", "code", "repetition")
REPETITION_NGRAM = 3  # as the ngram_repetition reward's default
_KEY = "filters"

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")  # a line holding only whitespace, or none
_CODE = re.compile(r"```|<code\b[^>]*>", re.I)


@dataclass(frozen=True)
class Candidate:
    problem: Problem
    prompt: str  # the rendered prompt the completion was sampled from
    completion: Generation


@dataclass(frozen=True)
class FilterSettings:
    correct: bool = True  # strict: stopped, and the answer (answer_source) right
    answer_source: str = "answer_tag"  # as in score_completion
    min_language_consistency: float | None = 0.9  # share of target-language units; None = off
    language: str = "auto"  # target language, as the lang_consistency reward takes it
    max_paragraph_chars: int | None = 800  # longest paragraph of the reasoning; None = off
    no_code: bool = True  # no fenced code block or <code> in the reasoning
    max_repetition: float | None = 0.3  # 3-gram repetition rate of the completion; None = off

    def __post_init__(self) -> None:
        _check_bool(f"{_KEY}.correct", self.correct)
        _check_bool(f"{_KEY}.no_code", self.no_code)
        check_choice(f"{_KEY}.answer_source", self.answer_source, ANSWER_SOURCES)
        if self.min_language_consistency is not None:
            check_float(f"{_KEY}.min_language_consistency", self.min_language_consistency, 0.0, 1.0)
        if not isinstance(self.language, str):
            raise ConfigError(f"{_KEY}.language={self.language!r} must be a language code")
        if self.language != "auto":
            try:
                normalize_language(self.language)
            except ValueError as e:
                raise ConfigError(f"{_KEY}.language: {e}, or 'auto'") from None
        if self.max_paragraph_chars is not None:
            check_int(f"{_KEY}.max_paragraph_chars", self.max_paragraph_chars, minimum=1)
        if self.max_repetition is not None:
            check_float(f"{_KEY}.max_repetition", self.max_repetition, 0.0, 1.0)


def _check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} ({type(value).__name__}) must be true or false")


def reasoning(text: str) -> str:
    """The chain of thought: the <think> block, else everything before the first <answer>."""
    thought = think_text(text)
    if thought is not None:
        return thought
    return text.split(ANSWER_OPEN, 1)[0].strip()


def is_correct(candidate: Candidate, answer_source: str = "answer_tag") -> bool:
    return score_completion(candidate.problem, candidate.completion, answer_source).correct


def language_ok(candidate: Candidate, minimum: float, language: str = "auto") -> bool:
    problem = candidate.problem
    sample = RewardSample(
        completion=candidate.completion.text,
        gold=problem.answer,
        task=problem.task,
        meta=problem.meta,
        prompt=candidate.prompt,
    )
    share = lang_consistency(sample, language=language)
    return share is None or share >= minimum


def longest_paragraph(text: str) -> int:
    """Characters in the longest blank-line-separated paragraph of `text`, stripped."""
    return max((len(p.strip()) for p in _BLANK_LINE.split(text)), default=0)


def has_code(text: str) -> bool:
    return _CODE.search(text) is not None


def repetition_ok(text: str, maximum: float) -> bool:
    rate = repetition_rate(text, REPETITION_NGRAM)
    return rate is None or rate <= maximum


def failed_filters(candidate: Candidate, settings: FilterSettings) -> list[str]:
    """Names (from FILTER_NAMES, in that order) of every filter the candidate fails; [] = keep.
    Every filter is evaluated (not short-circuited) so per-filter statistics are complete."""
    text = candidate.completion.text
    thought = reasoning(text)
    failed = {
        "correct": settings.correct and not is_correct(candidate, settings.answer_source),
        "language": settings.min_language_consistency is not None
        and not language_ok(candidate, settings.min_language_consistency, settings.language),
        "paragraphs": settings.max_paragraph_chars is not None
        and longest_paragraph(thought) > settings.max_paragraph_chars,
        "code": settings.no_code and has_code(thought),
        "repetition": settings.max_repetition is not None
        and not repetition_ok(text, settings.max_repetition),
    }
    return [name for name in FILTER_NAMES if failed[name]]


def normalized(text: str) -> str:
    """whitespace-collapsed, stripped, lower-cased text for de-duplication"""
    return " ".join(text.split()).lower()


def duplicates(candidates: Sequence[Candidate]) -> list[bool]:
    """True for each candidate whose (prompt, normalized completion text) already appeared
    earlier in the list."""
    seen: set[tuple[str, str]] = set()
    flags = []
    for candidate in candidates:
        key = (candidate.prompt, normalized(candidate.completion.text))
        flags.append(key in seen)
        seen.add(key)
    return flags
