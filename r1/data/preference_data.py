"""The data module of `stage=rm`: preference pairs or labelled responses (r1.data.preferences),
each question rendered with the run's prompt template and tokenised with its answer exactly as
the reward model scores them in RL (r1.models.reward_model.encode_scored: prompt + completion).

Rows are split into training and validation by question, so the reward model is validated on
questions it never saw.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from r1.checks import ConfigError, check_float, check_int
from r1.data.datamodule import EpochShuffleSampler, shard_for_rank
from r1.data.loaders import DataError
from r1.data.preferences import (
    OBJECTIVES,
    PreferencePair,
    PreferenceRow,
    PreferenceSource,
)
from r1.data.templates import PromptTemplate
from r1.models.reward_model import collate_scored, encode_scored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedPair:
    chosen_ids: list[int]
    rejected_ids: list[int]
    violation: str  # the rule the rejected answer breaks; "" when not known


@dataclass(frozen=True)
class EncodedResponse:
    input_ids: list[int]
    label: int
    violation: str  # the rule the answer breaks; "none" when it breaks none; "" unknown


def collate_pairs(pairs: Sequence[EncodedPair], pad_id: int) -> dict[str, Any]:
    """One right-padded batch of 2P rows: the P chosen answers, then the P rejected ones in
    the same order (input_ids, attention_mask [2P, T]), and the P `violations`."""
    rows = [p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs]
    return {**collate_scored(rows, pad_id), "violations": [p.violation for p in pairs]}


def collate_responses(responses: Sequence[EncodedResponse], pad_id: int) -> dict[str, Any]:
    """input_ids, attention_mask [N, T] right-padded, labels [N] (float 0/1), violations."""
    return {
        **collate_scored([r.input_ids for r in responses], pad_id),
        "labels": torch.tensor([float(r.label) for r in responses], dtype=torch.float32),
        "violations": [r.violation for r in responses],
    }


class PreferenceDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: PreferenceSource,
        tokenizer: Any = None,
        objective: str = "pairwise",
        template: PromptTemplate | Mapping[str, Any] | None = None,
        language: str | None = None,
        num_train: int = 2000,
        num_val: int = 200,
        val_fraction: float = 0.2,
        batch_size: int = 16,
        val_batch_size: int = 32,
        max_length: int = 512,
        seed: int = 0,
    ):
        """objective: pairwise (rows are PreferencePair) or pointwise (LabelledResponse).
        num_train, num_val: rows the generator draws (a file gives all its rows).
        val_fraction: the share of questions held out. batch_size: pairs (or responses)."""
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"data.objective={objective!r} (stage=rm sets it from rm.objective) is not "
                f"valid; choose one of: {', '.join(OBJECTIVES)}"
            )
        self.objective = objective
        for key, value in (
            ("num_train", num_train),
            ("num_val", num_val),
            ("batch_size", batch_size),
            ("val_batch_size", val_batch_size),
        ):
            check_int(f"data.{key}", value, 1)
        check_int("data.max_length", max_length, 8)
        check_float("data.val_fraction", val_fraction, 0.0, exclusive_minimum=True)
        if val_fraction >= 1.0:
            raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1)")
        if language is not None and language != source.language:
            raise ConfigError(
                f"data.language={language!r} but the preference source poses questions in "
                f"{source.language!r}; set it on the source (data.source.language)"
            )
        if isinstance(template, Mapping) or template is None:
            template = PromptTemplate(**dict(template or {}))
        self.source, self.tokenizer, self.template = source, tokenizer, template
        self.num_train, self.num_val, self.val_fraction = num_train, num_val, val_fraction
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.max_length, self.seed = max_length, seed
        self.train_rows: list[PreferenceRow] = []
        self.val_rows: list[PreferenceRow] = []
        self.train_examples: list[EncodedPair | EncodedResponse] = []
        self.val_examples: list[EncodedPair | EncodedResponse] = []
        self._prompts: dict[str, str] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.train_examples:
            return
        if self.tokenizer is None:
            raise ValueError("PreferenceDataModule needs a tokenizer before setup()")
        self.train_rows, self.val_rows = self.source.split(
            self.objective, self.num_train, self.num_val, self.val_fraction, self.seed
        )
        self.train_examples = self._encode(self.train_rows, "training")
        self.val_examples = self._encode(self.val_rows, "held-out")

    def prompt(self, question: str) -> str:
        """The question as the policy sees it in RL (the run's template), rendered once."""
        if question not in self._prompts:
            self._prompts[question] = self.template.render(question, self.tokenizer)
        return self._prompts[question]

    def _ids(self, question: str, answer: str) -> list[int]:
        return encode_scored(self.tokenizer, self.prompt(question), answer)

    def _encode(
        self, rows: Sequence[PreferenceRow], split: str
    ) -> list[EncodedPair | EncodedResponse]:
        """Encoded rows; those longer than data.max_length are left out (and counted), never
        cut: a cut answer may no longer break, or follow, the rule it is labelled with."""
        examples: list[EncodedPair | EncodedResponse] = []
        for row in rows:
            violation = str(row.meta.get("violation", ""))
            if isinstance(row, PreferencePair):
                example: EncodedPair | EncodedResponse = EncodedPair(
                    self._ids(row.question, row.chosen),
                    self._ids(row.question, row.rejected),
                    violation,
                )
                longest = max(len(example.chosen_ids), len(example.rejected_ids))
            else:
                example = EncodedResponse(
                    self._ids(row.question, row.response), row.label, violation
                )
                longest = len(example.input_ids)
            if longest <= self.max_length:
                examples.append(example)
        dropped = len(rows) - len(examples)
        if dropped:
            log.warning(
                "left out %d of %d %s rows longer than data.max_length=%d tokens",
                dropped,
                len(rows),
                split,
                self.max_length,
            )
        if not examples:
            raise DataError(
                f"no {split} row fits in data.max_length={self.max_length} tokens "
                f"({len(rows)} rows)"
            )
        return examples

    def _data_parallel(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _collate(self, examples: Sequence[EncodedPair | EncodedResponse]) -> dict[str, Any]:
        pad = self.tokenizer.pad_token_id
        if self.objective == "pairwise":
            return collate_pairs(examples, pad)  # type: ignore[arg-type]
        return collate_responses(examples, pad)  # type: ignore[arg-type]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_examples,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(
                len(self.train_examples), self.seed, *self._data_parallel()
            ),
            collate_fn=self._collate,
        )

    def val_dataloader(self) -> DataLoader:
        items = shard_for_rank(self.val_examples, *self._data_parallel())

        def collate(batch):
            examples, padding = zip(*batch)
            return {**self._collate(examples), "padding": list(padding)}

        return DataLoader(items, batch_size=self.val_batch_size, collate_fn=collate)
