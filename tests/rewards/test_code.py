from __future__ import annotations

import time

import pytest

from r1.rewards.code import code_exec, code_exec_batch, extract_code
from r1.rewards.types import RewardSample

DOUBLE_TESTS = [
    {"assert": "assert f(1) == 2"},
    {"assert": "assert f(2) == 4"},
    {"assert": "assert f(3) == 6"},
    {"assert": "assert f(0) == 0"},
]
SUM_TESTS = [
    {"input": "1 2\n", "output": "3\n"},
    {"input": "10 -4", "output": "6"},
    {"input": "0 0\n", "output": "0   \n\n"},  # trailing whitespace and blank lines ignored
]


def fenced(code: str) -> str:
    return f"<think>easy</think><answer>```python\n{code}\n```</answer>"


def sample(completion: str, tests: list[dict[str, str]] | None) -> RewardSample:
    return RewardSample(
        completion=completion, task="code", meta={} if tests is None else {"tests": tests}
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("```\nx = 1\n```", "x = 1\n"),
        ("```Python\r\nx = 1\r\n```", "x = 1\r\n"),
        ("```python\na = 1\n```\nor better:\n```py\nb = 2\n```\ndone", "b = 2\n"),
        ("```python\na = 1\n```\nIt prints:\n```text\n1\n```", "a = 1\n"),
        ("no code here", None),
        ("", None),
        ("inline ```x = 1``` only", None),
        ("```python\n\n```", None),
        ("```python\nprint(1)", None),  # unclosed fence
        ("```python\na = 1\n```\nagain:\n```python\nb = 2", "a = 1\n"),
        ("<think>```python\ndraft\n```</think>\n<answer>```python\nfinal\n```</answer>", "final\n"),
        ("<think>t</think><answer>def f(x):\n    return x</answer>", "def f(x):\n    return x"),
        ("```python\noutside\n```\n<answer>42</answer>", "42"),
        ("<answer>```python\nunclosed</answer>", None),
        ("<answer>  </answer>", None),
        ("<answer>x = 1", None),  # an unclosed answer tag is no answer; no fence either
    ],
)
def test_extract_code(text: str, expected: str | None) -> None:
    assert extract_code(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def f(x):\n    return 2 * x", 1.0),
        ("def f(x):\n    return x * x", 0.5),  # right for 2 and 0 only
        ("def f(x):\n    return x + 100", 0.0),
        ("def f(x):\n    return 1 / 0", 0.0),
        ("raise RuntimeError('crash at import')", 0.0),
        ("def f(x):\n    return 2 * x\nimport sys\nsys.exit(0)", 0.0),  # exits before the asserts
        ("def f(x):\n    assert x != 1\n    return 2 * x", 0.75),
    ],
)
def test_code_exec_assert_tests(code: str, expected: float) -> None:
    assert code_exec(sample(fenced(code), DOUBLE_TESTS)) == expected


def test_code_exec_without_code_or_tests() -> None:
    assert code_exec(sample("I do not know.", DOUBLE_TESTS)) == 0.0
    assert code_exec(sample(fenced("def f(x):\n    return 2 * x"), None)) is None
    assert code_exec(sample(fenced("def f(x):\n    return 2 * x"), [])) is None


def test_code_exec_infinite_loop_times_out() -> None:
    code = "def f(x):\n    while x == 3:\n        pass\n    return 2 * x"
    start = time.monotonic()
    assert code_exec(sample(fenced(code), DOUBLE_TESTS), timeout_s=1.0) == 0.75
    assert time.monotonic() - start < 4


def test_code_exec_stdin_stdout_tests() -> None:
    right = "a, b = map(int, input().split())\nprint(a + b)"
    wrong = "a, b = map(int, input().split())\nprint(a - b)"  # right only for 0 0
    assert code_exec(sample(fenced(right), SUM_TESTS)) == 1.0
    assert code_exec(sample(fenced(wrong), SUM_TESTS)) == pytest.approx(1 / 3)
    assert code_exec(sample(fenced("print(3)"), SUM_TESTS[:1])) == 1.0
    assert code_exec(sample(fenced("print(' 3')"), SUM_TESTS[:1])) == 0.0  # leading space counts


def test_code_exec_mixed_tests() -> None:
    # Reads stdin when run as a program; the assert tests get an empty stdin.
    code = "import sys\ndef f(x):\n    return 2 * x\nprint(f(int(sys.stdin.read() or 0)))"
    tests = [{"input": "5", "output": "10"}, {"input": "", "output": "0"}, *DOUBLE_TESTS[:2]]
    assert code_exec(sample(fenced(code), tests)) == 1.0


def test_code_exec_batch_keeps_order() -> None:
    samples = [
        sample(fenced("def f(x):\n    return 2 * x"), DOUBLE_TESTS),
        sample(fenced("def f(x):\n    return 2 * x"), None),
        sample("no code", DOUBLE_TESTS),
        sample(fenced("def f(x):\n    return x * x"), DOUBLE_TESTS),
        sample(fenced("a, b = map(int, input().split())\nprint(a + b)"), SUM_TESTS),
    ]
    assert code_exec_batch(samples, max_workers=2) == [1.0, None, 0.0, 0.5, 1.0]
    assert code_exec_batch([]) == []


@pytest.mark.parametrize(
    "tests",
    [
        "assert f(1) == 2",
        [{"input": "1"}],
        [{"output": "1"}],
        [{"assert": 3}],
        ["assert f(1) == 2"],
    ],
)
def test_malformed_tests_are_a_data_error(tests: object) -> None:
    bad = RewardSample(completion=fenced("pass"), meta={"tests": tests})
    with pytest.raises(ValueError, match="tests"):
        code_exec(bad)


def test_a_sandbox_failure_is_an_error_not_a_verdict(monkeypatch) -> None:
    from r1.rewards import sandbox
    from r1.rewards.code import passes_all_tests
    from r1.rewards.types import RewardError

    def fails(plan, code, stdin, limits):
        raise sandbox.SandboxError("sandbox setup failed")

    monkeypatch.setattr(sandbox, "_run", fails)
    program = fenced("def f(x):\n    return 2 * x")
    assert isinstance(code_exec_batch([sample(program, DOUBLE_TESTS)])[0], RewardError)
    with pytest.raises(RewardError):
        code_exec(sample(program, DOUBLE_TESTS))
    with pytest.raises(RewardError):
        passes_all_tests(program, DOUBLE_TESTS)
