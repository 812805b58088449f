"""The interface every rollout engine (HF, vLLM) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from r1.rollout.types import Rollout, SamplingParams


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, n: int
    ) -> Rollout:
        """Sample `n` completions for each prompt (token ids, no padding)."""
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights (a no-op for an engine that
        samples with the training model itself)."""
        ...
