"""The completion format and defensive parsing of model text: plain string functions.

A completion is "<think> reasoning </think> <answer> answer </answer>", or in the readable
layout of DeepSeek-R1's cold start "<think> reasoning </think> <summary> summary </summary>
<answer> answer </answer>"; its reasoning is a sequence of steps, one per line or each opened by a "Step k:" marker. Every layer reads this
format: data (gold answers in \\boxed{}), rewards and eval (answers, format), the process
reward model (r1.models.prm: the steps it scores) and search (the steps it builds). So it
lives here, below them all, importing nothing but r1.checks.

Model output is untrusted: every parsing function accepts any string and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from r1.checks import ConfigError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SUMMARY_OPEN, SUMMARY_CLOSE = "<summary>", "</summary>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_STRICT = re.compile(
    r"^\s*<think>(?P<think>.*?)</think>\s*(?:<summary>(?P<summary>.*?)</summary>\s*)?"
    r"<answer>(?P<answer>.*?)</answer>\s*$",
    re.S,
)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class ParsedCompletion:
    think: str | None  # text inside the single <think> block (strict format only)
    answer: str | None  # text inside the last <answer> block, stripped
    strict: bool  # one think block, optionally one summary block, one answer block, nothing else
    summary: str | None = None  # text inside the <summary> block (strict format only)


def parse_completion(text: str) -> ParsedCompletion:
    strict_match = _STRICT.match(text)
    strict = (
        bool(strict_match)
        and all(
            text.count(tag) == 1 for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
        )
        and text.count(SUMMARY_OPEN) == text.count(SUMMARY_CLOSE) <= 1
    )
    answers = _ANSWER.findall(text)
    answer = answers[-1].strip() if answers else None
    think = strict_match.group("think").strip() if strict else None
    summary = strict_match.group("summary") if strict else None
    return ParsedCompletion(
        think=think,
        answer=answer,
        strict=strict,
        summary=None if summary is None else summary.strip(),
    )


def after_thinking(text: str) -> str:
    """What a reader is shown of a completion: the text after its last </think> (the summary
    and the answer block), stripped; a completion without a think block (a direct answer to a
    general request) is shown whole. What a reward model with `score_on: summary` scores."""
    end = text.rfind(THINK_CLOSE)
    return (text if end < 0 else text[end + len(THINK_CLOSE) :]).strip()


def opens_think(prompt: str) -> bool:
    """Whether `prompt` ends with the think tag itself: a response prefilled with "<think>"
    (data.template.response_prefix), which the model's completion continues. Prompts that
    search builds end inside a trace (after "<think>\n" and steps) and are not counted."""
    return prompt.endswith(THINK_OPEN)


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


# -- reasoning steps ---------------------------------------------------------------------------

STEP_SEPARATOR = "\n"  # how steps are joined back into a prefix / trace
THINK_START = THINK_OPEN + STEP_SEPARATOR  # what a completion opens with, before step 1

# "Step 1:", "step 2.", "STEP 3)", "Step 4：" and "步骤1" / "步骤 2：". The English marker needs
# the punctuation after the number so "in step 2 we" mid-sentence does not start a step.
_STEP_MARKER = re.compile(r"\bstep\s*\d+\s*[:：.)]|步骤\s*\d+", re.IGNORECASE)


def solution_body(text: str) -> str:
    """The reasoning to cut into steps: the content of the <think> block when there is one
    (up to </think>, or to the end when the block was never closed; the text before a lone
    </think> when the template put <think> in the prompt), else the whole text."""
    start = text.find(THINK_OPEN)
    if start >= 0:
        body = text[start + len(THINK_OPEN) :]
        end = body.find(THINK_CLOSE)
        return body if end < 0 else body[:end]
    end = text.find(THINK_CLOSE)
    return text if end < 0 else text[:end]


def _check_delimiter(delimiter: str) -> None:
    if not isinstance(delimiter, str) or not delimiter:
        raise ConfigError(f"step delimiter must be 'auto' or a non-empty string, got {delimiter!r}")


def _cut(body: str, delimiter: str) -> list[str]:
    if delimiter == "auto":
        cuts = [m.start() for m in _STEP_MARKER.finditer(body)]
        if cuts:
            bounds = [0, *cuts, len(body)]
            pieces = [body[a:b] for a, b in zip(bounds, bounds[1:])]
        else:
            pieces = body.splitlines()
    else:
        pieces = body.split(delimiter)
    return [piece.strip() for piece in pieces if piece.strip()]


def split_steps(text: str, delimiter: str = "auto") -> list[str]:
    """Cut a solution into steps, stripped, with empty ones dropped.

    delimiter "auto": when the text has "Step 1:" / "步骤1" style markers (case-insensitive),
    cut before each marker (the marker stays in its step; any text before the first marker
    is a step of its own); otherwise every non-empty line is a step. Any other string: cut
    on it. Never raises on malformed text (a non-string gives []); an empty delimiter is a
    caller error and raises ValueError.
    """
    _check_delimiter(delimiter)
    if not isinstance(text, str):
        return []
    body = solution_body(text)
    return _cut(body, delimiter)


def completion_steps(text: str, delimiter: str = "auto") -> list[str]:
    """The steps of a whole completion as a PRM scores it and MCTS builds it: the text after
    the opening <think> (when it starts with one) cut like `split_steps`, the closing tags and
    the answer block included, so the last step carries the final answer and its label is the
    outcome. Joined back by `steps_text`, the steps of a line-per-step completion rebuild it:
    "<think>\\n12 + 88 = 90\\n</think>\\n<answer>100</answer>" ->
    ["12 + 88 = 90", "</think>", "<answer>100</answer>"]."""
    _check_delimiter(delimiter)
    if not isinstance(text, str):
        return []
    body = text.lstrip()
    if body.startswith(THINK_OPEN):
        body = body[len(THINK_OPEN) :]
    return _cut(body, delimiter)


def steps_text(steps: Sequence[str]) -> str:
    """The completion text that holds `steps`, each ended by the separator, so the policy
    starts the next step afresh: ["a", "b"] -> "<think>\\na\\nb\\n"."""
    return THINK_START + "".join(step + STEP_SEPARATOR for step in steps)


# -- answers to general requests: the rules a reward model learns -----------------------------

_SENTENCE_END = re.compile(r"[.!?。！？]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
GENERAL_RULES = ("empty", "language", "length", "repetition")


def count_sentences(text: str) -> int:
    """Sentences in `text`: runs of . ! ? (or 。！？), plus an unterminated tail."""
    text = text.strip()
    if not text:
        return 0
    ends = len(_SENTENCE_END.findall(text))
    return ends + (0 if _SENTENCE_END.fullmatch(text[-1]) else 1)


def has_language_characters(text: str, language: str) -> bool:
    """Whether `text` holds any character of `language`'s script (CJK for zh, Latin for en)."""
    return bool((_CJK if language == "zh" else _LATIN).search(text))


def repeated_pieces(text: str) -> list[str]:
    """The sentences or comma-separated phrases of `text` that occur in it more than once."""
    pieces = {p.strip() for p in re.split(r"[.!?,:。！？，：]+", text) if len(p.strip()) > 1}
    return sorted(p for p in pieces if text.count(p) > 1)


def broken_rules(answer: str, language: str, sentences: int | None) -> list[str]:
    """The rules of GENERAL_RULES an answer to a general request breaks: empty; not in the
    request's language (no character of its script, or any of the other's: en | zh); not the
    number of sentences asked (None: not checked); a sentence or phrase repeated."""
    if not answer.strip():
        return ["empty"]
    other = "en" if language == "zh" else "zh"
    broken = []
    if not has_language_characters(answer, language) or has_language_characters(answer, other):
        broken.append("language")
    if sentences is not None and count_sentences(answer) != sentences:
        broken.append("length")
    if repeated_pieces(answer):
        broken.append("repetition")
    return broken
