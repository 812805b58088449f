"""Losses as small documented units."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def next_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over labelled tokens (SFT).

    logits: [B, T, V], the prediction at position t is scored against labels[:, t]
    (the caller has already shifted); labels: [B, T] with IGNORE_INDEX where no loss applies.
    Computed in fp32 whatever the logits' dtype.
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX
    )


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, per token; returns (loss [N, T], clipped [N, T] bool).

    logprobs, old_logprobs: [N, T] log-probs of the sampled tokens under the current policy and
    the policy that sampled them; advantages: [N] (one per sequence, as in GRPO) or [N, T].
    ratio = exp(logprobs - old_logprobs); loss = -min(ratio * A, clip(ratio, 1 - clip_low,
    1 + clip_high) * A). clip_high > clip_low is DAPO's clip-higher. dual_clip = c > 1 also
    bounds the loss of negative-advantage tokens by -c * A (Ye et al., 2020), so one token whose
    ratio exploded cannot dominate the batch. `clipped` marks tokens where the clipped branch
    was taken (the gradient is zero there): its mean is `train/clip_ratio`.
    """
    if clip_low < 0 or clip_high < 0:
        raise ValueError(
            f"clip bounds must be >= 0, got clip_low={clip_low}, clip_high={clip_high}"
        )
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    was_clipped = clipped < unclipped
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        bound = -dual_clip * advantages
        dual = (advantages < 0) & (loss > bound)
        loss = torch.where(dual, bound.expand_as(loss), loss)
        was_clipped = was_clipped | dual
    return loss, was_clipped


AGGREGATIONS = ("seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm")


def aggregate_loss(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss [N, T] over a mask [N, T] (1 = completion token) to a scalar.

    seq_mean_token_mean      mean over each sequence's tokens, then over sequences (GRPO paper);
                             long completions weigh less per token.
    token_mean               sum over all tokens / number of tokens (DAPO).
    seq_mean_token_sum_norm  sum over each sequence's tokens / max_tokens (a constant), then mean
                             over sequences (Dr. GRPO): no length bias.

    num_sequences / num_tokens: the denominators over the whole optimizer step (every micro-
    batch and every rank) when the step is split; the micro-batch's own counts otherwise. With
    them, gradients accumulated over micro-batches equal the full-batch gradient.
    """
    mask = mask.to(per_token.dtype)
    if mode == "token_mean":
        denominator = num_tokens if num_tokens is not None else mask.sum()
        return (per_token * mask).sum() / max(float(denominator), 1.0)
    sequences = num_sequences if num_sequences is not None else per_token.shape[0]
    if mode == "seq_mean_token_mean":
        per_sequence = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    elif mode == "seq_mean_token_sum_norm":
        if not max_tokens:
            raise ValueError("seq_mean_token_sum_norm needs max_tokens (the generation budget)")
        per_sequence = (per_token * mask).sum(1) / max_tokens
    else:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    return per_sequence.sum() / max(float(sequences), 1.0)


def step_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a process reward model at step ends, mean over real steps.

    logits: [B, S] the PRM's logit at each step end; labels: [B, S] in [0, 1] (Math-Shepherd
    hard 0/1 or soft fractions: the target is then the fraction, not a class); mask: [B, S]
    True on real steps. No step at all: 0 (with a gradient path, so the step still runs)."""
    per_step = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    weights = mask.float()
    return (per_step * weights).sum() / weights.sum().clamp(min=1)
