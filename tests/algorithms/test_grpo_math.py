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
from r1.algorithms.objectives import aggregate_loss, clipped_policy_loss, kl_estimate

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
    loss, clipped = clipped_policy_loss(logp, old, T([1.0, -1.0]), clip_low=0.2, clip_high=0.2)
    torch.testing.assert_close(loss, T([[-1.2], [math.e]]))
    assert clipped.tolist() == [[True], [False]]
    # clip-higher: the upper bound is 1 + clip_high
    loss, _ = clipped_policy_loss(logp[:1], old[:1], T([1.0]), clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(-1.28)
    # ratio = 1/e (log-ratio -1), A = -1: clip(1/e) = 0.8 -> loss = -min(-0.3679, -0.8) = 0.8
    loss, clipped = clipped_policy_loss(
        T([[-1.0]]), T([[0.0]]), T([-1.0]), clip_low=0.2, clip_high=0.2
    )
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
    from r1.algorithms.advantages import StepRewards, process_advantages

    def process(step_rewards, ends, group_size, width, **kw):
        n = len(step_rewards)
        steps = StepRewards(step_rewards, ends, width)
        return process_advantages(torch.zeros(n), group_size, steps=steps, **kw)

    # One group of 2: completion 0 has steps scored 1 (ending at token 1) and 0 (token 3),
    # completion 1 one step scored 1 (token 2). Pooled [1, 0, 1]: mean 2/3, std sqrt(1/3).
    advantages = process([[1.0, 0.0], [1.0]], [[1, 3], [2]], 2, width=4, eps=0.0)
    good, bad = (1 - 2 / 3) / (1 / 3) ** 0.5, (0 - 2 / 3) / (1 / 3) ** 0.5
    expected = torch.tensor([[good + bad] * 2 + [bad] * 2, [good] * 3 + [0.0]])
    assert torch.allclose(advantages, expected, atol=1e-6)
    # All step rewards equal: no signal.
    flat = process([[0.5, 0.5], [0.5]], [[1, 3], [2]], 2, width=4)
    assert torch.equal(flat, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="completion 1: 2 step rewards, 1 step ends"):
        process([[1.0], [0.0, 1.0]], [[0], [1]], 2, width=3)


# -- the registered objectives added with the registry: GSPO, CISPO, REINFORCE++ -----------


def test_every_piece_is_registered_by_name():
    from r1.algorithms.advantages import ADVANTAGES
    from r1.algorithms.objectives import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES

    assert set(ADVANTAGES) == {
        "grpo",
        "dr_grpo",
        "rloo",
        "grpo_process",
        "reinforce_pp",
        "reinforce_pp_baseline",
    }
    assert set(POLICY_LOSSES) == {"ppo_clip", "gspo", "cispo"}
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
    assert set(AGGREGATIONS) == {"seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"}
    with pytest.raises(ValueError, match="unknown policy loss 'ppo'; valid: ppo_clip, gspo"):
        POLICY_LOSSES["ppo"]


def test_gspo_by_hand():
    # sequence 1: tokens with log-ratios 0.2 and 0.0 -> mean 0.1 -> s = e^0.1 = 1.10517
    # sequence 2: one token (the second is padding) with log-ratio -0.5 -> s = e^-0.5 = 0.60653
    old = T([[0.0, 0.0], [0.0, 0.0]])
    logp = T([[0.2, 0.0], [-0.5, 9.0]]).requires_grad_()
    mask = T([[1.0, 1.0], [1.0, 0.0]])
    from r1.algorithms.objectives import gspo_loss

    loss, clipped = gspo_loss(logp, old, T([1.0, -1.0]), mask, clip_low=0.2, clip_high=0.05)
    s1, s2 = math.exp(0.1), math.exp(-0.5)
    # A = +1: min(1.10517, clip to 1.05) = 1.05 -> loss -1.05 on both tokens, clipped
    # A = -1: -min(-0.60653, -0.8) = 0.8 -> the clipped branch (0.8 > 0.60653) is taken
    torch.testing.assert_close(loss.detach()[:, 0], T([-1.05, 0.8]))
    assert loss[0, 1].item() == pytest.approx(-1.05)
    assert clipped.tolist() == [[True, True], [True, False]]
    # Unclipped: the gradient is s * A * mean_t grad log pi_t (GSPO), per token s * A / |y|
    loss, clipped = gspo_loss(logp, old, T([1.0, -1.0]), mask, clip_low=0.5, clip_high=0.5)
    assert not clipped.any()
    per_sequence = (loss * mask).sum(1) / mask.sum(1)
    per_sequence.sum().backward()
    torch.testing.assert_close(logp.grad, T([[-s1 / 2, -s1 / 2], [s2, 0.0]]))


def test_cispo_by_hand():
    from r1.algorithms.objectives import cispo_loss

    # ratios e^0.5 = 1.6487 (capped at 1.28) and e^-0.1 = 0.9048 (kept)
    logp = T([[math.log(0.5) + 0.5, math.log(0.25) - 0.1]]).requires_grad_()
    old = T([[math.log(0.5), math.log(0.25)]])
    loss, clipped = cispo_loss(logp, old, T([2.0]), clip_low=1.0, clip_high=0.28)
    r2 = math.exp(-0.1)
    torch.testing.assert_close(
        loss.detach(), T([[-1.28 * 2 * (math.log(0.5) + 0.5), -r2 * 2 * (math.log(0.25) - 0.1)]])
    )
    assert clipped.tolist() == [[True, False]]
    loss.sum().backward()
    # The weight is a constant: d/dlogp = -w * A, and the clipped token still learns.
    torch.testing.assert_close(logp.grad, T([[-1.28 * 2, -r2 * 2]]))


def test_reinforce_pp_normalises_over_the_batch_by_hand():
    from r1.algorithms.advantages import reinforce_pp, reinforce_pp_baseline

    rewards = T([1.0, 0.0, 0.0, 0.0])  # mean 0.25, unbiased std sqrt(0.25) = 0.5
    torch.testing.assert_close(reinforce_pp(rewards, 1, eps=0.0), T([1.5, -0.5, -0.5, -0.5]))
    # with a group baseline (groups of 2): [0.5, -0.5, 0, 0], mean 0, std sqrt(0.5/3)
    a = 0.5 / math.sqrt(0.5 / 3)
    torch.testing.assert_close(reinforce_pp_baseline(rewards, 2, eps=0.0), T([a, -a, 0.0, 0.0]))
    # invalid samples get 0 and stay out of the statistics; equal rewards give 0, never NaN
    valid = T([True, True, False, True])
    rewards = T([1.0, 0.0, 99.0, 0.0])  # valid [1, 0, 0]: mean 1/3, std sqrt(1/3)
    b = (2 / 3) / math.sqrt(1 / 3)
    torch.testing.assert_close(
        reinforce_pp(rewards, 1, valid, eps=0.0), T([b, -b / 2, 0.0, -b / 2])
    )
    assert torch.equal(reinforce_pp(T([2.0, 2.0]), 1), T([0.0, 0.0]))


def test_entropy_bonus_lowers_the_loss_by_coef_times_entropy_with_a_gradient():
    from r1.models.forward import token_logprobs_and_entropy

    logits = T([[[0.0, 0.0]]]).requires_grad_()  # uniform over 2: entropy ln 2
    _, entropy = token_logprobs_and_entropy(logits, torch.tensor([[0]]), entropy_grad=True)
    assert entropy.item() == pytest.approx(math.log(2)) and entropy.requires_grad
    _, logged = token_logprobs_and_entropy(logits, torch.tensor([[0]]))
    assert not logged.requires_grad  # only logged unless a bonus needs its gradient
