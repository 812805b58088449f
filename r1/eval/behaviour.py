"""The behaviour curves the DeepSeek-R1 paper draws, as metrics of a set of completions.

- `reflection_rate/<word>`: the share of completions holding that reflection word at least
  once ("wait", "verify", "check", ...; whole words, as `count_reflection_words` matches them);
- `completion_len_correct`, `completion_len_incorrect`: mean length (tokens) of the right and
  of the wrong completions; `completion_len_level_<L>`: of the completions of problems at
  difficulty level L, where the data has one (MATH's `level`: "Level 3" or 3 -> `level_3`);
- `repetition_rate`: the mean n-gram repetition (1 - distinct / all word 3-grams, as the
  repetition reward measures it) over the completions long enough to have one;
- `language_mixing_rate`: the share of completions whose reasoning (the <think> block, else
  the whole text) mixes languages: at least `min_share` of its counted units are not in its
  main language (r1.rewards.language's units: CJK characters, words; numbers and math are
  neutral);
- `language_consistency`: where each problem's language is known, the mean share of that
  language among the units of the reasoning (as the lang_consistency reward measures it), over
  the completions that have countable units: whether a Chinese question is reasoned about in
  Chinese, whatever reward the run trains with.

Pure Python over texts, lengths, correctness and levels. A metric with nothing to measure is
NaN ("no signal"): loggers leave it out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from r1.eval.metrics import REFLECTION_WORDS, count_reflection_words
from r1.rewards.language import consistency_total, language_counts, think_text
from r1.rewards.repetition import repetition_rate

MIXING_MIN_SHARE = 0.1  # a completion mixes languages when 10% of its units are not its main one
_UNSAFE = re.compile(r"[^\w@.+-]+")  # what a metric name may not hold (spaces, slashes)


def metric_key(label: Any) -> str:
    """A word or level as a metric-name part: "let me check" -> "let_me_check"."""
    return _UNSAFE.sub("_", str(label).strip().lower()).strip("_") or "_"


def level_key(level: Any) -> str | None:
    """A difficulty level as a name: "Level 3" and 3 -> "3", "hard" -> "hard"; None for
    none (no level, a blank one, MATH's "Level ?")."""
    if level is None or isinstance(level, bool):
        return None
    if isinstance(level, float) and level.is_integer():
        level = int(level)
    text = str(level).strip()
    number = re.fullmatch(r"(?:level\s*)?(\d+)", text, re.IGNORECASE)
    if number:
        return number.group(1)
    if not text or "?" in text:
        return None
    return metric_key(text)


Totals = dict[str, tuple[float, int]]  # name -> (sum, count): its mean is sum / count


def _means(totals: Totals) -> dict[str, float]:
    return {name: total / count if count else math.nan for name, (total, count) in totals.items()}


def reflection_totals(texts: Sequence[str], words: Sequence[str] = REFLECTION_WORDS) -> Totals:
    totals = {}
    for word in dict.fromkeys(words):  # each once, in the given order
        present = sum(count_reflection_words(text, (word,)) > 0 for text in texts)
        totals[f"reflection_rate/{metric_key(word)}"] = (float(present), len(texts))
    return totals


def reflection_word_rates(
    texts: Sequence[str], words: Sequence[str] = REFLECTION_WORDS
) -> dict[str, float]:
    """{"reflection_rate/<word>": share of texts holding `word`}, one entry per word; NaN
    for no texts."""
    return _means(reflection_totals(texts, words))


def outcome_totals(lengths: Sequence[float], correct: Sequence[bool | None]) -> Totals:
    if len(lengths) != len(correct):
        raise ValueError(f"{len(lengths)} lengths but {len(correct)} correctness values")
    totals = {}
    for name, want in (("completion_len_correct", True), ("completion_len_incorrect", False)):
        chosen = [float(n) for n, c in zip(lengths, correct) if c is not None and bool(c) is want]
        totals[name] = (sum(chosen), len(chosen))
    return totals


def length_by_outcome(lengths: Sequence[float], correct: Sequence[bool | None]) -> dict[str, float]:
    """Mean length of the right and of the wrong completions (NaN where there is none;
    None: not known, left out)."""
    return _means(outcome_totals(lengths, correct))


def level_totals(lengths: Sequence[float], levels: Sequence[Any]) -> Totals:
    if len(lengths) != len(levels):
        raise ValueError(f"{len(lengths)} lengths but {len(levels)} levels")
    groups: dict[str, list[float]] = {}
    for length, level in zip(lengths, levels):
        key = level_key(level)
        if key is not None:
            groups.setdefault(key, []).append(float(length))

    def order(key: str) -> tuple[int, float, str]:
        return (0, float(key), "") if key.isdigit() else (1, 0.0, key)

    return {
        f"completion_len_level_{key}": (sum(groups[key]), len(groups[key]))
        for key in sorted(groups, key=order)
    }


def length_by_level(lengths: Sequence[float], levels: Sequence[Any]) -> dict[str, float]:
    """{"completion_len_level_<L>": mean length of the completions at level L}, levels in
    sorted order (numbers numerically); completions without a level are left out."""
    return _means(level_totals(lengths, levels))


def mean_repetition(texts: Sequence[str], n: int = 3) -> float:
    """Mean n-gram repetition rate over the texts with at least one n-gram; NaN if none has."""
    rates = [rate for rate in (repetition_rate(text, n) for text in texts) if rate is not None]
    return _means({"": (sum(rates), len(rates))})[""]


def mixes_languages(text: str, min_share: float = MIXING_MIN_SHARE) -> bool | None:
    """Whether the reasoning of `text` (its <think> block, else all of it) mixes languages:
    the units outside its main language are at least `min_share` of them. None when it has
    no countable unit (only numbers and math)."""
    thought = think_text(text)
    counts = language_counts(text if thought is None else thought)
    total = sum(counts.values())
    if not total:
        return None
    return (total - counts.most_common(1)[0][1]) / total >= min_share


def language_mixing_rate(texts: Sequence[str], min_share: float = MIXING_MIN_SHARE) -> float:
    """Share of the texts with countable units that mix languages; NaN if none has any."""
    verdicts = [v for v in (mixes_languages(text, min_share) for text in texts) if v is not None]
    return _means({"": (float(sum(verdicts)), len(verdicts))})[""]


def consistency_totals(texts: Sequence[str], languages: Sequence[str | None]) -> Totals:
    """language_consistency as (sum, count): each text's reasoning (its <think> block, else
    all of it) scored against its problem's language; texts with no language or no countable
    unit are left out."""
    return {"language_consistency": consistency_total(texts, languages)}


def behaviour_totals(
    texts: Sequence[str],
    lengths: Sequence[float],
    correct: Sequence[bool | None] | None = None,
    levels: Sequence[Any] | None = None,
    words: Sequence[str] = REFLECTION_WORDS,
    languages: Sequence[str | None] | None = None,
) -> Totals:
    """Every behaviour metric of the module doc as (sum, count): means of several batches
    combine exactly by adding both (held-out validation runs in batches, over ranks).
    `correct`, `levels` and `languages` (one per text; None: not known) are optional: without
    them the splits and language_consistency are left out."""
    if len(texts) != len(lengths):
        raise ValueError(f"{len(texts)} texts but {len(lengths)} lengths")
    totals = reflection_totals(texts, words)
    if correct is not None:
        totals.update(outcome_totals(lengths, correct))
    if levels is not None:
        totals.update(level_totals(lengths, levels))
    rates = [r for r in (repetition_rate(text) for text in texts) if r is not None]
    totals["repetition_rate"] = (sum(rates), len(rates))
    mixed = [v for v in (mixes_languages(text) for text in texts) if v is not None]
    totals["language_mixing_rate"] = (float(sum(mixed)), len(mixed))
    if languages is not None:
        totals.update(consistency_totals(texts, languages))
    return totals


def behaviour_metrics(
    texts: Sequence[str],
    lengths: Sequence[float],
    correct: Sequence[bool | None] | None = None,
    levels: Sequence[Any] | None = None,
    words: Sequence[str] = REFLECTION_WORDS,
    languages: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """The means of `behaviour_totals` (NaN where nothing was measured)."""
    return _means(behaviour_totals(texts, lengths, correct, levels, words, languages))
