"""RolloutCallback: before each RL training batch, sample G completions per prompt, score
them, and compute advantages; after the optimizer step, push weights to the engine."""

from __future__ import annotations

import json
import math
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from r1.algorithms.advantages import compute_advantages, process_advantages
from r1.eval.metrics import REFLECTION_WORDS, reflection_stats
from r1.rewards import CompositeReward, RewardSample
from r1.rollout.engine import RolloutEngine
from r1.rollout.types import Rollout, SamplingParams, concat_rollouts, select_groups


@dataclass
class ScoredRollout:
    """A rollout with its rewards [N] (NaN = no signal), advantages [N] (or [N, C] per token
    with process rewards), and the metrics of
    this generation batch (train/reward*, rollout/*), ready for the policy update."""

    rollout: Rollout
    rewards: torch.Tensor
    advantages: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # perf_counter() when the step began, for perf/step_s


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
            truncated=not bool(rollout.finished[i]),
        )
        for i, text in enumerate(rollout.texts)
    ]


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


class RolloutCallback(L.Callback):
    def __init__(
        self,
        engine: RolloutEngine,
        reward: CompositeReward,
        sampling: SamplingParams,
        group_size: int,
        advantage: str | None = "grpo",
        dynamic_sampling: bool = False,
        max_refills: int = 3,
        reflection_words: Sequence[str] = REFLECTION_WORDS,
        sample_every: int = 0,
        sample_prompts: int = 2,
        step_rewards=None,
    ):
        """step_rewards: None, or a callable (rollout, prompts) -> (per-step rewards, index of
        each step's last token) per completion (r1.search.prm.ProcessRewards): GRPO with
        process supervision, whose advantages are per token [N, C] from the step rewards
        (r1.algorithms.advantages.process_advantages) instead of one per completion."""
        self.engine, self.reward, self.sampling = engine, reward, sampling
        self.group_size, self.advantage = group_size, advantage
        self.dynamic_sampling, self.max_refills = dynamic_sampling, max_refills
        self.reflection_words = tuple(reflection_words)
        self.sample_every, self.sample_prompts = sample_every, sample_prompts
        self.step_rewards = step_rewards

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: dict, batch_idx: int
    ) -> None:
        started = time.perf_counter()
        step = trainer.global_step
        rollout, rewards, metrics, output = self._generate_and_score(batch, step)
        if self.sample_every and step % self.sample_every == 0:
            self._log_samples(trainer, step, batch, rollout, output)
        zero_spread = self._zero_spread(rewards)
        metrics["train/zero_spread_groups"] = zero_spread.float().mean().item()
        if self.dynamic_sampling:
            rollout, rewards = self._refill(trainer, batch, rollout, rewards, zero_spread, step)
        valid = ~torch.isnan(rewards)
        if self.step_rewards is not None:
            step_rewards, step_ends = self.step_rewards(rollout, batch["prompts"])
            advantages = process_advantages(
                step_rewards, step_ends, self.group_size, rollout.completion_ids.shape[1]
            )
            scores = [r for row in step_rewards for r in row]
            metrics["train/prm_step_score"] = sum(scores) / len(scores) if scores else math.nan
            metrics["train/steps_per_completion"] = len(scores) / len(step_rewards)
        elif self.advantage is None:  # the module computes its own (PPO: from its critic)
            advantages = torch.zeros_like(rewards)
        else:
            advantages = compute_advantages(
                self.advantage, torch.nan_to_num(rewards), self.group_size, valid
            )
        generated = int(rollout.completion_mask.sum())
        elapsed = time.perf_counter() - started
        metrics.update(
            {
                "train/completion_len": rollout.completion_lengths.float().mean().item(),
                "train/stop_rate": rollout.finished.float().mean().item(),
                "train/empty_completions": sum(not t.strip() for t in rollout.texts)
                / max(len(rollout.texts), 1),
                **{
                    f"train/{k}": v
                    for k, v in reflection_stats(rollout.texts, self.reflection_words).items()
                },
                "rollout/tokens": float(generated),
                "rollout/tokens_per_s": generated / max(elapsed, 1e-9),
                "perf/peak_mem_gb": peak_memory_gb(),
                "rollout/s": elapsed,
            }
        )
        batch["scored"] = ScoredRollout(rollout, rewards, advantages, metrics, started)

    def _log_samples(self, trainer: L.Trainer, step: int, batch: dict, rollout, output) -> None:
        """A sample table: every completion of the first `sample_prompts` prompts of the
        batch, as generated and scored (before any dynamic-sampling refill), with its reward
        terms. Appended to <run dir>/samples.jsonl; also a W&B table when W&B logs."""
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
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "samples.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        columns = list(rows[0]) if rows else []
        for logger in trainer.loggers:
            if hasattr(logger, "log_table") and rows:
                data = [[row[c] for c in columns] for row in rows]
                logger.log_table(key="train/samples", columns=columns, data=data)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reset_peak_memory()
        # A resumed run restored the weights after the engine was built.
        self.engine.update_weights(pl_module.model)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.engine.update_weights(pl_module.model)

    def _generate_and_score(self, batch: dict, step: int):
        rollout = self.engine.generate(batch["prompt_ids"], self.sampling, self.group_size)
        samples = reward_samples_for(
            rollout, batch["problems"], batch["prompts"], self.sampling.max_new_tokens
        )
        scored = self.reward.score(samples, step=step)
        rewards = torch.tensor([float("nan") if r is None else r for r in scored.total])
        return rollout, rewards, scored.metrics("train"), scored

    def _zero_spread(self, rewards: torch.Tensor) -> torch.Tensor:
        """[B] True for groups whose rewards are all equal (they carry no learning signal)."""
        grouped = torch.nan_to_num(rewards, nan=0.0).view(-1, self.group_size)
        return (grouped == grouped[:, :1]).all(1)

    def _refill(self, trainer, batch, rollout, rewards, zero_spread, step):
        """Dynamic sampling (DAPO): drop groups with zero reward spread and sample fresh prompts
        until the batch is full again or `max_refills` rounds are spent (then the dropped
        groups fill the rest)."""
        wanted = len(batch["problems"])
        keep = ~zero_spread
        parts, part_rewards = (
            [select_groups(rollout, keep)],
            [rewards.view(-1, self.group_size)[keep].flatten()],
        )
        kept = int(keep.sum())
        datamodule = trainer.datamodule
        for _ in range(self.max_refills):
            missing = wanted - kept
            if missing <= 0:
                break
            extra = datamodule.prompt_batch(datamodule.random_problems(missing))
            more, more_rewards, _, _ = self._generate_and_score(extra, step)
            good = ~self._zero_spread(more_rewards)
            parts.append(select_groups(more, good))
            part_rewards.append(more_rewards.view(-1, self.group_size)[good].flatten())
            kept += int(good.sum())
        if kept < wanted:
            # Refills ran out: top the batch up with the dropped zero-spread groups (their
            # advantages are 0), so every step, and every data-parallel rank, trains on the
            # same number of groups: sharded models run their forwards in lockstep.
            parts.append(select_groups(rollout, zero_spread))
            part_rewards.append(rewards.view(-1, self.group_size)[zero_spread].flatten())
        joined = concat_rollouts([p for p in parts if p.num_prompts])
        keep_groups = torch.arange(joined.num_prompts) < wanted
        joined = select_groups(joined, keep_groups)
        return joined, torch.cat(part_rewards)[: wanted * self.group_size]
