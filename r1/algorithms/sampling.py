"""Token sampling with temperature, top-k and top-p, returning the sampled tokens' log-probs."""

from __future__ import annotations

import torch

# Top-p looks for the nucleus among this many most likely tokens first, and sorts the whole
# vocabulary only for rows whose nucleus is wider (sorting 49k logits per row per token costs
# more than the model's LM head on a CPU).
NUCLEUS_CANDIDATES = 256
# draw_blocked sums the vocabulary in blocks of this many entries.
DRAW_BLOCK = 256


def sample_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits: [N, V] -> (tokens [N], logprobs [N]).

    The log-prob is taken under softmax(logits / temperature) over the full vocabulary, the
    distribution the training forward recomputes; top-k/top-p only restrict what can be drawn.
    temperature 0 is greedy (log-probs then under softmax(logits)).
    """
    logits = logits.float()
    if temperature == 0:
        tokens = logits.argmax(-1)
        return tokens, picked(logits, tokens) - torch.logsumexp(logits, -1)
    scaled = logits / temperature if temperature != 1 else logits
    if top_p == 1.0 and not (top_k and top_k < scaled.shape[-1]):
        # The plain draw: one fused softmax, then the blocked inverse CDF (no full cumsum).
        probs = torch.softmax(scaled, -1)
        tokens = draw_blocked(probs, generator)
        return tokens, picked(probs, tokens).log()  # a drawn token's probability is > 0
    allowed = scaled
    if top_k and top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        allowed = allowed.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(allowed, -1)
    if top_p < 1.0:
        ranked, order = probs.topk(min(NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
        if (ranked.sum(-1) < top_p).any():  # some row's nucleus reaches past the candidates
            ranked, order = probs.sort(dim=-1, descending=True)
        # Keep a token while the tokens ranked above it have not reached top_p (the top stays).
        ranked = ranked * (ranked.cumsum(-1) - ranked < top_p)
        tokens = order.gather(-1, draw(ranked.cumsum(-1), generator)[:, None]).squeeze(-1)
    else:
        tokens = draw_blocked(probs, generator)
    return tokens, picked(scaled, tokens) - torch.logsumexp(scaled, -1)


def picked(values: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """values [N, V], tokens [N] -> values[i, tokens[i]] [N]."""
    return values.gather(-1, tokens[:, None]).squeeze(-1)


def draw(cdf: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of cdf [N, V] (the running sum of non-negative weights, not
    necessarily normalised), with probability proportional to its weight: inverse-CDF
    sampling, one uniform number per row. torch.multinomial draws an exponential variate for
    every entry (49k per row per token: on a CPU it took longer than the model's whole decode
    step)."""
    total = cdf[:, -1:]
    u = torch.rand(cdf.shape[0], 1, device=cdf.device, generator=generator) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))  # u * total may round up
    return torch.searchsorted(cdf, u, right=True).squeeze(-1)


def draw_blocked(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """What `draw(weights.cumsum(-1))` draws, from the same uniform number per row, without the
    running sum over the whole vocabulary (a sequential pass, 3 ms per token for 32 rows of
    49k on a CPU core): the inverse CDF over block sums picks a block of DRAW_BLOCK entries,
    then the inverse CDF inside it picks the entry. weights [N, V], non-negative, each row with
    a positive sum. A drawn index always has a positive weight, whatever the rounding."""
    rows, vocab = weights.shape
    pad = -vocab % DRAW_BLOCK
    blocks = torch.nn.functional.pad(weights, (0, pad)) if pad else weights
    blocks = blocks.view(rows, -1, DRAW_BLOCK)
    block_cdf = blocks.sum(-1).cumsum(-1)  # [N, blocks]
    total = block_cdf[:, -1:]
    u = torch.rand(rows, 1, device=weights.device, generator=generator) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    block = torch.searchsorted(block_cdf, u, right=True)  # [N, 1]: its cumulative sum passes u
    before = torch.where(block > 0, block_cdf.gather(-1, (block - 1).clamp(min=0)), 0.0)
    inside = blocks.gather(1, block[:, :, None].expand(rows, 1, DRAW_BLOCK)).squeeze(1)
    offset = torch.searchsorted(inside.cumsum(-1), u - before, right=True)  # [N, 1]
    # Rounding can put u past the block's own running sum: take its last positive entry then.
    positions = torch.arange(DRAW_BLOCK, device=weights.device)
    last_positive = torch.where(inside > 0, positions, -1).amax(-1, keepdim=True)
    offset = torch.minimum(offset, last_positive)
    return (block * DRAW_BLOCK + offset).squeeze(-1)
