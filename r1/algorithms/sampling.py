"""Token sampling with temperature, top-k and top-p, returning the sampled tokens' log-probs."""

from __future__ import annotations

import torch


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
        return tokens, torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
    scaled = logits / temperature
    logprobs = torch.log_softmax(scaled, -1)
    allowed = scaled
    if top_k and top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        allowed = allowed.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(allowed, descending=True, dim=-1)
        sorted_probs = torch.softmax(sorted_logits, -1)
        # Drop a token when the tokens ranked above it already reach top_p (the top one stays).
        drop_sorted = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        allowed = allowed.masked_fill(drop, float("-inf"))
    tokens = torch.multinomial(torch.softmax(allowed, -1), 1, generator=generator).squeeze(-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)
