"""Step splitting and Math-Shepherd labels against hand-written expectations."""

from __future__ import annotations

import pytest

from r1.search.steps import label_solution, label_steps, step_prefixes
from r1.text import split_steps


@pytest.mark.parametrize(
    ("text", "delimiter", "expected"),
    [
        # markers on one line: cut before each, the marker stays in its step
        (
            "Step 1: 3 + 4 = 7. Step 2: 7 + 3 = 10.",
            "auto",
            ["Step 1: 3 + 4 = 7.", "Step 2: 7 + 3 = 10."],
        ),
        # markers on separate lines; a step may span lines
        (
            "Step 1: add\n3 + 4 = 7\n\nstep 2: 7 + 3 = 10\n",
            "auto",
            ["Step 1: add\n3 + 4 = 7", "step 2: 7 + 3 = 10"],
        ),
        # text before the first marker is a step of its own; "STEP 2)" counts too
        (
            "Let me think.\nSTEP 1) a\nSTEP 2) b",
            "auto",
            ["Let me think.", "STEP 1) a", "STEP 2) b"],
        ),
        ("步骤1：3加4得7。步骤2：7加3得10。", "auto", ["步骤1：3加4得7。", "步骤2：7加3得10。"]),
        # no markers ("step 2 again" has no ':' after the number): non-empty lines
        (
            "First, 3 + 4 = 7.\n\n  Then 7 + 3 = 10.  \n",
            "auto",
            ["First, 3 + 4 = 7.", "Then 7 + 3 = 10."],
        ),
        ("We redo step 2 again\nok", "auto", ["We redo step 2 again", "ok"]),
        # custom delimiters
        ("a\nb\n\nc\n\n\n\n", "\n\n", ["a\nb", "c"]),
        ("x = 1 ;; y = 2 ;;", ";;", ["x = 1", "y = 2"]),
        # a <think> block: only its content; the answer after it is not a step
        (
            "<think>Step 1: 3 + 4 = 7\nStep 2: 7 + 3 = 10</think>\n<answer>10</answer>",
            "auto",
            ["Step 1: 3 + 4 = 7", "Step 2: 7 + 3 = 10"],
        ),
        ("<think>\na\nb\n</think> so the answer is 10", "auto", ["a", "b"]),
        ("<think>a\nb", "auto", ["a", "b"]),  # truncated: the block never closed
        ("a\nb</think><answer>10</answer>", "auto", ["a", "b"]),  # <think> was in the prompt
        # empty and garbage
        ("", "auto", []),
        ("  \n\t\n", "auto", []),
        ("<think></think>", "auto", []),
        ("</think><think>", "auto", []),
        ("Step", "auto", ["Step"]),
        ("Step 1:", "auto", ["Step 1:"]),
        ("a;b", ";", ["a", "b"]),
    ],
)
def test_split_steps(text: str, delimiter: str, expected: list[str]) -> None:
    assert split_steps(text, delimiter) == expected


@pytest.mark.parametrize(
    "garbage", ["\x00\x01\x02", "<think><think></think></think>", "步骤", "}{" * 50, None, 42]
)
def test_split_steps_never_raises_on_model_output(garbage) -> None:
    steps = split_steps(garbage)
    assert isinstance(steps, list) and all(isinstance(s, str) and s for s in steps)


def test_empty_delimiter_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        split_steps("a b", "")


def test_step_prefixes() -> None:
    assert step_prefixes(["a", "b", "c"]) == ["a", "a\nb", "a\nb\nc"]
    assert step_prefixes([]) == []


def test_label_steps_by_hand() -> None:
    outcomes = [[True, False, False, False], [False, False], [], [True, True]]
    assert label_steps(outcomes, "hard") == [1.0, 0.0, 0.0, 1.0]
    assert label_steps(outcomes, "soft") == [0.25, 0.0, 0.0, 1.0]
    assert label_steps([]) == []
    with pytest.raises(ValueError, match="'avg'.*valid: hard, soft"):
        label_steps(outcomes, "avg")


# The steps of the one solution that reaches the gold answer 10 (with a policy that can only
# add 3 to 7 next, "7 + 2 = 9" is a dead end although its arithmetic is right).
_GOOD_STEPS = {"3 + 4 = 7", "7 + 3 = 10"}


def _rollout_to_ten(calls: list[tuple[str, int]]):
    """A deterministic stand-in for "sample n completions from the prefix and check that the
    final answer is 10": they all succeed iff the prefix holds no wrong step."""

    def rollout(prefix: str, n: int) -> list[bool]:
        calls.append((prefix, n))
        return [all(step in _GOOD_STEPS for step in prefix.split("\n"))] * n

    return rollout


@pytest.mark.parametrize(
    ("steps", "labels"),
    [
        (["3 + 4 = 7", "7 + 3 = 10"], [1.0, 1.0]),
        (["3 + 4 = 7", "7 + 2 = 9"], [1.0, 0.0]),
        (["3 + 4 = 8", "8 + 2 = 10"], [0.0, 0.0]),  # once wrong, every later prefix is wrong
    ],
)
def test_label_solution_on_a_known_problem(steps: list[str], labels: list[float]) -> None:
    calls: list[tuple[str, int]] = []
    assert label_solution(steps, _rollout_to_ten(calls), n=4) == labels
    assert calls == [(steps[0], 4), (f"{steps[0]}\n{steps[1]}", 4)]


def test_label_solution_soft_and_from_text() -> None:
    def half_right(prefix: str, n: int) -> list[bool]:  # 1 of 2 reach it, then 0 of 2
        return [True, False] if "\n" not in prefix else [False, False]

    steps = split_steps("<think>\n3 + 4 = 7\n7 + 2 = 9\n</think>\n<answer>9</answer>")
    assert steps == ["3 + 4 = 7", "7 + 2 = 9"]
    assert label_solution(steps, half_right, n=2, mode="soft") == [0.5, 0.0]
    assert label_solution(steps, _rollout_to_ten([]), n=1) == [1.0, 0.0]
    with pytest.raises(ValueError, match="n >= 1 completions per prefix, got 0"):
        label_solution(steps, half_right, n=0)
    with pytest.raises(ValueError, match="'best'"):
        label_solution(steps, half_right, n=2, mode="best")
