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
