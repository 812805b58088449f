"""Score a benchmark at the paper's protocol: k samples per problem (temperature 0.6, top-p
0.95 by default), every problem of the test set; pass@1 as the mean over the k samples,
unbiased pass@k, cons@k (majority vote by answer equivalence), each with its standard error
over problems; a per-problem record of every sample and its score.

A sample is right only if it stopped within the token budget and:
- math: its final answer (`auto`: the `<answer>` block, its `\\boxed{}` if it holds one;
  else the last `\\boxed{}`) is equivalent to the gold one (`answer_is_correct`: math-verify);
- choice: the option it names (`r1.eval.choice.extract_choice`, under that sample's own
  shuffled order) is the right one; cons@k votes over the options chosen;
- code: its program (the last python block; HumanEval: the last one that defines the entry
  point, if one does), after the problem's `code_prefix`, passes every test in the sandbox
  (`r1.rewards.code`); code has no cons@k (no two programs compare).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.eval.behaviour import behaviour_metrics
from r1.eval.benchmarks import BenchmarkSpec
from r1.eval.choice import LETTERS, choices_text, extract_choice, option_order
from r1.eval.heldout import judged
from r1.eval.metrics import majority_answer, mean_and_stderr, pass_at_k
from r1.rewards.accuracy import extract_answer
from r1.rewards.code import code_exec_batch, extract_code
from r1.rewards.types import RewardError, RewardSample
from r1.rollout.types import Generation, SamplingParams
from r1.text import last_boxed, parse_completion

SUMMARY_JSON, SUMMARY_MD = "benchmarks.json", "benchmarks.md"
# Columns of the summary table: (metric, heading with k filled in).
TABLE_METRICS = (("pass@1", "pass@1"), ("pass@k", "pass@{k}"), ("cons@k", "cons@{k}"))


@dataclass(frozen=True)
class SampleRecord:
    sample: int
    completion: str
    end: str  # eos | stop | length
    num_tokens: int
    answer: str | None  # math: the final answer read; choice: the letter named; code: None
    correct: bool
    vote: str | None = None  # what cons@k counts (math: the answer; choice: the option's index)
    option_order: tuple[int, ...] | None = None  # choice: original index of each shown option
    gold_letter: str | None = None  # choice: the right option's letter in this sample's order
    has_program: bool | None = None  # code: a python block was found
    grader_error: bool = False  # the grader failed (sandbox): scored wrong, counted


def sample_record(index: int, generation: Generation, **graded: Any) -> SampleRecord:
    """The record of sample `index`: the generation's own fields, plus what the grader found."""
    return SampleRecord(
        sample=index,
        completion=generation.text,
        end=generation.end,
        num_tokens=generation.num_tokens,
        **graded,
    )


@dataclass
class ProblemRecord:
    id: str
    question: str
    gold: str
    samples: list[SampleRecord]
    majority: str | None = None
    majority_correct: bool | None = None  # None: no vote (code)

    @property
    def num_correct(self) -> int:
        return sum(s.correct for s in self.samples)


@dataclass
class BenchmarkResult:
    name: str
    kind: str
    k: int
    problems: list[ProblemRecord]
    metrics: dict[str, float]
    stderr: dict[str, float | None]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON summary: everything but the per-problem records."""
        return {
            "name": self.name,
            "kind": self.kind,
            "k": self.k,
            "num_problems": len(self.problems),
            "metrics": self.metrics,
            "stderr": self.stderr,
            "settings": self.settings,
        }

    def write_jsonl(self, path: str | Path) -> Path:
        """One line per problem: its samples with their scores."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for problem in self.problems:
                row = asdict(problem)
                row["num_correct"] = problem.num_correct
                row["pass@1"] = problem.num_correct / max(len(problem.samples), 1)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path


# ---------------------------------------------------------------------------------------------
# Prompts


def sample_prompts(
    spec: BenchmarkSpec,
    problem: Problem,
    template: PromptTemplate,
    tokenizer,
    k: int,
    seed: int,
) -> list[tuple[str, tuple[int, ...] | None]]:
    """The k (prompt, option order) pairs of one problem. Multiple choice: each sample shows
    the options in its own order (`option_order`); otherwise the k prompts are one."""
    if spec.kind != "choice":
        prompt = template.render(problem.question, tokenizer)
        return [(prompt, None)] * k
    options = problem.meta["options"]
    pairs = []
    for sample in range(k):
        order = option_order(seed, problem.meta["id"], sample, len(options))
        question = choices_text(problem.question, [options[i] for i in order])
        pairs.append((template.render(question, tokenizer), order))
    return pairs


# ---------------------------------------------------------------------------------------------
# Grading


def final_answer(text: str, source: str = "auto") -> str | None:
    """The final answer of a math completion. `auto`: the last <answer> block (the \\boxed{}
    inside it when it holds one), else the last \\boxed{} of the text; any other source is
    `extract_answer`'s (answer_tag, boxed, last_number)."""
    if source != "auto":
        return extract_answer(text, source)
    block = parse_completion(text).answer
    if block is not None:
        return last_boxed(block) or block.strip() or None
    return last_boxed(text)


def grade_math(
    problem: Problem, generations: Sequence[Generation], answer_source: str = "auto"
) -> ProblemRecord:
    samples = []
    for index, generation in enumerate(generations):
        answer = final_answer(generation.text, answer_source)
        right, error = judged(answer, problem)
        samples.append(
            sample_record(
                index,
                generation,
                answer=answer,
                correct=generation.finished and right,
                vote=answer if generation.finished else None,
                grader_error=error,
            )
        )
    majority = majority_answer([s.vote for s in samples])
    majority_right, _ = judged(majority, problem)
    return _record(problem, samples, majority, majority_right)


def grade_choice(
    problem: Problem,
    generations: Sequence[Generation],
    orders: Sequence[tuple[int, ...]],
) -> ProblemRecord:
    options, right_index = problem.meta["options"], problem.meta["answer_index"]
    samples = []
    for index, (generation, order) in enumerate(zip(generations, orders)):
        chosen = extract_choice(generation.text, [options[i] for i in order])
        original = None if chosen is None else order[chosen]
        samples.append(
            sample_record(
                index,
                generation,
                answer=None if chosen is None else LETTERS[chosen],
                correct=generation.finished and original == right_index,
                vote=str(original) if generation.finished and original is not None else None,
                option_order=tuple(order),
                gold_letter=LETTERS[order.index(right_index)],
            )
        )
    # the votes are option indices: equal strings are the same option, and nothing else is
    majority = majority_answer([s.vote for s in samples], equivalent=lambda a, b: a == b)
    return _record(problem, samples, majority, majority == str(right_index))


def program_for(problem: Problem, code: str) -> str:
    """The program a code sample's tests run: the problem's `code_prefix` (HumanEval: its
    prompt, whose helpers and imports the function may use) then the sample's code. Code that
    does not define the entry point is taken as the body that continues the prompt."""
    prefix = problem.meta.get("code_prefix") or ""
    entry_point = problem.meta.get("entry_point")
    if entry_point and f"def {entry_point}" not in code:
        return prefix + code
    return f"{prefix}\n{code}" if prefix else code


def grade_code(
    problems: Sequence[Problem], generations: Sequence[Sequence[Generation]]
) -> list[ProblemRecord]:
    """Every sample's program against its problem's tests, all in one sandbox pool."""
    programs = [
        [extract_code(g.text, defines=problem.meta.get("entry_point")) for g in own]
        for problem, own in zip(problems, generations)
    ]
    jobs = [
        RewardSample(
            completion=f"```python\n{program_for(problem, code)}\n```",
            meta={"tests": problem.meta["tests"]},
        )
        for problem, own in zip(problems, programs)
        for code in own
        if code is not None
    ]
    verdicts = iter(code_exec_batch(jobs))
    records = []
    for problem, own_generations, own_programs in zip(problems, generations, programs):
        samples = []
        for index, (generation, code) in enumerate(zip(own_generations, own_programs)):
            verdict = next(verdicts) if code is not None else 0.0
            error = isinstance(verdict, RewardError)
            samples.append(
                sample_record(
                    index,
                    generation,
                    answer=None,
                    correct=generation.finished and not error and verdict == 1.0,
                    has_program=code is not None,
                    grader_error=error,
                )
            )
        records.append(_record(problem, samples, None, None))
    return records


def _record(
    problem: Problem,
    samples: list[SampleRecord],
    majority: str | None,
    majority_correct: bool | None,
) -> ProblemRecord:
    return ProblemRecord(
        id=str(problem.meta["id"]),
        question=problem.question,
        gold=problem.answer,
        samples=samples,
        majority=majority,
        majority_correct=majority_correct,
    )


# ---------------------------------------------------------------------------------------------
# The run


def run_benchmark(
    engine,
    spec: BenchmarkSpec,
    problems: Sequence[Problem],
    tokenizer,
    k: int,
    params: SamplingParams,
    template: PromptTemplate,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> BenchmarkResult:
    """k samples of every problem with `engine` (an r1 RolloutEngine), graded and summed up."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    records: list[ProblemRecord] = []
    batches = range(0, len(problems), batch_size)
    for start in tqdm(batches, desc=f"{spec.name} (k={k})", unit="batch", disable=not progress):
        chunk = list(problems[start : start + batch_size])
        requests = [sample_prompts(spec, p, template, tokenizer, k, seed) for p in chunk]
        generations = _generate(engine, tokenizer, requests, params, shared=spec.kind != "choice")
        if spec.kind == "code":
            records += grade_code(chunk, generations)
        elif spec.kind == "choice":
            for problem, own, pairs in zip(chunk, generations, requests):
                records.append(grade_choice(problem, own, [order for _, order in pairs]))
        else:
            records += [
                grade_math(p, own, spec.answer_source) for p, own in zip(chunk, generations)
            ]
    metrics, stderr = benchmark_metrics(records, k, spec.kind)
    metrics |= record_behaviour(records, [p.meta.get("level") for p in problems])
    settings = {
        "source": spec.source,
        "schema": spec.schema,
        "answer_source": spec.answer_source if spec.kind == "math" else None,
        "template": asdict(template),
        "seed": seed,
    }
    return BenchmarkResult(spec.name, spec.kind, k, records, metrics, stderr, settings)


def _generate(
    engine,
    tokenizer,
    requests: Sequence[Sequence[tuple[str, Any]]],
    params: SamplingParams,
    shared: bool,
) -> list[list[Generation]]:
    """Each problem's k generations. `shared`: its k prompts are one, sampled k times."""
    k = len(requests[0])
    prompts = (
        [pairs[0][0] for pairs in requests] if shared else [p for ps in requests for p, _ in ps]
    )
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    flat = engine.generate(ids, params, n=k if shared else 1).generations()
    return [flat[i * k : (i + 1) * k] for i in range(len(requests))]


def benchmark_metrics(
    records: Sequence[ProblemRecord], k: int, kind: str
) -> tuple[dict[str, float], dict[str, float | None]]:
    """(metrics, their standard errors over problems). Rates are over all samples."""
    per_problem: dict[str, list[float]] = {
        "pass@1": [r.num_correct / k for r in records],
    }
    if k > 1:
        per_problem["pass@k"] = [pass_at_k(k, r.num_correct, k) for r in records]
    if kind != "code":
        per_problem["cons@k"] = [float(bool(r.majority_correct)) for r in records]
    metrics: dict[str, float] = {}
    stderr: dict[str, float | None] = {}
    for name, values in per_problem.items():
        metrics[name], error = mean_and_stderr(values)
        stderr[name] = None if math.isnan(error) else error  # one problem: no error to give
    samples = [s for r in records for s in r.samples]
    n = max(len(samples), 1)
    answered = [(s.has_program if kind == "code" else s.answer is not None) for s in samples]
    metrics |= {
        "stop_rate": sum(s.end != "length" for s in samples) / n,
        "answered_rate": sum(bool(a) for a in answered) / n,
        "completion_len_mean": sum(s.num_tokens for s in samples) / n,
        "grader_errors": float(sum(s.grader_error for s in samples)),
    }
    return metrics, stderr


def record_behaviour(
    records: Sequence[ProblemRecord], levels: Sequence[Any] | None = None
) -> dict[str, float]:
    """The behaviour metrics (r1.eval.behaviour) of every sample: each reflection word's rate,
    the length of right and wrong samples and by the problem's difficulty level (levels: one
    per problem, e.g. MATH's), repetition and language mixing; those with nothing measured
    are left out."""
    samples = [s for r in records for s in r.samples]
    per_sample_levels = None
    if levels is not None:
        per_sample_levels = [level for r, level in zip(records, levels) for _ in r.samples]
    behaviour = behaviour_metrics(
        [s.completion for s in samples],
        [s.num_tokens for s in samples],
        correct=[s.correct for s in samples],
        levels=per_sample_levels,
    )
    return {name: value for name, value in behaviour.items() if not math.isnan(value)}


# ---------------------------------------------------------------------------------------------
# Tables


def cell(summary: dict[str, Any], metric: str) -> str:
    """ "52.3 ± 4.1" (percent, standard error over problems); "-" where it was not measured."""
    value = summary["metrics"].get(metric)
    if value is None:
        return "-"
    error = summary["stderr"].get(metric)
    spread = "" if error is None else f" ± {100 * error:.1f}"
    return f"{100 * value:.1f}{spread}"


def summary_markdown(summaries: Sequence[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The table of one evaluation: a row per benchmark."""
    lines = [
        f"# Benchmarks: {settings.get('model', '?')}",
        "",
        f"k samples per problem at temperature {settings.get('temperature')}, top-p "
        f"{settings.get('top_p')}, at most {settings.get('max_new_tokens')} new tokens; "
        "pass@1 is the mean over the k samples; ± is the standard error over problems "
        "(percent).",
        "",
        "| benchmark | problems | k | pass@1 | pass@k | cons@k | stop rate | answered | mean tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        m = s["metrics"]
        lines.append(
            f"| {s['name']} | {s['num_problems']} | {s['k']} | {cell(s, 'pass@1')} | "
            f"{cell(s, 'pass@k')} | {cell(s, 'cons@k')} | {m['stop_rate']:.2f} | "
            f"{m['answered_rate']:.2f} | {m['completion_len_mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def comparison_markdown(
    evaluations: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    metrics: Sequence[str] = ("pass@1",),
) -> str:
    """Several evaluations side by side: a table per metric, a row per benchmark, a column
    per evaluation (label, its benchmark summaries); "-" where one did not run a benchmark."""
    names: list[str] = []
    for _, summaries in evaluations:
        names += [s["name"] for s in summaries if s["name"] not in names]
    by_label = [{s["name"]: s for s in summaries} for _, summaries in evaluations]
    lines = []
    for metric in metrics:
        lines += [
            f"## {metric} (percent, ± standard error over problems)",
            "",
            "| benchmark | " + " | ".join(label for label, _ in evaluations) + " |",
            "|---|" + "---|" * len(evaluations),
        ]
        for name in names:
            cells = []
            for table in by_label:
                summary = table.get(name)
                text = "-" if summary is None else cell(summary, metric)
                if summary is not None and metric.endswith("@k") and text != "-":
                    text += f" (k={summary['k']})"
                cells.append(text)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_summary(
    directory: str | Path, results: Sequence[BenchmarkResult], settings: dict[str, Any]
) -> tuple[Path, Path]:
    """<directory>/<name>.jsonl per benchmark, and the summary: benchmarks.json and .md."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for result in results:
        result.write_jsonl(directory / f"{result.name}.jsonl")
    summaries = [r.summary() for r in results]
    json_path, md_path = directory / SUMMARY_JSON, directory / SUMMARY_MD
    json_path.write_text(
        json.dumps({"settings": settings, "benchmarks": summaries}, indent=2, ensure_ascii=False)
    )
    md_path.write_text(summary_markdown(summaries, settings))
    return json_path, md_path
