"""A learned outcome reward model scoring (prompt, completion) pairs: a sequence-classification
model with one output (`load_reward_model`), batched, right-padded, without gradients.

The score of a pair is the model's output for the text prompt + completion (`encode_scored`),
read by the model itself at the last token that is not padding (HF sequence classification,
with the tokenizer's pad token in the config). Training (`stage=rm`, r1.modules.reward_model)
and scoring go through the same `encode_scored`, `collate_scored` and `sequence_scores`, so a
trained checkpoint scores exactly what it was trained on.

The `reward_model` reward term (r1.rewards.reward_model) reads its scores; its scorer is
built here (`reward_model_params`, wired by conf/reward/reward_model.yaml), since reward
terms never load models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from r1.algorithms.padding import pad_right
from r1.checks import ConfigError
from r1.models.loading import LoadOnFirstUse, classifier_from_policy, load_reward_model


def encode_scored(
    tokenizer, prompt: str, completion: str, max_length: int | None = None
) -> list[int]:
    """The token ids the reward model reads for one pair: prompt + completion as one text,
    with the tokenizer's special tokens, cut to `max_length` tokens when given."""
    cut = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    return list(tokenizer(prompt + completion, **cut)["input_ids"])


def collate_scored(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids and attention_mask [B, T]."""
    return {
        "input_ids": pad_right(rows, pad_id),
        "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
    }


def sequence_scores(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The reward model's score of each row [B] (fp32), read at its last non-pad token."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits  # [B, 1]
    return logits[:, 0].float()


def reward_model_from_policy(policy: torch.nn.Module, pad_token_id: int) -> torch.nn.Module:
    """A new outcome reward model on the policy's backbone: the same architecture as a
    sequence classifier with one output, the backbone's weights copied, a fresh head."""
    from transformers import AutoModelForSequenceClassification

    return classifier_from_policy(
        AutoModelForSequenceClassification, policy, "reward model", pad_token_id
    )


class RewardModelScorer:
    """The model's scalar score of prompt + completion for each pair, in batches."""

    def __init__(self, model, tokenizer, batch_size: int = 8, max_length: int = 1024):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    @torch.no_grad()
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        device = next(self.model.parameters()).device
        rows = [
            encode_scored(self.tokenizer, p, c, self.max_length)
            for p, c in zip(prompts, completions)
        ]
        scores: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            batch = collate_scored(
                rows[start : start + self.batch_size], self.tokenizer.pad_token_id
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            scores.extend(sequence_scores(self.model, batch).tolist())
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
    them (`params._target_`): `scorer`, the reward model of `path` (e.g. a `stage=rm` run's
    checkpoint) or `name`, loaded here (reward terms never load models) on its first use, and
    any other setting as it is. Neither given fails now, not at the term's first score."""
    if not name and not path:
        raise ConfigError(
            "the reward_model term needs params.path (a directory, e.g. <stage=rm run>/checkpoint) "
            "or params.name (a hub id, a directory, or tiny: random, for tests)"
        )
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
