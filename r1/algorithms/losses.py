"""The supervised losses: SFT's next-token NLL and the PRM's step BCE (the RL objective's
pieces: r1.algorithms.objectives)."""

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


def step_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a process reward model at step ends, mean over real steps.

    logits: [B, S] the PRM's logit at each step end; labels: [B, S] in [0, 1] (Math-Shepherd
    hard 0/1 or soft fractions: the target is then the fraction, not a class); mask: [B, S]
    True on real steps. No step at all: 0 (with a gradient path, so the step still runs)."""
    per_step = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    weights = mask.float()
    return (per_step * weights).sum() / weights.sum().clamp(min=1)
