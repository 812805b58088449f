"""Automatic PRM step labels in the Math-Shepherd way, written as a JSONL dataset.

For each training problem the policy samples `solutions_per_problem` solutions of its own
(right and wrong ones: Math-Shepherd labels the policy's solutions, not reference ones). Each
is cut into steps (`completion_steps`: lines, or "Step k:" markers, or any delimiter; the
closing </think> and the answer block are steps too, so the last step carries the answer).
For each step i, the policy continues `prompt + steps_text(steps[:i+1])` `rollouts_per_step`
(N) times to the end; a continuation reaches the gold answer when the completion it makes
(`steps_text(steps[:i+1]) + continuation`) is strictly correct: it ended with EOS and its
final answer is right (`r1.eval.heldout.score_completion`). The step's label is then
Math-Shepherd's hard estimate (1.0 if any of the N did) or soft one (the fraction that did).

Steps judged directly, without rollouts:
- the last step: its label is the solution's own outcome (1.0 if strictly correct, else 0.0);
- an earlier step whose prefix already holds the solution's final answer (the same answer the
  whole solution ends with, read by `answer_source`; never for "last_number", where every
  number would look like an answer): 1.0 if that answer is right, else 0.0. Continuations
  of such a prefix could only write after the answer.

Cost and what keeps it down: every step prefix of every solution of a chunk of `batch_size`
problems goes to the policy in ONE `continue_texts` call (n = N), after one call that samples
the chunk's solutions. Identical prefixes of the same problem (two solutions that open alike)
are rolled out once and share their outcomes. Every step is labelled independently by
default: under hard labels a step whose N rollouts all fail does not make later steps wrong
(a later step can recover, and N samples can miss). `stop_after_first_zero` is Math-Shepherd's
cheaper assumption that it does: prefixes are then rolled out depth by depth (one call per
step depth), and the steps after a 0.0 that would need rollouts are labelled 0.0 without them
(the steps judged directly keep their direct label).

The rebuilt prefix is `steps_text`'s ("<think>\\n" + each step + "\\n"), the text a PRM reads
(`r1.models.prm.encode_steps`), even where the sampled solution spaced its lines otherwise.

Row format (one JSON object per labelled solution, one per line of steps.jsonl; stable:
`stage=prm` reads it through `read_step_rows`):

    question           str    the problem as posed
    answer             str    the gold answer
    task               str    the task name ("arithmetic", "countdown", ...; may be "")
    meta               object task data (countdown numbers, ...); {} when none
    prompt             str    the rendered prompt the policy saw
    completion         str    the sampled solution text, verbatim
    steps              [str]  its steps (non-empty list of non-blank strings)
    labels             [num]  one label per step, in [0, 1]; 0 or 1 when mode is "hard"
    outcome            bool   the solution is strictly correct
    rollouts_per_step  int    N, continuations sampled per step prefix (>= 1)
    mode               str    "hard" | "soft"

Unknown keys are ignored by the reader, so the format can grow without breaking old files.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from r1.checks import ConfigError, check_choice, check_int
from r1.data.loaders import DataError, json_object, read_jsonl
from r1.data.problem import Problem
from r1.eval.heldout import score_text
from r1.rewards.accuracy import ANSWER_SOURCES, extract_answer
from r1.rollout.types import Generation, SamplingParams
from r1.search.policy import continue_texts
from r1.search.steps import LABEL_MODES, label_steps
from r1.text import completion_steps, steps_text

SKIP_REASONS = ("no_steps", "too_many_steps")


@dataclass(frozen=True)
class StepRow:
    """One labelled solution: a line of steps.jsonl (see the module docstring)."""

    question: str
    answer: str
    prompt: str
    completion: str
    steps: tuple[str, ...]
    labels: tuple[float, ...]  # one per step, in [0, 1]
    outcome: bool
    rollouts_per_step: int
    mode: str
    task: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def problem(self) -> Problem:
        return Problem(self.question, self.answer, task=self.task, meta=dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "task": self.task,
            "meta": dict(self.meta),
            "prompt": self.prompt,
            "completion": self.completion,
            "steps": list(self.steps),
            "labels": list(self.labels),
            "outcome": self.outcome,
            "rollouts_per_step": self.rollouts_per_step,
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], where: str = "row") -> StepRow:
        """Validate a row; every error names `where` (e.g. "steps.jsonl line 3") and the field."""

        def need(name: str) -> Any:
            if name not in row:
                present = ", ".join(row) or "none"
                raise DataError(f"{where}: field {name!r} is missing; fields present: {present}")
            return row[name]

        def text(name: str, value: Any, non_blank: bool = True) -> str:
            if not isinstance(value, str):
                raise DataError(
                    f"{where}: field {name!r} must be a string, got "
                    f"{type(value).__name__} {value!r:.80}"
                )
            if non_blank and not value.strip():
                raise DataError(f"{where}: field {name!r} is empty")
            return value

        answer = need("answer")
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            answer = str(answer)
        steps = need("steps")
        if not isinstance(steps, list) or not steps:
            raise DataError(f"{where}: field 'steps' must be a non-empty list, got {steps!r:.80}")
        steps = [text(f"steps[{i}]", s) for i, s in enumerate(steps)]
        mode = need("mode")
        if mode not in LABEL_MODES:
            raise DataError(f"{where}: field 'mode' is {mode!r}; valid: {', '.join(LABEL_MODES)}")
        labels = need("labels")
        if not isinstance(labels, list):
            raise DataError(f"{where}: field 'labels' must be a list, got {labels!r:.80}")
        if len(labels) != len(steps):
            raise DataError(f"{where}: {len(labels)} labels for {len(steps)} steps")
        for i, label in enumerate(labels):
            is_number = isinstance(label, int | float) and not isinstance(label, bool)
            if not is_number or not math.isfinite(label) or not 0.0 <= label <= 1.0:
                raise DataError(f"{where}: labels[{i}]={label!r} must be a number in [0, 1]")
            if mode == "hard" and label not in (0, 1):
                raise DataError(f"{where}: labels[{i}]={label!r} must be 0 or 1 in hard mode")
        outcome = need("outcome")
        if not isinstance(outcome, bool):
            raise DataError(f"{where}: field 'outcome' must be true or false, got {outcome!r}")
        n = need("rollouts_per_step")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataError(
                f"{where}: field 'rollouts_per_step' must be an integer >= 1, got {n!r}"
            )
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise DataError(f"{where}: field 'meta' must be an object, got {meta!r:.80}")
        return cls(
            question=text("question", need("question")),
            answer=text("answer", answer, non_blank=False),
            prompt=text("prompt", need("prompt")),
            completion=text("completion", need("completion"), non_blank=False),
            steps=tuple(steps),
            labels=tuple(float(x) for x in labels),
            outcome=outcome,
            rollouts_per_step=n,
            mode=mode,
            task=text("task", row.get("task") or "", non_blank=False),
            meta=meta,
        )


def read_step_rows(path: str | Path) -> list[StepRow]:
    """The rows of a steps.jsonl, validated; a bad row raises DataError naming the file, the
    line and the field. Blank lines are skipped; a file without rows is an error."""
    return read_jsonl(
        path,
        lambda line, where: StepRow.from_dict(json_object(line, where), where),
        what="step-labelled rows",
    )


@dataclass(frozen=True)
class LabelSettings:
    solutions_per_problem: int = 4  # policy solutions sampled per problem
    rollouts_per_step: int = 4  # N: continuations per step prefix
    mode: str = "hard"  # "hard": any of N right; "soft": the fraction right
    delimiter: str = "auto"  # completion_steps: "auto" (Step k: markers, else lines) or a string
    max_steps: int | None = None  # solutions with more steps are skipped (None: no cap)
    stop_after_first_zero: bool = False  # label 0.0 after a step none of whose rollouts succeed
    answer_source: str = "answer_tag"  # where the final answer is read (score_completion)
    batch_size: int = 4  # problems per chunk: one call for solutions, one for all rollouts

    def __post_init__(self):
        check_int("label.solutions_per_problem", self.solutions_per_problem, 1)
        check_int("label.rollouts_per_step", self.rollouts_per_step, 1)
        check_choice("label.mode", self.mode, LABEL_MODES)
        if not isinstance(self.delimiter, str) or not self.delimiter:
            raise ConfigError(
                f"label.delimiter={self.delimiter!r} must be 'auto' or a non-empty string"
            )
        if self.max_steps is not None:
            check_int("label.max_steps", self.max_steps, 1)
        if not isinstance(self.stop_after_first_zero, bool):
            raise ConfigError(
                f"label.stop_after_first_zero={self.stop_after_first_zero!r} must be true or false"
            )
        check_choice("label.answer_source", self.answer_source, ANSWER_SOURCES)
        check_int("label.batch_size", self.batch_size, 1)


@dataclass
class LabelReport:
    problems: int = 0
    solutions_sampled: int = 0  # problems x solutions_per_problem
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    solutions: int = 0  # labelled: the rows written
    correct: int = 0  # rows whose solution is strictly correct
    steps: int = 0  # labelled steps over all rows
    steps_judged_directly: int = 0  # last steps and prefixes already holding the answer
    steps_zero_after_zero: int = 0  # labelled 0.0 unrolled (stop_after_first_zero)
    prefixes_rolled_out: int = 0  # distinct prefixes sent to the policy
    prefixes_shared: int = 0  # steps that reused an identical prefix's rollouts
    rollouts: int = 0  # continuations sampled (prefixes_rolled_out x N)
    generate_calls: int = 0
    label_histogram: dict[str, int] = field(default_factory=dict)  # "0.50" -> steps
    mean_label: float = 0.0
    mean_label_correct: float = 0.0  # over the steps of correct solutions
    mean_label_wrong: float = 0.0  # over the steps of wrong solutions
    share_steps_one: float = 0.0  # steps labelled 1.0
    share_correct: float = 0.0  # of labelled solutions
    # wrong solutions by their first step labelled 0.0: "k" (1-based) -> solutions
    first_wrong_step: dict[str, int] = field(default_factory=dict)
    solution_tokens: int = 0
    rollout_tokens: int = 0
    tokens_generated: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = ["| label | steps | share |", "|---|---|---|"]
        for label, count in sorted(self.label_histogram.items(), key=lambda kv: float(kv[0])):
            lines.append(f"| {label} | {count} | {count / max(self.steps, 1):.1%} |")
        first = ", ".join(
            f"step {k}: {v}"
            for k, v in sorted(self.first_wrong_step.items(), key=lambda kv: int(kv[0]))
        )
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.items())
        lines += [
            "",
            f"solutions: {self.solutions} labelled of {self.solutions_sampled} sampled "
            f"({self.problems} problems; skipped: {skipped})",
            f"correct: {self.correct} ({self.share_correct:.1%})",
            f"steps: {self.steps} ({self.steps / max(self.solutions, 1):.1f} per solution), "
            f"{self.steps_judged_directly} judged directly, "
            f"{self.steps_zero_after_zero} zero after a zero",
            f"mean label: {self.mean_label:.3f} (correct solutions {self.mean_label_correct:.3f}, "
            f"wrong {self.mean_label_wrong:.3f}); labelled 1: {self.share_steps_one:.1%}",
            f"first wrong step of wrong solutions: {first or 'none'}",
            f"rollouts: {self.rollouts} from {self.prefixes_rolled_out} prefixes "
            f"({self.prefixes_shared} shared), {self.generate_calls} generate calls",
            f"tokens generated: {self.tokens_generated} (solutions {self.solution_tokens}, "
            f"rollouts {self.rollout_tokens}); {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


@dataclass
class _Solution:
    """A sampled solution being labelled; labels[i] is None until known."""

    problem_index: int
    continuation: Generation
    steps: list[str]
    outcome: bool
    labels: list[float | None]


def _holds_final_answer(prefix: str, final: str | None, source: str) -> bool:
    if source == "last_number" or final is None:
        return False
    return extract_answer(prefix, source) == final


def _prepare(
    problem_index: int,
    problem: Problem,
    continuation: Generation,
    settings: LabelSettings,
    report: LabelReport,
) -> _Solution | None:
    """Cut a sampled solution into steps and label the steps judged directly."""
    steps = completion_steps(continuation.text, settings.delimiter)
    if not steps:
        report.skipped["no_steps"] += 1
        return None
    if settings.max_steps is not None and len(steps) > settings.max_steps:
        report.skipped["too_many_steps"] += 1
        return None
    source = settings.answer_source
    ended = continuation.end == "eos"
    outcome = score_text(problem, continuation.text, ended, source).correct
    final = extract_answer(continuation.text, source)
    labels: list[float | None] = []
    for i in range(len(steps)):
        prefix = steps_text(steps[: i + 1])
        if i == len(steps) - 1:
            labels.append(float(outcome))
        elif _holds_final_answer(prefix, final, source):
            labels.append(float(score_text(problem, prefix, True, source).correct))
        else:
            labels.append(None)
    report.steps_judged_directly += sum(label is not None for label in labels)
    return _Solution(problem_index, continuation, steps, outcome, labels)


def _roll_out(
    engine,
    tokenizer,
    requests: Sequence[tuple[_Solution, int]],
    problems: Sequence[Problem],
    prompts: Sequence[str],
    params: SamplingParams,
    settings: LabelSettings,
    report: LabelReport,
) -> None:
    """Label each (solution, step index) request from N rollouts of its prefix, all distinct
    prefixes in one `continue_texts` call."""
    keys = [(s.problem_index, tuple(s.steps[: i + 1])) for s, i in requests]
    distinct = list(dict.fromkeys(keys))
    if not distinct:
        return
    texts = [prompts[p] + steps_text(steps) for p, steps in distinct]
    groups = continue_texts(engine, tokenizer, texts, params, settings.rollouts_per_step)
    report.generate_calls += 1
    report.prefixes_rolled_out += len(distinct)
    report.prefixes_shared += len(keys) - len(distinct)
    label_of = {}
    for (p, steps), group in zip(distinct, groups):
        prefix = steps_text(steps)
        hits = [
            score_text(problems[p], prefix + c.text, c.end == "eos", settings.answer_source).correct
            for c in group
        ]
        report.rollouts += len(group)
        report.rollout_tokens += sum(c.num_tokens for c in group)
        label_of[(p, steps)] = label_steps([hits], settings.mode)[0]
    for (solution, i), key in zip(requests, keys):
        solution.labels[i] = label_of[key]


def _label_chunk(
    engine,
    tokenizer,
    solutions: list[_Solution],
    problems: Sequence[Problem],
    prompts: Sequence[str],
    params: SamplingParams,
    settings: LabelSettings,
    report: LabelReport,
) -> None:
    args = (engine, tokenizer)
    rest = (problems, prompts, params, settings, report)
    if not settings.stop_after_first_zero:
        requests = [(s, i) for s in solutions for i, label in enumerate(s.labels) if label is None]
        _roll_out(*args, requests, *rest)
        return
    depth = max((len(s.steps) for s in solutions), default=0)
    for d in range(depth):
        requests = []
        for s in solutions:
            if d < len(s.steps) and s.labels[d] is None:
                if 0.0 in s.labels[:d]:
                    s.labels[d] = 0.0
                    report.steps_zero_after_zero += 1
                else:
                    requests.append((s, d))
        _roll_out(*args, requests, *rest)


def label_problems(
    engine,
    tokenizer,
    problems: Sequence[Problem],
    prompts: Sequence[str],
    params: SamplingParams,
    settings: LabelSettings,
    progress: bool = True,
) -> tuple[list[StepRow], LabelReport]:
    """Math-Shepherd step labels for the policy's own solutions (see the module docstring).

    prompts[i]: the rendered prompt of problems[i], as the policy reads it. params: sampling
    for both the solutions and the rollouts (temperature > 0, or every sample is the same).
    Returns (rows in problem order, a problem's solutions in sampling order; the report).
    """
    if len(problems) != len(prompts):
        raise ValueError(f"{len(problems)} problems but {len(prompts)} prompts")
    started = time.perf_counter()
    report = LabelReport(
        problems=len(problems), settings={**asdict(settings), "sampling": asdict(params)}
    )
    rows: list[StepRow] = []
    size = settings.batch_size
    for start in tqdm(range(0, len(problems), size), desc="step labels", disable=not progress):
        indices = range(start, min(start + size, len(problems)))
        sampled = continue_texts(
            engine, tokenizer, [prompts[i] for i in indices], params, settings.solutions_per_problem
        )
        report.generate_calls += 1
        solutions = []
        for index, group in zip(indices, sampled):
            for continuation in group:
                report.solutions_sampled += 1
                report.solution_tokens += continuation.num_tokens
                prepared = _prepare(index, problems[index], continuation, settings, report)
                if prepared is not None:
                    solutions.append(prepared)
        _label_chunk(engine, tokenizer, solutions, problems, prompts, params, settings, report)
        for s in solutions:
            problem = problems[s.problem_index]
            rows.append(
                StepRow(
                    question=problem.question,
                    answer=problem.answer,
                    prompt=prompts[s.problem_index],
                    completion=s.continuation.text,
                    steps=tuple(s.steps),
                    labels=tuple(float(label) for label in s.labels),
                    outcome=s.outcome,
                    rollouts_per_step=settings.rollouts_per_step,
                    mode=settings.mode,
                    task=problem.task,
                    meta=dict(problem.meta),
                )
            )
    _summarise(rows, report)
    report.seconds = time.perf_counter() - started
    return rows, report


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _summarise(rows: Sequence[StepRow], report: LabelReport) -> None:
    """The report's label statistics, from the rows."""
    labels = [x for r in rows for x in r.labels]
    report.solutions = len(rows)
    report.correct = sum(r.outcome for r in rows)
    report.steps = len(labels)
    report.label_histogram = dict(sorted(Counter(f"{x:.2f}" for x in labels).items()))
    report.mean_label = _mean(labels)
    report.mean_label_correct = _mean([x for r in rows if r.outcome for x in r.labels])
    report.mean_label_wrong = _mean([x for r in rows if not r.outcome for x in r.labels])
    report.share_steps_one = _mean([float(x == 1.0) for x in labels])
    report.share_correct = report.correct / max(len(rows), 1)
    first = Counter(str(r.labels.index(0.0) + 1) for r in rows if not r.outcome and 0.0 in r.labels)
    report.first_wrong_step = dict(sorted(first.items(), key=lambda kv: int(kv[0])))
    report.tokens_generated = report.solution_tokens + report.rollout_tokens


def write_step_rows(rows: Sequence[StepRow], report: LabelReport, directory: str | Path) -> Path:
    """<directory>/steps.jsonl (one row per labelled solution) and labels.json / labels.md
    (the report). Returns the JSONL's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "steps.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(
        "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    tmp.replace(path)
    (directory / "labels.json").write_text(json.dumps(asdict(report), indent=2))
    (directory / "labels.md").write_text(report.markdown() + "\n")
    return path
