"""Rollouts made of given texts, for tests of what consumes them (scoring, filtering)."""

from __future__ import annotations

import torch

from r1.rollout.types import Rollout


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
        finished=torch.ones(rows, dtype=torch.bool),
        texts=list(texts),
        group_size=n,
    )
