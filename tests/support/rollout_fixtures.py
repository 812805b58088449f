"""Rollouts made of given texts, for tests of what consumes them (scoring, filtering)."""

from __future__ import annotations

import torch

from r1.rollout.types import Generation, Rollout


def text_rollout(prompt_ids, texts, n: int) -> Rollout:
    """n completions per prompt with the given texts, all stopped; ids are placeholders."""
    rows = len(texts)
    width = max((len(p) for p in prompt_ids), default=1)
    return Rollout(
        prompt_ids=torch.tensor([[1] * (width - len(p)) + list(p) for p in prompt_ids]),
        prompt_mask=torch.ones(len(prompt_ids), width, dtype=torch.long),
        completion_ids=torch.ones(rows, 3, dtype=torch.long),
        completion_mask=torch.ones(rows, 3, dtype=torch.long),
        sampling_logprobs=torch.zeros(rows, 3),
        ends=["eos"] * rows,
        texts=list(texts),
        group_size=n,
    )


def generation(text: str, num_tokens: int = 1, finished: bool = True) -> Generation:
    """A completion record with placeholder token ids: ended by EOS, or by the budget."""
    return Generation(text, (1,) * num_tokens, (0.0,) * num_tokens, "eos" if finished else "length")
