"""The supervised losses: SFT's next-token NLL, the PRM's step BCE and the outcome reward
model's pairwise (Bradley-Terry) and pointwise losses (the RL objective's pieces:
r1.algorithms.objectives)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from r1.algorithms.chunks import map_chunks

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


def head_token_nll(
    hidden: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    chunk_tokens: int,
) -> torch.Tensor:
    """Per-position negative log-likelihood [B, T] of labels [B, T] under head(hidden), 0 where
    no label applies, from the labelled positions' logits only, `chunk_tokens` at a time
    (each chunk's recomputed in backward: r1.algorithms.chunks). In fp32.

    hidden: [B, T, H] the states that predict labels; head maps [n, H] -> [n, V]. Summed over
    positions and divided by the labelled count, it is next_token_nll(head(hidden), labels)."""
    labelled = labels != IGNORE_INDEX
    states, targets = hidden[labelled], labels[labelled]

    def nll(chunk_states: torch.Tensor, chunk_targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(chunk_states).float(), chunk_targets, reduction="none")

    losses = map_chunks(nll, chunk_tokens, states, targets)
    per_token = hidden.new_zeros(labels.shape, dtype=torch.float32)
    if losses:
        per_token = per_token.masked_scatter(labelled, torch.cat(losses))
    return per_token


def step_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a process reward model at step ends, mean over real steps.

    logits: [B, S] the PRM's logit at each step end; labels: [B, S] in [0, 1] (Math-Shepherd
    hard 0/1 or soft fractions: the target is then the fraction, not a class); mask: [B, S]
    True on real steps. No step at all: 0 (with a gradient path, so the step still runs)."""
    per_step = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    weights = mask.float()
    return (per_step * weights).sum() / weights.sum().clamp(min=1)


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float | None = None
) -> torch.Tensor:
    """Pairwise reward-model loss, mean over pairs of -log sigmoid(chosen - rejected - margin):
    the negative log-likelihood that the chosen response is preferred under the Bradley-Terry
    model. `margin` (Llama 2's) asks for a gap of at least that much; None is no margin.

    chosen, rejected: [P] the reward model's scores of each pair's two responses; margin: [P]
    or a float. Computed in fp32 whatever the scores' dtype."""
    difference = chosen.float() - rejected.float()
    if margin is not None:
        difference = difference - torch.as_tensor(margin, dtype=torch.float32, device=chosen.device)
    return -F.logsigmoid(difference).mean()


def pointwise_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pointwise reward-model loss (a safety classifier): binary cross-entropy of each
    response's score, read as a logit, against its 0/1 label, mean over responses.

    logits: [N]; labels: [N] in {0, 1}. In fp32."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
