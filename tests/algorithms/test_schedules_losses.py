from __future__ import annotations

import math

import pytest
import torch

from r1.algorithms.losses import IGNORE_INDEX, next_token_nll
from r1.algorithms.schedules import warmup_cosine


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, 1 / 5),  # warmup: (step + 1) / (warmup + 1)
        (3, 4 / 5),
        (4, 1.0),  # warmup done: cosine starts at 1
        (9, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))),  # half-way: 0.55
        (14, 0.1),  # end of decay: min_ratio
        (100, 0.1),  # held afterwards
    ],
)
def test_warmup_cosine_hand_values(step, expected):
    assert warmup_cosine(step, warmup_steps=4, total_steps=14, min_ratio=0.1) == pytest.approx(
        expected
    )


def test_next_token_nll_ignores_masked_positions():
    # Two positions with labels; uniform logits over 4 tokens give -log(1/4) each, and the
    # confident position gives -log_softmax([5, 0, 0, 0])[0].
    logits = torch.tensor([[[0.0, 0, 0, 0], [5.0, 0, 0, 0], [9.0, -9, 3, 1]]])
    labels = torch.tensor([[2, 0, IGNORE_INDEX]])
    confident = -torch.log_softmax(torch.tensor([5.0, 0, 0, 0]), 0)[0]
    expected = (math.log(4) + confident.item()) / 2
    assert next_token_nll(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert next_token_nll(logits.bfloat16(), labels).dtype == torch.float32
