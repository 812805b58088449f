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
