"""A learned reward model scoring (prompt, completion) pairs: a sequence-classification model
with one output (`load_reward_model`), batched, right-padded, without gradients.

The `reward_model` reward term (r1.rewards.reward_model) reads its scores; its scorer is
built here (`reward_model_params`, wired by conf/reward/reward_model.yaml), since reward
terms never load models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from r1.models.loading import LoadOnFirstUse, load_reward_model


class RewardModelScorer:
    """The model's scalar score of prompt + completion for each pair, in batches."""

    def __init__(self, model, tokenizer, batch_size: int = 8, max_length: int = 1024):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    @torch.no_grad()
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        device = next(self.model.parameters()).device
        texts = [p + c for p, c in zip(prompts, completions)]
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            encoded = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
                padding_side="right",
            ).to(device)
            logits = self.model(**encoded).logits  # [b, 1]
            scores.extend(logits[:, 0].float().tolist())
        return scores


def reward_model_scorer(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    batch_size: int = 8,
    max_length: int = 1024,
    device: str | None = None,
) -> RewardModelScorer:
    """A `RewardModelScorer` on the model `load_reward_model` loads (built-in name, hub id or
    directory)."""
    model, tokenizer = load_reward_model(
        name=name, path=path, dtype=dtype, seed=seed, device=device
    )
    return RewardModelScorer(model, tokenizer, batch_size=batch_size, max_length=max_length)


def reward_model_params(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    batch_size: int = 8,
    max_length: int = 1024,
    **term: Any,
) -> dict[str, Any]:
    """The params of the `reward_model` reward term, as conf/reward/reward_model.yaml builds
    them (`params._target_`): `scorer`, the reward model of `name` or `path`, loaded here
    (reward terms never load models) on its first use, and any other setting as it is."""
    scorer = LoadOnFirstUse(
        reward_model_scorer,
        name=name,
        path=path,
        dtype=dtype,
        seed=seed,
        batch_size=batch_size,
        max_length=max_length,
    )
    return {"scorer": scorer, **term}
