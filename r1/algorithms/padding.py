"""Padding ragged token-id rows into one tensor (pure torch): right for training batches and
completions, left for prompts that generation continues."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_right(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """[len(rows), longest row] long tensor, each row followed by `value`s."""
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def pad_left(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """[len(rows), longest row] long tensor, each row preceded by `value`s."""
    width = max(len(r) for r in rows)
    return torch.tensor([[value] * (width - len(r)) + list(r) for r in rows], dtype=torch.long)
