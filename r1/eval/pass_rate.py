"""Each problem's pass rate under a policy: k sampled completions, the share scored right
(strictly: stopped within the budget and the answer right), for offline difficulty filtering
(r1.data.pass_rates, scripts/filter_by_pass_rate.py)."""

from __future__ import annotations

from collections.abc import Sequence

from r1.data.problem import Problem
from r1.eval.heldout import sample_in_batches, score_completion
from r1.rollout.types import SamplingParams


def pass_rates(
    engine,
    problems: Sequence[Problem],
    prompt_ids: Sequence[Sequence[int]],
    k: int,
    params: SamplingParams,
    answer_source: str = "answer_tag",
    batch_size: int = 8,
) -> list[float]:
    completions = sample_in_batches(engine, prompt_ids, params, k, batch_size)
    return [
        sum(score_completion(p, c, answer_source).correct for c in completions[i * k : (i + 1) * k])
        / k
        for i, p in enumerate(problems)
    ]


def summary(problems: Sequence[Problem], rates: Sequence[float]) -> dict:
    """Counts of never / sometimes / always solved, overall and per difficulty level."""

    def counts(values: Sequence[float]) -> dict[str, float]:
        n = max(len(values), 1)
        return {
            "problems": len(values),
            "never": sum(r == 0 for r in values),
            "sometimes": sum(0 < r < 1 for r in values),
            "always": sum(r == 1 for r in values),
            "mean_pass_rate": sum(values) / n,
        }

    levels: dict[str, list[float]] = {}
    for problem, rate in zip(problems, rates):
        levels.setdefault(str(problem.meta.get("level")), []).append(rate)
    return {"all": counts(rates), "by_level": {lv: counts(v) for lv, v in sorted(levels.items())}}
