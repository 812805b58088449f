"""Offline difficulty filtering: training problems kept by the current policy's pass rate.

`scripts/filter_by_pass_rate.py` samples k completions per training problem and writes each
problem's pass rate to a JSONL file (question, pass_rate, level); `data.pass_rates={path:
<file>}` then trains only on the problems whose rate lies strictly between `low` and `high`
(by default: drop what the policy always or never solves, whose GRPO groups have no spread
and teach nothing). The held-out split is untouched, so a filtered run is scored on the same
problems as an unfiltered one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from r1.checks import ConfigError, check_float
from r1.data.loaders import DataError, json_object, read_jsonl
from r1.data.problem import Problem


def write_pass_rates(
    problems: Sequence[Problem], rates: Sequence[float], path: str | os.PathLike[str]
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for problem, rate in zip(problems, rates, strict=True):
            row = {
                "question": problem.question,
                "pass_rate": rate,
                "level": problem.meta.get("level"),
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_pass_rates(path: str | os.PathLike[str]) -> dict[str, float]:
    def parse(line: str, where: str) -> tuple[str, float]:
        row = json_object(line, where)
        rate = row.get("pass_rate")
        if not isinstance(row.get("question"), str) or not isinstance(rate, int | float):
            raise DataError(f"{where}: needs a string 'question' and a number 'pass_rate'")
        return row["question"], float(rate)

    return dict(read_jsonl(path, parse, what="pass rates"))


@dataclass(frozen=True)
class PassRateFilter:
    """data.pass_rates: keep training problems with low < pass rate < high."""

    path: str
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        check_float("data.pass_rates.low", self.low, 0.0, 1.0)
        check_float("data.pass_rates.high", self.high, 0.0, 1.0)
        if self.low >= self.high:
            raise ConfigError(
                f"data.pass_rates.low={self.low} must be below data.pass_rates.high={self.high}"
            )

    def apply(self, problems: Iterable[Problem]) -> tuple[list[Problem], dict[str, int]]:
        """(kept problems, counts: kept, too_easy, too_hard); every problem needs a rate."""
        rates = read_pass_rates(self.path)
        problems = list(problems)
        unrated = [p for p in problems if p.question not in rates]
        if unrated:
            raise ConfigError(
                f"data.pass_rates.path={self.path}: {len(unrated)} of {len(problems)} training "
                f"problems have no pass rate, e.g. {unrated[0].question[:60]!r}; measure them "
                "with the same data settings (scripts/filter_by_pass_rate.py data=... seed=...)"
            )
        kept = [p for p in problems if self.low < rates[p.question] < self.high]
        counts = {
            "kept": len(kept),
            "too_easy": sum(rates[p.question] >= self.high for p in problems),
            "too_hard": sum(rates[p.question] <= self.low for p in problems),
        }
        if not kept:
            raise ConfigError(
                f"data.pass_rates keeps no training problem ({counts}); widen low/high"
            )
        return kept, counts


def pass_rate_filter(setting: Mapping | None) -> PassRateFilter | None:
    return PassRateFilter(**dict(setting)) if setting is not None else None
