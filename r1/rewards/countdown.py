"""Safe exact evaluation of countdown answers (no ``eval``: a small recursive-descent parser).

Grammar, over integers with at most ``MAX_DIGITS`` digits::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-"* atom
    atom   := INTEGER | "(" expr ")"

``×`` and ``÷`` are read as ``*`` and ``/``. Model output may append the result
(``"(25-5)*3+7 = 67"``); only the text before the first ``=`` is evaluated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

MAX_LENGTH = 200
MAX_DIGITS = 6
MAX_DEPTH = 32

_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "×": "*", "÷": "/", "(": "(", ")": ")"}


class _Invalid(Exception):
    """Malformed expression or division by zero."""


def _tokenize(text: str) -> list[str | int]:
    tokens: list[str | int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _OPERATORS:
            tokens.append(_OPERATORS[ch])
            i += 1
        elif "0" <= ch <= "9":
            start = i
            while i < len(text) and "0" <= text[i] <= "9":
                i += 1
            if i - start > MAX_DIGITS:
                raise _Invalid
            tokens.append(int(text[start:i]))
        else:
            raise _Invalid
    return tokens


class _Parser:
    def __init__(self, tokens: list[str | int]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.numbers: list[int] = []

    def _peek(self) -> str | int | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str | int | None:
        token = self._peek()
        self.pos += 1
        return token

    def parse(self) -> Fraction:
        value = self._expr()
        if self.pos != len(self.tokens):
            raise _Invalid
        return value

    def _expr(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            if self._take() == "+":
                value += self._term()
            else:
                value -= self._term()
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while self._peek() in ("*", "/"):
            if self._take() == "*":
                value *= self._unary()
            else:
                divisor = self._unary()
                if divisor == 0:
                    raise _Invalid
                value /= divisor
        return value

    def _unary(self) -> Fraction:
        negations = 0
        while self._peek() == "-":
            self._take()
            negations += 1
        value = self._atom()
        return -value if negations % 2 else value

    def _atom(self) -> Fraction:
        token = self._take()
        if isinstance(token, int):
            self.numbers.append(token)
            return Fraction(token)
        if token != "(":
            raise _Invalid
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Invalid
        value = self._expr()
        if self._take() != ")":
            raise _Invalid
        self.depth -= 1
        return value


def _parse(text: str) -> tuple[Fraction, list[int]] | None:
    """(value, integer literals in order) of the text before the first ``=``, or None."""
    expression = text.split("=", 1)[0]
    if len(expression) > MAX_LENGTH:
        return None
    try:
        parser = _Parser(_tokenize(expression))
        return parser.parse(), parser.numbers
    except _Invalid:
        return None


def evaluate_expression(text: str) -> Fraction | None:
    """Exact value of an arithmetic expression, or None when it is not a valid one."""
    parsed = _parse(text)
    return None if parsed is None else parsed[0]


def numbers_used(text: str) -> list[int] | None:
    """The integer literals of a valid expression, in order; None when it is invalid."""
    parsed = _parse(text)
    return None if parsed is None else parsed[1]


def check_countdown(expression: str, numbers: Sequence[int], target: int) -> bool:
    """True when ``expression`` uses exactly the given numbers (as a multiset) and equals ``target``."""
    parsed = _parse(expression)
    if parsed is None:
        return False
    value, used = parsed
    return value == target and Counter(used) == Counter(numbers)
