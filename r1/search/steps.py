"""Math-Shepherd process labels for reasoning steps (cut by `r1.text.split_steps`).

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
pure Python on strings; the policy enters only through the `rollout` callable. How a
solution is cut into steps (`split_steps`, `completion_steps`, `steps_text`) is the
completion format's, in r1.text: the PRM (r1.models.prm) reads the same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from r1.checks import ConfigError
from r1.text import STEP_SEPARATOR

LABEL_MODES = ("hard", "soft")


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
