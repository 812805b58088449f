"""PPO pieces against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from r1.algorithms.ppo import (
    AdaptiveKLController,
    clipped_value_loss,
    explained_variance,
    gae,
    token_rewards,
    whiten,
)


def test_gae_by_hand_on_three_tokens_with_padding():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.2, 0.4, 9.0]])  # 9.0 sits past the end
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0: A2 = 1 - 0.7 = 0.3; A1 = (0.9*0.7 - 0.6) + 0.72*0.3 = 0.246;
    #        A0 = (0.9*0.6 - 0.5) + 0.72*0.246 = 0.21712
    # row 1: A1 = 1 - 0.4 = 0.6 (nothing after the end); A0 = (0.9*0.4 - 0.2) + 0.72*0.6 = 0.592
    expected = torch.tensor([[0.21712, 0.246, 0.3], [0.592, 0.6, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, torch.tensor([[0.71712, 0.846, 1.0], [0.792, 1.0, 0.0]]))


def test_gae_with_gamma_and_lambda_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[0.5, 0.0, 2.0]])
    values = torch.tensor([[1.0, 1.0, 1.0]])
    advantages, _ = gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    torch.testing.assert_close(advantages, torch.tensor([[1.5, 1.0, 1.0]]))


def test_a_constant_reward_with_lambda_below_one_favours_short_completions():
    # Why PPO collapsed to one-token answers on the design card's task
    # (docs/results/ablation_grpo_vs_ppo.md): every sample scored the same 1.0 (the language
    # term), the critic knew nothing yet (V = 0), and GAE with lambda 0.95 gives a token
    # lam^(tokens to the end). Completions of 2 and 4 tokens:
    #   short: A = [0.95, 1];  long: A = [0.857375, 0.9025, 0.95, 1]
    # mean over the 6 tokens 0.943313; whitening makes the long completion's first token
    # negative (0.857 < mean) and the short one's positive: stopping early is reinforced.
    rewards = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    advantages, _ = gae(rewards, torch.zeros(2, 4), mask, gamma=1.0, lam=0.95)
    expected = torch.tensor([[0.95, 1.0, 0.0, 0.0], [0.857375, 0.9025, 0.95, 1.0]])
    torch.testing.assert_close(advantages, expected)
    white = whiten(advantages, mask)
    assert white[0, 0] > 0 > white[1, 0]
    # lambda 1 gives every token the same advantage, so whitening leaves no preference
    flat, _ = gae(rewards, torch.zeros(2, 4), mask, gamma=1.0, lam=1.0)
    torch.testing.assert_close(flat, mask.float())
    torch.testing.assert_close(whiten(flat, mask), torch.zeros(2, 4))


def test_token_rewards_put_the_score_on_the_last_token_and_the_kl_on_all():
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    rewards = token_rewards(torch.tensor([1.0, 2.0, 5.0]), mask, kl, kl_coef=0.5)
    expected = torch.tensor([[-0.05, -0.1, 0.85], [-0.25, 1.75, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(rewards, expected)


def test_clipped_value_loss_by_hand():
    loss, clipped = clipped_value_loss(
        values=torch.tensor([1.0, 0.0]),
        old_values=torch.tensor([0.5, 0.5]),
        returns=torch.tensor([2.0, 0.4]),
        clip=0.2,
    )
    # row 0: clipped value 0.7: max((1-2)^2, (0.7-2)^2) = 1.69 -> 0.845, clipped branch wins
    # row 1: clipped value 0.3: max((0-0.4)^2, (0.3-0.4)^2) = 0.16 -> 0.08, unclipped wins
    torch.testing.assert_close(loss, torch.tensor([0.845, 0.08]))
    assert clipped.tolist() == [True, False]


def test_whiten_uses_masked_elements_only():
    x = torch.tensor([[1.0, 2.0], [3.0, 100.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    torch.testing.assert_close(
        whiten(x, mask), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), atol=1e-6, rtol=0
    )


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.ones(1, 3)
    assert explained_variance(returns, returns, mask) == 1.0
    assert explained_variance(torch.full((1, 3), 2.0), returns, mask) == pytest.approx(0.0)
    assert math.isnan(explained_variance(returns, torch.ones(1, 3), mask))


def test_adaptive_kl_moves_the_coefficient_toward_the_target():
    controller = AdaptiveKLController(0.1, target=1.0, horizon=100)
    assert controller.update(kl=3.0, n_steps=10) == pytest.approx(
        0.1 * 1.02
    )  # error clipped at 0.2
    assert controller.update(kl=0.5, n_steps=10) == pytest.approx(0.102 * 0.98)
    assert controller.update(kl=0.9, n_steps=10) == pytest.approx(0.102 * 0.98 * 0.99)
