"""The record that every task generator and dataset loader produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One reasoning problem with its gold answer.

    ``question`` is the bare text shown to the model (no prompt template),
    ``answer`` the gold final answer as text and ``solution`` an optional plain-text
    chain of thought used for cold-start SFT. ``meta`` holds JSON-serialisable task
    data (for countdown: ``{"numbers": [...], "target": n}``).
    """

    question: str
    answer: str
    solution: str = ""
    task: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "solution": self.solution,
            "task": self.task,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        return cls(
            question=d["question"],
            answer=str(d["answer"]),
            solution=d.get("solution") or "",
            task=d.get("task") or "",
            meta=dict(d.get("meta") or {}),
        )
