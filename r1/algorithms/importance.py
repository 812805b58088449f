"""Truncated importance sampling (TIS) between the rollout engine and the trainer.

An engine such as vLLM samples with its own kernels (and possibly weights a few steps old),
so the distribution that sampled a token (mu) is not exactly the trainer's pi_old. The
policy-gradient estimate is corrected by w = pi_old / mu, capped at `cap` so that a handful of
tokens the sampler found far likelier than the trainer cannot blow up the variance (Yao et al.,
2025, "Your efficient RL framework secretly brings you off-policy RL training").
"""

from __future__ import annotations

import torch

IS_LEVELS = ("token", "sequence")


def importance_ratios(
    trainer_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    level: str = "token",
) -> torch.Tensor:
    """Untruncated ratios pi_old / mu, [N, T] (0 where masked).

    trainer_logprobs, sampler_logprobs: [N, T] log-probs of the sampled tokens under the
    trainer's pre-update policy and under the engine that sampled them; mask: [N, T].
    level=token: one ratio per token. level=sequence: the product over the sequence's tokens
    (exp of the summed log-ratio), the same for each of its tokens.
    """
    if level not in IS_LEVELS:
        raise ValueError(f"unknown importance-sampling level {level!r}; valid: {IS_LEVELS}")
    mask = mask.to(trainer_logprobs.dtype)
    log_ratio = (trainer_logprobs.detach() - sampler_logprobs) * mask
    if level == "sequence":
        log_ratio = log_ratio.sum(1, keepdim=True).expand_as(mask)
    # exp of a large positive log-ratio overflows; the cap is far below this anyway.
    return torch.exp(log_ratio.clamp(max=20.0)) * mask


def truncated_importance_weights(
    trainer_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    level: str = "token",
    cap: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [N, T] = min(ratio, cap), ratios [N, T]); both 0 where masked, no gradient.
    The per-token policy loss is multiplied by the weights."""
    if cap <= 0:
        raise ValueError(f"importance-sampling cap must be > 0, got {cap}")
    ratios = importance_ratios(trainer_logprobs, sampler_logprobs, mask, level)
    return ratios.clamp(max=cap), ratios


def ratio_stats(ratios: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Mean and max of the untruncated ratios over the masked tokens (`rollout/is_ratio_*`)."""
    kept = ratios[mask.bool()]
    if kept.numel() == 0:
        return {"is_ratio_mean": float("nan"), "is_ratio_max": float("nan")}
    return {"is_ratio_mean": float(kept.mean()), "is_ratio_max": float(kept.max())}
