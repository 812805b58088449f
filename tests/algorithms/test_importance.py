import math

import pytest
import torch

from r1.algorithms.importance import importance_ratios, ratio_stats, truncated_importance_weights


def test_token_ratios_and_cap_by_hand():
    trainer = torch.tensor([[math.log(0.5), math.log(0.2), 0.0]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.4), 0.0]])
    mask = torch.tensor([[1, 1, 0]])
    weights, ratios = truncated_importance_weights(trainer, sampler, mask, "token", cap=1.5)
    assert ratios[0].tolist() == pytest.approx([2.0, 0.5, 0.0])
    assert weights[0].tolist() == pytest.approx([1.5, 0.5, 0.0])  # 2.0 capped at 1.5


def test_sequence_ratio_is_the_product_over_tokens():
    trainer = torch.tensor([[math.log(0.5), math.log(0.2)], [math.log(0.1), 0.0]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.4)], [math.log(0.3), math.log(0.9)]])
    mask = torch.tensor([[1, 1], [1, 0]])
    ratios = importance_ratios(trainer, sampler, mask, "sequence")
    # row 0: 2.0 * 0.5 = 1.0 on both tokens; row 1: 1/3 on its one token, 0 where masked
    assert ratios.flatten().tolist() == pytest.approx([1.0, 1.0, 1 / 3, 0.0])


def test_weights_carry_no_gradient_and_stats_skip_masked():
    trainer = torch.tensor([[0.0, -1.0]], requires_grad=True)
    sampler = torch.tensor([[-1.0, 5.0]])
    weights, ratios = truncated_importance_weights(trainer, sampler, torch.tensor([[1, 0]]))
    assert not weights.requires_grad
    assert ratio_stats(ratios, torch.tensor([[1, 0]])) == pytest.approx(
        {"is_ratio_mean": math.e, "is_ratio_max": math.e}
    )


def test_bad_level_and_cap_are_named():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="'tok'"):
        importance_ratios(x, x, x, "tok")
    with pytest.raises(ValueError, match="cap must be > 0"):
        truncated_importance_weights(x, x, x, cap=0)
