"""Which rollout completions were right, and at what difficulty level, for the behaviour
metrics of training (train/completion_len_correct, train/completion_len_level_<L>).

The producer (r1.rollout.producer) scores every completion but hands the module only the
total reward per row. `RecordingReward` wraps the module's reward where the producer calls
it and keeps, for each scoring call, each group's completions with their outcome: the first
of CORRECTNESS_TERMS the reward has, scored 1 (right) or below (wrong), and the problem's
`level` (MATH's) when it has one. `outcomes` matches a trained rollout's groups to them by
their texts: with dynamic sampling a batch is assembled from several calls, with async
rollouts it was scored by the producer's thread a step earlier. A group whose texts match no
recorded group, or several with different outcomes, is left out of the split, so the split
is never wrong, only sometimes smaller.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

# Reward terms that say whether a completion is right: math and code.
CORRECTNESS_TERMS = ("accuracy", "code_exec")
Outcome = tuple[bool | None, Any]  # (right, or None when no term scored it; its level)


class RecordingReward:
    """`reward` (a CompositeReward) as the producer calls it, recording each call's outcomes;
    everything else is the wrapped reward's. Thread-safe: async rollouts score in a thread."""

    def __init__(self, reward: Any, group_size: int, keep_calls: int = 32):
        self.reward, self.group_size = reward, group_size
        self._calls: deque[dict[tuple[str, ...], set[tuple[Outcome, ...]]]] = deque(
            maxlen=keep_calls
        )
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name == "reward":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.reward, name)

    def score(self, samples: Sequence[Any], step: int = 0):
        output = self.reward.score(samples, step=step)
        values = next((output.terms[t] for t in CORRECTNESS_TERMS if t in output.terms), None)
        outcomes = [
            (
                None if values is None or values[i] is None else values[i] >= 1.0,
                (sample.meta or {}).get("level"),
            )
            for i, sample in enumerate(samples)
        ]
        groups: dict[tuple[str, ...], set[tuple[Outcome, ...]]] = {}
        g = self.group_size
        for start in range(0, len(samples) - g + 1, g):
            texts = tuple(s.completion for s in samples[start : start + g])
            groups.setdefault(texts, set()).add(tuple(outcomes[start : start + g]))
        with self._lock:
            self._calls.append(groups)
        return output

    def outcomes(self, texts: Sequence[str]) -> list[Outcome | None]:
        """One outcome per completion of a rollout (groups of group_size contiguous texts);
        None where its group cannot be matched to one recorded outcome."""
        with self._lock:
            calls = list(self._calls)
        found: list[Outcome | None] = []
        g = self.group_size
        for start in range(0, len(texts), g):
            group = tuple(texts[start : start + g])
            matches = set().union(*(call.get(group, set()) for call in calls))
            found += list(matches.pop()) if len(matches) == 1 else [None] * len(group)
        return found

    def state_dict(self) -> list:
        """The recorded calls as plain lists (a checkpoint's, loadable with weights_only): an
        async run's pending batch was scored before the checkpoint, and a resumed run must
        find its outcomes."""
        with self._lock:
            calls = list(self._calls)
        return [
            [
                [list(texts), [list(o) for o in outcome]]
                for texts, seen in call.items()
                for outcome in seen
            ]
            for call in calls
        ]

    def load_state_dict(self, state: list) -> None:
        calls = []
        for call in state:
            groups: dict[tuple[str, ...], set[tuple[Outcome, ...]]] = {}
            for texts, outcome in call:
                groups.setdefault(tuple(texts), set()).add(tuple(tuple(o) for o in outcome))
            calls.append(groups)
        with self._lock:
            self._calls.clear()
            self._calls.extend(calls)
