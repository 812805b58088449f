from __future__ import annotations

import math

import pytest
import torch

from r1.algorithms.losses import IGNORE_INDEX, bradley_terry_loss, next_token_nll, pointwise_bce
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


def test_bradley_terry_loss_hand_values():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # (-log sigmoid(2) - log sigmoid(-1)) / 2 = (0.126928 + 1.313262) / 2
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(0.720095, abs=1e-6)
    # a margin of 0.5 asks for more: (-log sigmoid(1.5) - log sigmoid(-1.5)) / 2
    # = (0.201413 + 1.701413) / 2
    assert bradley_terry_loss(chosen, rejected, margin=0.5).item() == pytest.approx(
        0.951413, abs=1e-6
    )
    per_pair = torch.tensor([0.5, 0.5])
    assert bradley_terry_loss(chosen, rejected, per_pair).item() == pytest.approx(
        0.951413, abs=1e-6
    )
    assert bradley_terry_loss(chosen.bfloat16(), rejected.bfloat16()).dtype == torch.float32


def test_pointwise_bce_hand_values():
    # logit 0, label 1: ln 2 = 0.693147; logit ln 3 (p 0.75), label 0: -ln 0.25 = 1.386294;
    # logit -2, label 0: -log sigmoid(2) = 0.126928
    logits = torch.tensor([0.0, math.log(3.0), -2.0])
    labels = torch.tensor([1.0, 0.0, 0.0])
    assert pointwise_bce(logits, labels).item() == pytest.approx(
        (0.693147 + 1.386294 + 0.126928) / 3, abs=1e-6
    )
