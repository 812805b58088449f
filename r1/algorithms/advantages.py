"""Advantage estimators for group-sampled RL, selectable by name.

rewards: [N] with N = num_groups * G and the G samples of a prompt contiguous.
valid:   [N] bool, False for samples with no reward signal: they get advantage 0 and are
         left out of their group's statistics.
"""

from __future__ import annotations

import torch

ESTIMATORS = ("grpo", "dr_grpo", "rloo")


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


def group_normalized(
    rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None, eps: float = 1e-4
) -> torch.Tensor:
    """GRPO: A_i = (r_i - mean(r)) / (std(r) + eps) within the group (std with Bessel's
    correction, as TRL and verl compute it). A group whose rewards are all equal has a zero
    numerator, hence zero advantage, never NaN."""
    r, v, count, mean = _grouped(rewards, group_size, valid)
    centered = torch.where(v, r - mean, torch.zeros_like(r))
    std = (centered.pow(2).sum(1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
    return torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered)).view(-1)


def mean_centered(
    rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Dr. GRPO: A_i = r_i - mean(r), no division by the std (which up-weights groups that are
    almost all right or all wrong)."""
    r, v, _, mean = _grouped(rewards, group_size, valid)
    return torch.where(v, r - mean, torch.zeros_like(r)).view(-1)


def leave_one_out(
    rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """RLOO: A_i = r_i - mean of the other samples' rewards = n/(n-1) * (r_i - mean(r))."""
    r, v, count, mean = _grouped(rewards, group_size, valid)
    scale = count / (count - 1).clamp(min=1)
    return torch.where(v & (count > 1), scale * (r - mean), torch.zeros_like(r)).view(-1)


def process_advantages(
    step_rewards: list[list[float]],
    step_ends: list[list[int]],
    group_size: int,
    width: int,
    eps: float = 1e-4,
) -> torch.Tensor:
    """GRPO with process supervision (DeepSeekMath, section 4.1.3): per-token advantages [N, width].

    step_rewards[i][j]: the reward of step j of completion i (e.g. a PRM's score);
    step_ends[i][j]: the index of that step's last token in the completion. Within each group
    of `group_size` completions every step reward is normalised by the mean and std (Bessel)
    of all the group's step rewards, r~ = (r - mean) / (std + eps), and token t's advantage
    is the sum of the normalised rewards of the steps that end at or after t: a token is
    credited with the quality of its own step and of every later one. Tokens after the last
    step end get 0; a group whose step rewards are all equal (or that has < 2) gets 0.
    """
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


def compute_advantages(
    name: str, rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None
) -> torch.Tensor:
    if name == "grpo":
        return group_normalized(rewards, group_size, valid)
    if name == "dr_grpo":
        return mean_centered(rewards, group_size, valid)
    if name == "rloo":
        return leave_one_out(rewards, group_size, valid)
    raise ValueError(f"unknown advantage estimator {name!r}; valid: {', '.join(ESTIMATORS)}")
