"""Greedy held-out generation and strict scoring of completions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from r1.data.problem import Problem
from r1.rewards.accuracy import answer_is_correct, extract_answer
from r1.rewards.types import RewardError, RewardSample
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import Generation, SamplingParams
from r1.text import last_number, parse_completion


def sample_completions(
    engine, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, n: int = 1
) -> list[Generation]:
    """n completions per prompt (unpadded token ids), a prompt's n contiguous."""
    return engine.generate([list(p) for p in prompt_ids], params, n=n).generations()


def sample_in_batches(
    engine,
    prompt_ids: Sequence[Sequence[int]],
    params: SamplingParams,
    k: int,
    batch_size: int,
    desc: str | None = None,
) -> list[Generation]:
    """k completions per prompt, batch_size prompts per generation call, a prompt's k
    contiguous; desc: the label of a progress bar (None: no bar)."""
    batches = range(0, len(prompt_ids), batch_size)
    completions: list[Generation] = []
    for start in tqdm(batches, desc=desc, unit="batch", disable=desc is None):
        completions += sample_completions(engine, prompt_ids[start : start + batch_size], params, k)
    return completions


def generate_greedy(
    model,
    tokenizer,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    stop: Sequence[str] = (),
) -> list[Generation]:
    """prompt_ids, prompt_mask: [B, P], left-padded. Greedy decoding with the rollout engine
    RL uses, so held-out scores see the same generation code as training; `stop`: the stop
    strings the training rollouts end at, so a policy trained to stop at "</answer>" is
    scored the same way."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0, stop=tuple(stop))
    return sample_completions(
        HFRolloutEngine(model, tokenizer), unpadded(prompt_ids, prompt_mask), params
    )


def unpadded(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> list[list[int]]:
    """[B, P] left-padded ids and mask -> B token-id lists without the padding."""
    return [ids[mask.bool()].tolist() for ids, mask in zip(prompt_ids, prompt_mask)]


@dataclass(frozen=True)
class Score:
    correct: bool  # stopped, and the <answer> block holds a right answer
    correct_lenient: bool  # the last number anywhere in the text is right (or the answer block is)
    strict_format: bool  # stopped, one <think> block then one <answer> block, nothing else
    grader_error: bool = False  # the grader failed (e.g. the sandbox): scored wrong, counted


def judged(answer: str | None, problem: Problem) -> tuple[bool, bool]:
    """(right, grader failed): `answer_is_correct` that counts a grader failure instead of
    raising it; the answer then counts as wrong."""
    try:
        return answer_is_correct(answer, problem.answer, problem.task, problem.meta), False
    except RewardError:
        return False, True


def score_completion(
    problem: Problem, completion: Generation, answer_source: str = "answer_tag"
) -> Score:
    return score_text(problem, completion.text, completion.finished, answer_source)


def score_text(
    problem: Problem, text: str, finished: bool, answer_source: str = "answer_tag"
) -> Score:
    """The strict held-out score of a completion `text` that ended within its budget or not
    (`finished`; search scores texts it assembled itself). answer_source: where the final
    answer is read for `correct`: the last <answer> block, the last \\boxed{}, or the last
    number (for tasks that ask for the bare answer)."""
    parsed = parse_completion(text)
    answer = extract_answer(text, answer_source)
    answer_right, error = judged(answer, problem)
    lenient = answer_right
    if not answer_right and problem.task != "countdown":
        lenient, lenient_error = judged(last_number(text), problem)
        error |= lenient_error
    return Score(
        correct=finished and answer_right,
        correct_lenient=lenient,
        strict_format=finished and parsed.strict,
        grader_error=error,
    )


def summarize(scores: Sequence[Score], completions: Sequence[Generation]) -> dict[str, float]:
    """Mean metrics over a set of completions (names without the `val/` prefix)."""
    n = max(len(scores), 1)
    return {
        "accuracy": sum(s.correct for s in scores) / n,
        "accuracy_lenient": sum(s.correct_lenient for s in scores) / n,
        "format_rate": sum(s.strict_format for s in scores) / n,
        "stop_rate": sum(c.finished for c in completions) / n,
        "completion_len": sum(c.num_tokens for c in completions) / n,
        "grader_errors": float(sum(s.grader_error for s in scores)),
    }


def reward_samples(
    problems: Sequence[Problem],
    prompts: Sequence[str],
    completions: Sequence[Generation],
    max_tokens: int,
) -> list[RewardSample]:
    return [
        RewardSample(
            completion=c.text,
            gold=p.answer,
            task=p.task,
            meta=p.meta,
            prompt=prompt,
            num_tokens=c.num_tokens,
            max_tokens=max_tokens,
            truncated=not c.finished,
        )
        for p, prompt, c in zip(problems, prompts, completions)
    ]
