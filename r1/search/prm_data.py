"""The data `stage=prm` trains on: Math-Shepherd step labels (scripts/label_steps.py) per row.

Rows are split into training and validation by question, so the PRM is validated on
problems it never saw; every solution of a question goes to the same side.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from r1.data.datamodule import EpochShuffleSampler, shard_for_rank
from r1.data.loaders import DataError
from r1.models.prm import StepExample, collate_steps, encode_steps
from r1.search.labelling import read_step_rows


class StepLabelDataModule(L.LightningDataModule):
    def __init__(
        self,
        path: str,
        tokenizer: Any,
        val_fraction: float = 0.1,
        batch_size: int = 16,
        val_batch_size: int = 32,
        max_length: int = 512,
        seed: int = 0,
    ):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"data.val_fraction={val_fraction} must be in (0, 1)")
        self.path, self.tokenizer = path, tokenizer
        self.val_fraction, self.max_length, self.seed = val_fraction, max_length, seed
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.train_examples: list[StepExample] = []
        self.val_examples: list[StepExample] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_examples:
            return
        rows = read_step_rows(self.path)
        questions = sorted({row.question for row in rows})
        random.Random(self.seed).shuffle(questions)
        num_val = max(1, round(len(questions) * self.val_fraction))
        if len(questions) < 2:
            raise DataError(
                f"{self.path}: {len(questions)} distinct question(s); a train/validation split "
                "by question needs at least 2"
            )
        held_out = set(questions[:num_val])
        for row in rows:
            example = encode_steps(
                self.tokenizer, row.prompt, row.steps, row.labels, max_length=self.max_length
            )
            if example.step_ends:
                (self.val_examples if row.question in held_out else self.train_examples).append(
                    example
                )
        if not self.train_examples or not self.val_examples:
            raise DataError(
                f"{self.path}: no step fits in data.max_length={self.max_length} tokens "
                f"on the {'training' if not self.train_examples else 'validation'} side"
            )

    def _data_parallel(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def train_dataloader(self) -> DataLoader:
        pad = self.tokenizer.pad_token_id
        return DataLoader(
            self.train_examples,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(
                len(self.train_examples), self.seed, *self._data_parallel()
            ),
            collate_fn=lambda batch: collate_steps(batch, pad),
        )

    def val_dataloader(self) -> DataLoader:
        pad = self.tokenizer.pad_token_id
        items = shard_for_rank(self.val_examples, *self._data_parallel())

        def collate(batch):
            examples, padding = zip(*batch)
            return {**collate_steps(examples, pad), "padding": list(padding)}

        return DataLoader(items, batch_size=self.val_batch_size, collate_fn=collate)
