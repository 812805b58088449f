"""Advantage estimators for group-sampled RL, registered by name (`module.advantage`).

Every estimator takes (rewards, group_size, valid, steps) and returns advantages [N] (one per
sequence) or [N, C] (per token: the process estimators, traits per_step=True):
rewards: [N] with N = num_groups * G and the G samples of a prompt contiguous.
valid:   [N] bool, False for samples with no reward signal: they get advantage 0 and are
         left out of their group's (or batch's) statistics.
steps:   StepRewards (per-step rewards and where each step ends), for per-step estimators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1.algorithms.registry import Registry

ADVANTAGES: Registry[Callable[..., torch.Tensor]] = Registry("advantage estimator")


@dataclass(frozen=True)
class StepRewards:
    """Dense rewards of each completion's reasoning steps (e.g. a PRM's scores).

    rewards[i][j]: the reward of step j of completion i; ends[i][j]: the index of that step's
    last token in the completion; width: the completion tensor's length C."""

    rewards: list[list[float]]
    ends: list[list[int]]
    width: int


def _grouped(rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None):
    if group_size < 2:
        raise ValueError(f"group advantages need group_size >= 2, got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)  # [num_groups, G]
    v = torch.ones_like(r, dtype=torch.bool) if valid is None else valid.view(-1, group_size)
    r = torch.where(v, r, torch.zeros_like(r))
    count = v.sum(1, keepdim=True)
    mean = r.sum(1, keepdim=True) / count.clamp(min=1)
    return r, v, count, mean


@ADVANTAGES.register("grpo")
def group_normalized(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
    eps: float = 1e-4,
) -> torch.Tensor:
    """GRPO: A_i = (r_i - mean(r)) / (std(r) + eps) within the group (std with Bessel's
    correction, as TRL and verl compute it). A group whose rewards are all equal has a zero
    numerator, hence zero advantage, never NaN."""
    r, v, count, mean = _grouped(rewards, group_size, valid)
    centered = torch.where(v, r - mean, torch.zeros_like(r))
    std = (centered.pow(2).sum(1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
    return torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered)).view(-1)


@ADVANTAGES.register("dr_grpo")
def mean_centered(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
) -> torch.Tensor:
    """Dr. GRPO: A_i = r_i - mean(r), no division by the std (which up-weights groups that are
    almost all right or all wrong)."""
    r, v, _, mean = _grouped(rewards, group_size, valid)
    return torch.where(v, r - mean, torch.zeros_like(r)).view(-1)


@ADVANTAGES.register("rloo")
def leave_one_out(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
) -> torch.Tensor:
    """RLOO: A_i = r_i - mean of the other samples' rewards = n/(n-1) * (r_i - mean(r))."""
    r, v, count, mean = _grouped(rewards, group_size, valid)
    scale = count / (count - 1).clamp(min=1)
    return torch.where(v & (count > 1), scale * (r - mean), torch.zeros_like(r)).view(-1)


@ADVANTAGES.register("grpo_process", per_step=True)
def process_advantages(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
    eps: float = 1e-4,
) -> torch.Tensor:
    """GRPO with process supervision (DeepSeekMath, section 4.1.3): per-token advantages [N, C]
    from per-step rewards (the outcome rewards are not used).

    Within each group of `group_size` completions every step reward is normalised by the mean
    and std (Bessel) of all the group's step rewards, r~ = (r - mean) / (std + eps), and token
    t's advantage is the sum of the normalised rewards of the steps that end at or after t: a
    token is credited with the quality of its own step and of every later one. Tokens after
    the last step end get 0; a group whose step rewards are all equal (or that has < 2) gets 0.
    """
    if steps is None:
        raise ValueError("the grpo_process advantage needs per-step rewards (a process reward)")
    step_rewards, step_ends, width = steps.rewards, steps.ends, steps.width
    n = len(step_rewards)
    if len(step_ends) != n or n % group_size:
        raise ValueError(
            f"{n} step-reward rows and {len(step_ends)} step-end rows for groups of {group_size}"
        )
    advantages = torch.zeros(n, width)
    for start in range(0, n, group_size):
        rows = range(start, start + group_size)
        pooled = torch.tensor([r for i in rows for r in step_rewards[i]], dtype=torch.float32)
        if pooled.numel() < 2:
            continue
        mean, std = pooled.mean(), pooled.std()
        if std <= 0:
            continue
        for i in rows:
            if len(step_rewards[i]) != len(step_ends[i]):
                raise ValueError(
                    f"completion {i}: {len(step_rewards[i])} step rewards, "
                    f"{len(step_ends[i])} step ends"
                )
            for reward, end in zip(step_rewards[i], step_ends[i]):
                advantages[i, : min(end, width - 1) + 1] += (reward - mean) / (std + eps)
    return advantages


def _batch_normalized(
    advantages: torch.Tensor, valid: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """(a - mean) / (std + eps) over the valid samples of the batch (std with Bessel's
    correction); 0 for invalid samples, and everywhere when the std is 0."""
    v = torch.ones_like(advantages, dtype=torch.bool) if valid is None else valid
    kept = advantages[v]
    if kept.numel() < 2:
        return torch.zeros_like(advantages)
    mean, std = kept.mean(), kept.std()
    if std <= 0:
        return torch.zeros_like(advantages)
    return torch.where(v, (advantages - mean) / (std + eps), torch.zeros_like(advantages))


@ADVANTAGES.register("reinforce_pp", group_baseline=False)
def reinforce_pp(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
    eps: float = 1e-4,
) -> torch.Tensor:
    """REINFORCE++ (Hu, 2025) with an outcome reward: the reward normalised over the whole
    generation batch, A_i = (r_i - mean_batch(r)) / (std_batch(r) + eps); no group baseline,
    so it also works with one sample per prompt. Simplification: "the batch" is this rank's
    generation batch (not all ranks'), and the KL stays a loss term (module.kl_coef) instead
    of a per-token reward."""
    return _batch_normalized(rewards.float(), valid, eps)


@ADVANTAGES.register("reinforce_pp_baseline")
def reinforce_pp_baseline(
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
    eps: float = 1e-4,
) -> torch.Tensor:
    """REINFORCE++-baseline: subtract the group's mean reward (as Dr. GRPO does), then
    normalise over the whole generation batch (not per group, so near-unanimous groups are
    not up-weighted as GRPO's per-group std does)."""
    return _batch_normalized(mean_centered(rewards, group_size, valid), valid, eps)


def compute_advantages(
    name: str,
    rewards: torch.Tensor,
    group_size: int,
    valid: torch.Tensor | None = None,
    steps: StepRewards | None = None,
) -> torch.Tensor:
    return ADVANTAGES[name](rewards, group_size, valid, steps)
