"""Is a final answer right? math-verify for math answers, a task checker for countdown."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from r1.rewards.countdown import check_countdown


def math_equal(answer: str, gold: str) -> bool:
    """math-verify equivalence (0.5 == 1/2 == \\frac{1}{2}, 68 == 68.0); False on any failure."""
    from math_verify import parse, verify

    # math-verify times out with SIGALRM, which only the main thread may use.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        return bool(
            verify(
                parse(gold, parsing_timeout=timeout),
                parse(answer, parsing_timeout=timeout),
                timeout_seconds=timeout,
            )
        )
    except Exception:  # noqa: BLE001 - a malformed answer is a wrong answer, never a crash
        return False


def answer_is_correct(
    answer: str | None, gold: str, task: str = "", meta: Mapping[str, Any] | None = None
) -> bool:
    """Check an extracted final answer against the gold one, with the task's own checker."""
    if answer is None or not answer.strip():
        return False
    if task == "countdown":
        meta = meta or {}
        return check_countdown(answer, meta.get("numbers", ()), meta.get("target", 0))
    return math_equal(answer, gold)
