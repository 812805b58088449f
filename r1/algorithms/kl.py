"""Per-token KL estimators of KL(pi || pi_ref) from samples of pi (Schulman, 2020).

logprobs, ref_logprobs: [N, T] log-probabilities of the sampled tokens.
"""

from __future__ import annotations

import torch

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3"
) -> torch.Tensor:
    """k1 = log(pi/pi_ref) (unbiased, high variance, can be negative);
    k2 = (log(pi/pi_ref))^2 / 2 (biased, low variance);
    k3 = pi_ref/pi - log(pi_ref/pi) - 1 (unbiased, always >= 0): the DeepSeek-R1 paper's."""
    log_ratio = ref_logprobs - logprobs  # log(pi_ref / pi)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.pow(2)
    if estimator == "k3":
        # Clamped so a token the reference finds very unlikely cannot overflow exp().
        log_ratio = log_ratio.clamp(-20.0, 20.0)
        return torch.expm1(log_ratio) - log_ratio  # = e^x - x - 1, without cancellation near 0
    raise ValueError(f"unknown KL estimator {estimator!r}; valid: {', '.join(KL_ESTIMATORS)}")
