"""The RL objective's pieces, each registered by name (as verl's core_algos does):
policy losses (`module.policy_loss`), KL estimators (`module.kl_estimator`) and loss
aggregations (`module.loss_aggregation`). Advantage estimators: r1.algorithms.advantages.

Policy losses return the loss per token [N, T] (aggregated with `module.loss_aggregation`)
and a bool mask [N, T] of the tokens where clipping acted (its mean over completion tokens is
`train/clip_ratio`). Shared arguments: logprobs, old_logprobs [N, T] of the sampled tokens
under the policy being trained and the policy that sampled them (the "old" one); advantages
[N] (one per sequence) or [N, T]; mask [N, T], 1 on completion tokens; clip_low, clip_high
the clip range [1 - clip_low, 1 + clip_high] of the ratio; dual_clip (PPO's clip only).
KL estimators of KL(pi || pi_ref) from samples of pi (Schulman, 2020) take logprobs and
ref_logprobs [N, T] of the sampled tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1.algorithms.registry import Registry

PolicyLoss = Callable[..., tuple[torch.Tensor, torch.Tensor]]
POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss")


def _check_clip(clip_low: float, clip_high: float) -> None:
    if clip_low < 0 or clip_high < 0:
        raise ValueError(
            f"clip bounds must be >= 0, got clip_low={clip_low}, clip_high={clip_high}"
        )


def _per_token(advantages: torch.Tensor) -> torch.Tensor:
    return advantages.unsqueeze(1) if advantages.dim() == 1 else advantages


@POLICY_LOSSES.register("ppo_clip")
def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token (GRPO's and PPO's default).

    ratio = exp(logprobs - old_logprobs); loss = -min(ratio * A, clip(ratio, 1 - clip_low,
    1 + clip_high) * A). clip_high > clip_low is DAPO's clip-higher. dual_clip = c > 1 also
    bounds the loss of negative-advantage tokens by -c * A (Ye et al., 2020), so one token whose
    ratio exploded cannot dominate the batch. `clipped` marks tokens where the clipped branch
    was taken (the gradient is zero there). The mask is not needed: every token is its own.
    """
    _check_clip(clip_low, clip_high)
    advantages = _per_token(advantages)
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


@POLICY_LOSSES.register("gspo")
def gspo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 3e-4,
    clip_high: float = 4e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GSPO (Zheng et al., 2025): one importance ratio per sequence, length-normalised,
    s_i = exp(mean over its tokens of (logprobs - old_logprobs)), clipped per sequence:
    loss_i = -min(s_i * A_i, clip(s_i, 1 - clip_low, 1 + clip_high) * A_i).

    Written in the paper's token form, s_i,t = sg[s_i] * pi_t / sg[pi_t]: every token of a
    sequence carries the value s_i, and with `seq_mean_token_mean` aggregation the gradient is
    exactly GSPO's, s_i * A_i * mean_t grad log pi_t. The paper's clip range is tiny (3e-4,
    4e-4), because a sequence ratio moves far less than a token's: set module.clip_low and
    module.clip_high to it. A sequence-level advantage is expected ([N]).
    """
    _check_clip(clip_low, clip_high)
    mask = mask.to(logprobs.dtype)
    advantages = _per_token(advantages)
    tokens = mask.sum(1).clamp(min=1.0)
    sequence_log_ratio = ((logprobs - old_logprobs) * mask).sum(1) / tokens  # [N]
    ratio = torch.exp(sequence_log_ratio.detach().unsqueeze(1) + logprobs - logprobs.detach())
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    return loss, (clipped < unclipped) & mask.bool()


@POLICY_LOSSES.register("cispo")
def cispo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    clip_low: float = 1.0,
    clip_high: float = 0.28,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CISPO (MiniMax-M1, 2025): a REINFORCE token loss weighted by the clipped importance
    ratio, without gradient through the weight: loss = -sg(clip(ratio, 1 - clip_low,
    1 + clip_high)) * A * logprobs. Unlike PPO's clip, no token's gradient is dropped: a
    clipped token still learns, with a bounded weight. `clipped` marks tokens whose weight
    was truncated. MiniMax-M1 bounds the weight from above only (clip_low = 1 leaves it
    unbounded below, at 0).
    """
    _check_clip(clip_low, clip_high)
    advantages = _per_token(advantages)
    ratio = torch.exp(logprobs - old_logprobs).detach()
    weight = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    return -weight * advantages * logprobs, weight != ratio


# -- KL estimators ------------------------------------------------------------------------

KL_ESTIMATORS: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry(
    "KL estimator"
)


@KL_ESTIMATORS.register("k1")
def k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """log(pi/pi_ref): unbiased, high variance, can be negative."""
    return -(ref_logprobs - logprobs)


@KL_ESTIMATORS.register("k2")
def k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """(log(pi/pi_ref))^2 / 2: biased, low variance."""
    return 0.5 * (ref_logprobs - logprobs).pow(2)


@KL_ESTIMATORS.register("k3")
def k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """pi_ref/pi - log(pi_ref/pi) - 1: unbiased, always >= 0; the DeepSeek-R1 paper's."""
    # Clamped so a token the reference finds very unlikely cannot overflow exp().
    log_ratio = (ref_logprobs - logprobs).clamp(-20.0, 20.0)
    return torch.expm1(log_ratio) - log_ratio  # = e^x - x - 1, without cancellation near 0


def kl_estimate(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3"
) -> torch.Tensor:
    return KL_ESTIMATORS[estimator](logprobs, ref_logprobs)


# -- loss aggregations --------------------------------------------------------------------

AGGREGATIONS: Registry[Callable[..., torch.Tensor]] = Registry("loss aggregation")


def aggregate_loss(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss [N, T] over a mask [N, T] (1 = completion token) to a scalar
    with the aggregation registered as `mode`.

    num_sequences / num_tokens: the denominators over the whole optimizer step (every micro-
    batch and every rank) when the step is split; the micro-batch's own counts otherwise. With
    them, gradients accumulated over micro-batches equal the full-batch gradient.
    max_tokens: the generation budget (seq_mean_token_sum_norm's constant).
    """
    mask = mask.to(per_token.dtype)
    return AGGREGATIONS[mode](per_token, mask, num_sequences, num_tokens, max_tokens)


@AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(per_token, mask, num_sequences=None, num_tokens=None, max_tokens=None):
    """Mean over each sequence's tokens, then over sequences (the GRPO paper's): long
    completions weigh less per token."""
    sequences = num_sequences if num_sequences is not None else per_token.shape[0]
    per_sequence = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return per_sequence.sum() / max(float(sequences), 1.0)


@AGGREGATIONS.register("token_mean")
def token_mean(per_token, mask, num_sequences=None, num_tokens=None, max_tokens=None):
    """Sum over all tokens / number of tokens (DAPO): every token weighs the same."""
    denominator = num_tokens if num_tokens is not None else mask.sum()
    return (per_token * mask).sum() / max(float(denominator), 1.0)


@AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(per_token, mask, num_sequences=None, num_tokens=None, max_tokens=None):
    """Sum over each sequence's tokens / max_tokens (a constant), then mean over sequences
    (Dr. GRPO): no length bias."""
    if not max_tokens:
        raise ValueError("seq_mean_token_sum_norm needs max_tokens (the generation budget)")
    sequences = num_sequences if num_sequences is not None else per_token.shape[0]
    per_sequence = (per_token * mask).sum(1) / max_tokens
    return per_sequence.sum() / max(float(sequences), 1.0)
