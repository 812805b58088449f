"""PPO with a learned critic (the baseline DeepSeek-R1 chose GRPO over): per-token rewards,
generalized advantage estimation, whitening, the clipped value loss, an adaptive KL
coefficient. Tensors are [N, T] over completion tokens; `mask` is 1 on generated tokens.
"""

from __future__ import annotations

import math

import torch


def token_rewards(
    sequence_rewards: torch.Tensor,
    mask: torch.Tensor,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> torch.Tensor:
    """[N, T]: the sequence reward [N] on each completion's last token, minus kl_coef * kl
    [N, T] on every token (the KL penalty in the reward, Ziegler et al. 2019)."""
    rewards = torch.zeros_like(mask, dtype=torch.float32)
    if kl is not None and kl_coef:
        rewards = rewards - kl_coef * kl.float() * mask
    lengths = mask.sum(1).long()
    has_tokens = lengths > 0
    rows = torch.arange(mask.shape[0], device=mask.device)[has_tokens]
    rewards[rows, lengths[has_tokens] - 1] += sequence_rewards[has_tokens].float()
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016) over completion tokens:
    delta_t = r_t + gamma * V_{t+1} - V_t, A_t = delta_t + gamma * lam * A_{t+1}, with
    V and A zero after the last token (the episode ends there). Returns (advantages,
    returns = advantages + values), both zero where mask is 0. Completions are right-padded,
    so a masked position is always past the end."""
    mask = mask.float()
    values = values.float() * mask
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * mask[:, t]
        next_value, next_advantage = values[:, t], advantages[:, t]
    return advantages, (advantages + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked elements (unbiased std); 0 where mask is 0."""
    mask = mask.float()
    count = mask.sum()
    mean = (x * mask).sum() / count.clamp(min=1)
    variance = ((x - mean).pow(2) * mask).sum() / (count - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(variance + eps) * mask


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss, per token: 0.5 * max((V - R)^2, (V_clip - R)^2) with
    V_clip = old_V + clamp(V - old_V, -clip, clip). Returns (loss [N, T], clipped [N, T]: the
    clipped branch was the larger, so its gradient is zero there; its mean is
    train/value_clipfrac)."""
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    unclipped_loss = (values - returns).pow(2)
    clipped_loss = (clipped_values - returns).pow(2)
    return 0.5 * torch.maximum(unclipped_loss, clipped_loss), clipped_loss > unclipped_loss


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over the masked tokens: 1 = the critic
    predicts the returns, 0 = no better than their mean, < 0 = worse."""
    m = mask.bool()
    target, prediction = returns[m].float(), values[m].float()
    variance = target.var(unbiased=False)
    if target.numel() < 2 or variance == 0:
        return math.nan
    return float(1 - (target - prediction).var(unbiased=False) / variance)


class AdaptiveKLController:
    """Ziegler et al. (2019): move the KL coefficient so the measured KL tracks `target`:
    coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon."""

    def __init__(self, init_coef: float, target: float, horizon: int = 10_000):
        if target <= 0 or horizon <= 0:
            raise ValueError(
                f"adaptive KL needs target > 0 and horizon > 0, got {target}, {horizon}"
            )
        self.coef, self.target, self.horizon = init_coef, target, horizon

    def update(self, kl: float, n_steps: int) -> float:
        error = max(-0.2, min(0.2, kl / self.target - 1.0))
        self.coef *= 1.0 + error * n_steps / self.horizon
        return self.coef
