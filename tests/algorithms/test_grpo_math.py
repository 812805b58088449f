"""Advantages, KL estimators, clipped loss and aggregation against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from r1.algorithms.advantages import (
    compute_advantages,
    group_normalized,
    leave_one_out,
    mean_centered,
)
from r1.algorithms.kl import kl_estimate
from r1.algorithms.losses import aggregate_loss, clipped_policy_loss

T = torch.tensor


def test_group_normalized_by_hand():
    # group 1: [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3) = 0.57735
    # group 2: [2, 2, 2, 2]: all equal -> zero advantage, never NaN
    adv = group_normalized(T([1.0, 0, 0, 1, 2, 2, 2, 2]), group_size=4, eps=0.0)
    a = 0.5 / math.sqrt(1 / 3)  # 0.866
    torch.testing.assert_close(adv, T([a, -a, -a, a, 0, 0, 0, 0]))
    assert not torch.isnan(group_normalized(T([3.0, 3.0]), 2)).any()


def test_dr_grpo_and_rloo_by_hand():
    rewards = T([1.0, 0.0, 0.0])  # mean 1/3
    torch.testing.assert_close(mean_centered(rewards, 3), T([2 / 3, -1 / 3, -1 / 3]))
    # RLOO: r_i - mean of the others: 1 - 0 = 1; 0 - 0.5 = -0.5
    torch.testing.assert_close(leave_one_out(rewards, 3), T([1.0, -0.5, -0.5]))


def test_invalid_samples_are_left_out_of_their_group():
    rewards = T([1.0, 0.0, 99.0, 0.0])
    valid = T([True, True, False, True])
    # valid rewards [1, 0, 0]: mean 1/3
    torch.testing.assert_close(mean_centered(rewards, 4, valid), T([2 / 3, -1 / 3, 0.0, -1 / 3]))
    assert group_normalized(rewards, 4, valid)[2] == 0


def test_advantage_errors():
    with pytest.raises(ValueError, match="group_size >= 2, got 1"):
        group_normalized(T([1.0]), 1)
    with pytest.raises(ValueError, match="5 rewards do not split into groups of 2"):
        group_normalized(torch.ones(5), 2)
    with pytest.raises(ValueError, match="'ppo'.*grpo, dr_grpo, rloo"):
        compute_advantages("ppo", torch.ones(4), 2)


def test_kl_estimators_by_hand():
    logp, ref = T([[math.log(0.5)]]), T([[math.log(0.25)]])  # pi = 0.5, pi_ref = 0.25
    r = 0.5  # pi_ref / pi
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(r) ** 2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(r - math.log(r) - 1)  # 0.19315
    same = torch.randn(3, 5)
    for estimator in ("k1", "k2", "k3"):
        assert torch.equal(kl_estimate(same, same, estimator), torch.zeros(3, 5))
    assert (kl_estimate(torch.randn(50), torch.randn(50), "k3") >= 0).all()
    with pytest.raises(ValueError, match="'k4'"):
        kl_estimate(logp, ref, "k4")


def test_clipped_loss_ratio_e():
    # ratio = e (log-ratio 1). A = +1: clipped to 1 + 0.2 -> loss -1.2, clipped.
    # A = -1: min(-e, -1.2) = -e -> loss e, not clipped (the pessimistic branch is unclipped).
    logp, old = T([[1.0], [1.0]]), T([[0.0], [0.0]])
    loss, clipped = clipped_policy_loss(logp, old, T([1.0, -1.0]), 0.2, 0.2)
    torch.testing.assert_close(loss, T([[-1.2], [math.e]]))
    assert clipped.tolist() == [[True], [False]]
    # clip-higher: the upper bound is 1 + clip_high
    loss, _ = clipped_policy_loss(logp[:1], old[:1], T([1.0]), clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(-1.28)
    # ratio = 1/e (log-ratio -1), A = -1: clip(1/e) = 0.8 -> loss = -min(-0.3679, -0.8) = 0.8
    loss, clipped = clipped_policy_loss(T([[-1.0]]), T([[0.0]]), T([-1.0]), 0.2, 0.2)
    assert loss.item() == pytest.approx(0.8) and clipped.item()


def test_dual_clip_bounds_negative_advantages():
    # ratio = e^3 = 20.09, A = -1: plain loss 20.09; dual clip c = 3 bounds it at 3
    loss, clipped = clipped_policy_loss(T([[3.0]]), T([[0.0]]), T([-1.0]), dual_clip=3.0)
    assert loss.item() == pytest.approx(3.0) and clipped.item()
    loss, _ = clipped_policy_loss(T([[3.0]]), T([[0.0]]), T([1.0]), dual_clip=3.0)
    assert loss.item() == pytest.approx(-1.2)  # positive advantages are untouched
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        clipped_policy_loss(T([[0.0]]), T([[0.0]]), T([1.0]), dual_clip=0.5)
    with pytest.raises(ValueError, match="clip_low=-0.1"):
        clipped_policy_loss(T([[0.0]]), T([[0.0]]), T([1.0]), clip_low=-0.1)


def test_ratio_one_gives_plain_policy_gradient():
    logp = torch.zeros(2, 3, requires_grad=True)
    loss, clipped = clipped_policy_loss(logp, logp.detach(), T([2.0, -1.0]))
    loss.sum().backward()
    assert not clipped.any()
    torch.testing.assert_close(logp.grad, T([[-2.0] * 3, [1.0] * 3]))  # d(-ratio*A)/dlogp = -A


# per-token loss and mask of two sequences: lengths 1 and 3
PER_TOKEN = T([[4.0, 9.0, 9.0], [1.0, 2.0, 3.0]])
MASK = T([[1, 0, 0], [1, 1, 1]])


@pytest.mark.parametrize(
    "mode,kwargs,expected",
    [
        ("seq_mean_token_mean", {}, (4.0 + 2.0) / 2),  # sequence means 4 and 2
        ("token_mean", {}, (4.0 + 1 + 2 + 3) / 4),  # 10 / 4 tokens
        ("seq_mean_token_sum_norm", {"max_tokens": 5}, (4 / 5 + 6 / 5) / 2),
        ("token_mean", {"num_tokens": 8}, 10 / 8),  # global token count
        ("seq_mean_token_mean", {"num_sequences": 4}, 6 / 4),  # global sequence count
    ],
)
def test_aggregation_modes(mode, kwargs, expected):
    assert aggregate_loss(PER_TOKEN, MASK, mode, **kwargs).item() == pytest.approx(expected)


def test_micro_batches_with_global_counts_equal_the_full_batch():
    full = aggregate_loss(PER_TOKEN, MASK, "token_mean")
    split = sum(
        aggregate_loss(PER_TOKEN[i : i + 1], MASK[i : i + 1], "token_mean", num_tokens=4)
        for i in range(2)
    )
    assert split.item() == pytest.approx(full.item())
    with pytest.raises(ValueError, match="max_tokens"):
        aggregate_loss(PER_TOKEN, MASK, "seq_mean_token_sum_norm")
    with pytest.raises(ValueError, match="'sum'"):
        aggregate_loss(PER_TOKEN, MASK, "sum")


def test_process_advantages_by_hand() -> None:
    from r1.algorithms.advantages import process_advantages

    # One group of 2: completion 0 has steps scored 1 (ending at token 1) and 0 (token 3),
    # completion 1 one step scored 1 (token 2). Pooled [1, 0, 1]: mean 2/3, std sqrt(1/3).
    advantages = process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], 2, width=4, eps=0.0)
    good, bad = (1 - 2 / 3) / (1 / 3) ** 0.5, (0 - 2 / 3) / (1 / 3) ** 0.5
    expected = torch.tensor([[good + bad] * 2 + [bad] * 2, [good] * 3 + [0.0]])
    assert torch.allclose(advantages, expected, atol=1e-6)
    # All step rewards equal: no signal.
    flat = process_advantages([[0.5, 0.5], [0.5]], [[1, 3], [2]], 2, width=4)
    assert torch.equal(flat, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="completion 1: 2 step rewards, 1 step ends"):
        process_advantages([[1.0], [0.0, 1.0]], [[0], [1]], 2, width=3)
