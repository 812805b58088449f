"""A learned reward: a sequence-classification model scoring (prompt, completion) pairs.

The paper uses one for helpfulness/harmlessness in the all-scenario RL stage, only late in
training (a windowed term), because learned rewards get hacked. This is the one term that
imports torch/transformers (lazily), through r1.models.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from r1.rewards.types import RewardSample


@lru_cache(maxsize=2)
def _load(name: str | None, path: str | None, dtype: str, seed: int):
    from r1.models.loading import load_reward_model

    return load_reward_model(name=name, path=path, dtype=dtype, seed=seed)


def reward_model(
    samples: Sequence[RewardSample],
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    batch_size: int = 8,
    max_length: int = 1024,
    seed: int = 0,
) -> list[float]:
    """Scalar score of prompt + completion for each sample, batched (right-padded)."""
    import torch

    model, tokenizer = _load(name, path, dtype, seed)
    device = next(model.parameters()).device
    scores: list[float] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        texts = [s.prompt + s.completion for s in batch]
        encoded = tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
            padding_side="right",
        ).to(device)
        with torch.no_grad():
            logits = model(**encoded).logits  # [b, 1]
        scores.extend(logits[:, 0].float().tolist())
    return scores
