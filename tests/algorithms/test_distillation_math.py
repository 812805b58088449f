"""On-policy distillation's advantages against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from r1.algorithms.distillation import reverse_kl, reverse_kl_advantages


def test_each_token_gets_teacher_minus_student_log_prob():
    # Two completions of three slots; the second has one padding slot.
    # Student probabilities of its own tokens: 0.5, 0.25, 0.8 | 0.9, 0.5, (pad)
    # Teacher probabilities of the same tokens: 0.25, 0.5, 0.8 | 0.45, 0.5, (pad)
    student = torch.log(torch.tensor([[0.5, 0.25, 0.8], [0.9, 0.5, 1.0]]))
    teacher = torch.log(torch.tensor([[0.25, 0.5, 0.8], [0.45, 0.5, 0.3]]))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    advantages = reverse_kl_advantages(student, teacher, mask)
    # log(0.25/0.5) = -ln 2: the teacher finds the first token half as likely -> pushed down;
    # log(0.5/0.25) = +ln 2 -> pushed up; equal probabilities -> 0; padding -> 0.
    ln2 = math.log(2.0)
    expected = torch.tensor([[-ln2, ln2, 0.0], [-ln2, 0.0, 0.0]])
    assert advantages == pytest.approx(expected, abs=1e-6)
    # The reverse-KL estimate is minus their mean over the 5 real tokens: (ln 2 - ln 2 + ln 2) / 5
    assert reverse_kl(student, teacher, mask) == pytest.approx(ln2 / 5, abs=1e-6)


def test_no_gradient_flows_through_the_advantages():
    student = torch.log(torch.tensor([[0.5, 0.5]])).requires_grad_(True)
    teacher = torch.log(torch.tensor([[0.25, 0.5]]))
    assert not reverse_kl_advantages(student, teacher, torch.ones(1, 2)).requires_grad


def test_a_student_equal_to_its_teacher_has_nothing_to_learn():
    logprobs = torch.log(torch.tensor([[0.3, 0.6, 0.1]]))
    mask = torch.ones(1, 3)
    assert torch.equal(reverse_kl_advantages(logprobs, logprobs, mask), torch.zeros(1, 3))
    assert reverse_kl(logprobs, logprobs, mask) == 0.0
