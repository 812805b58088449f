"""Rejection sampling: exact counts with a scripted engine; the tiny model end to end, where
every written row must pass every filter and the report must add up."""

from __future__ import annotations

import json

import torch
from rollout_fixtures import generation, text_rollout

from r1.data.problem import Problem
from r1.eval.filters import FILTER_NAMES, Candidate, FilterSettings, failed_filters
from r1.eval.rejection import reject_sample, write_dataset
from r1.rollout.types import SamplingParams

THOUGHT = "Adding two and three gives five, so the answer is five."
GOOD = f"<think>\n{THOUGHT}\n</think>\n<answer>5</answer>"


class ScriptedEngine:
    """Returns the given texts in order, n per prompt, all stopped."""

    def __init__(self, texts):
        self.texts = list(texts)

    def generate(self, prompt_ids, params, n):
        return text_rollout(prompt_ids, [self.texts.pop(0) for _ in range(len(prompt_ids) * n)], n)


def test_counts_by_filter_and_duplicates():
    problems = [Problem("What is 2 + 3?", "5", task="arithmetic", meta={"language": "en"})] * 2
    variant = GOOD.replace("Adding two", "adding   two")  # GOOD once normalised
    texts = [  # k = 3 per prompt
        GOOD,  # p1: kept
        GOOD.replace("<answer>5", "<answer>6"),  # p1: wrong
        f"<think>\n{THOUGHT}\n```python\nprint(2 + 3)\n```\n</think>\n<answer>5</answer>",  # p1: code
        variant,  # p2: kept (p1 has the same text, but this is another prompt)
        GOOD,  # p2: a duplicate of the variant
        GOOD.replace("<answer>5", "<answer>6").replace("gives five", "gives ```five```"),  # 2 fail
    ]
    rows, report = reject_sample(
        ScriptedEngine(texts),
        problems,
        ["p1", "p2"],
        [[1], [2]],
        k=3,
        params=SamplingParams(max_new_tokens=4),
        filters=FilterSettings(),
        batch_size=1,
        progress=False,
    )
    assert report.total == 6
    assert report.failed == {
        "correct": 2,
        "language": 0,
        "paragraphs": 0,
        "code": 2,
        "repetition": 0,
    }
    assert report.passed_filters == 3 and report.duplicates == 1 and report.kept == 2
    assert report.prompts_with_a_kept_sample == 2
    assert report.tokens_read == 2 * 1 + 6 * 3  # two 1-token prompts once, six 3-token samples
    assert [r["completion"] for r in rows] == [GOOD, variant]
    assert rows[0] == {
        "question": "What is 2 + 3?",
        "answer": "5",
        "task": "arithmetic",
        "meta": {"language": "en"},
        "completion": GOOD,
    }


def test_tiny_model_rows_pass_every_filter_and_the_report_adds_up(tiny, tmp_path):
    from r1.data.tasks import ArithmeticTask
    from r1.rollout.hf import HFRolloutEngine

    model, tokenizer = tiny
    problems = ArithmeticTask().generate(6, seed=0)
    prompts = [p.question for p in problems]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    # Random weights never answer right, so correctness and language are off here: what is
    # checked is that only rows passing the remaining filters are written.
    filters = FilterSettings(correct=False, min_language_consistency=None, max_repetition=0.05)
    torch.manual_seed(0)
    rows, report = reject_sample(
        HFRolloutEngine(model, tokenizer),
        problems,
        prompts,
        ids,
        k=4,
        params=SamplingParams(max_new_tokens=24),
        filters=filters,
        progress=False,
    )
    assert report.total == 24 and report.kept == len(rows)
    assert report.kept == report.passed_filters - report.duplicates
    assert report.total - report.passed_filters <= sum(report.failed.values())
    assert 0 < report.kept < report.total  # some rows written, some rejected
    by_question = {p.question: p for p in problems}
    for row in rows:
        candidate = Candidate(
            by_question[row["question"]],
            row["question"],
            generation(row["completion"]),
        )
        assert failed_filters(candidate, filters) == []
    path = write_dataset(rows, report, tmp_path)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    stats = json.loads((tmp_path / "rejection.json").read_text())
    assert stats["kept"] == len(rows) and set(stats["failed"]) == set(FILTER_NAMES)
