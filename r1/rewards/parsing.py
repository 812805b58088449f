"""Defensive parsing of model output: think/answer blocks, final numbers.

Model output is untrusted: every function here accepts any string and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_STRICT = re.compile(
    r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.S
)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class ParsedCompletion:
    think: str | None  # text inside the single <think> block (strict format only)
    answer: str | None  # text inside the last <answer> block, stripped
    strict: bool  # exactly one think block then one answer block, nothing else


def parse_completion(text: str) -> ParsedCompletion:
    strict_match = _STRICT.match(text)
    strict = bool(strict_match) and all(
        text.count(tag) == 1 for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    )
    answers = _ANSWER.findall(text)
    answer = answers[-1].strip() if answers else None
    think = strict_match.group("think").strip() if strict else None
    return ParsedCompletion(think=think, answer=answer, strict=strict)


def last_number(text: str) -> str | None:
    """The last number written in `text` ("1,234" -> "1234"), or None."""
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (nested braces handled), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None
