"""Log-probabilities of sampled completions under a model: the training forward of RL."""

from __future__ import annotations

import torch
from transformers import DynamicCache


def token_logprobs_and_entropy(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0, entropy_grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits: [N, C, V], tokens: [N, C] -> (log-prob of each token, entropy [N, C]) under
    softmax(logits / temperature), in fp32. The entropy carries a gradient only with
    entropy_grad (an entropy bonus in the loss); otherwise it is only logged."""
    logits = logits.float()
    if temperature not in (0, 1):
        logits = logits / temperature
    logprobs = torch.log_softmax(logits, -1)
    token_logprobs = logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        entropy = -(logprobs.exp() * logprobs).sum(-1)
    return token_logprobs, entropy


def prefill_groups(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, group_size: int):
    """Run each prompt once and copy its KV cache to its `group_size` rows.

    prompt_ids, prompt_mask: [B, P] left-padded. Returns the logits at each prompt's last
    position [B, 1, V], the cache (now N = B * group_size rows, a prompt's rows contiguous)
    and the prompt positions [B, P]. Gradients flow back through the copies when enabled.
    """
    positions = (prompt_mask.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    cache.batch_repeat_interleave(group_size)
    return out.logits, cache, positions


def completion_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    group_size: int,
    temperature: float = 1.0,
    shared_prefix: bool = True,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropies [N, C] of the completion tokens.

    prompt_ids, prompt_mask: [B, P] left-padded, one row per prompt; completion_ids,
    completion_mask: [N, C] right-padded with N = B * group_size (a prompt's rows contiguous).

    shared_prefix: run each prompt once and copy its KV cache to its G completions (the
    gradient flows back through the copies), instead of running prompt + completion G times;
    and the LM head only runs on positions that predict completion tokens. With G = 8 and a
    prompt twice as long as the completion this is ~3x fewer token-forwards. Exact: tests
    compare it with the plain full-sequence forward.
    """
    n = group_size
    if shared_prefix:
        prefix_logits, cache, prompt_positions = prefill_groups(model, prompt_ids, prompt_mask, n)
        completion_positions = (
            prompt_positions[:, -1:].repeat_interleave(n, 0)
            + 1
            + torch.arange(completion_ids.shape[1], device=completion_ids.device)
        )
        attention = torch.cat([prompt_mask.repeat_interleave(n, 0), completion_mask], dim=1)
        rest = model(
            input_ids=completion_ids[:, :-1],
            attention_mask=attention[:, :-1],
            position_ids=completion_positions[:, :-1],
            past_key_values=cache,
            use_cache=True,
        )
        logits = torch.cat([prefix_logits.repeat_interleave(n, 0), rest.logits], dim=1)
    else:
        input_ids = torch.cat([prompt_ids.repeat_interleave(n, 0), completion_ids], dim=1)
        attention = torch.cat([prompt_mask.repeat_interleave(n, 0), completion_mask], dim=1)
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            use_cache=False,
            logits_to_keep=completion_ids.shape[1] + 1,
        ).logits[:, :-1]
    return token_logprobs_and_entropy(logits, completion_ids, temperature, entropy_grad)
