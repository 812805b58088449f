"""Decontamination: word n-gram overlap between training texts and benchmark problems.

A training row is contaminated when any n consecutive words of it (10 by default, as
DeepSeek-R1 filtered its training data) also occur in a benchmark problem. Words are
lower-cased runs of letters and digits, so case, punctuation, LaTeX backslashes and spacing
do not hide a copy. A benchmark problem shorter than n words counts as one n-gram of its own
length: a training text holding all of it, word for word, overlaps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from r1.data.problem import Problem
from r1.eval.choice import choices_text

DEFAULT_NGRAM = 10
_WORD = re.compile(r"[^\W_]+")

Ngram = tuple[str, ...]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[Ngram]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def benchmark_text(problem: Problem) -> str:
    """What a benchmark problem shows a model: its question, and its options if any."""
    options = problem.meta.get("options") if problem.task == "choice" else None
    return choices_text(problem.question, options) if options else problem.question


@dataclass(frozen=True)
class Match:
    benchmark: str
    problem_id: str
    ngram: str  # the shared words


@dataclass
class NgramIndex:
    """The n-grams of every benchmark problem, each pointing to the first problem holding it."""

    n: int
    grams: dict[Ngram, tuple[str, str]]  # n-gram -> (benchmark, problem id)
    short: list[tuple[str, tuple[str, str]]]  # texts under n words: (" words ", owner)

    @classmethod
    def build(cls, benchmarks: Mapping[str, Sequence[Problem]], n: int = DEFAULT_NGRAM):
        if n < 1:
            raise ValueError(f"n-gram length must be >= 1, got {n}")
        grams: dict[Ngram, tuple[str, str]] = {}
        short: list[tuple[str, tuple[str, str]]] = []
        for name, problems in benchmarks.items():
            for problem in problems:
                owner = (name, str(problem.meta.get("id", "")))
                tokens = words(benchmark_text(problem))
                if 0 < len(tokens) < n:
                    short.append((" " + " ".join(tokens) + " ", owner))
                for gram in ngrams(tokens, n):
                    grams.setdefault(gram, owner)
        return cls(n, grams, short)

    def match(self, text: str) -> Match | None:
        """The first benchmark problem `text` shares an n-gram with, or None."""
        tokens = words(text)
        for i in range(len(tokens) - self.n + 1):
            owner = self.grams.get(tuple(tokens[i : i + self.n]))
            if owner is not None:
                return Match(owner[0], owner[1], " ".join(tokens[i : i + self.n]))
        joined = " " + " ".join(tokens) + " "
        for phrase, owner in self.short:
            if phrase in joined:
                return Match(owner[0], owner[1], phrase.strip())
        return None


def decontaminate(
    texts: Iterable[str], index: NgramIndex
) -> tuple[list[int], list[tuple[int, Match]]]:
    """(indices of the clean texts, (index, match) of the contaminated ones), in order."""
    kept: list[int] = []
    removed: list[tuple[int, Match]] = []
    for i, text in enumerate(texts):
        match = index.match(text)
        if match is None:
            kept.append(i)
        else:
            removed.append((i, match))
    return kept, removed
