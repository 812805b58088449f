import random
import re
from collections import Counter
from fractions import Fraction

import pytest

from r1.data.problem import Problem
from r1.data.tasks import (
    ArithmeticTask,
    CountdownTask,
    MultiplicationTask,
    _BinOp,
    _Num,
    _worked,
)
from r1.rewards.countdown import check_countdown
from r1.rewards.language import language_consistency

STEP = re.compile(r"(-?\d+) ([-+*/]) (-?\d+) = (-?\d+)")
OPERATOR = re.compile(r" [-+*/] ")


def replay(solution: str, operands: list[int]) -> int:
    """Check each ``a op b = c`` line and that it consumes operands or earlier results.

    Returns the final result, which must be the only value left.
    """
    pool = Counter(operands)
    for line in solution.split("\n"):
        match = STEP.fullmatch(line)
        assert match, f"malformed step {line!r}"
        a, op, b, c = match.groups()
        a, b, c = int(a), int(b), int(c)
        expected = {"+": a + b, "-": a - b, "*": a * b, "/": Fraction(a, b) if b else None}[op]
        assert c == expected, f"wrong step {line!r}"
        for value in (a, b):
            assert pool[value] > 0, f"{value} in {line!r} is neither an operand nor a result"
            pool[value] -= 1
        pool[c] += 1
    assert +pool == Counter([c]), f"values left unused: {+pool}"
    return c


def node(op: str, left: int | _BinOp, right: int | _BinOp) -> _BinOp:
    """Expression tree node; ints are leaves."""
    return _BinOp(op, *(_Num(x) if isinstance(x, int) else x for x in (left, right)))


ARITHMETIC_SETTINGS = [
    {"digits": 1, "num_ops": 1},
    {"digits": 2, "num_ops": 2},
    {"digits": 3, "num_ops": 3, "ops": ("+", "-")},
    {"digits": 1, "num_ops": 6},
    {"digits": 2, "num_ops": 4, "ops": ("*",)},
]


def test_problem_round_trip() -> None:
    p = Problem("q", "1", "s", "t", {"numbers": [1, 2]})
    assert Problem.from_dict(p.to_dict()) == p
    assert len({p, Problem.from_dict(p.to_dict())}) == 1  # hashable despite the meta dict
    assert Problem.from_dict({"question": "q", "answer": 3}) == Problem("q", "3")


@pytest.mark.parametrize(
    ("tree", "expression", "value", "solution"),
    [
        (node("+", 23, node("*", 47, 3)), "23 + 47 * 3", 164, "47 * 3 = 141\n23 + 141 = 164"),
        (node("*", node("+", 23, 47), 3), "(23 + 47) * 3", 210, "23 + 47 = 70\n70 * 3 = 210"),
        (node("-", 5, node("-", 8, 2)), "5 - (8 - 2)", -1, "8 - 2 = 6\n5 - 6 = -1"),
        (node("-", node("-", 5, 8), 2), "5 - 8 - 2", -5, "5 - 8 = -3\n-3 - 2 = -5"),
        (node("*", node("-", 3, 8), 2), "(3 - 8) * 2", -10, "3 - 8 = -5\n-5 * 2 = -10"),
        # a + (b - c) is written and solved as a + b - c
        (node("+", 1, node("-", 9, 4)), "1 + 9 - 4", 6, "1 + 9 = 10\n10 - 4 = 6"),
        (node("*", 6, node("/", 10, 5)), "6 * 10 / 5", 12, "6 * 10 = 60\n60 / 5 = 12"),
        (node("/", 100, node("*", 5, 2)), "100 / (5 * 2)", 10, "5 * 2 = 10\n100 / 10 = 10"),
        (
            node("+", node("*", node("-", 25, 5), 3), 7),
            "(25 - 5) * 3 + 7",
            67,
            "25 - 5 = 20\n20 * 3 = 60\n60 + 7 = 67",
        ),
        (
            node("*", node("+", 1, 2), node("-", 9, 4)),
            "(1 + 2) * (9 - 4)",
            15,
            "1 + 2 = 3\n9 - 4 = 5\n3 * 5 = 15",
        ),
    ],
)
def test_rendering_and_solution(tree, expression, value, solution) -> None:
    assert _worked(tree) == (expression, value, solution)


def test_arithmetic_question_format() -> None:
    p = ArithmeticTask(question_format="Compute {expression}.").sample(random.Random(0))
    assert p.question == f"Compute {p.meta['expression']}."
    assert p.task == "arithmetic"


@pytest.mark.parametrize("task", [ArithmeticTask(), CountdownTask()], ids=["arith", "countdown"])
def test_generate_is_deterministic_by_seed(task) -> None:
    first = task.generate(50, seed=1)
    assert first == task.generate(50, seed=1)
    assert first != task.generate(50, seed=2)
    assert len(first) == 50 and len({p.question for p in first}) > 40


@pytest.mark.parametrize("settings", ARITHMETIC_SETTINGS, ids=str)
def test_arithmetic_answers_and_solutions(settings: dict) -> None:
    task = ArithmeticTask(**settings)
    digits, num_ops = settings["digits"], settings["num_ops"]
    allowed_ops = set(settings.get("ops", "+-*"))
    for p in task.generate(500, seed=7):
        expression = p.meta["expression"]
        assert p.question == f"What is {expression}?"
        assert p.answer == str(eval(expression))  # independent check
        operands = [int(n) for n in re.findall(r"\d+", expression)]
        assert all(len(str(n)) == digits and n > 0 for n in operands)
        ops = [m.strip() for m in OPERATOR.findall(expression)]
        assert len(ops) == num_ops and set(ops) <= allowed_ops
        assert replay(p.solution, operands) == int(p.answer)
        assert len(p.solution.split("\n")) == num_ops


def test_arithmetic_draws_every_tree_shape() -> None:
    problems = ArithmeticTask(digits=1, num_ops=3, ops=("-",)).generate(200, seed=0)
    shapes = {re.sub(r"\d", "n", p.meta["expression"]) for p in problems}
    assert shapes == {
        "n - n - n - n",
        "n - (n - n) - n",
        "n - n - (n - n)",
        "n - (n - n - n)",
        "n - (n - (n - n))",
    }


def test_arithmetic_covers_parentheses_and_negative_answers() -> None:
    problems = ArithmeticTask(digits=2, num_ops=3).generate(300, seed=0)
    assert any("(" in p.question for p in problems)
    assert any(int(p.answer) < 0 for p in problems)


@pytest.mark.parametrize(
    "settings",
    [{}, {"num_numbers": 2, "max_number": 10, "max_target": 50}, {"num_numbers": 6}],
    ids=str,
)
def test_countdown_problems_are_solvable(settings: dict) -> None:
    task = CountdownTask(**settings)
    for p in task.generate(300, seed=3):
        numbers, target = p.meta["numbers"], p.meta["target"]
        assert p.task == "countdown"
        assert (len(numbers),) == task.levels == (p.meta["level"],)
        assert all(1 <= n <= task.max_number for n in numbers)
        assert 1 <= target <= task.max_target
        assert f"Using the numbers {numbers}, " in p.question
        assert f"equals {target}." in p.question
        assert check_countdown(p.answer, numbers, target)
        assert eval(p.answer) == target  # independent check
        assert sorted(int(n) for n in re.findall(r"\d+", p.answer)) == sorted(numbers)
        steps = p.solution.split("\n")
        assert len(steps) == len(numbers) - 1
        assert replay(p.solution, numbers) == target
        assert all(int(step.rsplit("=", 1)[1]) > 0 for step in steps)


def test_countdown_question_rendering() -> None:
    task = CountdownTask(question_format="{numbers} -> {target}")
    p = task.sample(random.Random(5))
    assert p.question == f"{p.meta['numbers']} -> {p.meta['target']}"
    assert re.fullmatch(r"\[\d+(, \d+){3}\] -> \d+", p.question)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (ArithmeticTask, {"digits": 0}, "digits must be >= 1, got 0"),
        (
            ArithmeticTask,
            {"num_ops": 0},
            "num_ops must be an integer >= 1 or a list of them, got 0",
        ),
        (ArithmeticTask, {"num_ops": [1, 0]}, "got [1, 0]"),
        (ArithmeticTask, {"ops": ()}, "ops must be a non-empty subset of +, -, *, got ()"),
        (ArithmeticTask, {"ops": ("+", "/")}, "got ('+', '/')"),
        (
            CountdownTask,
            {"num_numbers": 1},
            "num_numbers must be an integer >= 2 or a list of them, got 1",
        ),
        (MultiplicationTask, {"digits": [[2]]}, "digits must be a list of [d1, d2] pairs"),
        (CountdownTask, {"max_number": 0}, "max_number must be >= 1, got 0"),
        (CountdownTask, {"max_target": -3}, "max_target must be >= 1, got -3"),
    ],
)
def test_bad_constructor_args(cls, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**kwargs)


def test_generate_rejects_negative_n() -> None:
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        ArithmeticTask().generate(-1, seed=0)


CJK = re.compile(r"[\u4e00-\u9fff]")
ZH_WORDS = ("计算", "先算", "再算")  # alone, on the first line, on the others
EN_WORDS = ("Compute", "First", "Then")


def worded_replay(solution: str, operands: list[int], words: tuple[str, str, str]) -> int:
    """``replay`` for solutions whose steps open with connectives: ``words`` = (alone, first,
    then): the single step opens with ``alone``, else the first with ``first`` and the rest
    with ``then``."""
    alone, first, then = words
    lines = solution.split("\n")
    steps = []
    for i, line in enumerate(lines):
        expected = alone if len(lines) == 1 else (then if i else first)
        assert line.startswith(expected + " "), f"step {line!r} does not open with {expected!r}"
        steps.append(line[len(expected) + 1 :])
    return replay("\n".join(steps), operands)


def zh_replay(solution: str, operands: list[int]) -> int:
    return worded_replay(solution, operands, ZH_WORDS)


def test_chinese_arithmetic_problems() -> None:
    for p in ArithmeticTask(digits=2, num_ops=3, language="zh").generate(300, seed=11):
        expression = p.meta["expression"]
        assert p.meta["language"] == "zh"
        assert p.question == f"计算 {expression} 的值。"
        assert p.answer == str(eval(expression))  # independent check
        operands = [int(n) for n in re.findall(r"\d+", expression)]
        assert zh_replay(p.solution, operands) == int(p.answer)
    one_step = ArithmeticTask(num_ops=1, language="zh").sample(random.Random(0))
    assert one_step.solution.startswith("计算 ") and "\n" not in one_step.solution


def test_chinese_countdown_problems() -> None:
    task = CountdownTask(language="zh")
    for p in task.generate(300, seed=12):
        numbers, target = p.meta["numbers"], p.meta["target"]
        assert p.meta["language"] == "zh"
        assert p.question == (
            f"使用数字 {numbers}，每个数字恰好使用一次，通过 + - * / 和括号，"
            f"构造一个等于 {target} 的表达式。"
        )
        assert eval(p.answer) == target  # independent check
        assert sorted(int(n) for n in re.findall(r"\d+", p.answer)) == sorted(numbers)
        assert check_countdown(p.answer, numbers, target)
        assert zh_replay(p.solution, numbers) == target


@pytest.mark.parametrize("cls", [ArithmeticTask, CountdownTask])
def test_mixed_language_problems(cls) -> None:
    problems = cls(language="mixed").generate(200, seed=4)
    languages = Counter(p.meta["language"] for p in problems)
    assert set(languages) == {"en", "zh"} and min(languages.values()) > 60
    for p in problems:
        assert bool(CJK.search(p.question)) == (p.meta["language"] == "zh")
        assert bool(CJK.search(p.solution)) == (p.meta["language"] == "zh")
    again = cls(language="mixed").generate(200, seed=4)
    assert again == problems  # the language draw is deterministic too
    assert [p.meta["language"] for p in cls(language="mixed").generate(200, seed=5)] != [
        p.meta["language"] for p in problems
    ]


@pytest.mark.parametrize("cls", [ArithmeticTask, CountdownTask])
def test_language_meta_defaults_to_english(cls) -> None:
    problems = cls().generate(20, seed=0)
    assert all(p.meta["language"] == "en" and not CJK.search(p.question) for p in problems)
    assert problems == cls(language="en").generate(20, seed=0)


def test_question_formats_per_language() -> None:
    task = ArithmeticTask(
        language="mixed",
        question_format="Compute {expression}.",
        question_format_zh="求 {expression}",
    )
    for p in task.generate(50, seed=0):
        expected = "求 {}" if p.meta["language"] == "zh" else "Compute {}."
        assert p.question == expected.format(p.meta["expression"])
    p = CountdownTask(language="zh", question_format_zh="{numbers} => {target}").sample(
        random.Random(1)
    )
    assert p.question == f"{p.meta['numbers']} => {p.meta['target']}"


@pytest.mark.parametrize("cls", [ArithmeticTask, CountdownTask])
@pytest.mark.parametrize("language", ["fr", "EN", "", "zh-CN"])
def test_bad_language_raises(cls, language: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"got {language!r}")):
        cls(language=language)


def test_chinese_text_is_consistently_chinese() -> None:
    for task in (ArithmeticTask(language="zh"), CountdownTask(language="zh")):
        for p in task.generate(50, seed=2):
            # numbers and operators are neutral, so only the Chinese words count
            assert language_consistency(p.solution, "zh") == 1.0
            assert language_consistency(p.question, "zh") == 1.0
    for p in CountdownTask().generate(20, seed=2):
        assert language_consistency(p.question, "en") == 1.0
        assert language_consistency(p.solution, "en") is None  # only numbers


def test_difficulty_levels_are_recorded_and_drawn_from_the_list() -> None:
    problems = ArithmeticTask(digits=1, num_ops=[1, 3]).generate(200, seed=0)
    levels = Counter(p.meta["level"] for p in problems)
    assert set(levels) == {1, 3} and min(levels.values()) > 60
    for p in problems:  # a level-k problem has k operations and a k-line worked solution
        ops = sum(p.meta["expression"].count(op) for op in " + - * ".split())
        assert p.meta["level"] == ops == len(p.solution.splitlines())
        assert Fraction(eval(p.meta["expression"])) == Fraction(p.answer)  # noqa: S307
    assert {p.meta["level"] for p in ArithmeticTask(num_ops=2).generate(20, 0)} == {2}
    countdown = CountdownTask(num_numbers=[3, 4]).generate(100, seed=1)
    for p in countdown:
        assert p.meta["level"] == len(p.meta["numbers"]) in (3, 4)
        assert check_countdown(p.answer, p.meta["numbers"], p.meta["target"])


def test_long_multiplication_by_level_with_partial_products() -> None:
    task = MultiplicationTask(digits=[[2, 1], [3, 2]])
    problems = task.generate(100, seed=0)
    assert {p.meta["level"] for p in problems} == {1, 2}
    for p in problems:
        a, b = (int(x) for x in re.fullmatch(r"What is (\d+) \* (\d+)\?", p.question).groups())
        assert (len(str(a)), len(str(b))) == ((2, 1) if p.meta["level"] == 1 else (3, 2))
        assert p.answer == str(a * b)
        assert p.solution.splitlines()[-1].endswith(f"= {a * b}")
    worked = MultiplicationTask(digits=[[2, 2]]).sample(random.Random(3))
    a, b = (int(x) for x in worked.meta["expression"].split(" * "))
    tens, units = divmod(b, 10)
    assert worked.solution == (
        f"{a} * {units} = {a * units}\n{a} * {tens * 10} = {a * tens * 10}\n"
        f"{a * units} + {a * tens * 10} = {a * b}"
        if units
        else f"{a} * {tens * 10} = {a * b}"
    )


@pytest.mark.parametrize("solution_language", ["en", "zh"])
def test_solution_language_overrides_the_questions(solution_language: str) -> None:
    task = ArithmeticTask(num_ops=[1, 3], language="mixed", solution_language=solution_language)
    for p in task.generate(100, seed=3):
        operands = [int(n) for n in re.findall(r"\d+", p.meta["expression"])]
        replayed = worded_replay(
            p.solution, operands, EN_WORDS if solution_language == "en" else ZH_WORDS
        )
        assert replayed == int(p.answer)
        assert language_consistency(p.solution, solution_language) == 1.0
    # the question and its gold answer are those of the default task: only the solution differs
    default = ArithmeticTask(num_ops=[1, 3], language="mixed").generate(100, seed=3)
    assert [(p.question, p.answer) for p in task.generate(100, seed=3)] == [
        (p.question, p.answer) for p in default
    ]


def test_mixed_solution_language_is_drawn_independently_of_the_question() -> None:
    problems = ArithmeticTask(num_ops=2, language="mixed", solution_language="mixed").generate(
        400, seed=6
    )
    pairs = Counter(
        (p.meta["language"], "zh" if CJK.search(p.solution) else "en") for p in problems
    )
    # all four (question, solution) language pairs, each near a quarter of 400
    assert set(pairs) == {("en", "en"), ("en", "zh"), ("zh", "en"), ("zh", "zh")}
    assert min(pairs.values()) > 70, pairs
    mismatched = [
        p for p in problems if (p.meta["language"] == "zh") != bool(CJK.search(p.solution))
    ]
    for p in mismatched:
        assert language_consistency(p.solution, p.meta["language"]) == 0.0
    assert problems == ArithmeticTask(
        num_ops=2, language="mixed", solution_language="mixed"
    ).generate(400, seed=6)


def test_default_solution_language_keeps_the_problem_stream() -> None:
    # "question" draws nothing: the stream (and every earlier experiment's data) is unchanged
    explicit = ArithmeticTask(language="mixed", solution_language="question").generate(50, seed=9)
    assert explicit == ArithmeticTask(language="mixed").generate(50, seed=9)


@pytest.mark.parametrize("bad", ["match", "EN", None, "fr"])
def test_bad_solution_language_raises(bad) -> None:
    with pytest.raises(ValueError, match=re.escape(f"got {bad!r}")):
        ArithmeticTask(solution_language=bad)
