"""Is a final answer right? Exact comparison for plain numbers, math-verify for the rest, a
task checker for countdown, tests for code.

Math answers and golds arrive in two forms: bare LaTeX (the contents of an <answer> block,
or of the gold's \\boxed{}, which is what `data=math` stores) or prose with delimited math
("the answer is $\\frac{1}{2}$"). math-verify's LaTeX extraction reads only delimited or
boxed math, and its expression extraction picks a stray number out of anything else
(`2\\sqrt{2}` parses as 2). So a bare text is given back the \\boxed{} it came from and
read with math-verify's LaTeX extraction (boxed first) and its normalisation (\\dfrac,
\\left(, units, ...); a text with delimiters is read with the LaTeX and the expression
extraction, as math-verify reads a model's prose. Two edits of our own, both as MATH's
reference normalisation does them: percent signs are dropped (math-verify cannot read `50\\%`
inside delimiters), and so is the final full stop of a bare answer.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1.checks import ConfigError
from r1.rewards.countdown import check_countdown
from r1.rewards.types import RewardSample
from r1.text import last_boxed, last_number, parse_completion

_PLAIN_NUMBER = re.compile(r"^\s*\$?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)(\.\d+)?\s*\$?\s*$")
_PLAIN_FRACTION = re.compile(r"^\s*(-?\d+)\s*/\s*(\d+)\s*$")
MAX_ANSWER_CHARS = 1000  # longer "answers" are wrong: nobody's final answer is a page long
# An exponent tower (10**10**10, 9^{9^{9}}) is nobody's final answer, and evaluating one can
# hang sympy in C code for minutes: such answers are wrong without asking math-verify.
_TOWER = re.compile(r"(\*\*|\^)\s*[({]?\s*-?[\w.]+\s*[)}]?\s*(\*\*|\^)|\^\s*\{[^{}]*\^")
MATH_VERIFY_TIMEOUT_S = 2
ANSWER_SOURCES = ("answer_tag", "boxed", "last_number")


def plain_number(text: str) -> Fraction | None:
    """ "1,234", "-5", "0.5", "1/2" as an exact Fraction; None for anything else."""
    match = _PLAIN_NUMBER.match(text)
    if match:
        return Fraction(match.group(1).replace(",", "") + (match.group(2) or ""))
    match = _PLAIN_FRACTION.match(text)
    if match and int(match.group(2)) != 0:
        return Fraction(int(match.group(1)), int(match.group(2)))
    return None


def math_equal(answer: str, gold: str) -> bool:
    """Equivalence of a final answer and the gold one (0.5 == 1/2 == \\frac{1}{2}, 68 == 68.0).

    Plain numbers compare exactly in microseconds; anything else goes to math-verify. Never
    raises. math-verify's own SIGALRM time limit only works on the main thread, and no signal
    stops C-level bignum work: call this through the reward workers for a hard limit.
    """
    if len(answer) > MAX_ANSWER_CHARS or _TOWER.search(answer):
        return False
    exact_answer, exact_gold = plain_number(answer), plain_number(gold)
    if exact_answer is not None and exact_gold is not None:
        return exact_answer == exact_gold
    from math_verify import verify

    timeout = _timeout()
    try:
        gold_parsed, answer_parsed = parse_math(gold), parse_math(answer)
        if not gold_parsed or not answer_parsed:
            return False
        return bool(verify(gold_parsed, answer_parsed, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - a malformed answer is a wrong answer, never a crash
        return False


_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed\b")
_PERCENT = re.compile(r"\\?%")


def _without_timeout_warning(record: logging.LogRecord) -> bool:
    # math-verify warns once per process when its own limit is off; r1 turns it off on purpose
    # (warm-up, threads, reward workers) and bounds calls itself (r1/rewards/workers.py).
    return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_without_timeout_warning)


def _timeout() -> int | None:
    # math-verify's time limits use SIGALRM, which works on the main thread only.
    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.cache
def warm_up_math_verify() -> None:
    """Import math-verify and build its LaTeX parser once, outside any time limit: the first
    parse in a process takes about 0.5 s (more on a loaded machine), and a time-out there
    would judge the same answer differently in a fresh process (a resumed run) than in a
    warm one."""
    from math_verify import LatexExtractionConfig, parse

    parse(
        "\\boxed{\\frac{1}{2}}", extraction_config=[LatexExtractionConfig()], parsing_timeout=None
    )


def parse_math(text: str) -> list[Any]:
    """math-verify's parse of an answer or gold (see the module doc); [] when nothing
    mathematical could be read from it."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    warm_up_math_verify()
    latex = LatexExtractionConfig(boxed_match_priority=0)
    text = _PERCENT.sub("", text).strip()
    if _DELIMITED.search(text):
        configs = [latex, ExprExtractionConfig()]
    else:
        text, configs = "\\boxed{" + text.removesuffix(".") + "}", [latex]
    parsed = parse(text, extraction_config=configs, parsing_timeout=_timeout())
    # A lone string means math-verify found the text but could not read it as math.
    return parsed if any(not isinstance(p, str) for p in parsed) else []


def gold_is_usable(gold: str, task: str = "") -> bool:
    if task in ("countdown", "code"):  # judged by a checker / by tests, not by a gold answer
        return True
    if not gold.strip():
        return False
    if plain_number(gold) is not None:
        return True
    try:
        return bool(parse_math(gold))
    except Exception:  # noqa: BLE001
        return False


def answer_is_correct(
    answer: str | None, gold: str, task: str = "", meta: Mapping[str, Any] | None = None
) -> bool:
    """Check an extracted final answer against the gold one, with the task's own checker."""
    if answer is None or not answer.strip():
        return False
    meta = meta or {}
    if task == "countdown":
        return check_countdown(answer, meta.get("numbers", ()), meta.get("target", 0))
    if task == "code":
        from r1.rewards.code import passes_all_tests

        return passes_all_tests(answer, meta.get("tests", ()))
    return math_equal(answer, gold)


def extract_answer(text: str, source: str = "answer_tag") -> str | None:
    if source == "answer_tag":
        return parse_completion(text).answer
    if source == "boxed":
        return last_boxed(text)
    if source == "last_number":
        return last_number(text)
    raise ConfigError(f"unknown answer source {source!r}; valid: {', '.join(ANSWER_SOURCES)}")


def accuracy(
    sample: RewardSample, source: str = "answer_tag", require_stop: bool = False
) -> float | None:
    """1.0 if the final answer is right, else 0.0; None when the gold answer is unusable.

    source: where the final answer is read: the last <answer> block ("answer_tag"), the last
    \\boxed{} ("boxed") or the last number in the text ("last_number").
    require_stop: a truncated completion (no EOS within the budget) scores 0.
    """
    if not gold_is_usable(sample.gold, sample.task):
        return None
    if require_stop and sample.truncated:
        return 0.0
    answer = extract_answer(sample.completion, source)
    return float(answer_is_correct(answer, sample.gold, sample.task, sample.meta))
