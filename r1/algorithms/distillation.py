"""On-policy distillation (Agarwal et al. 2024, GKD; Thinking Machines 2025): the student
samples, the teacher scores every sampled token, and each token's advantage is the negative
per-token reverse KL estimate,

    A_t = log pi_teacher(x_t | x_<t) - log pi_student(x_t | x_<t),

so the policy-gradient step lowers the student's probability where the teacher finds its
token unlikely and raises it where the teacher agrees more than the student does. Its
expectation under the student's samples is -KL(student || teacher) per token: mode seeking,
dense (one signal per token, not one per sequence) and with no reward model. Simplification,
as in both references: no discounting, each token's advantage is its own term only.
"""

from __future__ import annotations

import torch


def reverse_kl_advantages(
    student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Per-token advantages [N, C]: teacher minus student log-prob of each sampled token, 0 on
    padding. Both log-probs are of the tokens the student sampled (no gradient flows)."""
    difference = teacher_logprobs.detach().float() - student_logprobs.detach().float()
    return difference * mask.to(difference.dtype)


def reverse_kl(
    student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, mask: torch.Tensor
) -> float:
    """The mean per-token estimate of KL(student || teacher) over the student's samples
    (train/reverse_kl): the mean of log pi_student - log pi_teacher over real tokens."""
    m = mask.to(torch.float32)
    gap = student_logprobs.detach().float() - teacher_logprobs.detach().float()
    return float((gap * m).sum() / m.sum().clamp(min=1.0))
