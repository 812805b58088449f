"""The paper's evaluation protocol on a set of problems: k sampled completions per problem
(temperature 0.6, top-p 0.95 by default), scored strictly, summarised as pass@1 (averaged
over the k samples), unbiased pass@k, cons@k (majority vote over equivalent answers), format,
stop and language-consistency rates, length percentiles, reflection-word frequency and the
behaviour metrics (r1.eval.behaviour: each reflection word's rate, length of right and wrong
completions and by difficulty level, repetition and language mixing)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from r1.data.problem import Problem
from r1.eval.behaviour import behaviour_metrics
from r1.eval.heldout import (
    judged,
    reward_samples,
    sample_in_batches,
    score_completion,
)
from r1.eval.metrics import (
    REFLECTION_WORDS,
    length_stats,
    majority_answer,
    mean_pass_at_k,
    reflection_stats,
)
from r1.rewards import CompositeReward
from r1.rewards.accuracy import extract_answer
from r1.rollout.types import SamplingParams


@dataclass
class EvalReport:
    settings: dict[str, Any]
    metrics: dict[str, float]
    problems: list[dict[str, Any]] = field(default_factory=list)

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / "eval.json", directory / "eval.md"
        json_path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False))
        md_path.write_text(self.markdown())
        return json_path, md_path

    def markdown(self, num_samples: int = 3) -> str:
        k = self.settings.get("k", 1)
        lines = [
            f"# Evaluation: {self.settings.get('model', '?')} on {self.settings.get('data', '?')}",
            "",
            self._protocol(),
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for name, value in self.metrics.items():
            label = name.replace("@k", f"@{k}")
            lines.append(
                f"| {label} | {value:.4f} |" if abs(value) < 10 else f"| {label} | {value:.1f} |"
            )
        lines += ["", "## Samples", ""]
        for problem in self.problems[:num_samples]:
            completion = problem["completions"][0].replace("\n", " ")
            mark = "right" if problem["correct"][0] else "wrong"
            lines.append(
                f"- **{problem['question']}** (gold {problem['gold']}) [{mark}]: {completion[:300]}"
            )
        return "\n".join(lines) + "\n"

    def _protocol(self) -> str:
        """One line on how the completions were drawn: plain sampling (k per problem) or a
        search (r1.search.searchers.search_report), marked when it read the gold answer."""
        s = self.settings
        sampling = (
            f"temperature {s['temperature']}, top-p {s['top_p']}, at most "
            f"{s['max_new_tokens']} new tokens; answers from `{s['answer_source']}`."
        )
        search = s.get("search", "none")
        if search == "none":
            return f"{s['num_problems']} problems x k={s['k']} samples, {sampling}"
        knobs = ", ".join(f"{key}={value}" for key, value in s.get("search_settings", {}).items())
        line = (
            f"{s['num_problems']} problems, one answer each by search `{search}` ({knobs}), "
            f"{sampling}"
        )
        if s.get("oracle"):
            line += (
                "\n\n**ORACLE**: the search scored finished solutions against the gold answer "
                "(terminal=oracle); its accuracy is not a test-time result."
            )
        return line


def evaluate(
    engine,
    problems: Sequence[Problem],
    prompts: Sequence[str],
    prompt_ids: Sequence[Sequence[int]],
    k: int = 16,
    params: SamplingParams | None = None,
    answer_source: str = "answer_tag",
    reward: CompositeReward | None = None,
    batch_size: int = 8,
    reflection_words: Sequence[str] = REFLECTION_WORDS,
    progress: bool = True,
    settings: dict[str, Any] | None = None,
) -> EvalReport:
    """Sample k completions per problem with `engine` and score them (see module doc).

    A completion counts as right only if it stopped and its answer (read from
    `answer_source`) is right. cons@k votes over the answers of the completions that stopped.
    `lang_consistency` is the mean language-consistency of the <think> blocks (completions
    without one are left out); the `reward` terms, if given, are reported as reward/<term>.
    """
    params = params or SamplingParams(max_new_tokens=256, temperature=0.6, top_p=0.95)
    completions = sample_in_batches(
        engine, prompt_ids, params, k, batch_size, f"evaluating (k={k})" if progress else None
    )

    table: list[list[bool]] = []
    per_problem: list[dict[str, Any]] = []
    scores = []
    solved_by_vote = grader_errors = 0
    for i, problem in enumerate(problems):
        own = completions[i * k : (i + 1) * k]
        own_scores = [score_completion(problem, c, answer_source) for c in own]
        scores += own_scores
        answers = [extract_answer(c.text, answer_source) if c.finished else None for c in own]
        vote = majority_answer(answers)
        voted_right, vote_error = judged(vote, problem)
        grader_errors += vote_error
        solved_by_vote += voted_right
        table.append([s.correct for s in own_scores])
        per_problem.append(
            {
                "question": problem.question,
                "gold": problem.answer,
                "answers": answers,
                "correct": table[-1],
                "majority": vote,
                "majority_correct": voted_right,
                "completions": [c.text for c in own],
            }
        )

    texts = [c.text for c in completions]
    n = max(len(scores), 1)
    metrics = {
        "pass@1": mean_pass_at_k(table, 1),
        "pass@k": mean_pass_at_k(table, k),
        "cons@k": solved_by_vote / max(len(problems), 1),
        "accuracy_lenient": sum(s.correct_lenient for s in scores) / n,
        "format_rate": sum(s.strict_format for s in scores) / n,
        "stop_rate": sum(c.finished for c in completions) / n,
        # k x mean completion length: the generated-token budget a search is compared at
        "tokens_per_problem": sum(c.num_tokens for c in completions) / max(len(problems), 1),
        "grader_errors": float(grader_errors + sum(s.grader_error for s in scores)),
    }
    samples = reward_samples(
        [p for p in problems for _ in range(k)],
        [p for p in prompts for _ in range(k)],
        completions,
        params.max_new_tokens,
    )
    language = CompositeReward({"lang_consistency": {}}, workers=0).score(samples)
    metrics["lang_consistency"] = language.metrics("eval")["eval/reward"]
    lengths = length_stats([c.num_tokens for c in completions])
    metrics.update({f"completion_len_{name}": value for name, value in lengths.items()})
    metrics.update(reflection_stats(texts, reflection_words))
    behaviour = behaviour_metrics(
        texts,
        [c.num_tokens for c in completions],
        correct=[right for row in table for right in row],
        levels=[p.meta.get("level") for p in problems for _ in range(k)],
        words=reflection_words,
    )
    metrics.update({name: v for name, v in behaviour.items() if not math.isnan(v)})
    if reward is not None:
        for name, value in reward.score(samples).metrics("eval").items():
            metrics[name.removeprefix("eval/")] = value
    run_settings = {
        "k": k,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_new_tokens": params.max_new_tokens,
        "answer_source": answer_source,
        "num_problems": len(problems),
        **(settings or {}),
    }
    return EvalReport(run_settings, metrics, per_problem)
