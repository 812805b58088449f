"""RolloutProducer: one RL step's data, made in plain Python (no Lightning).

    prompts --> engine.generate (G per prompt) --> rewards.score --> [dynamic-sampling refills
    from the prompt source] --> advantages (registered estimator) --> ScoredRollout

The RL module calls `produce` at the top of its training step; the result moves forward once
and nothing comes back through the batch.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from r1.algorithms.advantages import ADVANTAGES, StepRewards
from r1.rewards import CompositeReward, RewardSample
from r1.rewards.language import consistency_total
from r1.rollout.types import (
    Rollout,
    RolloutEngine,
    SamplingParams,
    concat_rollouts,
    select_groups,
)

# What an RL step starts from: problems, their rendered prompts and prompt token ids (unpadded)
PromptBatch = Mapping[str, Any]


class PromptSource(Protocol):
    def random_prompt_batch(self, k: int) -> PromptBatch:
        """k training prompts drawn at random (dynamic-sampling refills), from a generator
        whose state the source saves and restores for an exact resume."""
        ...


@dataclass
class ScoredRollout:
    """A generation batch ready for the policy update.

    rollout: B prompts x G completions; rewards: [N] (NaN = no signal); advantages: [N] or
    [N, C] (per token, from per-step rewards); metrics: train/reward*, train/zero_spread_groups,
    rollout/*; samples: sample-table rows (prompt, completion, reward and its terms) when the
    step is one that records them; started: perf_counter() when the step began.
    correct: [N] 1.0 right, 0.0 wrong, NaN where no correctness term (CORRECTNESS_TERMS) scored
    the row; levels: each row's problem difficulty level (its meta["level"]) or None. Both
    are for the behaviour metrics that split lengths by outcome and level.
    """

    rollout: Rollout
    rewards: torch.Tensor
    advantages: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    correct: torch.Tensor | None = None
    levels: list[Any] = field(default_factory=list)


# Reward terms that say whether a completion is right (score 1) or wrong: math and code.
CORRECTNESS_TERMS = ("accuracy", "code_exec")


@dataclass
class Scored:
    """One generation's rows as scored, before refills join several: rewards [N] (NaN = no
    signal) and ScoredRollout's correct and levels."""

    rollout: Rollout
    rewards: torch.Tensor
    correct: torch.Tensor
    levels: list[Any]

    def groups(self, keep: torch.Tensor) -> Scored:
        """The groups where keep ([B] bool) is True."""
        g = self.rollout.group_size
        rows = keep.repeat_interleave(g)
        return Scored(
            select_groups(self.rollout, keep),
            self.rewards[rows],
            self.correct[rows],
            [level for level, kept in zip(self.levels, rows.tolist()) if kept],
        )


def join(parts: Sequence[Scored]) -> Scored:
    parts = [p for p in parts if p.rollout.num_prompts]
    return Scored(
        concat_rollouts([p.rollout for p in parts]),
        torch.cat([p.rewards for p in parts]),
        torch.cat([p.correct for p in parts]),
        [level for p in parts for level in p.levels],
    )


def correctness(output, count: int) -> torch.Tensor:
    """[count] 1.0 / 0.0 / NaN from the first correctness term a reward output has."""
    values = next((output.terms[t] for t in CORRECTNESS_TERMS if t in output.terms), None)
    if values is None:
        return torch.full((count,), math.nan)
    return torch.tensor([math.nan if v is None else float(v >= 1.0) for v in values])


def reward_samples_for(
    rollout: Rollout, problems: Sequence[Any], prompts: Sequence[str], max_tokens: int
) -> list[RewardSample]:
    g = rollout.group_size
    lengths = rollout.completion_lengths.tolist()
    return [
        RewardSample(
            completion=text,
            gold=problems[i // g].answer,
            task=problems[i // g].task,
            meta=problems[i // g].meta,
            prompt=prompts[i // g],
            num_tokens=int(lengths[i]),
            max_tokens=max_tokens,
            truncated=rollout.ends[i] == "length",
        )
        for i, text in enumerate(rollout.texts)
    ]


def sampled_consistency(samples: Sequence[RewardSample]) -> float:
    """Mean share of each problem's own language in the sampled reasoning, over the samples
    whose problem has a language and whose reasoning has words (NaN: none): measured whatever
    the reward, so a run without the language term logs it too."""
    total, count = consistency_total(
        [s.completion for s in samples], [(s.meta or {}).get("language") for s in samples]
    )
    return total / count if count else math.nan


def peak_memory_gb() -> float:
    """Peak memory since `reset_peak_memory()`: allocated CUDA memory on GPU, else the
    process's resident set high-water mark (VmHWM)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 1e9
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e6  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: KiB, lifetime peak


def reset_peak_memory() -> None:
    """Start a new peak, so that runs of one Hydra multirun (one process) each report their
    own (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


StepScorer = Callable[[Rollout, Sequence[str]], tuple[list[list[float]], list[list[int]]]]


class RolloutProducer:
    """Generate, score, refill, compute advantages.

    advantage: a registered estimator name (r1.algorithms.advantages.ADVANTAGES), or None for
      none (PPO's advantages come from its critic: zeros here). A per-step estimator
      (`grpo_process`) needs `step_scorer`: (rollout, prompts) -> (per-step rewards, index of
      each step's last token) per completion, e.g. r1.models.prm.ProcessRewards.
    dynamic_sampling (DAPO): groups whose rewards are all equal are dropped and replaced by
      groups of fresh prompts from `prompt_source`, for up to `max_refills` rounds.
    sample_every: every this many steps, `samples` holds the first `sample_prompts` prompts'
      completions as generated and scored (before any refill).
    """

    def __init__(
        self,
        engine: RolloutEngine,
        reward: CompositeReward,
        sampling: SamplingParams,
        group_size: int,
        advantage: str | None = "grpo",
        dynamic_sampling: bool = False,
        prompt_source: PromptSource | None = None,
        max_refills: int = 3,
        step_scorer: StepScorer | None = None,
        sample_every: int = 0,
        sample_prompts: int = 2,
    ):
        if dynamic_sampling and prompt_source is None:
            raise ValueError("dynamic sampling refills from a prompt source; none was given")
        per_step = advantage is not None and ADVANTAGES.trait(advantage, "per_step", False)
        if per_step != (step_scorer is not None):
            raise ValueError(
                f"advantage {advantage!r} and a step scorer go together (per-step estimators "
                "need one, the others take none)"
            )
        self.engine, self.reward, self.sampling = engine, reward, sampling
        self.group_size, self.advantage = group_size, advantage
        self.dynamic_sampling, self.prompt_source = dynamic_sampling, prompt_source
        self.max_refills, self.step_scorer = max_refills, step_scorer
        self.sample_every, self.sample_prompts = sample_every, sample_prompts

    def produce(self, batch: PromptBatch, step: int) -> ScoredRollout:
        started = time.perf_counter()
        # the weights do not change within a step: its generations (refills too) share the
        # engine's prepared weights where it keeps them (HFRolloutEngine.same_weights)
        with getattr(self.engine, "same_weights", contextlib.nullcontext)():
            scored, reward_samples, output = self._generate_and_score(batch, step)
            metrics = output.metrics("train")  # of this first generation, not the refills
            metrics["train/language_consistency"] = sampled_consistency(reward_samples)
            samples = []
            if self.sample_every and step % self.sample_every == 0:
                samples = self._sample_rows(step, batch, scored.rollout, output)
            zero_spread = self._zero_spread(scored.rewards)
            metrics["train/zero_spread_groups"] = zero_spread.float().mean().item()
            if self.dynamic_sampling:
                scored = self._refill(batch, scored, zero_spread, step)
        rollout, rewards = scored.rollout, scored.rewards
        valid = ~torch.isnan(rewards)
        steps = None
        if self.step_scorer is not None:
            step_rewards, step_ends = self.step_scorer(rollout, batch["prompts"])
            steps = StepRewards(step_rewards, step_ends, rollout.completion_ids.shape[1])
            scores = [r for row in step_rewards for r in row]
            metrics["train/prm_step_score"] = sum(scores) / len(scores) if scores else math.nan
            metrics["train/steps_per_completion"] = len(scores) / len(step_rewards)
        if self.advantage is None:
            advantages = torch.zeros_like(rewards)
        else:
            advantages = ADVANTAGES[self.advantage](
                torch.nan_to_num(rewards), self.group_size, valid, steps
            )
        generated = int(rollout.completion_mask.sum())
        elapsed = time.perf_counter() - started
        metrics.update(
            {
                "train/completion_len": rollout.completion_lengths.float().mean().item(),
                "train/stop_rate": rollout.finished.float().mean().item(),
                "train/empty_completions": sum(not t.strip() for t in rollout.texts)
                / max(len(rollout.texts), 1),
                "rollout/tokens": float(generated),
                "rollout/tokens_per_s": generated / max(elapsed, 1e-9),
                "perf/peak_mem_gb": peak_memory_gb(),
                "rollout/s": elapsed,
            }
        )
        return ScoredRollout(
            rollout, rewards, advantages, metrics, samples, started, scored.correct, scored.levels
        )

    def _generate_and_score(self, batch: PromptBatch, step: int):
        rollout = self.engine.generate(batch["prompt_ids"], self.sampling, self.group_size)
        samples = reward_samples_for(
            rollout, batch["problems"], batch["prompts"], self.sampling.max_new_tokens
        )
        output = self.reward.score(samples, step=step)
        rewards = torch.tensor([float("nan") if r is None else r for r in output.total])
        levels = [(s.meta or {}).get("level") for s in samples]
        scored = Scored(rollout, rewards, correctness(output, len(samples)), levels)
        return scored, samples, output

    def _sample_rows(self, step: int, batch: PromptBatch, rollout, output) -> list[dict]:
        count = min(self.sample_prompts, len(batch["prompts"])) * self.group_size
        rows = []
        for i in range(count):
            row = {
                "step": step,
                "prompt": batch["prompts"][i // self.group_size],
                "completion": rollout.texts[i],
                "reward": output.total[i],
            }
            row.update({f"reward/{name}": values[i] for name, values in output.terms.items()})
            rows.append(row)
        return rows

    def _zero_spread(self, rewards: torch.Tensor) -> torch.Tensor:
        """[B] True for groups whose rewards are all equal (they carry no learning signal)."""
        grouped = torch.nan_to_num(rewards, nan=0.0).view(-1, self.group_size)
        return (grouped == grouped[:, :1]).all(1)

    def _refill(self, batch, scored: Scored, zero_spread, step) -> Scored:
        """Drop zero-spread groups and sample fresh prompts until the batch is full again or
        `max_refills` rounds are spent (then the dropped groups fill the rest)."""
        wanted = len(batch["problems"])
        parts = [scored.groups(~zero_spread)]
        kept = parts[0].rollout.num_prompts
        for _ in range(self.max_refills):
            missing = wanted - kept
            if missing <= 0:
                break
            extra = self.prompt_source.random_prompt_batch(missing)
            more, _, _ = self._generate_and_score(extra, step)
            parts.append(more.groups(~self._zero_spread(more.rewards)))
            kept += parts[-1].rollout.num_prompts
        if kept < wanted:
            # Refills ran out: top the batch up with the dropped zero-spread groups (their
            # advantages are 0), so every step, and every data-parallel rank, trains on the
            # same number of groups: sharded models run their forwards in lockstep.
            parts.append(scored.groups(zero_spread))
        joined = join(parts)
        return joined.groups(torch.arange(joined.rollout.num_prompts) < wanted)
