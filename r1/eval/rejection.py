"""Rejection sampling (DeepSeek-R1 stage 3): sample k completions per prompt from a checkpoint,
keep the correct and readable ones, and write them as an SFT dataset.

Each kept row is a JSON object that `data=jsonl` loads for SFT: `question`, `answer`, `task`,
`meta`, and `completion`, the sampled text verbatim, which SFT trains on instead of a
templated solution. The report counts, over all samples, how many fail each filter (a sample
can fail several), how many pass all filters, how many of those are duplicates, and how many
are kept: kept = passed every filter - duplicates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from r1.data.problem import Problem
from r1.eval.filters import FILTER_NAMES, Candidate, FilterSettings, duplicates, failed_filters
from r1.eval.heldout import sample_completions
from r1.rollout.types import SamplingParams


@dataclass
class RejectionReport:
    total: int = 0  # samples drawn (prompts x k)
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILTER_NAMES, 0))
    passed_filters: int = 0
    duplicates: int = 0
    kept: int = 0
    prompts: int = 0
    prompts_with_a_kept_sample: int = 0
    seconds: float = 0.0  # wall time of the sampling and filtering
    # the sampler's reading: each prompt once and every sampled token, as stage=opd's
    # train/teacher_tokens counts the teacher's (equal-compute distillation comparisons)
    tokens_read: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = ["| filter | samples failing | share |", "|---|---|---|"]
        for name in FILTER_NAMES:
            lines.append(
                f"| {name} | {self.failed[name]} | {self.failed[name] / max(self.total, 1):.1%} |"
            )
        lines += [
            "",
            f"samples: {self.total} ({self.prompts} prompts x k)",
            f"passed every filter: {self.passed_filters}",
            f"duplicates among them: {self.duplicates}",
            f"kept: {self.kept} ({self.kept / max(self.total, 1):.1%}), covering "
            f"{self.prompts_with_a_kept_sample} of {self.prompts} prompts",
            f"tokens read by the sampler (prompts once, every sampled token): {self.tokens_read}",
        ]
        return "\n".join(lines)


def reject_sample(
    engine,
    problems: Sequence[Problem],
    prompts: Sequence[str],
    prompt_ids: Sequence[Sequence[int]],
    k: int,
    params: SamplingParams,
    filters: FilterSettings,
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], RejectionReport]:
    """(kept rows, report). Rows are in prompt order, a prompt's kept samples together."""
    started = time.perf_counter()
    report = RejectionReport(prompts=len(problems), settings={"k": k, **asdict(filters)})
    candidates: list[Candidate] = []
    passing: list[bool] = []
    for start in tqdm(
        range(0, len(problems), batch_size), desc="rejection sampling", disable=not progress
    ):
        chunk = [list(ids) for ids in prompt_ids[start : start + batch_size]]
        completions = sample_completions(engine, chunk, params, k)
        report.tokens_read += sum(map(len, chunk)) + sum(c.num_tokens for c in completions)
        for i, completion in enumerate(completions):
            index = start + i // k
            candidate = Candidate(problems[index], prompts[index], completion)
            failures = failed_filters(candidate, filters)
            for name in failures:
                report.failed[name] += 1
            candidates.append(candidate)
            passing.append(not failures)
    report.total = len(candidates)
    report.passed_filters = sum(passing)
    survivors = [c for c, ok in zip(candidates, passing) if ok]
    repeated = duplicates(survivors)
    report.duplicates = sum(repeated)
    kept = [c for c, again in zip(survivors, repeated) if not again]
    report.kept = len(kept)
    report.prompts_with_a_kept_sample = len({c.prompt for c in kept})
    report.seconds = time.perf_counter() - started
    rows = [
        {
            "question": c.problem.question,
            "answer": c.problem.answer,
            "task": c.problem.task,
            "meta": dict(c.problem.meta),
            "completion": c.completion.text,
        }
        for c in kept
    ]
    return rows, report


def write_dataset(
    rows: Sequence[dict[str, Any]],
    report: Any,
    directory: str | Path,
    report_name: str = "rejection",
) -> Path:
    """<directory>/sft.jsonl (the kept rows, written atomically) and <report_name>.json /
    .md (`report`: a dataclass with a markdown() method, e.g. RejectionReport)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sft.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    tmp.replace(path)
    (directory / f"{report_name}.json").write_text(json.dumps(asdict(report), indent=2))
    (directory / f"{report_name}.md").write_text(report.markdown() + "\n")
    return path
