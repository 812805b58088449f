"""Reasoning steps and Math-Shepherd process labels.

A process reward model (PRM) scores each intermediate step of a solution instead of only
its final answer. Its training labels come from Math-Shepherd (Wang et al., 2024, "Math-
Shepherd: Verify and Reinforce LLMs Step-by-step without Human Annotations"): cut a
solution into steps, and for each step i sample N completions with the policy starting from
the prefix "step 1 .. step i"; the step is good if its prefix can still reach the gold
answer. The hard label is 1 if any completion reached it, the soft label the fraction that
did.

DeepSeek-R1 (section 4.2, "Unsuccessful Attempts") tried PRMs and gave up on them for
large-scale RL: a "step" has no clear definition in free-form reasoning, judging whether an
intermediate step is correct is hard (model labels are unreliable, human labels do not
scale), and a model-based PRM invites reward hacking while needing retraining and extra
resources. The PRM was useful for reranking the top-N responses or guiding search, not as
the RL reward. This module is the groundwork to reproduce that finding: everything here is
pure Python on strings; the policy enters only through the `rollout` callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from r1.checks import ConfigError
from r1.rewards.parsing import THINK_CLOSE, THINK_OPEN

LABEL_MODES = ("hard", "soft")
STEP_SEPARATOR = "\n"  # how steps are joined back into a prefix / trace

# "Step 1:", "step 2.", "STEP 3)", "Step 4：" and "步骤1" / "步骤 2：". The English marker needs
# the punctuation after the number so "in step 2 we" mid-sentence does not start a step.
_STEP_MARKER = re.compile(r"\bstep\s*\d+\s*[:：.)]|步骤\s*\d+", re.IGNORECASE)


def solution_body(text: str) -> str:
    """The reasoning to cut into steps: the content of the <think> block when there is one
    (up to </think>, or to the end when the block was never closed; the text before a lone
    </think> when the template put <think> in the prompt), else the whole text."""
    start = text.find(THINK_OPEN)
    if start >= 0:
        body = text[start + len(THINK_OPEN) :]
        end = body.find(THINK_CLOSE)
        return body if end < 0 else body[:end]
    end = text.find(THINK_CLOSE)
    return text if end < 0 else text[:end]


def _check_delimiter(delimiter: str) -> None:
    if not isinstance(delimiter, str) or not delimiter:
        raise ConfigError(f"step delimiter must be 'auto' or a non-empty string, got {delimiter!r}")


def _cut(body: str, delimiter: str) -> list[str]:
    if delimiter == "auto":
        cuts = [m.start() for m in _STEP_MARKER.finditer(body)]
        if cuts:
            bounds = [0, *cuts, len(body)]
            pieces = [body[a:b] for a, b in zip(bounds, bounds[1:])]
        else:
            pieces = body.splitlines()
    else:
        pieces = body.split(delimiter)
    return [piece.strip() for piece in pieces if piece.strip()]


def split_steps(text: str, delimiter: str = "auto") -> list[str]:
    """Cut a solution into steps, stripped, with empty ones dropped.

    delimiter "auto": when the text has "Step 1:" / "步骤1" style markers (case-insensitive),
    cut before each marker (the marker stays in its step; any text before the first marker
    is a step of its own); otherwise every non-empty line is a step. Any other string: cut
    on it. Never raises on malformed text (a non-string gives []); an empty delimiter is a
    caller error and raises ValueError.
    """
    _check_delimiter(delimiter)
    if not isinstance(text, str):
        return []
    body = solution_body(text)
    return _cut(body, delimiter)


def step_prefixes(steps: Sequence[str]) -> list[str]:
    """The cumulative prefixes after each step: ["a", "b"] -> ["a", "a\\nb"]."""
    return [STEP_SEPARATOR.join(steps[: i + 1]) for i in range(len(steps))]


def _check_mode(mode: str) -> None:
    if mode not in LABEL_MODES:
        raise ConfigError(f"unknown label mode {mode!r}; valid: {', '.join(LABEL_MODES)}")


def label_steps(prefix_outcomes: Sequence[Sequence[bool]], mode: str = "hard") -> list[float]:
    """Math-Shepherd labels from rollout outcomes.

    prefix_outcomes[i]: for each completion sampled from the prefix ending at step i, whether
    it reached the gold answer. mode "hard": 1.0 if any did, else 0.0 (Math-Shepherd's HE);
    "soft": the fraction that did (SE). A step with no outcomes gets 0.0.
    """
    _check_mode(mode)
    labels = []
    for outcomes in prefix_outcomes:
        hits = [bool(o) for o in outcomes]
        if not hits:
            labels.append(0.0)
        elif mode == "hard":
            labels.append(float(any(hits)))
        else:
            labels.append(sum(hits) / len(hits))
    return labels


def label_solution(
    steps: Sequence[str],
    rollout: Callable[[str, int], Sequence[bool]],
    n: int,
    mode: str = "hard",
) -> list[float]:
    """Label each step of one solution by rolling out from its prefix.

    rollout(prefix_text, n): sample n completions that continue `prefix_text` (the steps so
    far, joined by "\\n") and say for each whether its final answer is right. In real use it
    closes over the prompt and the gold answer and wraps a `RolloutEngine` (prompt + prefix
    -> n completions) followed by the accuracy reward (`r1.rewards.accuracy`); in tests it
    is any deterministic function. It is called once per step, len(steps) * n completions in
    all: the cost that made Math-Shepherd labels expensive at scale.
    """
    _check_mode(mode)
    if n < 1:
        raise ValueError(f"need n >= 1 completions per prefix, got {n}")
    return label_steps([rollout(prefix, n) for prefix in step_prefixes(steps)], mode)


def completion_steps(text: str, delimiter: str = "auto") -> list[str]:
    """The steps of a whole completion as a PRM scores it and MCTS builds it: the text after
    the opening <think> (when it starts with one) cut like `split_steps`, the closing tags and
    the answer block included, so the last step carries the final answer and its label is the
    outcome. Joined back by `steps_text`, the steps of a line-per-step completion rebuild it:
    "<think>\\n12 + 88 = 90\\n</think>\\n<answer>100</answer>" ->
    ["12 + 88 = 90", "</think>", "<answer>100</answer>"]."""
    _check_delimiter(delimiter)
    if not isinstance(text, str):
        return []
    body = text.lstrip()
    if body.startswith(THINK_OPEN):
        body = body[len(THINK_OPEN) :]
    return _cut(body, delimiter)


THINK_START = THINK_OPEN + STEP_SEPARATOR  # what a completion opens with, before step 1


def steps_text(steps: Sequence[str]) -> str:
    """The completion text that holds `steps`, each ended by the separator, so the policy
    starts the next step afresh: ["a", "b"] -> "<think>\\na\\nb\\n"."""
    return THINK_START + "".join(step + STEP_SEPARATOR for step in steps)
