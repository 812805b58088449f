"""Token-by-token decoding of Hugging Face causal LMs near the hardware's limit.

Two pieces, both plugged into transformers through its own extension points:

- `GrowingCache`: a KV cache written in place, one position per step, grown in buckets of 64
  positions. transformers' `DynamicCache` concatenates every step, copying the whole cache per
  token (quadratic in the completion length); its `StaticCache` attends over the whole
  capacity from the first token on.
- `grouped_attention`, registered as the attention implementation `r1_grouped`: for one
  query token, or a short sequence (the training forward of short completions), it is two
  batched matmuls over the query heads grouped by their KV head (GQA without repeating the
  cache); anything else goes to transformers' SDPA function. PyTorch's CPU SDPA kernels take
  about 1 ms per layer at SmolLM2's decode shapes, 13x the two matmuls (measured: 32 rows,
  300 cached positions, bf16).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

GROUPED_ATTENTION = "r1_grouped"
# Score matrices up to this many entries per (row, head) take the grouped matmuls; larger ones
# SDPA's flash kernel, which keeps no [q, L] matrix for backward (measured on CPU, bf16,
# forward + backward: 6.5x faster than flash at 15 x 55, 3.5x at 47 x 87, even near 200 x 230,
# flash 1.75x faster at 255 x 300).
GROUPED_MAX_SCORES = 4096


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """query [N, H, q, D], key/value [N, KV, L, D], attention_mask [N, 1, q, L] (bool: True
    attends; or additive; None: causal, or everything for one query) -> ([N, q, H, D], None),
    transformers' attention interface. One query token (decoding) or a small q x L score
    matrix (short training sequences): two batched matmuls over the query heads grouped by
    their KV head, with GQA's cache never repeated; anything else goes to transformers' SDPA."""
    rows, heads, q_len, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    causal = attention_mask is None and q_len > 1
    if (
        (q_len > 1 and q_len * length > GROUPED_MAX_SCORES)
        or (causal and (length != q_len or not kwargs.get("is_causal", True)))
        or dropout
        or kwargs.get("softcap") is not None
        or kwargs.get("position_bias") is not None
        or heads % kv_heads
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scale = dim**-0.5 if scaling is None else scaling
    groups = heads // kv_heads
    # [N * KV] batches of (a KV head's g x q queries) x (its keys): torch.bmm on contiguous
    # operands (matmul of 4-D tensors copies them); the decode cache's allocation is contiguous.
    queries = query.reshape(rows * kv_heads, groups * q_len, dim)
    keys, values = key.reshape(rows * kv_heads, length, dim), value.reshape(-1, length, dim)
    scores = torch.bmm(queries, keys.transpose(1, 2))
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32)).mul_(scale)
    scores = scores.view(rows, kv_heads, groups, q_len, length)
    if causal:
        attention_mask = torch.ones(q_len, length, dtype=torch.bool, device=query.device).tril()
    if attention_mask is not None:
        mask = attention_mask[:, :, None] if attention_mask.dim() == 4 else attention_mask
        # [N, 1, 1, q, L] broadcasts over KV heads and groups. A finite fill: a left-padded
        # query that attends nothing gets a finite (unused) output, not NaN, which would reach
        # real rows through the zero weights of later layers (0 x NaN).
        scores = (
            scores.masked_fill_(~mask, torch.finfo(scores.dtype).min)
            if mask.dtype == torch.bool
            else scores.add_(mask.float())
        )
    weights = torch.softmax(scores, -1).to(value.dtype).view(rows * kv_heads, groups * q_len, -1)
    out = torch.bmm(weights, values).view(rows, heads, q_len, dim)  # [N * KV, g * q, D]
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
AttentionMaskInterface.register(GROUPED_ATTENTION, sdpa_mask)


@contextmanager
def grouped_attention_on(model: torch.nn.Module):
    """Run `model` with `grouped_attention` inside the block (its own implementation after).
    A model whose attention is not pluggable (transformers prints a warning) keeps its own,
    and so does one whose checkpointed layers replay their forward in backward, outside the
    block (the replay must save what the forward saved)."""
    config = model.config
    before = config._attn_implementation
    settable = before in ("sdpa", "eager", GROUPED_ATTENTION) and not getattr(
        model, "is_activation_checkpointing", False
    )
    if settable:
        model.set_attn_implementation(GROUPED_ATTENTION)
    try:
        yield
    finally:
        if settable:
            model.set_attn_implementation(before)


class _GrowingLayer(CacheLayerMixin):
    def __init__(self, keys: torch.Tensor, values: torch.Tensor, cache: GrowingCache):
        super().__init__()
        self.keys, self.values, self.cache = keys, values, cache
        self.length = cache.prompt_length
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:
        raise AssertionError("allocated at construction")

    def update(self, key_states, value_states, *args, **kwargs):
        start, end = self.length, self.length + key_states.shape[-2]
        if end > self.keys.shape[2]:
            self.keys, self.values = (
                self.cache.grown(self.keys, end),
                self.cache.grown(self.values, end),
            )
        self.keys[:, :, start:end].copy_(key_states)
        self.values[:, :, start:end].copy_(value_states)
        self.length = end
        return self.keys, self.values  # the whole allocation: the mask hides the unwritten part

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.cache.width(self.length + query_length), 0

    def get_max_length(self) -> int:
        return self.cache.limit


class GrowingCache(Cache):
    """A KV cache that grows in buckets of `bucket` positions up to `limit`, filled from a
    prefill's cache of B prompts, each repeated for its `group_size` rows (N = B * group_size, a
    prompt's rows contiguous), in `dtype` (None: the prefill's).

    Attention reads each layer's whole allocation, contiguous: PyTorch's CPU batched matmul is
    ~9x slower on a slice of a larger buffer than on a contiguous tensor (measured: bf16, 96
    batches of 600 x 64 positions cut from 1,100), so one allocation for the whole completion,
    sliced, would not do. Growing copies the cache once per `bucket` tokens; attention reads at
    most `bucket - 1` unwritten (zero) positions, which the caller's mask hides:
    `width(n)` is the allocation's width once n positions are written."""

    def __init__(
        self,
        prefix: DynamicCache,
        group_size: int,
        limit: int,
        bucket: int = 64,
        dtype: torch.dtype | None = None,
    ):
        self.prompt_length = prefix.get_seq_length()
        self.dtype = dtype  # None: each layer's keys and values keep the prefill's dtypes
        self.bucket, self.limit = bucket, limit
        if limit < self.prompt_length:
            raise ValueError(f"limit {limit} < the prompt's {self.prompt_length} positions")
        super().__init__(
            layers=[
                _GrowingLayer(
                    self._repeat(layer.keys, group_size),
                    self._repeat(layer.values, group_size),
                    self,
                )
                for layer in prefix.layers
            ]
        )

    def width(self, written: int) -> int:
        beyond = max(written - self.prompt_length, 1)
        return min(self.prompt_length + -(-beyond // self.bucket) * self.bucket, self.limit)

    def grown(self, states: torch.Tensor, written: int) -> torch.Tensor:
        if written > self.limit:
            raise RuntimeError(f"KV cache full: {written} positions, limit {self.limit}")
        grown = states.new_zeros(*states.shape[:2], self.width(written), states.shape[3])
        grown[:, :, : states.shape[2]] = states
        return grown

    def _repeat(self, states: torch.Tensor, group_size: int) -> torch.Tensor:
        prompts, kv_heads, length, dim = states.shape  # [B, KV, P, D]
        shape = (prompts, group_size, kv_heads, self.width(length + 1), dim)
        full = states.new_zeros(shape, dtype=self.dtype or states.dtype)
        full[:, :, :, :length] = states[:, None]  # broadcast: no repeated copy of the prompt
        return full.view(prompts * group_size, kv_heads, shape[3], dim)


def cache_argument(model: torch.nn.Module) -> str:
    """The forward's name for the KV cache: `cache` in transformers >= 5.24, before that (and
    deprecated since) `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
