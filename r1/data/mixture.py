"""SFT data mixed from several sources by ratio, each seen a number of epochs.

DeepSeek-R1's third stage fine-tunes on about 600k reasoning and 200k non-reasoning samples for
two epochs. `SFTMixture` is a data source for `ReasoningDataModule` (`data=sft_mixture`): of
`data.num_train` training examples, part i contributes round(num_train * ratio_i / sum of
ratios) distinct problems, each repeated `epochs` times, so one pass of the trainer over the
data is the whole schedule. Held-out problems are shared out the same way among the parts with
`held_out: true` (general requests have no gold answer to score).

A part's `source` is anything `split_problems` takes: a procedural task, or a callable
returning problems (a JSONL file: `r1.data.loaders.load_jsonl`). Non-reasoning samples carry
their response in `meta["completion"]` and no chain of thought; SFT trains on it verbatim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from r1.checks import ConfigError
from r1.data.problem import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixturePart:
    source: Any
    ratio: float = 1.0
    epochs: int = 1
    held_out: bool = True


@dataclass
class SFTMixture:
    parts: Mapping[str, MixturePart | Mapping[str, Any]]
    language: None = None  # per part (ReasoningDataModule compares data.language with it)
    counts: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # part -> {distinct, examples, held_out}

    def __post_init__(self):
        if not self.parts:
            raise ConfigError("data.source.parts is empty: an SFT mixture needs at least one part")
        parts = {}
        for name, part in self.parts.items():
            if part is None:  # `data.source.parts.<name>=null` drops a part
                continue
            part = part if isinstance(part, MixturePart) else MixturePart(**dict(part))
            if not part.ratio > 0:
                raise ConfigError(f"data.source.parts.{name}.ratio must be > 0, got {part.ratio}")
            if not isinstance(part.epochs, int) or part.epochs < 1:
                raise ConfigError(
                    f"data.source.parts.{name}.epochs must be an integer >= 1, got {part.epochs!r}"
                )
            parts[name] = part
        if not any(p.held_out for p in parts.values()):
            raise ConfigError("no part of the SFT mixture has held_out: true")
        self.parts = parts

    def split(self, num_train: int, num_val: int, seed: int) -> tuple[list[Problem], list[Problem]]:
        """(training examples, held-out problems): each part's share of both, its training
        problems repeated `epochs` times, parts in order (the data loader shuffles)."""
        from r1.data.datamodule import split_problems  # the data module imports this module

        train_shares = _shares(num_train, {n: p.ratio for n, p in self.parts.items()})
        val_shares = _shares(num_val, {n: p.ratio for n, p in self.parts.items() if p.held_out})
        train: list[Problem] = []
        val: list[Problem] = []
        for name, part in self.parts.items():
            distinct, held = train_shares[name], val_shares.get(name, 0)
            if distinct == 0:
                raise ConfigError(
                    f"data.source.parts.{name}: ratio {part.ratio} of data.num_train={num_train} "
                    "rounds to 0 problems; raise num_train or the ratio"
                )
            # split_problems needs at least one held-out problem to keep out of training
            part_train, part_val = split_problems(part.source, distinct, max(held, 1), seed)
            if len(part_train) < distinct:
                raise ConfigError(
                    f"data.source.parts.{name} has {len(part_train)} training problems after its "
                    f"held-out ones, but its ratio asks for {distinct}"
                )
            train.extend(part_train * part.epochs)
            val.extend(part_val[:held])
            self.counts[name] = {
                "distinct": len(part_train),
                "examples": len(part_train) * part.epochs,
                "held_out": held,
            }
        log.info("SFT mixture (distinct problems, examples with epochs, held out): %s", self.counts)
        return train, val


def _shares(total: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """`total` shared out by ratio, rounded so the shares add up to `total` (largest remainders)."""
    if not ratios:
        return {}
    whole = sum(ratios.values())
    exact = {name: total * ratio / whole for name, ratio in ratios.items()}
    shares = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - shares[name], reverse=True)
    for name in by_remainder[: total - sum(shares.values())]:
        shares[name] += 1
    return shares
