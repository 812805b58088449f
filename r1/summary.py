"""The end-of-run summary: what ran, held-out metrics before and after, where results are."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEADLINE_METRICS = (
    "val/accuracy",
    "val/accuracy_lenient",
    "val/format_rate",
    "val/stop_rate",
    "val/completion_len",
    "val/loss",
    "val/pair_accuracy",  # stage=rm
    "val/margin",
)
TREND_STEPS = 5  # the training reward's first and last steps compared in the summary


@dataclass
class RunSummary:
    what: str  # e.g. "stage=sft model=smollm2_135m data=arithmetic"
    steps: int  # optimizer steps in total, earlier parts of a resumed run included
    seconds: float  # this process's training time
    run_dir: str
    checkpoint: str | None
    before: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float] = field(default_factory=dict)
    samples: Sequence[Mapping[str, Any]] = ()
    steps_this_process: int | None = None  # None: all of them
    # RL runs: train/reward and its terms, one value per step of this process
    training: Mapping[str, Sequence[float]] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            "=" * 72,
            f"r1 run finished: {self.what}",
            f"  {self._steps()} in {self.seconds / 60:.1f} min",
            "",
            _row("held-out metric", "before", "after"),
        ]
        for name in self._held_out_names():
            lines.append(_row(name, _fmt(self.before.get(name)), _fmt(self.after.get(name))))
        lines += self._training_trend()
        if self.samples:
            lines += ["", "  held-out samples after training:"]
            for sample in self.samples:
                mark = "right" if sample.get("correct") else "wrong"
                text = sample["completion"].replace("\n", "\\n")
                lines.append(f"  [{mark}] {sample['question']}  (gold {sample['gold']})")
                lines.append(f"          -> {text[:200]}")
        lines += ["", f"  run directory: {self.run_dir}"]
        if self.checkpoint:
            lines.append(f"  checkpoint:    {self.checkpoint}  (next stage: model.path=<this>)")
        lines.append("=" * 72)
        return "\n".join(lines)

    def _held_out_names(self) -> list[str]:
        """The headline metrics, then the held-out reward and each of its terms (e.g.
        val/reward/lang_consistency), where measured."""
        measured = set(self.before) | set(self.after)
        rewards = sorted(n for n in measured if n == "val/reward" or n.startswith("val/reward/"))
        return [m for m in HEADLINE_METRICS if m in measured] + rewards

    def _training_trend(self) -> list[str]:
        """The training reward and its terms: mean of the first steps -> mean of the last."""
        rows = {name: values for name, values in self.training.items() if values}
        if not rows:
            return []
        k = min(TREND_STEPS, max(len(v) for v in rows.values()))
        lines = ["", _row("training reward", f"first {k}", f"last {k}")]
        for name in sorted(rows):
            values = rows[name]
            first, last = values[:k], values[-k:]
            lines.append(_row(name, _fmt(sum(first) / len(first)), _fmt(sum(last) / len(last))))
        return lines

    def _steps(self) -> str:
        if self.steps_this_process is None or self.steps_this_process == self.steps:
            return f"{self.steps} optimizer steps"
        return f"{self.steps_this_process} optimizer steps in this process ({self.steps} in total)"

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, default=float))


def _row(name: str, first: str, second: str) -> str:
    return f"  {name:<30}{first:>8}{second:>10}"


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
