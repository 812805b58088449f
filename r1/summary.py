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
)


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

    def render(self) -> str:
        lines = [
            "=" * 72,
            f"r1 run finished: {self.what}",
            f"  {self._steps()} in {self.seconds / 60:.1f} min",
            "",
            f"  {'held-out metric':<24}{'before':>12}{'after':>12}",
        ]
        for name in [m for m in HEADLINE_METRICS if m in self.before or m in self.after]:
            lines.append(
                f"  {name:<24}{_fmt(self.before.get(name)):>12}{_fmt(self.after.get(name)):>12}"
            )
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

    def _steps(self) -> str:
        if self.steps_this_process is None or self.steps_this_process == self.steps:
            return f"{self.steps} optimizer steps"
        return f"{self.steps_this_process} optimizer steps in this process ({self.steps} in total)"

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, default=float))


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
