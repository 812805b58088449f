"""Token sampling with temperature, top-k and top-p, returning the sampled tokens' log-probs."""

from __future__ import annotations

import torch

# Top-p looks for the nucleus among this many most likely tokens first, and sorts the whole
# vocabulary only for rows whose nucleus is wider (sorting 49k logits per row per token costs
# more than the model's LM head on a CPU).
NUCLEUS_CANDIDATES = 256


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
        # The plain draw, in three passes over the vocabulary (max, exp, cumsum): the CDF's last
        # entry is the normaliser of the log-prob.
        shifted = scaled - scaled.amax(-1, keepdim=True)
        cdf = shifted.exp().cumsum(-1)
        tokens = draw(cdf, generator)
        return tokens, picked(shifted, tokens) - cdf[:, -1].log()
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
        tokens = draw(probs.cumsum(-1), generator)
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
