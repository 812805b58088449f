"""Cold-start SFT examples: tokenisation with a completion-only label mask, padding, packing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from r1.algorithms.padding import pad_right

IGNORE_INDEX = -100  # label value cross-entropy skips: prompt tokens and padding


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]  # prompt tokens then completion tokens (EOS last)
    labels: list[int]  # IGNORE_INDEX on prompt tokens, the token id on completion tokens


def tokenize_example(tokenizer, prompt: str, completion: str) -> TokenizedExample:
    """Prompt and completion are tokenised separately, so the mask boundary is exact even where
    a tokenizer would merge characters across it; EOS ends the completion so the model learns
    to stop."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    completion_ids = completion_ids + [tokenizer.eos_token_id]
    return TokenizedExample(
        input_ids=prompt_ids + completion_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + completion_ids,
    )


def collate_sft(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels: [B, T]."""
    input_ids = pad_right([e.input_ids for e in examples], pad_id)
    attention_mask = pad_right([[1] * len(e.input_ids) for e in examples], 0)
    labels = pad_right([e.labels for e in examples], IGNORE_INDEX)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pack_examples(
    examples: Sequence[TokenizedExample], max_length: int
) -> list[list[TokenizedExample]]:
    """Greedy first-fit: groups of examples whose total length fits in `max_length`."""
    bins: list[list[TokenizedExample]] = []
    room: list[int] = []
    for example in examples:
        size = len(example.input_ids)
        for i, free in enumerate(room):
            if size <= free:
                bins[i].append(example)
                room[i] -= size
                break
        else:
            bins.append([example])
            room.append(max_length - size)
    return bins


def collate_packed(
    packs: Sequence[Sequence[TokenizedExample]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Packed rows: input_ids, labels, position_ids: [B, T].

    Positions restart at 0 for each example and there is no attention_mask: transformers
    reads restarting position_ids as packed sequences and builds a block-diagonal causal mask,
    so examples in one row never attend to each other (tests check packed == unpacked loss).
    """
    rows = [[t for e in pack for t in e.input_ids] for pack in packs]
    labels = [[t for e in pack for t in e.labels] for pack in packs]
    positions = [[p for e in pack for p in range(len(e.input_ids))] for pack in packs]
    # Padding continues the last example's positions so it forms no new (empty) sequence.
    width = max(len(r) for r in rows)
    positions = [p + list(range(p[-1] + 1, p[-1] + 1 + width - len(p))) for p in positions]
    return {
        "input_ids": pad_right(rows, pad_id),
        "labels": pad_right(labels, IGNORE_INDEX),
        "position_ids": torch.tensor(positions, dtype=torch.long),
    }
