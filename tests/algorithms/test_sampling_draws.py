"""r1.algorithms.sampling's inverse-CDF draws: the blocked draw against the plain one."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from r1.algorithms.sampling import DRAW_BLOCK, draw, draw_blocked, sample_tokens


def test_the_blocked_draw_picks_what_the_plain_draw_picks():
    """Same uniform number per row, same index (up to rounding at a boundary: none here),
    on a vocabulary that is not a multiple of the block (padded)."""
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(2000, 3 * DRAW_BLOCK + 17) * 4, -1)
    plain = draw(weights.cumsum(-1), torch.Generator().manual_seed(5))
    blocked = draw_blocked(weights, torch.Generator().manual_seed(5))
    assert (plain == blocked).float().mean() > 0.999


def test_blocked_draw_frequencies_follow_hand_set_weights():
    """Weights 1:3:0:6 spread over three blocks (entries 0, DRAW_BLOCK + 5, 2 x DRAW_BLOCK,
    the last entry of the vocabulary): 40,000 draws, each share within 0.01."""
    vocab = 2 * DRAW_BLOCK + 1
    where = [0, DRAW_BLOCK + 5, DRAW_BLOCK + 6, vocab - 1]
    weights = torch.zeros(40_000, vocab)
    weights[:, where] = torch.tensor([1.0, 3.0, 0.0, 6.0])
    drawn = draw_blocked(weights, torch.Generator().manual_seed(0))
    shares = torch.tensor([(drawn == w).float().mean() for w in where])
    torch.testing.assert_close(shares, torch.tensor([0.1, 0.3, 0.0, 0.6]), atol=0.01, rtol=0)
    assert set(drawn.tolist()) == {where[0], where[1], where[3]}


@settings(max_examples=60, deadline=None)
@given(
    vocab=st.integers(1, 3 * DRAW_BLOCK),
    positive=st.lists(st.integers(0, 3 * DRAW_BLOCK - 1), min_size=1, max_size=6),
    scales=st.lists(st.floats(1e-30, 1e30), min_size=6, max_size=6),
    seed=st.integers(0, 2**31),
)
def test_a_blocked_draw_never_picks_a_zero_weight(vocab, positive, scales, seed):
    """Sparse weights of wildly different sizes (rounding pushes u past a block's running sum):
    every drawn index has a positive weight."""
    weights = torch.zeros(64, vocab)
    for index, scale in zip(positive, scales):
        weights[:, index % vocab] = scale
    drawn = draw_blocked(weights, torch.Generator().manual_seed(seed))
    assert (weights.gather(1, drawn[:, None]) > 0).all()


def test_the_plain_path_returns_the_log_softmax_of_the_drawn_token():
    torch.manual_seed(1)
    logits = torch.randn(16, 1000) * 5
    tokens, logprobs = sample_tokens(logits, temperature=0.7)
    expected = torch.log_softmax(logits / 0.7, -1).gather(1, tokens[:, None]).squeeze(1)
    torch.testing.assert_close(logprobs, expected, atol=1e-5, rtol=1e-5)


def test_rounding_past_a_blocks_running_sum_still_picks_a_positive_weight(monkeypatch):
    """1 followed by 255 entries of 1e-8: the block's sum counts the small ones (1.0000025),
    its sequential running sum loses them (1.0). A uniform number near 1 then lands past the
    running sum; the draw takes the block's last positive entry, not the next block's."""
    weights = torch.tensor([[1.0] + [1e-8] * (DRAW_BLOCK - 1)])
    assert weights.sum() > weights.cumsum(-1)[0, -1]  # the case this test is about
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.full(shape, 1 - 2**-24))
    assert draw_blocked(weights).tolist() == [DRAW_BLOCK - 1]
