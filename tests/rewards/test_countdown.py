from fractions import Fraction

import pytest

from r1.rewards.countdown import check_countdown, evaluate_expression, numbers_used


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("10 - (4 - 3)", 9),
        ("100 / 5 / 2", 10),
        ("100 / (5 * 2)", 10),
        ("7 / 2", Fraction(7, 2)),
        ("1 / 3 + 1 / 6", Fraction(1, 2)),
        ("(25-5)*3+7", 67),
        ("(25 - 5) * 3 + 7 = 67", 67),
        ("(25 - 5) * 3 + 7 = 68", 67),
        ("2 + 3 = 5 = 5", 5),
        ("  ((((3))))  ", 3),
        ("((2 + 3) * (4 - (1 + 1)))", 10),
        ("-5 + 8", 3),
        ("--5", 5),
        ("2 * -3", -6),
        ("-(2 + 3) * 4", -20),
        ("6 × 7 ÷ 3", 14),
        ("999999 * 999999", 999998000001),
        ("", None),
        ("   ", None),
        ("= 67", None),
        ("1 +", None),
        ("* 2", None),
        ("(1 + 2", None),
        ("1 + 2)", None),
        ("()", None),
        ("2 (3)", None),
        ("2 3", None),
        ("2**100", None),
        ("2 ^ 3", None),
        ("5 / 0", None),
        ("5 / (3 - 3)", None),
        ("1.5 + 1", None),
        ("x + 1", None),
        ("3 x 4", None),
        ("abc", None),
        ("__import__('os')", None),
        ("1234567 + 1", None),
        ("+5", None),
        ("1" + " + 1" * 49, 50),  # 197 characters
        ("1" + " + 1" * 50, None),  # 201 characters: too long
        ("(" * 30 + "1" + ")" * 30, 1),
        ("(" * 40 + "1" + ")" * 40, None),  # nested too deep
        ("(" * 150, None),
        ("-" * 150 + "1", 1),
    ],
)
def test_evaluate_expression(text: str, expected: int | Fraction | None) -> None:
    assert evaluate_expression(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(25 - 5) * 3 + 7 = 67", [25, 5, 3, 7]),
        ("-(2 + 2)", [2, 2]),
        ("007 + 1", [7, 1]),
        ("5 / 0", None),
        ("1 +", None),
    ],
)
def test_numbers_used(text: str, expected: list[int] | None) -> None:
    assert numbers_used(text) == expected


@pytest.mark.parametrize(
    ("expression", "numbers", "target", "expected"),
    [
        ("(25 - 5) * 3 + 7", [25, 5, 3, 7], 67, True),
        ("7 + 3 * (25 - 5)", [3, 5, 7, 25], 67, True),
        ("(25-5)*3+7 = 67", [25, 5, 3, 7], 67, True),
        ("6 / 4 * 2", [6, 4, 2], 3, True),
        ("5 * 5 - 3", [5, 5, 3], 22, True),
        ("(25 - 5) * 3 + 7", [25, 5, 3, 7], 68, False),  # wrong target
        ("(25 - 5) * 3 + 7 = 68", [25, 5, 3, 7], 68, False),  # claimed result ignored
        ("(25 - 5) * 3 + 7 + 3 - 3", [25, 5, 3, 7], 67, False),  # number reused
        ("5 * 5 - 3", [5, 3], 22, False),  # number reused
        ("(25 - 5) * 3", [25, 5, 3, 7], 60, False),  # number missing
        ("(25 - 5) * 3 + 7 + 0", [25, 5, 3, 7], 67, False),  # extra number
        ("(25 - 5) * 3 + 7", [25, 5, 3, 7, 1], 67, False),  # given number missing
        ("7 / 2", [7, 2], 3, False),  # no rounding
        ("(25 - 5) * 3 + 7 )", [25, 5, 3, 7], 67, False),
        ("", [25, 5, 3, 7], 67, False),
    ],
)
def test_check_countdown(expression: str, numbers: list[int], target: int, expected: bool) -> None:
    assert check_countdown(expression, numbers, target) is expected
