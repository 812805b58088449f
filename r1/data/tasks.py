"""Seedable procedural reasoning tasks with exact gold answers and worked solutions."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from r1.data.problem import Problem

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
ARITHMETIC_OPS = ("+", "-", "*")
LANGUAGES = ("en", "zh", "mixed")  # "mixed": English or Chinese, drawn per problem


@dataclass(frozen=True)
class _Num:
    value: int


@dataclass(frozen=True)
class _BinOp:
    op: str
    left: _Expr
    right: _Expr


_Expr = _Num | _BinOp


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b  # callers only build exact divisions


def _normalize(e: _Expr) -> _Expr:
    """Rotate ``a + (b ± c)`` into ``(a + b) ± c`` (and the same for ``*``, ``/``).

    The rotated tree has the same value and is the one a reader parses from the
    minimally parenthesised rendering, so worked solutions follow the rendered text.
    """
    if isinstance(e, _Num):
        return e
    left, right = _normalize(e.left), _normalize(e.right)
    if (
        e.op in ("+", "*")
        and isinstance(right, _BinOp)
        and _PRECEDENCE[right.op] == _PRECEDENCE[e.op]
    ):
        return _normalize(_BinOp(right.op, _BinOp(e.op, left, right.left), right.right))
    return _BinOp(e.op, left, right)


def _render(e: _Expr) -> str:
    """Render with standard precedence and only the parentheses that are needed."""
    if isinstance(e, _Num):
        return str(e.value)
    return f"{_operand(e.left, e.op, False)} {e.op} {_operand(e.right, e.op, True)}"


def _operand(child: _Expr, parent_op: str, is_right: bool) -> str:
    text = _render(child)
    if isinstance(child, _BinOp):
        child_prec, parent_prec = _PRECEDENCE[child.op], _PRECEDENCE[parent_op]
        if child_prec < parent_prec or (
            is_right and child_prec == parent_prec and parent_op in ("-", "/")
        ):
            return f"({text})"
    return text


def _evaluate(e: _Expr, steps: list[str]) -> int:
    """Value of ``e``; appends one ``a op b = c`` line per operation, innermost first."""
    if isinstance(e, _Num):
        return e.value
    a, b = _evaluate(e.left, steps), _evaluate(e.right, steps)
    c = _apply(e.op, a, b)
    steps.append(f"{a} {e.op} {b} = {c}")
    return c


def _worked(e: _Expr) -> tuple[str, int, str]:
    """(rendered expression, value, solution) of an expression tree."""
    e = _normalize(e)
    steps: list[str] = []
    value = _evaluate(e, steps)
    return _render(e), value, "\n".join(steps)


def _chinese_solution(solution: str) -> str:
    """Worked steps with Chinese connectives: "先算 a + b = c" then "再算 ..." per step."""
    steps = solution.split("\n")
    if len(steps) == 1:
        return f"计算 {steps[0]}"
    return "\n".join(f"{'再算' if i else '先算'} {step}" for i, step in enumerate(steps))


def _english_solution(solution: str) -> str:
    """Worked steps with English connectives, mirroring ``_chinese_solution``."""
    steps = solution.split("\n")
    if len(steps) == 1:
        return f"Compute {steps[0]}"
    return "\n".join(f"{'Then' if i else 'First'} {step}" for i, step in enumerate(steps))


SOLUTION_LANGUAGES = ("question", "en", "zh", "mixed")


def _written_solution(
    solution: str, question_language: str, solution_language: str, rng: random.Random
) -> str:
    """The worked steps as written out. "question": in the question's language (Chinese
    connectives for Chinese questions, bare steps for English ones); "en" or "zh": with that
    language's connectives whatever the question's; "mixed": one of the two drawn per problem
    from ``rng``, independent of the question's language (a chain of thought that switches
    language, as R1-Zero's did)."""
    if solution_language == "question":
        return _chinese_solution(solution) if question_language == "zh" else solution
    if solution_language == "mixed":
        solution_language = rng.choice(("en", "zh"))
    return _chinese_solution(solution) if solution_language == "zh" else _english_solution(solution)


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return language


def _draw_language(language: str, rng: random.Random) -> str:
    """The language of one problem; "mixed" draws from ``rng`` (before the problem itself)."""
    return rng.choice(("en", "zh")) if language == "mixed" else language


class Task(ABC):
    """A generator of problems; subclasses draw one problem from ``rng``."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Problem: ...

    def generate(self, n: int, seed: int) -> list[Problem]:
        """``n`` problems, deterministic in ``seed``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]


def _levels(name: str, value: int | Sequence[int], minimum: int) -> tuple[int, ...]:
    """An int or a list of ints, each >= minimum: the difficulty levels a task draws from."""
    levels = (value,) if isinstance(value, int) else tuple(value)
    if not levels or any(not isinstance(v, int) or v < minimum for v in levels):
        raise ValueError(f"{name} must be an integer >= {minimum} or a list of them, got {value!r}")
    return levels


def _draw_level(levels: tuple[int, ...], rng: random.Random) -> int:
    """One of `levels`; a single level draws nothing, so the problem stream stays as it was
    before levels existed."""
    return levels[0] if len(levels) == 1 else rng.choice(levels)


class ArithmeticTask(Task):
    """Multi-step integer expressions such as ``(23 + 47) * 3``.

    ``num_ops`` is the number of operations, or a list of them drawn per problem: the
    problem's difficulty level (``meta["level"]``). ``language`` is "en", "zh" or "mixed"
    (per problem); English questions use ``question_format``, Chinese ones
    ``question_format_zh``, with worked solutions in kind. ``solution_language`` decouples
    the worked solution's language from the question's ("en", "zh", or "mixed": drawn per
    problem), to make cold-start data whose reasoning mixes languages.
    """

    def __init__(
        self,
        digits: int = 2,
        num_ops: int | Sequence[int] = 2,
        ops: Sequence[str] = ARITHMETIC_OPS,
        question_format: str = "What is {expression}?",
        language: str = "en",
        question_format_zh: str = "计算 {expression} 的值。",
        solution_language: str = "question",
    ) -> None:
        if digits < 1:
            raise ValueError(f"digits must be >= 1, got {digits}")
        self.levels = _levels("num_ops", num_ops, 1)
        ops = tuple(ops)
        if not ops or not set(ops) <= set(ARITHMETIC_OPS):
            raise ValueError(
                f"ops must be a non-empty subset of {', '.join(ARITHMETIC_OPS)}, got {ops}"
            )
        self.digits = digits
        self.ops = ops
        self.question_format = question_format
        self.language = _check_language(language)
        self.question_format_zh = question_format_zh
        if solution_language not in SOLUTION_LANGUAGES:
            raise ValueError(
                f"solution_language must be one of {', '.join(SOLUTION_LANGUAGES)}, "
                f"got {solution_language!r}"
            )
        self.solution_language = solution_language

    def _tree(self, rng: random.Random, num_ops: int) -> _Expr:
        if num_ops == 0:
            return _Num(rng.randint(10 ** (self.digits - 1), 10**self.digits - 1))
        left_ops = rng.randrange(num_ops)
        return _BinOp(
            rng.choice(self.ops),
            self._tree(rng, left_ops),
            self._tree(rng, num_ops - 1 - left_ops),
        )

    def sample(self, rng: random.Random) -> Problem:
        language = _draw_language(self.language, rng)
        level = _draw_level(self.levels, rng)
        expression, value, solution = _worked(self._tree(rng, level))
        question_format = self.question_format_zh if language == "zh" else self.question_format
        return Problem(
            question=question_format.format(expression=expression),
            answer=str(value),
            solution=_written_solution(solution, language, self.solution_language, rng),
            task="arithmetic",
            meta={"expression": expression, "language": language, "level": level},
        )


class MultiplicationTask(Task):
    """Long multiplication, ``a * b`` with ``a`` of d1 and ``b`` of d2 digits. ``digits`` is
    a list of [d1, d2] pairs, one per difficulty level (level k is the k-th pair, drawn per
    problem): [[2, 1], [2, 2], [3, 2], [3, 3]] by default. The worked solution writes one
    partial product per digit of ``b`` and adds them up, the way it is done on paper."""

    def __init__(
        self,
        digits: Sequence[Sequence[int]] = ((2, 1), (2, 2), (3, 2), (3, 3)),
        question_format: str = "What is {a} * {b}?",
        language: str = "en",
        question_format_zh: str = "计算 {a} * {b} 的值。",
    ) -> None:
        pairs = [tuple(pair) for pair in digits]
        if not pairs or any(len(p) != 2 or min(p) < 1 for p in pairs):
            raise ValueError(
                f"digits must be a list of [d1, d2] pairs of integers >= 1, got {digits!r}"
            )
        self.pairs = pairs
        self.question_format = question_format
        self.language = _check_language(language)
        self.question_format_zh = question_format_zh

    def sample(self, rng: random.Random) -> Problem:
        language = _draw_language(self.language, rng)
        level = rng.randrange(len(self.pairs)) + 1
        d1, d2 = self.pairs[level - 1]
        a, b = (rng.randint(10 ** (d - 1), 10**d - 1) for d in (d1, d2))
        partials = [
            (a * int(digit) * 10**place, f"{a} * {int(digit) * 10**place}")
            for place, digit in enumerate(reversed(str(b)))
            if digit != "0"
        ]
        steps = [f"{term} = {value}" for value, term in partials]
        if len(partials) > 1:
            steps.append(" + ".join(str(v) for v, _ in partials) + f" = {a * b}")
        solution = "\n".join(steps)
        question_format = self.question_format_zh if language == "zh" else self.question_format
        return Problem(
            question=question_format.format(a=a, b=b),
            answer=str(a * b),
            solution=_written_solution(solution, language, "question", rng),
            task="arithmetic",
            meta={"expression": f"{a} * {b}", "language": language, "level": level},
        )


class CountdownTask(Task):
    """Reach a target by combining every given number once with ``+ - * /``.

    Each problem is built from a random combination of its numbers, so a solution
    always exists; intermediate values of that combination are positive integers.
    ``num_numbers`` (or a list of them, drawn per problem) is the difficulty level.
    ``language`` works as for ``ArithmeticTask``.
    """

    max_attempts = 10_000

    def __init__(
        self,
        num_numbers: int | Sequence[int] = 4,
        max_number: int = 50,
        max_target: int = 1000,
        question_format: str = (
            "Using the numbers {numbers}, create an expression that equals {target}. "
            "Use each number exactly once, with + - * / and parentheses."
        ),
        language: str = "en",
        question_format_zh: str = (
            "使用数字 {numbers}，每个数字恰好使用一次，通过 + - * / 和括号，"
            "构造一个等于 {target} 的表达式。"
        ),
    ) -> None:
        self.levels = _levels("num_numbers", num_numbers, 2)
        if max_number < 1:
            raise ValueError(f"max_number must be >= 1, got {max_number}")
        if max_target < 1:
            raise ValueError(f"max_target must be >= 1, got {max_target}")
        self.max_number = max_number
        self.max_target = max_target
        self.question_format = question_format
        self.language = _check_language(language)
        self.question_format_zh = question_format_zh

    def _valid_ops(self, a: int, b: int) -> list[str]:
        results = {"+": a + b, "-": a - b, "*": a * b}
        if a % b == 0:
            results["/"] = a // b
        return [op for op, r in results.items() if 0 < r <= self.max_target]

    def _combine(self, rng: random.Random, numbers: list[int]) -> _Expr | None:
        """Merge random pairs with random ops until one expression is left."""
        pool: list[tuple[int, _Expr]] = [(n, _Num(n)) for n in numbers]
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            (a, left), (b, right) = pool[i], pool[j]
            ops = self._valid_ops(a, b)
            if not ops:
                return None
            op = rng.choice(ops)
            pool = [item for k, item in enumerate(pool) if k not in (i, j)]
            pool.append((_apply(op, a, b), _BinOp(op, left, right)))
        return pool[0][1]

    def sample(self, rng: random.Random) -> Problem:
        language = _draw_language(self.language, rng)
        level = _draw_level(self.levels, rng)
        for _ in range(self.max_attempts):
            numbers = [rng.randint(1, self.max_number) for _ in range(level)]
            tree = self._combine(rng, numbers)
            if tree is not None:
                break
        else:
            raise RuntimeError(
                f"no countdown problem found in {self.max_attempts} attempts with "
                f"num_numbers={level}, max_number={self.max_number}, "
                f"max_target={self.max_target}"
            )
        expression, target, solution = _worked(tree)
        question_format = self.question_format_zh if language == "zh" else self.question_format
        return Problem(
            question=question_format.format(numbers=numbers, target=target),
            answer=expression,
            solution=_written_solution(solution, language, "question", rng),
            task="countdown",
            meta={"numbers": numbers, "target": target, "language": language, "level": level},
        )


GENERAL_REQUESTS = {
    "en": (
        "Write one friendly sentence about {topic}.",
        "Give a short tip about {topic}.",
        "Describe {topic} to a child in two sentences.",
        "Write a polite reply to a friend who asked about {topic}.",
    ),
    "zh": (
        "用一句友好的话谈谈{topic}。",
        "给出一个关于{topic}的小建议。",
        "用两句话向孩子介绍{topic}。",
    ),
}
# The kind of answer each general request asks for, and how many sentences that is: the rules
# the preference generator follows (r1.data.preferences) and the `general_rules` term checks.
REQUEST_KINDS = {
    "Write one friendly sentence about {topic}.": "friendly",
    "Give a short tip about {topic}.": "tip",
    "Describe {topic} to a child in two sentences.": "child",
    "Write a polite reply to a friend who asked about {topic}.": "reply",
    "用一句友好的话谈谈{topic}。": "friendly",
    "给出一个关于{topic}的小建议。": "tip",
    "用两句话向孩子介绍{topic}。": "child",
}
SENTENCES_ASKED = {"friendly": 1, "tip": 1, "child": 2, "reply": 2}
GENERAL_TOPICS = {
    "en": (
        "the weather",
        "breakfast",
        "a walk in the park",
        "reading",
        "music",
        "the sea",
        "sleep",
        "a birthday",
        "trees",
        "a rainy day",
        "cooking",
        "friendship",
    ),
    "zh": ("天气", "早餐", "公园散步", "读书", "音乐", "大海", "睡眠", "生日", "树木", "雨天"),
}


class GeneralTask(Task):
    """General (non-reasoning) requests with no gold answer, `task="general"`: the prompts
    that DeepSeek-R1's last RL stage scores with a reward model rather than rules."""

    def __init__(self, language: str = "en"):
        self.language = _check_language(language)

    def sample(self, rng: random.Random) -> Problem:
        language = _draw_language(self.language, rng)
        request = rng.choice(GENERAL_REQUESTS[language])
        question = request.format(topic=rng.choice(GENERAL_TOPICS[language]))
        sentences = SENTENCES_ASKED[REQUEST_KINDS[request]]
        meta = {"language": language, "sentences": sentences}
        return Problem(question=question, answer="", task="general", meta=meta)


class MixtureTask(Task):
    """Problems drawn from several tasks by weight (each problem keeps its own `task`, which
    routes it to its reward terms): e.g. arithmetic for rule rewards plus general requests for
    a reward model."""

    def __init__(self, sources: dict[str, Task], weights: dict[str, float] | None = None):
        if not sources:
            raise ValueError("MixtureTask needs at least one source")
        weights = dict(weights or {})
        unknown = set(weights) - set(sources)
        if unknown:
            raise ValueError(
                f"weights for unknown sources {sorted(unknown)}; sources: {sorted(sources)}"
            )
        self.names = list(sources)
        self.sources = [sources[name] for name in self.names]
        self.weights = [float(weights.get(name, 1.0)) for name in self.names]
        if any(w < 0 for w in self.weights) or not any(self.weights):
            raise ValueError(f"mixture weights must be >= 0 and not all 0, got {weights}")
        self.language = None  # per source

    def sample(self, rng: random.Random) -> Problem:
        source = rng.choices(self.sources, weights=self.weights)[0]
        return source.sample(rng)
