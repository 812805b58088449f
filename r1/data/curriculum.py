"""An online curriculum over difficulty levels: the order in which training problems come.

Over the first `ramp_batches` batches the hardest level admitted rises linearly from the
easiest level to the hardest; a batch draws only problems at or below it, in the epoch's
shuffled order, and after the ramp every level is admitted (the order is the plain shuffle).
It is a pure reordering of the sampler's permutation, so a resumed run draws exactly the
batches the interrupted one would have. The ramp follows training progress (batches), not
the policy's accuracy: the same for every seed and arm of an ablation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from r1.checks import ConfigError, check_int


@dataclass(frozen=True)
class Curriculum:
    ramp_batches: int

    def __post_init__(self):
        check_int("data.curriculum.ramp_batches", self.ramp_batches, 1)

    def admitted(self, batch: int, levels: Iterable[int]) -> int:
        """The hardest of `levels` that batch `batch` (counted from the start of training)
        may draw."""
        distinct = sorted(set(levels))
        # level k of n opens once (batch + 1) / ramp_batches passes (k - 1) / n
        n = len(distinct)
        index = ((batch + 1) * n + self.ramp_batches - 1) // self.ramp_batches - 1
        return distinct[min(n - 1, index)]

    def reorder(
        self, order: Sequence[int], levels: Sequence[int], first_batch: int, batch_items: int
    ) -> list[int]:
        """`order` (a shuffled permutation of the problems, whose levels are `levels`) with
        each position's item the earliest remaining one its batch admits; where none is left,
        the easiest remaining. first_batch: the global index of the epoch's first batch;
        batch_items: items per batch (over all ranks)."""
        queues: dict[int, deque[int]] = {}
        for position, item in enumerate(order):
            queues.setdefault(levels[item], deque()).append(position)
        present = list(queues)
        out = []
        for i in range(len(order)):
            ceiling = self.admitted(first_batch + i // batch_items, present)
            open_levels = [lv for lv, q in queues.items() if q and lv <= ceiling]
            if open_levels:
                level = min(open_levels, key=lambda lv: queues[lv][0])
            else:
                level = min(lv for lv, q in queues.items() if q)
            out.append(order[queues[level].popleft()])
        return out


def problem_levels(problems) -> list[int]:
    missing = [p for p in problems if not isinstance(p.meta.get("level"), int)]
    if missing:
        raise ConfigError(
            f"data.curriculum needs a difficulty level on every problem (meta.level); "
            f"{len(missing)} of {len(problems)} have none, e.g. {missing[0].question[:60]!r} "
            "(the procedural tasks record one: data.source.num_ops=[1,2,3], data=multiplication)"
        )
    return [p.meta["level"] for p in problems]
