"""Code problems: a procedural "write a function" task and a JSONL loader.

A code problem's tests live in ``meta["tests"]`` in the format `r1.rewards.code` runs:
``{"input": ..., "output": ...}`` (stdin/stdout) or ``{"assert": "assert f(2) == 4"}``.
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from r1.checks import ConfigError
from r1.data.loaders import DataError, _text_field, json_object, read_jsonl
from r1.data.problem import Problem
from r1.data.tasks import Task


@dataclass(frozen=True)
class _Rule:
    description: str  # completes "Write a Python function `f(x)` that ..."
    body: str  # the reference implementation's return expression
    reasoning: str  # one sentence on how to compute it
    apply: Callable[[Any], Any]  # the same rule, to compute expected outputs
    draw_input: Callable[[random.Random], Any]


def _int_list(rng: random.Random, low: int = -20, high: int = 50) -> list[int]:
    return [rng.randint(low, high) for _ in range(rng.randint(0, 8))]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(0, 8)))


def _affine(rng: random.Random) -> _Rule:
    a = rng.choice([n for n in range(-9, 10) if n not in (0, 1)])
    b = rng.randint(-20, 20)
    expression = f"{a} * x" + (f" + {b}" if b >= 0 else f" - {-b}")
    return _Rule(
        description=f"takes an integer x and returns the value of {expression}",
        body=expression,
        reasoning=f"Multiply x by {a}, then add {b}: f(x) = {expression}.",
        apply=lambda x: a * x + b,
        draw_input=lambda r: r.randint(-50, 50),
    )


def _filter_mod(rng: random.Random) -> _Rule:
    m = rng.randint(2, 6)
    r = rng.randrange(m)
    return _Rule(
        description=(
            f"takes a list of non-negative integers x and returns, in their original order, "
            f"the elements that leave remainder {r} when divided by {m}"
        ),
        body=f"[v for v in x if v % {m} == {r}]",
        reasoning=f"Keep each element v with v % {m} == {r}, in order.",
        apply=lambda x: [v for v in x if v % m == r],
        draw_input=lambda rng_: _int_list(rng_, 0, 50),
    )


_LIST_OPS: dict[str, tuple[str, str, Callable[[list[int]], Any]]] = {
    "reverse": ("the list in reverse order", "x[::-1]", lambda x: x[::-1]),
    "sort": ("the elements sorted in ascending order", "sorted(x)", sorted),
    "sort_desc": (
        "the elements sorted in descending order",
        "sorted(x, reverse=True)",
        lambda x: sorted(x, reverse=True),
    ),
    "sum": ("the sum of its elements (0 for an empty list)", "sum(x)", sum),
}


def _list_op(rng: random.Random) -> _Rule:
    what, body, apply = _LIST_OPS[rng.choice(sorted(_LIST_OPS))]
    return _Rule(
        description=f"takes a list of integers x and returns {what}",
        body=body,
        reasoning=f"Python computes {what} directly: {body}.",
        apply=apply,
        draw_input=_int_list,
    )


def _string_op(rng: random.Random) -> _Rule:
    if rng.random() < 0.5:
        k = rng.randint(2, 5)
        return _Rule(
            description=f"takes a string x and returns x repeated {k} times",
            body=f"x * {k}",
            reasoning=f"Multiplying a string by {k} repeats it {k} times.",
            apply=lambda x: x * k,
            draw_input=_word,
        )
    return _Rule(
        description="takes a string x and returns it in upper case",
        body="x.upper()",
        reasoning="str.upper converts every letter to upper case.",
        apply=str.upper,
        draw_input=_word,
    )


def _digit_sum(rng: random.Random) -> _Rule:
    return _Rule(
        description="takes a non-negative integer x and returns the sum of its decimal digits",
        body="sum(int(d) for d in str(x))",
        reasoning="Write x in decimal and add up its digits.",
        apply=lambda x: sum(int(d) for d in str(x)),
        draw_input=lambda r: r.randint(0, 10 ** r.randint(1, 9)),
    )


FAMILIES: dict[str, Callable[[random.Random], _Rule]] = {
    "affine": _affine,
    "filter_mod": _filter_mod,
    "list_op": _list_op,
    "string_op": _string_op,
    "digit_sum": _digit_sum,
}


class CodeTask(Task):
    """ "Write a Python function `f(x)` that ..." for a random rule, with hidden assert tests.

    The gold ``answer`` is a reference implementation (source text), ``solution`` a short
    reasoning, and ``meta`` holds ``tests`` (assert tests) and ``entry_point``.
    """

    def __init__(self, families: Sequence[str] = tuple(FAMILIES), num_tests: int = 5) -> None:
        families = tuple(families)
        unknown = [f for f in families if f not in FAMILIES]
        if not families or unknown:
            raise ConfigError(
                f"families must be a non-empty subset of {', '.join(FAMILIES)}, got {families}"
            )
        if num_tests < 1:
            raise ConfigError(f"num_tests must be >= 1, got {num_tests}")
        self.families = families
        self.num_tests = num_tests

    def sample(self, rng: random.Random) -> Problem:
        family = rng.choice(self.families)
        rule = FAMILIES[family](rng)
        inputs: list[Any] = []
        for _ in range(100 * self.num_tests):  # distinct inputs where the domain allows
            if len(inputs) == self.num_tests:
                break
            x = rule.draw_input(rng)
            if x not in inputs:
                inputs.append(x)
        tests = [{"assert": f"assert f({x!r}) == {rule.apply(x)!r}"} for x in inputs]
        example = max(inputs, key=lambda x: len(repr(x)))  # the most telling check
        return Problem(
            question=f"Write a Python function `f(x)` that {rule.description}.",
            answer=f"def f(x):\n    return {rule.body}\n",
            solution=f"{rule.reasoning} Check: f({example!r}) = {rule.apply(example)!r}.",
            task="code",
            meta={"tests": tests, "entry_point": "f", "family": family},
        )


def load_code_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """Code problems from a JSONL file, one object per line.

    Fields: ``question``, ``tests`` (a non-empty list of ``{"input", "output"}`` or
    ``{"assert"}`` objects), optional ``solution`` and ``answer`` (reference code),
    optional ``task`` (default "code") and ``meta``; other keys go to meta as well.
    """
    return read_jsonl(path, _code_row)


def _code_row(line: str, where: str) -> Problem:
    row = json_object(line, where)
    question = _text_field(row, "question", where)
    tests = _tests_field(row, where)
    optional = {}
    for name in ("solution", "answer", "task"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
        optional[name] = value or ""
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' must be a JSON object, got {type(meta).__name__}")
    rest = {
        k: v
        for k, v in row.items()
        if k not in ("question", "tests", "solution", "answer", "task", "meta")
    }
    return Problem(
        question=question,
        answer=optional["answer"],
        solution=optional["solution"],
        task=optional["task"] or "code",
        meta={**meta, **rest, "tests": tests},
    )


def _tests_field(row: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    if "tests" not in row:
        raise DataError(f"{where}: field 'tests' is missing; fields present: {', '.join(row)}")
    tests = row["tests"]
    if not isinstance(tests, list) or not tests:
        raise DataError(f"{where}: field 'tests' must be a non-empty list, got {tests!r:.80}")
    for i, test in enumerate(tests):
        if not isinstance(test, dict):
            raise DataError(
                f"{where}: field 'tests' item {i} must be an object, got {type(test).__name__}"
            )
        io = "input" in test or "output" in test
        if io == ("assert" in test):
            raise DataError(
                f"{where}: field 'tests' item {i} needs either 'input' and 'output' or "
                f"'assert'; got keys: {', '.join(test) or 'none'}"
            )
        names = ("input", "output") if io else ("assert",)
        for name in names:
            if not isinstance(test.get(name), str):
                raise DataError(
                    f"{where}: field 'tests' item {i} field {name!r} must be a string, "
                    f"got {type(test.get(name)).__name__}"
                )
        if not io and not test["assert"].strip():
            raise DataError(f"{where}: field 'tests' item {i} field 'assert' is empty")
    return tests
