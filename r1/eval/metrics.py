"""Evaluation metrics over sampled completions: pass@k, cons@k (majority vote), reflection
words ("aha moment" analysis of the DeepSeek-R1 paper) and completion-length statistics.

Pure Python: the inputs are correctness tables, extracted answers, texts and lengths.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence

from r1.rewards.accuracy import math_equal

Equivalence = Callable[[str, str], bool]

REFLECTION_WORDS: tuple[str, ...] = (
    "wait",
    "mistake",
    "however",
    "retry",
    "verify",
    "wrong",
    "check",
    "等等",
    "等一下",
    "错误",
    "然而",
    "但是",
    "重试",
    "验证",
    "检查",
)

# Chinese, Japanese and Korean letters: a word holding one is matched as a plain substring.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_HAS_CJK = re.compile(f"[{_CJK}]")
# A Latin word must not touch another word character, but CJK letters count as a boundary:
# language-mixed text like "我们再check一下" does hold the word "check".
_WORD_CHAR = rf"[^\W{_CJK}]"


# ---------------------------------------------------------------------------------------------
# pass@k


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): the probability that k samples drawn
    without replacement from num_samples, of which num_correct are right, hold a right one.

    1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms
    the huge binomials.
    """
    n, c = num_samples, num_correct
    if k < 1 or k > n:
        raise ValueError(f"pass@k needs 1 <= k <= num_samples, got k={k}, num_samples={n}")
    if c < 0 or c > n:
        raise ValueError(
            f"pass@k needs 0 <= num_correct <= num_samples, got num_correct={c}, num_samples={n}"
        )
    if n - c < k:  # every k-subset holds a right sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """Mean pass@k over problems; correct[p][s]: sample s of problem p is right."""
    if not correct:
        raise ValueError("mean_pass_at_k needs at least one problem, got an empty table")
    total = 0.0
    for index, row in enumerate(correct):
        try:
            total += pass_at_k(len(row), sum(bool(x) for x in row), k)
        except ValueError as error:
            raise ValueError(f"problem {index}: {error}") from None
    return total / len(correct)


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) of per-problem scores: the sample standard
    deviation (n - 1) over sqrt(n). The k samples of a problem are not independent, so a
    benchmark's error is taken over its problems, each scored by its mean over k. The error
    is NaN for fewer than two problems (nothing to estimate it from)."""
    if not values:
        raise ValueError("mean_and_stderr needs at least one value, got none")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


# ---------------------------------------------------------------------------------------------
# Majority vote (cons@k)


def group_answers(
    answers: Sequence[str | None], equivalent: Equivalence = math_equal
) -> list[list[int]]:
    """Indices of equivalent answers, grouped in order of first appearance.

    A new answer joins the first group whose first member (its representative) it is
    equivalent to, called as equivalent(answer, representative). None and blank answers are
    left out. Identical strings are always equivalent, without asking `equivalent`: math_equal
    calls two copies of an unparseable answer ("foo", "foo") different.
    """
    groups: list[list[int]] = []
    representatives: list[str] = []
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        for group, representative in zip(groups, representatives):
            if answer.strip() == representative.strip() or equivalent(answer, representative):
                group.append(index)
                break
        else:
            groups.append([index])
            representatives.append(answer)
    return groups


def majority_answer(
    answers: Sequence[str | None], equivalent: Equivalence = math_equal
) -> str | None:
    """The representative of the largest group of equivalent answers; a tie goes to the group
    that appeared first. None when no answer is usable."""
    groups = group_answers(answers, equivalent)
    if not groups:
        return None
    return answers[max(groups, key=len)[0]]  # max keeps the first of equal lengths


def cons_at_k(
    answers_per_problem: Sequence[Sequence[str | None]],
    golds: Sequence[str],
    k: int,
    is_correct: Equivalence = math_equal,
    equivalent: Equivalence = math_equal,
) -> float:
    """Share of problems whose majority answer over their first k answers is right, judged
    as is_correct(majority, gold). A problem with no usable answer among them is unsolved."""
    if len(answers_per_problem) != len(golds):
        raise ValueError(
            f"cons@k needs one gold per problem, got {len(answers_per_problem)} problems "
            f"and {len(golds)} golds"
        )
    if not golds:
        raise ValueError("cons@k needs at least one problem, got none")
    if k < 1:
        raise ValueError(f"cons@k needs k >= 1, got k={k}")
    for index, answers in enumerate(answers_per_problem):
        if len(answers) < k:
            raise ValueError(f"cons@k with k={k}: problem {index} has only {len(answers)} answers")
    solved = 0
    for answers, gold in zip(answers_per_problem, golds):
        majority = majority_answer(answers[:k], equivalent)
        solved += majority is not None and bool(is_correct(majority, gold))
    return solved / len(golds)


# ---------------------------------------------------------------------------------------------
# Reflection words


@functools.lru_cache(maxsize=32)
def _reflection_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = []
    # Longest first, so that at one position "等一下" wins over a shorter word it starts with.
    for word in sorted(set(words), key=len, reverse=True):
        if not word.strip():
            raise ValueError(f"reflection words must not be blank, got {word!r}")
        phrase = r"\s+".join(re.escape(part) for part in word.split())
        if _HAS_CJK.search(word):
            alternatives.append(phrase)
        else:
            alternatives.append(rf"(?<!{_WORD_CHAR}){phrase}(?!{_WORD_CHAR})")
    return re.compile("|".join(alternatives), re.IGNORECASE)


def count_reflection_words(text: str, words: Sequence[str] = REFLECTION_WORDS) -> int:
    """Occurrences of reflection words in text, case-insensitive.

    Latin-script words and phrases ("let me check") match as whole words only: "wait" counts
    in "Wait," and "wait." but not in "awaited" or "waiting", and "check" not in "checked".
    Inner spaces of a phrase match any run of whitespace. Words holding a CJK character match
    as substrings, since Chinese puts no spaces between words. Occurrences never overlap: each
    stretch of text counts once, as the longest word that matches there.
    """
    if not words:
        return 0
    return len(_reflection_pattern(tuple(words)).findall(text))


def reflection_stats(
    texts: Sequence[str], words: Sequence[str] = REFLECTION_WORDS
) -> dict[str, float]:
    """reflection_words: mean count per text; reflection_rate: share of texts with at least
    one. Both 0.0 for no texts."""
    if not texts:
        return {"reflection_words": 0.0, "reflection_rate": 0.0}
    counts = [count_reflection_words(text, words) for text in texts]
    return {
        "reflection_words": sum(counts) / len(counts),
        "reflection_rate": sum(count > 0 for count in counts) / len(counts),
    }


# ---------------------------------------------------------------------------------------------
# Lengths


def _percentile(ordered: Sequence[float], q: float) -> float:
    """q-th percentile (0..100) of sorted values, interpolating linearly between the two
    nearest ranks, like numpy.percentile's default."""
    position = q / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def length_stats(lengths: Sequence[int | float]) -> dict[str, float]:
    """mean, p50, p90, p99 and max of completion lengths; all NaN for no lengths (a logged
    NaN says "nothing measured", where 0 would read as empty completions)."""
    keys = ("mean", "p50", "p90", "p99", "max")
    if not lengths:
        return dict.fromkeys(keys, math.nan)
    ordered = sorted(float(x) for x in lengths)
    return {
        "mean": sum(ordered) / len(ordered),
        "p50": _percentile(ordered, 50),
        "p90": _percentile(ordered, 90),
        "p99": _percentile(ordered, 99),
        "max": ordered[-1],
    }
