"""A function of many tokens computed a chunk of tokens at a time, so that memory holds one
chunk's intermediates (e.g. its [chunk, V] logits) instead of every token's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


def map_chunks(fn: Callable[..., Any], chunk_tokens: int, *inputs: torch.Tensor) -> list[Any]:
    """fn applied to consecutive slices of `chunk_tokens` rows (dim 0) of every input: its
    outputs, one per chunk. With gradients enabled each chunk runs under activation
    checkpointing: what its backward needs is recomputed then, chunk by chunk, instead of
    being kept from the forward for all chunks at once."""
    outputs = []
    for start in range(0, inputs[0].shape[0], chunk_tokens):
        pieces = [x[start : start + chunk_tokens] for x in inputs]
        if torch.is_grad_enabled():
            outputs.append(checkpoint(fn, *pieces, use_reentrant=False))
        else:
            outputs.append(fn(*pieces))
    return outputs
