"""grouped_attention against transformers' SDPA attention: outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from r1.models import load_model
from r1.models.decode import GROUPED_MAX_SCORES, grouped_attention, grouped_attention_on


class Heads(torch.nn.Module):
    """What the attention functions read from a layer: GQA's groups, causality."""

    def __init__(self, groups: int):
        super().__init__()
        self.num_key_value_groups, self.is_causal = groups, True


def inputs(rows=3, heads=6, kv_heads=2, q_len=5, length=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, heads, q_len, 8, generator=g, dtype=torch.float64)
    k = torch.randn(rows, kv_heads, length, 8, generator=g, dtype=torch.float64)
    v = torch.randn(rows, kv_heads, length, 8, generator=g, dtype=torch.float64)
    return [t.requires_grad_() for t in (q, k, v)]


def both(q, k, v, mask, valid):
    """(grouped, SDPA) outputs at the valid query positions and the gradients of their sum."""
    results = []
    for fn in (grouped_attention, sdpa_attention_forward):
        tensors = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        out, _ = fn(Heads(q.shape[1] // k.shape[1]), *tensors, mask)
        out = out[valid]  # [N, q, H, D] -> the valid (row, position) pairs
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        results.append([out, *[t.grad for t in tensors]])
    return results


def test_causal_without_mask_matches_sdpa_with_gradients():
    q, k, v = inputs()
    valid = torch.ones(3, 5, dtype=torch.bool)
    mine, theirs = both(q, k, v, None, valid)
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b)


def test_left_padded_rows_match_and_stay_finite():
    # Row 0 has two left pads: its first two queries attend nothing. SDPA's math path and a
    # -inf fill give NaN there; grouped attention keeps them finite, so no NaN reaches the
    # real positions through later layers' zero weights.
    q, k, v = inputs()
    pads = torch.tensor([2, 0, 1])
    keep = torch.arange(5)[None] >= pads[:, None]  # [N, L] real keys
    mask = keep[:, None, None, :] & torch.ones(5, 5, dtype=torch.bool).tril()  # [N, 1, q, L]
    valid = keep  # real query positions
    mine, theirs = both(q, k, v, mask, valid)
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, torch.nan_to_num(b))
    out, _ = grouped_attention(Heads(3), q, k, v, mask)
    assert torch.isfinite(out).all()


def test_one_query_over_a_cache_and_an_additive_mask():
    q, k, v = inputs(q_len=1, length=7)
    keep = torch.tensor([[True] * 7, [False] * 3 + [True] * 4, [True] * 5 + [False] * 2])
    additive = torch.zeros(3, 1, 1, 7, dtype=torch.float64).masked_fill(
        ~keep[:, None, None], torch.finfo(torch.float64).min
    )
    valid = torch.ones(3, 1, dtype=torch.bool)
    for mask in (keep[:, None, None], additive):
        mine, theirs = both(q, k, v, mask, valid)
        for a, b in zip(mine, theirs):
            torch.testing.assert_close(a, b)


def test_large_score_matrices_go_to_sdpa(monkeypatch):
    import r1.models.decode as decode

    called = []
    monkeypatch.setattr(
        decode, "sdpa_attention_forward", lambda *a, **k: called.append(1) or (None, None)
    )
    side = int(GROUPED_MAX_SCORES**0.5) + 1
    grouped_attention(Heads(3), *inputs(q_len=side, length=side), None)
    assert called == [1]
    grouped_attention(Heads(3), *inputs(q_len=side - 2, length=side - 2), None)
    assert called == [1]  # small enough: grouped


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_model_runs_grouped_inside_the_block_and_its_own_after(checkpointing):
    model, _ = load_model("tiny", gradient_checkpointing=checkpointing)
    before = model.config._attn_implementation
    with grouped_attention_on(model):
        inside = model.config._attn_implementation
    assert model.config._attn_implementation == before == "sdpa"
    # checkpointed layers replay their forward in backward, outside the block: unchanged
    assert inside == ("sdpa" if checkpointing else "r1_grouped")
