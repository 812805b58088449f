from __future__ import annotations

import pytest

from r1.rewards.accuracy import answer_is_correct, math_equal
from r1.text import after_thinking, last_number, parse_completion


@pytest.mark.parametrize(
    "text,strict,answer,think",
    [
        ("<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>", True, "5", "2 + 3 = 5"),
        ("  <think>a</think> <answer> 7 </answer>\n", True, "7", "a"),
        ("<think>a</think><answer>5</answer> and more", False, "5", None),  # text after
        ("<answer>5</answer>", False, "5", None),  # no think block
        ("<think>a</think>", False, None, None),  # no answer block
        ("<think>a</think><answer>4</answer><answer>5</answer>", False, "5", None),  # repeated
        ("<think><think>a</think></think><answer>5</answer>", False, "5", None),  # nested
        (
            "<think>a<answer>1</answer></think><answer>5</answer>",
            False,
            "5",
            None,
        ),  # answer in think
        ("<think>a</think><answer>5", False, None, None),  # unclosed
        ("", False, None, None),
        ("<think>数学 思考</think><answer>５</answer>", True, "５", "数学 思考"),
        # the readable layout: an optional summary block between the two
        ("<think>a</think>\n<summary>So 5.</summary>\n<answer>5</answer>", True, "5", "a"),
        (
            "<think>a</think><summary>x</summary><summary>y</summary><answer>5</answer>",
            False,
            "5",
            None,
        ),
        (
            "<think>a</think>so<summary>x</summary><answer>5</answer>",
            False,
            "5",
            None,
        ),  # loose text
        ("<think>a</think><summary>x<answer>5</answer>", False, "5", None),  # unclosed summary
        (
            "<think>a</think><answer>5</answer><summary>x</summary>",
            False,
            "5",
            None,
        ),  # after answer
    ],
)
def test_parse_completion(text, strict, answer, think):
    parsed = parse_completion(text)
    assert (parsed.strict, parsed.answer, parsed.think) == (strict, answer, think)


def test_the_summary_and_what_a_reader_is_shown():
    readable = "<think>\n15 + 43 = 58\n</think>\n<summary>So 58.</summary>\n<answer>58</answer>"
    assert parse_completion(readable).summary == "So 58."
    assert parse_completion("<think>a</think><answer>5</answer>").summary is None
    assert after_thinking(readable) == "<summary>So 58.</summary>\n<answer>58</answer>"
    assert after_thinking("A short friendly answer.") == "A short friendly answer."  # no thinking
    assert after_thinking("<think>a</think> b </think> c") == "c"  # after the last one


@pytest.mark.parametrize(
    "text,number",
    [
        ("47 + 38 = 85", "85"),
        ("so 1,234 total.", "1234"),
        ("-12 is it", "-12"),
        ("none", None),
        ("3.5 and then 2", "2"),
    ],
)
def test_last_number(text, number):
    assert last_number(text) == number


@pytest.mark.parametrize(
    "answer,gold,right",
    [
        ("55", "55", True),
        ("55.0", "55", True),
        ("0.5", "1/2", True),
        ("\\frac{1}{2}", "0.5", True),
        ("-58", "-58", True),
        ("58", "-58", False),
        ("2,711", "2711", True),
        ("banana", "5", False),
        ("\\frac{1}{0", "5", False),
        ("", "5", False),
    ],
)
def test_math_answers(answer, gold, right):
    assert answer_is_correct(answer, gold) is right


def test_countdown_uses_its_own_checker():
    meta = {"numbers": [25, 5, 3, 7], "target": 67}
    assert answer_is_correct("(25 - 5) * 3 + 7", "whatever", "countdown", meta)
    assert not answer_is_correct("67", "67", "countdown", meta)  # the number alone is no solution
    assert not answer_is_correct(None, "67", "countdown", meta)


def test_math_equal_never_raises():
    assert math_equal("\\sqrt{" * 50, "1") is False
