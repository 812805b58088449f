"""Execution reward for code: run the completion's program against the problem's tests.

Tests live in ``meta["tests"]``, a JSON-friendly list of either

* ``{"input": "<stdin>", "output": "<expected stdout>"}``: the program reads stdin; its
  stdout must match, ignoring trailing whitespace on each line and trailing blank lines;
* ``{"assert": "assert f(2) == 4"}``: the statement is appended after the program, which
  must then exit with status 0.

Every test runs in its own sandboxed process (`r1.rewards.sandbox`). The sandbox protects
the host, not the reward: a program that sees the test code in its own file, or returns
objects whose ``__eq__`` always says True, can still fake an assert test. An assert test
only passes when a marker printed after the assert appears, so exiting early does not.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from r1.rewards.sandbox import SandboxError, SandboxLimits, SandboxResult, run_many
from r1.rewards.types import RewardError, RewardSample
from r1.text import parse_completion

# A fence opens at the start of a line, with an optional language tag, and closes at the
# next ``` (a fence that never closes is not a block).
_FENCE = re.compile(r"(?:^|\n)[ \t]*```[ \t]*([^\n`]*)\n(.*?)```", re.S)
_PYTHON_TAGS = {"", "python", "py", "python3"}


def extract_code(text: str, defines: str | None = None) -> str | None:
    """The program in a completion, or None.

    The last fenced block tagged python (or untagged), searched in the last
    ``<answer>...</answer>`` block when there is one, else in the whole text. An answer
    block without any fence is taken as the code itself. `defines` (a function name): the
    last block that defines that function wins over later ones that do not (a chat reply
    often ends with a usage example such as ``print(f(1))`` in a block of its own).
    """
    answer = parse_completion(text).answer
    region = text if answer is None else answer
    blocks = [
        body
        for tag, body in _FENCE.findall(region)
        if tag.strip().lower() in _PYTHON_TAGS and body.strip()
    ]
    if defines:
        definition = re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(defines)}\b", re.M)
        blocks = [b for b in blocks if definition.search(b)] or blocks
    if blocks:
        return blocks[-1]
    if answer and "```" not in answer:
        return answer
    return None


def code_exec(
    sample: RewardSample,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_workers: int | None = None,
) -> float | None:
    """Fraction of ``sample.meta["tests"]`` the completion's program passes.

    0.0 without a code block; None when the sample has no tests. Each test gets
    ``timeout_s`` seconds (wall clock and CPU) and ``memory_mb`` of address space.
    Raises RewardError when the sandbox itself failed on one of its tests.
    """
    value = code_exec_batch([sample], timeout_s, memory_mb, max_workers)[0]
    if isinstance(value, RewardError):
        raise value
    return value


def passes_all_tests(
    answer: str, tests: Sequence[Mapping[str, str]], timeout_s: float = 5.0
) -> bool:
    """Accuracy for code: the program in `answer` (fenced or bare) passes every test.
    Raises RewardError when the sandbox failed, which is no verdict on the program."""
    if not tests:
        return False
    return code_exec(RewardSample(completion=answer, meta={"tests": list(tests)}), timeout_s) == 1.0


def code_exec_batch(
    samples: Sequence[RewardSample],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_workers: int | None = None,
) -> list[float | None | RewardError]:
    """`code_exec` for many samples, with all their tests run in one parallel pool. A sample
    whose sandbox failed on any of its tests gets a RewardError in its place."""
    marker = f"r1-tests-passed-{secrets.token_hex(8)}"
    rewards: list[float | None] = []
    spans: list[
        tuple[int, int, Sequence[Mapping[str, str]]]
    ] = []  # (reward index, first job, tests)
    jobs: list[tuple[str, str]] = []
    for sample in samples:
        tests = _tests(sample.meta)
        code = extract_code(sample.completion) if tests else None
        if not tests:
            rewards.append(None)
        elif code is None:
            rewards.append(0.0)
        else:
            spans.append((len(rewards), len(jobs), tests))
            rewards.append(0.0)
            jobs.extend(_job(code, test, marker) for test in tests)
    limits = SandboxLimits(cpu_seconds=timeout_s, wall_seconds=timeout_s, memory_mb=memory_mb)
    results = run_many(jobs, limits, max_workers)
    out: list[float | None | RewardError] = list(rewards)
    for index, first, tests in spans:
        own = results[first : first + len(tests)]
        failed = next((r for r in own if isinstance(r, SandboxError)), None)
        if failed is not None:
            out[index] = RewardError(f"sandbox: {failed}")
            continue
        out[index] = sum(_passed(test, result, marker) for test, result in zip(tests, own)) / len(
            tests
        )
    return out


def _tests(meta: Mapping[str, Any]) -> Sequence[Mapping[str, str]] | None:
    """The sample's tests; None when it has none. Malformed tests are a data error."""
    tests = meta.get("tests")
    if not tests:
        return None
    if not isinstance(tests, Sequence) or isinstance(tests, str):
        raise ValueError(f"meta['tests'] must be a list, got {type(tests).__name__}")
    for i, test in enumerate(tests):
        if not (
            isinstance(test, Mapping)
            and (
                (isinstance(test.get("input"), str) and isinstance(test.get("output"), str))
                or isinstance(test.get("assert"), str)
            )
        ):
            raise ValueError(
                f"meta['tests'][{i}] must have string 'input' and 'output', or a string "
                f"'assert'; got {test!r:.200}"
            )
    return tests


def _job(code: str, test: Mapping[str, str], marker: str) -> tuple[str, str]:
    if "assert" in test:
        return f"{code}\n\n{test['assert']}\nprint({marker!r})\n", ""
    return code, test["input"]


def _passed(test: Mapping[str, str], result: SandboxResult, marker: str) -> bool:
    if not result.ok:
        return False
    if "assert" in test:
        return marker in result.stdout
    return not result.output_truncated and _lines(result.stdout) == _lines(test["output"])


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines
